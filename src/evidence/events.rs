//! Upstream evidence events (R38): a batch of deliveries from the events
//! exchange becomes one batch of intake; each delivery gets its own answer,
//! and an event acts for an org only if its publisher is bound to it.

use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::{record_many, BatchItem, EvidenceData, NewEvidence};
use crate::jobs::Upstream;
use crate::publishers::PublisherBindings;

/// R38, batched: record many upstream events in one transaction. Each
/// delivery gets its own answer: recorded (or recorded before), invalid for
/// good (dead-letter it alone), or unavailable (the database: retry all).
/// An event acts for the org it names only if its publisher is bound to it.
pub async fn ingest_events(
    db: &PgPool,
    publishers: &PublisherBindings,
    events: &[Upstream<'_>],
) -> Vec<Result<(), IngestError>> {
    let mut out: Vec<Option<Result<(), IngestError>>> = (0..events.len()).map(|_| None).collect();
    let mut items = Vec::new();
    let mut index = Vec::new();
    for (i, upstream) in events.iter().enumerate() {
        match serde_json::from_slice::<EvidenceEvent>(upstream.body) {
            Ok(event) => {
                if let Err(reason) = publishers.admits(upstream.user_id, event.org_id) {
                    out[i] = Some(Err(IngestError::Invalid(reason)));
                    continue;
                }
                index.push(i);
                items.push(BatchItem {
                    case_id: event.case_id,
                    org_id: Some(event.org_id),
                    evidence: NewEvidence {
                        id: Some(event.id),
                        folder_id: event.evidence.folder_id,
                        data: event.evidence.data,
                    },
                });
            }
            Err(e) => {
                out[i] = Some(Err(IngestError::Invalid(format!(
                    "malformed evidence event: {e}"
                ))))
            }
        }
    }
    match record_many(db, None, items).await {
        Ok(results) => {
            for (i, r) in index.into_iter().zip(results) {
                out[i] = Some(
                    r.map(|_| ())
                        .map_err(|e| IngestError::Invalid(e.to_string())),
                );
            }
        }
        Err(e) => {
            for i in index {
                out[i] = Some(Err(IngestError::Unavailable(e.to_string())));
            }
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(IngestError::Unavailable("not handled".into()))))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Never valid: dead-letter it with the reason.
    #[error("{0}")]
    Invalid(String),
    /// The database is unavailable: try again later.
    #[error("{0}")]
    Unavailable(String),
}

#[derive(Deserialize)]
struct EvidenceEvent {
    /// The org the publisher acts for: the case must be one of its cases.
    org_id: Uuid,
    case_id: Uuid,
    id: Uuid,
    #[serde(flatten)]
    evidence: NewEvidenceNoId,
}

#[derive(Deserialize)]
struct NewEvidenceNoId {
    folder_id: Option<Uuid>,
    #[serde(flatten)]
    data: EvidenceData,
}

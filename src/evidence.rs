//! Evidence intake: `POST /v1/cases/{id}/evidence` and the upstream events
//! exchange (R38) both land here, so both paths behave the same. The evidence
//! row and its evidence-added job are written in one transaction (R35); a
//! client-chosen id makes a resend an idempotent retry.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access;
use crate::audit::{self, Action};
use crate::cases;
use crate::error::{Error, Result};
use crate::jobs::{Job, Requester};
use crate::principal::UserPrincipal;
use crate::sharing::fanout::EvidenceAdded;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Gps {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Pii {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct CommunityRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pii: Option<Pii>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Content {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// Every field of the evidence body (API.md) but `id` and `folder_id`.
/// Absent fields stay absent when serialized.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct EvidenceData {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exif: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clips: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markers: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<Gps>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_request: Option<CommunityRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

impl EvidenceData {
    pub fn validate(&self) -> Result<()> {
        if self.title.trim().is_empty() {
            return Err(Error::validation("title must not be empty"));
        }
        if let Some(g) = &self.gps {
            if !(-90.0..=90.0).contains(&g.lat) || !(-180.0..=180.0).contains(&g.lon) {
                return Err(Error::validation("gps lat/lon out of range"));
            }
        }
        if let Some(exif) = &self.exif {
            if !exif.is_object() {
                return Err(Error::validation("exif must be an object"));
            }
        }
        if let Some(c) = &self.content {
            if let Some(h) = &c.sha256 {
                if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(Error::validation("content.sha256 must be 64 hex digits"));
                }
            }
            if c.size_bytes.is_some_and(|s| s < 0) {
                return Err(Error::validation("content.size_bytes must not be negative"));
            }
        }
        Ok(())
    }
}

/// The evidence body as sent by a client.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewEvidence {
    /// Optional client-chosen id: resending the same id is an idempotent retry.
    pub id: Option<Uuid>,
    pub folder_id: Option<Uuid>,
    #[serde(flatten)]
    pub data: EvidenceData,
}

/// Evidence as returned: the body plus its id and folder.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvidenceView {
    pub id: Uuid,
    pub folder_id: Option<Uuid>,
    #[serde(flatten)]
    pub data: EvidenceData,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    pub job_id: Uuid,
}

/// Record evidence in `case_id` and its evidence-added job, in one
/// transaction on one connection. `by`: the user adding it, whose org must
/// own the case (an external case is read-only: 403); `None` for a trusted
/// service (R38 events, the service token).
pub async fn record(
    db: &PgPool,
    case_id: Uuid,
    by: Option<&UserPrincipal>,
    new: NewEvidence,
) -> Result<Accepted> {
    new.data.validate()?;
    let id = new.id.unwrap_or_else(Uuid::new_v4);
    let actor = by.map(|u| u.user_id);
    let mut tx = db.begin().await?;
    let case = match by {
        Some(u) => access::writable(&mut tx, u, case_id).await?,
        None => cases::by_id(&mut tx, case_id).await?,
    };
    cases::check_folder(&mut tx, case_id, new.folder_id).await?;
    let job_id = Uuid::new_v4();
    let inserted = sqlx::query(
        "INSERT INTO evidence (id, case_id, folder_id, title, data, job_id) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(case_id)
    .bind(new.folder_id)
    .bind(new.data.title.trim())
    .bind(sqlx::types::Json(&new.data))
    .bind(job_id)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // A retry of an accepted request answers as the first time did.
        drop(tx);
        return existing(&mut *db.acquire().await?, case_id, id).await;
    }
    EvidenceAdded { evidence_id: id }
        .enqueue_with_id_tx(&mut tx, job_id, Requester::case(case.org_id, case_id))
        .await?;
    audit::record(
        &mut tx,
        Action::EvidenceAdded,
        audit::Entry {
            org_id: Some(case.org_id),
            actor_user_id: actor,
            case_id: Some(case_id),
            evidence_id: Some(id),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Accepted { id, job_id })
}

async fn existing(db: &mut PgConnection, case_id: Uuid, id: Uuid) -> Result<Accepted> {
    let row: Option<(Uuid, Option<Uuid>)> =
        sqlx::query_as("SELECT case_id, job_id FROM evidence WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    match row {
        Some((c, Some(job_id))) if c == case_id => Ok(Accepted { id, job_id }),
        _ => Err(Error::Conflict(
            "an evidence item with this id already exists elsewhere".into(),
        )),
    }
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

/// R38: record an evidence-added event published by an upstream system.
pub async fn ingest_event(db: &PgPool, body: &[u8]) -> Result<Accepted, IngestError> {
    let event: EvidenceEvent = serde_json::from_slice(body)
        .map_err(|e| IngestError::Invalid(format!("malformed evidence event: {e}")))?;
    let new = NewEvidence {
        id: Some(event.id),
        folder_id: event.evidence.folder_id,
        data: event.evidence.data,
    };
    record(db, event.case_id, None, new)
        .await
        .map_err(|e| match e {
            Error::Database(e) => IngestError::Unavailable(e.to_string()),
            Error::Internal(e) => IngestError::Unavailable(e.to_string()),
            other => IngestError::Invalid(other.to_string()),
        })
}

#[derive(sqlx::FromRow)]
pub struct EvidenceRow {
    pub id: Uuid,
    pub folder_id: Option<Uuid>,
    pub data: sqlx::types::Json<EvidenceData>,
}

/// The org's own view of its evidence (unfiltered: it owns it).
pub async fn list_owned(db: &mut PgConnection, case_id: Uuid) -> Result<Vec<EvidenceView>> {
    let rows: Vec<EvidenceRow> = sqlx::query_as(
        "SELECT id, folder_id, data FROM evidence WHERE case_id = $1 ORDER BY created_at, id",
    )
    .bind(case_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| EvidenceView {
            id: r.id,
            folder_id: r.folder_id,
            data: r.data.0,
        })
        .collect())
}

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
use crate::error::{Error, Result};
use crate::jobs::{Job, Requester, Upstream};
use crate::limits;
use crate::principal::UserPrincipal;
use crate::publishers::PublisherBindings;
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

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Content {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The media type the file was uploaded with (R52), served with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
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
        limits::text("title", &self.title, MAX_TITLE_CHARS)?;
        limits::opt("description", self.description.as_deref(), limits::TEXT)?;
        limits::opt("transcript", self.transcript.as_deref(), limits::LONG)?;
        limits::list(
            "notes",
            self.notes.as_deref().unwrap_or_default(),
            limits::TEXT,
        )?;
        limits::list(
            "tags",
            self.tags.as_deref().unwrap_or_default(),
            limits::SHORT,
        )?;
        limits::list(
            "categories",
            self.categories.as_deref().unwrap_or_default(),
            limits::SHORT,
        )?;
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

/// The longest evidence title accepted (a title is a label, not a document).
pub const MAX_TITLE_CHARS: usize = 1_000;

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
/// transaction: `record_many` with one item. `by`: the user adding it, who
/// must be able to add to the case (an external case is read-only: 403);
/// `None` for a trusted service (the service token).
pub async fn record(
    db: &PgPool,
    case_id: Uuid,
    by: Option<&UserPrincipal>,
    new: NewEvidence,
) -> Result<Accepted> {
    let item = BatchItem {
        case_id,
        org_id: None,
        evidence: new,
    };
    record_many(db, by, vec![item])
        .await?
        .pop()
        .expect("one answer per item")
}

/// One item of a batch: the case it goes to and the evidence.
pub struct BatchItem {
    pub case_id: Uuid,
    /// The org the item claims its case belongs to (upstream events); an
    /// item whose case is another org's is refused as not found.
    pub org_id: Option<Uuid>,
    pub evidence: NewEvidence,
}

/// Record a batch of evidence in one transaction, set-based: one statement
/// per step (cases, folders, evidence, duplicates, audit) whatever the batch
/// size, and one evidence-added job per case. Each item gets its own result:
/// an invalid item (bad body, unknown case or folder, an id used elsewhere)
/// is refused alone and the rest are recorded. A client id already recorded
/// in the same case answers as the first time (idempotent retries, inside a
/// batch too). `by`: the user (who must be able to add to each case, R41),
/// or `None` for a trusted service. The outer error is the database's: then
/// nothing was recorded.
pub async fn record_many(
    db: &PgPool,
    by: Option<&UserPrincipal>,
    items: Vec<BatchItem>,
) -> Result<Vec<Result<Accepted>>> {
    let mut results: Vec<Option<Result<Accepted>>> = (0..items.len()).map(|_| None).collect();
    let ids: Vec<Uuid> = items
        .iter()
        .map(|i| i.evidence.id.unwrap_or_else(Uuid::new_v4))
        .collect();
    for (i, item) in items.iter().enumerate() {
        if let Err(e) = item.evidence.data.validate() {
            results[i] = Some(Err(e));
        }
    }
    let mut tx = crate::db::begin(db).await?;
    // The cases, each checked once.
    let mut case_ids: Vec<Uuid> = items.iter().map(|i| i.case_id).collect();
    case_ids.sort();
    case_ids.dedup();
    let mut orgs: std::collections::HashMap<Uuid, Uuid> = std::collections::HashMap::new();
    match by {
        None => {
            let found: Vec<(Uuid, Uuid)> =
                sqlx::query_as("SELECT id, org_id FROM cases WHERE id = ANY($1)")
                    .bind(&case_ids)
                    .fetch_all(&mut *tx)
                    .await?;
            orgs.extend(found);
        }
        Some(u) => {
            for case_id in &case_ids {
                match access::writable(&mut tx, u, *case_id).await {
                    Ok(case) => {
                        orgs.insert(case.id, case.org_id);
                    }
                    Err(Error::Database(e)) => return Err(Error::Database(e)),
                    Err(e) => {
                        for (i, item) in items.iter().enumerate() {
                            if item.case_id == *case_id && results[i].is_none() {
                                results[i] = Some(Err(same_error(&e)));
                            }
                        }
                    }
                }
            }
        }
    }
    // Folders must be folders of the item's case.
    let folder_ids: Vec<Uuid> = items.iter().filter_map(|i| i.evidence.folder_id).collect();
    let folders: std::collections::HashMap<Uuid, Uuid> = if folder_ids.is_empty() {
        Default::default()
    } else {
        sqlx::query_as::<_, (Uuid, Uuid)>("SELECT id, case_id FROM folders WHERE id = ANY($1)")
            .bind(&folder_ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect()
    };
    // One job per case: its id is written with the evidence.
    let jobs: std::collections::HashMap<Uuid, Uuid> =
        orgs.keys().map(|c| (*c, Uuid::new_v4())).collect();
    let mut seen = std::collections::HashSet::new();
    let (mut e_ids, mut e_cases, mut e_folders, mut e_titles, mut e_data, mut e_jobs) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (i, item) in items.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        match orgs.get(&item.case_id) {
            Some(org) if item.org_id.is_none_or(|claimed| claimed == *org) => {}
            _ => {
                results[i] = Some(Err(Error::NotFound("case")));
                continue;
            }
        }
        if let Some(f) = item.evidence.folder_id {
            if folders.get(&f) != Some(&item.case_id) {
                results[i] = Some(Err(Error::validation(
                    "folder_id/parent_id does not name a folder of this case",
                )));
                continue;
            }
        }
        if !seen.insert(ids[i]) {
            continue; // the same id twice in one batch: the first one counts
        }
        e_ids.push(ids[i]);
        e_cases.push(item.case_id);
        e_folders.push(item.evidence.folder_id);
        e_titles.push(item.evidence.data.title.trim().to_string());
        e_data.push(
            serde_json::to_value(&item.evidence.data).map_err(|e| Error::Internal(e.into()))?,
        );
        e_jobs.push(jobs[&item.case_id]);
    }
    let inserted: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "INSERT INTO evidence (id, case_id, folder_id, title, data, job_id)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], $6::uuid[])
         ON CONFLICT (id) DO NOTHING RETURNING id, case_id",
    )
    .bind(&e_ids)
    .bind(&e_cases)
    .bind(&e_folders)
    .bind(&e_titles)
    .bind(&e_data)
    .bind(&e_jobs)
    .fetch_all(&mut *tx)
    .await?;
    let inserted_ids: std::collections::HashSet<Uuid> = inserted.iter().map(|(i, _)| *i).collect();
    // Ids recorded before: a retry answers as the first time did.
    let earlier: Vec<Uuid> = e_ids
        .iter()
        .filter(|i| !inserted_ids.contains(i))
        .copied()
        .collect();
    let earlier: std::collections::HashMap<Uuid, (Uuid, Option<Uuid>)> = if earlier.is_empty() {
        Default::default()
    } else {
        sqlx::query_as::<_, (Uuid, Uuid, Option<Uuid>)>(
            "SELECT id, case_id, job_id FROM evidence WHERE id = ANY($1)",
        )
        .bind(&earlier)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(id, c, j)| (id, (c, j)))
        .collect()
    };
    // One evidence-added job per case with new evidence.
    let mut by_case: std::collections::BTreeMap<Uuid, Vec<Uuid>> = Default::default();
    for (id, case_id) in &inserted {
        by_case.entry(*case_id).or_default().push(*id);
    }
    for (case_id, mut ids) in by_case {
        let first = ids.remove(0);
        EvidenceAdded {
            evidence_id: first,
            more: ids,
        }
        .enqueue_with_id_tx(
            &mut tx,
            jobs[&case_id],
            Requester::case(orgs[&case_id], case_id),
        )
        .await?;
    }
    let entries: Vec<audit::Entry> = inserted
        .iter()
        .map(|(id, case_id)| audit::Entry {
            org_id: Some(orgs[case_id]),
            actor_user_id: by.map(|u| u.user_id),
            case_id: Some(*case_id),
            evidence_id: Some(*id),
            ..Default::default()
        })
        .collect();
    audit::record_many(&mut tx, Action::EvidenceAdded, &entries).await?;
    tx.commit().await?;
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, item)| match results[i].take() {
            Some(r) => r,
            None if inserted_ids.contains(&ids[i]) => Ok(Accepted {
                id: ids[i],
                job_id: jobs[&item.case_id],
            }),
            None => match earlier.get(&ids[i]) {
                Some((c, Some(job_id))) if *c == item.case_id => Ok(Accepted {
                    id: ids[i],
                    job_id: *job_id,
                }),
                _ => Err(Error::Conflict(
                    "an evidence item with this id already exists elsewhere".into(),
                )),
            },
        })
        .collect())
}

/// The same refusal for every item of one case.
fn same_error(e: &Error) -> Error {
    match e {
        Error::NotFound(what) => Error::NotFound(what),
        Error::Forbidden(m) => Error::Forbidden(m.clone()),
        other => Error::validation(other.to_string()),
    }
}

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

#[derive(sqlx::FromRow)]
pub struct EvidenceRow {
    pub id: Uuid,
    pub folder_id: Option<Uuid>,
    pub data: sqlx::types::Json<EvidenceData>,
}

/// One page of the org's own evidence, in (created_at, id) order, after the
/// item `after` (keyset: the cost is the page, not the case's size). One
/// row more than `limit` is read, so the caller knows whether another page
/// follows. `None` when `after` is not evidence of this case.
pub async fn page_owned(
    db: &mut PgConnection,
    case_id: Uuid,
    scope: Option<&crate::access::ItemScope>,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Option<Vec<EvidenceView>>> {
    if let Some(after) = after {
        let known: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM evidence WHERE id = $1 AND case_id = $2)",
        )
        .bind(after)
        .bind(case_id)
        .fetch_one(&mut *db)
        .await?;
        if !known {
            return Ok(None);
        }
    }
    // R55: a user given folders or a subset by internal shares sees those
    // (two arrays: the generic plan stays the unscoped one's).
    let (folders, items) = match scope {
        Some(scope) => (Some(&scope.folder_ids), Some(&scope.evidence_ids)),
        None => (None, None),
    };
    let rows: Vec<EvidenceRow> = sqlx::query_as(
        "SELECT id, folder_id, data FROM evidence
         WHERE case_id = $1
           AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM evidence WHERE id = $2))
           AND ($4::uuid[] IS NULL OR folder_id = ANY($4) OR id = ANY($5))
         ORDER BY created_at, id LIMIT $3",
    )
    .bind(case_id)
    .bind(after)
    .bind(limit as i64 + 1)
    .bind(folders)
    .bind(items)
        .fetch_all(db)
        .await?;
    Ok(Some(
        rows.into_iter()
            .map(|r| EvidenceView {
                id: r.id,
                folder_id: r.folder_id,
                data: r.data.0,
            })
            .collect(),
    ))
}

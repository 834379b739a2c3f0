//! Imports carry the evidence files (R53). A copied item whose sender had
//! stored its content is written `pending` in the transaction that copies
//! it, which also queues a [`CopyContent`] job for the copy's case (outbox).
//! The job re-hashes the sender's stored bytes against the SHA-256 the
//! sender recorded and gives the copy its own stored object: `match`. Bytes
//! that hash otherwise are `content_mismatch` (nothing is kept, nothing is
//! passed off as good), an object that is gone is `missing`. The copy's
//! object outlives revocation and the sender's own object (the local store
//! keeps one file per SHA-256 and links copies to it).
//!
//! Set-based and streaming: pending items are read [`CHUNK`] at a time, the
//! bytes are read, hashed and written on a blocking thread (never on the
//! async runtime's workers, never whole in memory), and each chunk's outcomes
//! are recorded by one UNNEST update. Idempotent: only `pending` rows are
//! touched, and the stored object is content-addressed.

use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use uuid::Uuid;

use crate::audit::{self, Action};
use crate::cases::ContentState;
use crate::content::store::{ContentStore, Object};
use crate::content::store_uri;
use crate::context::JobContext;
use crate::db::PgEnum;
use crate::error::Result;
use crate::evidence::EvidenceView;
use crate::jobs::{Job, JobError};

/// Items copied per round trip and blocking task.
const CHUNK: i64 = 64;

/// Prepare a filtered item for the copy: its sender's object is not the
/// copy's (the `uri` goes until the copy has its own), and whether a file is
/// to be copied (`pending`): the sender had stored content under its SHA-256.
pub(super) fn detach_content(view: &mut EvidenceView) -> Option<ContentState> {
    let content = view.data.content.as_mut()?;
    let stored =
        content.sha256.is_some() && content.uri.as_deref() == Some(store_uri(view.id).as_str());
    content.uri = None;
    stored.then_some(ContentState::Pending)
}

/// Queue the copy of `case_id`'s pending files (an imported copy of
/// `org_id`'s) and the acknowledgement of its receipts (R54); several
/// queued for one case are harmless (only `pending` rows are copied, only
/// unacknowledged receipts acknowledged).
pub use crate::collaboration::CopyContent;

pub(super) async fn queue_tx(tx: &mut PgConnection, org_id: Uuid, case_id: Uuid) -> Result<()> {
    CopyContent { case_id }
        .enqueue_about_tx(tx, org_id, case_id)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: Uuid,
    source: Uuid,
    sha256: String,
    size_bytes: Option<i64>,
}

/// What the copy of one item came to.
enum Outcome {
    /// The bytes hash to the recorded SHA-256: the verified file to store.
    Match(PathBuf),
    Mismatch,
    Missing,
}

impl Outcome {
    fn state(&self) -> ContentState {
        match self {
            Outcome::Match(_) => ContentState::Match,
            Outcome::Mismatch => ContentState::ContentMismatch,
            Outcome::Missing => ContentState::Missing,
        }
    }
}

impl Job for CopyContent {
    const NAME: &'static str = "copy-content";
    type Context = JobContext;

    async fn run(&self, job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let mut after = Uuid::nil();
        let mut counts = [0u64; 3];
        loop {
            let rows: Vec<Pending> = sqlx::query_as(&format!(
                "SELECT id, source_evidence_id AS source, data->'content'->>'sha256' AS sha256,
                        (data->'content'->>'size_bytes')::bigint AS size_bytes
                   FROM evidence
                  WHERE case_id = $1 AND content_state = {pending} AND id > $2
                    AND source_evidence_id IS NOT NULL AND data->'content'->>'sha256' IS NOT NULL
                  ORDER BY id LIMIT $3",
                // The partial index `evidence_content_pending` serves it: the
                // state is in the text, so a generic plan still uses it.
                pending = ContentState::Pending.literal(),
            ))
            .bind(self.case_id)
            .bind(after)
            .bind(CHUNK)
            .fetch_all(&ctx.db)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            let outcomes = copy_chunk(&ctx.store, rows)
                .await
                .map_err(|e| JobError::transient(format!("copying evidence files: {e}")))?;
            for (_, outcome) in &outcomes {
                counts[match outcome {
                    Outcome::Match(_) => 0,
                    Outcome::Mismatch => 1,
                    Outcome::Missing => 2,
                }] += 1;
            }
            record(ctx, job_id, self.case_id, &outcomes).await?;
        }
        // R54: with every file copied, the receiving org acknowledges what
        // arrived against the manifests it was sent.
        let seal = crate::custody::seal_key(&ctx.settings.audit_key());
        crate::custody::acknowledge(&ctx.db, &seal, self.case_id)
            .await
            .map_err(JobError::from)?;
        if counts.iter().any(|n| *n > 0) {
            tracing::info!(case_id = %self.case_id, matched = counts[0], mismatched = counts[1],
                           missing = counts[2], "evidence files copied");
        }
        Ok(())
    }
}

/// Read, hash and write one chunk's files on a blocking thread, then move
/// each verified file into the store as the copy's object.
async fn copy_chunk(store: &ContentStore, rows: Vec<Pending>) -> io::Result<Vec<(Uuid, Outcome)>> {
    let mut sources = store.evidence_in_order(rows.iter().map(|r| r.source).collect());
    let scratch = store
        .temp_path("copy")
        .await?
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let checked = tokio::task::spawn_blocking(move || {
        rows.into_iter()
            .map(|r| {
                let outcome = match sources.open(r.source) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Missing,
                    Err(e) => return Err(e),
                    Ok((reader, _)) => {
                        let tmp = scratch.join(format!("copy-{}-{}", r.id, Uuid::new_v4()));
                        let (sha256, size) = hash_into(reader, &tmp)?;
                        let size_ok = r.size_bytes.is_none_or(|n| n as u64 == size);
                        if size_ok && sha256.eq_ignore_ascii_case(&r.sha256) {
                            Outcome::Match(tmp)
                        } else {
                            std::fs::remove_file(&tmp)?;
                            tracing::warn!(evidence_id = %r.id, source = %r.source, expected = %r.sha256,
                                           actual = %sha256, "content_mismatch: the sender's stored bytes do not hash to its recorded SHA-256");
                            Outcome::Mismatch
                        }
                    }
                };
                Ok((r.id, r.sha256, outcome))
            })
            .collect::<io::Result<Vec<_>>>()
    })
    .await
    .map_err(io::Error::other)??;
    let mut outcomes = Vec::with_capacity(checked.len());
    for (id, sha256, outcome) in checked {
        if let Outcome::Match(tmp) = &outcome {
            store
                .put_verified(tmp, &sha256.to_ascii_lowercase(), Object::Evidence(id))
                .await?;
        }
        outcomes.push((id, outcome));
    }
    Ok(outcomes)
}

/// Copy `reader` into a new private file at `path`, durably, hashing it.
fn hash_into(reader: Box<dyn Read>, path: &std::path::Path) -> io::Result<(String, u64)> {
    let mut reader = io::BufReader::with_capacity(256 * 1024, reader);
    let mut out =
        io::BufWriter::with_capacity(256 * 1024, crate::content::store::private_file_sync(path)?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let buf = io::BufRead::fill_buf(&mut reader)?;
        if buf.is_empty() {
            break;
        }
        hasher.update(buf);
        out.write_all(buf)?;
        let n = buf.len();
        size += n as u64;
        io::BufRead::consume(&mut reader, n);
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// Record a chunk's outcomes in one statement (a matched copy's `uri` names
/// its own object), and audit them on the copy's case.
async fn record(
    ctx: &JobContext,
    job_id: Uuid,
    case_id: Uuid,
    outcomes: &[(Uuid, Outcome)],
) -> Result<(), JobError> {
    let ids: Vec<Uuid> = outcomes.iter().map(|(id, _)| *id).collect();
    let states: Vec<ContentState> = outcomes.iter().map(|(_, o)| o.state()).collect();
    let mut tx = ctx.db.begin().await?;
    audit::act_as_job(&mut tx, job_id).await?;
    let moved = crate::cases::write::record_copy_outcomes(&mut tx, &ids, &states).await?;
    let org_id: Option<Uuid> = if moved > 0 {
        crate::cases::org_of(&mut tx, case_id).await?
    } else {
        None
    };
    if let Some(org_id) = org_id {
        let count = |s: ContentState| states.iter().filter(|x| **x == s).count();
        audit::record(
            &mut tx,
            Action::ContentCopied,
            audit::Entry {
                org_id: Some(org_id),
                case_id: Some(case_id),
                details: Some(serde_json::json!({
                    "match": count(ContentState::Match),
                    "content_mismatch": count(ContentState::ContentMismatch),
                    "missing": count(ContentState::Missing),
                })),
                ..Default::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

//! The `BuildLinkShare` job (R40): plans the package from the evidence in
//! scope when it runs (a snapshot; the governing policy recorded with the
//! request is applied again, R10), builds it, puts it into the content store
//! and marks the link share complete, emailing the link once; or marks it
//! failed. Idempotent (R35): a second run finds it built and does nothing.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::path::Path;
use uuid::Uuid;

use super::lifecycle::{recipients, status_event_tx};
use super::package::{self, BuildError, Built, Package, Plan, PlannedEvidence};
use super::{load, Attachments, LinkShareRow, LinkShareStatus};
use crate::audit::{self, Action};
use crate::content::store::{ContentStore, Object};
use crate::content::store_uri;
use crate::context::JobContext;
use crate::error::Result;
use crate::jobs::{Job, JobError, Reopened};
use crate::notify::{self, NoticeKind};
use crate::sharing;

/// Build the package of a link share.
#[derive(Debug, Serialize, Deserialize)]
pub struct BuildLinkShare {
    pub link_share_id: Uuid,
}

impl Job for BuildLinkShare {
    const NAME: &'static str = "build-link-share";
    type Context = JobContext;

    async fn run(&self, _job_id: Uuid, ctx: &JobContext) -> std::result::Result<(), JobError> {
        let mut conn = ctx.db.acquire().await?;
        let Some(row) = load(&mut conn, self.link_share_id).await? else {
            return Err(JobError::permanent(format!(
                "link share {} does not exist",
                self.link_share_id
            )));
        };
        crate::jobs::record_case(row.case_id);
        if row.status != LinkShareStatus::Processing {
            return Ok(()); // built (or failed) before: nothing to do
        }
        let plan = plan(&mut conn, &row, &ctx.store).await?;
        drop(conn);
        let output = plan.output.clone();
        let started = std::time::Instant::now();
        let built = tokio::task::spawn_blocking(move || package::build(&plan))
            .await
            .map_err(|e| JobError::transient(format!("package builder panicked: {e}")))?;
        if let Ok(b) = &built {
            tracing::info!(
                bytes = b.size_bytes,
                build_ms = started.elapsed().as_millis() as u64,
                "package built"
            );
        }
        match built {
            Ok(built) => complete(ctx, &row, &output, built).await,
            Err(BuildError::Content {
                evidence_id,
                reason,
            }) => fail(&ctx.db, row.id, &reason, evidence_id)
                .await
                .map_err(sharing::job_error),
            Err(BuildError::Io(e)) => Err(JobError::transient(format!("building package: {e}"))),
        }
    }

    async fn on_dead(&self, ctx: &JobContext, reason: &str) {
        if let Err(e) = fail(&ctx.db, self.link_share_id, reason, None).await {
            tracing::error!(error = %e, link_share_id = %self.link_share_id, "cannot mark link share failed");
        }
    }

    /// A failed link share goes back to `processing` (failure cleared), with
    /// a `link_share.processing` status event.
    async fn on_requeue(&self, tx: &mut PgConnection) -> sqlx::Result<Reopened> {
        let reopened: Option<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE link_shares SET status = 'processing', failure = NULL
             WHERE id = $1 AND status = 'failed' RETURNING org_id, case_id",
        )
        .bind(self.link_share_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((org_id, case_id)) = reopened else {
            return Ok(Reopened::default());
        };
        status_event_tx(
            tx,
            self.link_share_id,
            org_id,
            case_id,
            LinkShareStatus::Processing,
        )
        .await?;
        Ok(Reopened {
            subject: Some(format!(
                "link share {}: failed -> processing",
                self.link_share_id
            )),
            share_id: None,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EvidenceItem {
    id: Uuid,
    folder_id: Option<Uuid>,
    title: String,
    transcript: Option<String>,
    sha256: Option<String>,
    size_bytes: Option<i64>,
    uri: Option<String>,
}

/// A file or folder name made safe as one path component of an archive, at
/// most `max` characters long: no separators, control characters, bidi
/// overrides (which make `exe.txt` read as `txt.exe`) or characters Windows
/// refuses; no trailing dots or spaces (Windows drops them); and no
/// Windows device name (`CON`, `nul.txt`, `COM1`…), which would open a
/// device instead of a file when extracted there.
fn component(name: &str, max: usize) -> String {
    let cleaned: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_control() || bidi_control(c) || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(max)
        .collect();
    let cleaned = cleaned.trim_end_matches(['.', ' ']).trim_start();
    match cleaned {
        "" | "." | ".." => "_".into(),
        s if windows_device(s) => format!("_{s}"),
        s => s.to_string(),
    }
}

/// Unicode bidirectional formatting characters.
fn bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A name Windows reserves for a device, with or without an extension.
fn windows_device(name: &str) -> bool {
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_ascii_uppercase();
    matches!(
        stem.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((stem.starts_with("COM") || stem.starts_with("LPT"))
        && stem.len() == 4
        && stem.as_bytes()[3].is_ascii_digit())
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && ["\u{00B9}", "\u{00B2}", "\u{00B3}"].contains(&&stem[3..]))
}

async fn plan(
    conn: &mut PgConnection,
    row: &LinkShareRow,
    store: &ContentStore,
) -> std::result::Result<Plan, JobError> {
    // The policy recorded with the request is applied again here, so that
    // nothing it excludes can reach the package whatever the row says.
    let allowed = Attachments {
        transcripts: row.attachments.transcripts
            && row
                .policy
                .as_ref()
                .is_none_or(|p| p.policy.evidence_terms.transcript),
        audit_trails: row.attachments.audit_trails
            && row
                .policy
                .as_ref()
                .is_none_or(|p| p.policy.permissions.sender_audit_trail),
        table_of_contents: row.attachments.table_of_contents,
    };
    let (kind, folder_ids, evidence_ids) = sharing::scope_args(&row.scope.0);
    let items: Vec<EvidenceItem> = sqlx::query_as(&format!(
        "SELECT e.id, e.folder_id, e.title, e.data->>'transcript' AS transcript,
                e.data->'content'->>'sha256' AS sha256, e.data->'content'->>'uri' AS uri,
                (e.data->'content'->>'size_bytes')::bigint AS size_bytes
         FROM evidence e
         WHERE e.case_id = $1 AND (
             $2 = 'case'
             OR ($2 = 'folders' AND e.folder_id IN ({}))
             OR ($2 = 'evidence' AND e.id = ANY($4)))
         ORDER BY e.created_at, e.id",
        sharing::SCOPE_FOLDERS_SQL
    ))
    .bind(row.case_id)
    .bind(kind)
    .bind(&folder_ids)
    .bind(&evidence_ids)
    .fetch_all(&mut *conn)
    .await?;
    let folders: HashMap<Uuid, (Option<Uuid>, String)> =
        sqlx::query_as::<_, (Uuid, Option<Uuid>, String)>(
            "SELECT id, parent_id, name FROM folders WHERE case_id = $1",
        )
        .bind(row.case_id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, parent, name)| (id, (parent, name)))
        .collect();
    // ISO 9660 (Joliet) names have at most 64 characters: a title keeps 27,
    // followed by "-" and the evidence id.
    let (title_max, folder_max) = match row.package {
        Package::Zip => (100, 100),
        Package::Iso => (27, 64),
    };
    let folder_path = |mut id: Option<Uuid>| {
        let mut parts = Vec::new();
        // The depth bound guards against a cycle that the schema does not rule out.
        while let Some((parent, name)) = id.and_then(|i| folders.get(&i)) {
            parts.push(component(name, folder_max));
            id = *parent;
            if parts.len() > 64 {
                break;
            }
        }
        parts.reverse();
        parts
    };

    let mut evidence = Vec::new();
    let mut extras = Vec::new();
    let mut toc = String::new();
    let (case_number, case_title): (String, String) =
        sqlx::query_as("SELECT case_number, title FROM cases WHERE id = $1")
            .bind(row.case_id)
            .fetch_one(&mut *conn)
            .await?;
    toc.push_str(&format!(
        "Case {}: {}\nLink share {} created {}\n\n",
        one_line(&case_number),
        one_line(&case_title),
        row.id,
        row.created_at
    ));
    for item in items {
        let mut parts = vec!["evidence".to_string()];
        if row.retain_folder_structure {
            parts.extend(folder_path(item.folder_id));
        }
        parts.push(format!("{}-{}", component(&item.title, title_max), item.id));
        let path = parts.join("/");
        let stored = item.uri.as_deref() == Some(store_uri(item.id).as_str());
        let stored_sha256 = if stored { item.sha256.clone() } else { None };
        toc.push_str(&format!(
            "{}\t{}\n",
            if stored_sha256.is_some() {
                path.as_str()
            } else {
                "(no content)"
            },
            one_line(&item.title)
        ));
        if allowed.transcripts {
            if let Some(t) = &item.transcript {
                extras.push((
                    format!("transcripts/{}.txt", item.id),
                    t.clone().into_bytes(),
                ));
            }
        }
        evidence.push(PlannedEvidence {
            id: item.id,
            title: item.title,
            path,
            stored_sha256,
            stored_size: item.size_bytes.filter(|_| stored).map(|n| n as u64),
        });
    }
    if allowed.audit_trails {
        let packaged: Vec<Uuid> = evidence.iter().map(|e| e.id).collect();
        let items = packaged_audit(&mut *conn, row.org_id, row.case_id, row.id, &packaged).await?;
        let bytes = serde_json::to_vec_pretty(&serde_json::json!({ "items": items }))
            .map_err(|e| JobError::permanent(e.to_string()))?;
        extras.push(("audit.json".into(), bytes));
    }
    if allowed.table_of_contents {
        extras.push(("toc.txt".into(), toc.into_bytes()));
    }
    // R54: a package of an imported copy carries the custody receipts of the
    // collaboration it came from (the copy's own chain of custody; nothing
    // about other partners), each as served by `GET /v1/shares/{id}/receipt`.
    let shares: Vec<Uuid> = sqlx::query_scalar(
        "SELECT s.id FROM received r JOIN shares s ON s.received_id = r.id
          WHERE r.imported_case_id = $1 ORDER BY s.created_at",
    )
    .bind(row.case_id)
    .fetch_all(&mut *conn)
    .await?;
    for share_id in shares {
        if let Some(receipt) = crate::custody::receipt(&mut *conn, share_id)
            .await
            .map_err(sharing::job_error)?
        {
            let bytes = serde_json::to_vec_pretty(&receipt)
                .map_err(|e| JobError::permanent(e.to_string()))?;
            extras.push((format!("receipts/{share_id}.json"), bytes));
        }
    }
    let output = store
        .temp_path(&format!("{}-{}.partial", row.id, Uuid::new_v4()))
        .await
        .map_err(|e| JobError::transient(format!("scratch space: {e}")))?;
    Ok(Plan {
        link_share_id: row.id,
        case_id: row.case_id,
        package: row.package,
        store: store.clone(),
        output,
        evidence,
        extras,
    })
}

/// Put the package into the store under a key of its own, then mark the
/// link share complete with that key: a concurrent builder of the same link
/// share waits on the row, finds it complete, and deletes its own package.
async fn complete(
    ctx: &JobContext,
    row: &LinkShareRow,
    output: &Path,
    built: Built,
) -> std::result::Result<(), JobError> {
    let key = format!("{}-{}.{}", row.id, Uuid::new_v4(), row.package.extension());
    let started = std::time::Instant::now();
    let stored = ctx.store.put_file(output, Object::Package(&key)).await;
    tracing::info!(
        store_ms = started.elapsed().as_millis() as u64,
        ok = stored.is_ok(),
        "package put into the store"
    );
    if let Err(e) = stored {
        let _ = tokio::fs::remove_file(output).await;
        return Err(JobError::transient(format!(
            "putting the package into the store: {e}"
        )));
    }
    let result = async {
        let mut tx = ctx.db.begin().await?;
        let done: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "UPDATE link_shares SET status = 'complete', manifest_sha256 = $2, size_bytes = $3,
                    package_key = $4, contents = $5, completed_at = now(),
                    expires_at = now() + make_interval(hours => duration_hours)
             WHERE id = $1 AND status = 'processing' RETURNING expires_at",
        )
        .bind(row.id)
        .bind(&built.manifest_sha256)
        .bind(built.size_bytes as i64)
        .bind(&key)
        .bind(&built.files)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(expires_at) = done else {
            return Ok(false);
        };
        audit::record(
            &mut tx,
            Action::LinkShareComplete,
            audit::Entry {
                org_id: Some(row.org_id),
                case_id: Some(row.case_id),
                details: Some(serde_json::json!({
                    "link_share_id": row.id,
                    "manifest_sha256": built.manifest_sha256,
                    "size_bytes": built.size_bytes,
                    "expires_at": expires_at,
                })),
                ..Default::default()
            },
        )
        .await?;
        // R40: the recipient gets the link by email, once.
        for to in recipients(&mut tx, row.id).await? {
            notify::enqueue_link_share_tx(&mut tx, NoticeKind::LinkShare, row.id, &to).await?;
        }
        status_event_tx(
            &mut tx,
            row.id,
            row.org_id,
            row.case_id,
            LinkShareStatus::Complete,
        )
        .await?;
        tx.commit().await?;
        Ok::<bool, JobError>(true)
    }
    .await;
    if !matches!(result, Ok(true)) {
        if let Err(e) = ctx.store.delete(Object::Package(&key)).await {
            tracing::warn!(error = %e, key, "cannot delete an unused package");
        }
    }
    result.map(|_| ())
}

async fn fail(db: &PgPool, id: Uuid, reason: &str, evidence_id: Option<Uuid>) -> Result<()> {
    let mut tx = db.begin().await?;
    let failed: Option<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE link_shares SET status = 'failed', failure = $2
         WHERE id = $1 AND status = 'processing' RETURNING org_id, case_id",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((org_id, case_id)) = failed {
        status_event_tx(&mut tx, id, org_id, case_id, LinkShareStatus::Failed).await?;
        // Ids only in the trail; the reason (with the title) is on the link share.
        audit::record(
            &mut tx,
            Action::LinkShareFailed,
            audit::Entry {
                org_id: Some(org_id),
                case_id: Some(case_id),
                evidence_id,
                details: Some(serde_json::json!({ "link_share_id": id })),
                ..Default::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::component;

    #[test]
    fn components_cannot_escape_or_nest() {
        assert_eq!(component("../etc/passwd", 100), ".._etc_passwd");
        assert_eq!(component("..", 100), "_");
        assert_eq!(component("  ", 100), "_");
        assert_eq!(component("a\\b:c", 100), "a_b_c");
        assert_eq!(component("Scene 1", 100), "Scene 1");
        assert_eq!(component("Scene 1", 3), "Sce");
    }

    #[test]
    fn components_carry_no_bidi_override_or_windows_device_name() {
        assert_eq!(component("invoice\u{202E}fdp.exe", 100), "invoice_fdp.exe");
        assert_eq!(component("a\u{2067}b\u{200F}", 100), "a_b_");
        for device in [
            "CON",
            "con",
            "Nul.txt",
            "COM1",
            "lpt9.tar.gz",
            "AUX ",
            "COM\u{00B9}",
        ] {
            let safe = component(device, 100);
            assert!(safe.starts_with('_'), "{device:?} became {safe:?}");
        }
        for fine in ["CONTRACT", "COM10", "console.log", "Com.txt"] {
            assert_eq!(component(fine, 100), fine);
        }
        assert_eq!(component("report. . ", 100), "report");
        assert_eq!(component("...", 100), "_");
    }
}

/// A title as one line of `toc.txt`: control characters (newlines, tabs,
/// bidi overrides) become spaces, so a title cannot forge an entry.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || bidi_control(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod toc_tests {
    #[test]
    fn titles_cannot_forge_toc_entries() {
        assert_eq!(
            super::one_line("a\nevidence/fake\tforged\u{202E}"),
            "a evidence/fake forged "
        );
    }
}

/// R58 (like R49): the audit attachment of a package covers the packaged
/// items and their case only: the case's own entries (created, updated) and
/// the entries about packaged evidence (added, content stored), and this
/// link share's own creation. Shares, other link shares, partners, other
/// evidence and revocations stay out.
async fn packaged_audit(
    db: &mut sqlx::PgConnection,
    org_id: Uuid,
    case_id: Uuid,
    link_share_id: Uuid,
    packaged: &[Uuid],
) -> sqlx::Result<Vec<audit::AuditItem>> {
    sqlx::query_as(&format!(
        "SELECT {} FROM audit_log a
         WHERE a.case_id = $1 AND a.org_id = $2 AND a.share_id IS NULL AND {}
           AND ((a.evidence_id IS NULL AND a.action IN ('case_created', 'case_updated'))
                OR (a.evidence_id = ANY($3) AND a.action IN ('evidence_added', 'content_uploaded'))
                OR (a.action = 'link_share' AND a.details->>'link_share_id' = $4::text))
         ORDER BY a.id",
        audit::ITEM_COLUMNS,
        audit::GENUINE
    ))
    .bind(case_id)
    .bind(org_id)
    .bind(packaged)
    .bind(link_share_id)
    .fetch_all(db)
    .await
}

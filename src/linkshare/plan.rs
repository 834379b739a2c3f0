//! Planning a package (R10, R40, R58): the evidence in scope when the job
//! runs (a snapshot), filtered again by the policy recorded with the
//! request, with the names it gets in the package (safe path components,
//! no bidi tricks, no Windows device names), the table of contents and the
//! audit attachment limited to the packaged items (R58).

use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

use super::package::{Package, Plan, PlannedEvidence};
use super::{Attachments, LinkShareRow};
use crate::audit;
use crate::content::store::ContentStore;
use crate::content::store_uri;
use crate::jobs::JobError;
use crate::sharing;

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

pub(super) async fn plan(
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
            .map_err(JobError::from)?
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

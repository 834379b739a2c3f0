//! Grants (R13, R17, R21): resolve a share's scope to the owner's folders and
//! evidence, create or extend the collaboration with the partner, copy the
//! folder tree once and grant every in-scope item in one statement. The upserts
//! make a repeated share a scope union without duplicate grants or received
//! cases (R17). The scope SQL is shared with link shares and revocation.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Scope, ShareRow, ShareStatus};
use crate::collaboration;
use crate::error::{Error, Result};
use crate::policy::PolicySnapshot;
use crate::receiving;

/// Create or extend the collaboration with `partner` (R17), copy the folder
/// tree once (R21) and grant the scope set-based. Returns the received id.
pub(super) async fn materialize(
    tx: &mut PgConnection,
    share: &ShareRow,
    partner: Uuid,
) -> Result<Uuid> {
    let policy = share
        .policy
        .as_ref()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("partner share without policy")))?;
    let (received_id, received_at) =
        collaboration::open_tx(tx, share.case_id, share.org_id, partner, policy, share.id).await?;
    sqlx::query("UPDATE shares SET received_id = $2 WHERE id = $1")
        .bind(share.id)
        .bind(received_id)
        .execute(&mut *tx)
        .await?;
    let governing = govern(tx, received_id)
        .await?
        .unwrap_or_else(|| policy.0.clone());

    copy_folders(tx, received_id, received_at, share).await?;
    let new_evidence = grant(tx, received_id, share).await?;
    receiving::deliver_new_evidence_tx(tx, received_id, &new_evidence).await?;

    // R7: a snapshot of the case's and its evidence's audit trail, if allowed.
    collaboration::snapshot_sender_audit_tx(
        tx,
        share.case_id,
        share.org_id,
        received_id,
        governing.policy.permissions.sender_audit_trail,
    )
    .await?;
    Ok(received_id)
}

/// The owner's folders in scope: all of them (case), the selected ones with
/// their subfolders (folders), or the ancestors of the selected evidence.
pub(crate) const SCOPE_FOLDERS_SQL: &str = "
    WITH RECURSIVE sub AS (
        SELECT id FROM folders WHERE case_id = $1 AND ($2 = 'case' OR id = ANY($3))
        UNION
        SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id WHERE $2 = 'folders'
    ),
    up AS (
        SELECT f.id, f.parent_id FROM folders f
        WHERE f.case_id = $1 AND f.id IN (SELECT folder_id FROM evidence WHERE id = ANY($4))
        UNION
        SELECT f.id, f.parent_id FROM folders f JOIN up ON f.id = up.parent_id
    )
    SELECT id FROM sub WHERE $2 <> 'evidence'
    UNION SELECT id FROM up WHERE $2 = 'evidence'";

pub(crate) fn scope_args(scope: &Scope) -> (&'static str, Vec<Uuid>, Vec<Uuid>) {
    match scope {
        Scope::Case => ("case", vec![], vec![]),
        Scope::Folders { folder_ids } => ("folders", folder_ids.clone(), vec![]),
        Scope::Evidence { evidence_ids } => ("evidence", vec![], evidence_ids.clone()),
    }
}

/// R43, R51: case-level fields and permissions follow the most restrictive
/// snapshot among the collaboration's shares, the revoked ones included: a
/// revocation never widens (revoking the strictest share leaves the
/// permissions where they were, and an imported copy kept after the end
/// keeps them). Runs under the row lock the upsert took, so concurrent shares
/// to the same partner see each other. Returns the governing snapshot (none
/// when the collaboration has no share with a snapshot).
pub async fn govern(tx: &mut PgConnection, received_id: Uuid) -> Result<Option<PolicySnapshot>> {
    let snapshots: Vec<sqlx::types::Json<PolicySnapshot>> = sqlx::query_scalar(
        "SELECT policy FROM shares
         WHERE received_id = $1 AND status <> $2 AND policy IS NOT NULL
         ORDER BY created_at, id",
    )
    .bind(received_id)
    .bind(ShareStatus::Failed)
    .fetch_all(&mut *tx)
    .await?;
    let governing = snapshots.into_iter().map(|s| s.0).reduce(|a, b| {
        let policy = a.policy.meet(&b.policy);
        PolicySnapshot { policy, ..b }
    });
    if let Some(governing) = &governing {
        collaboration::set_policy_tx(tx, received_id, governing).await?;
    }
    Ok(governing)
}

/// R21: copy in-scope folders that existed when the collaboration began and
/// are not copied yet. Renames and moves later never touch these copies.
/// R23: a folder created after that has no copy, so evidence landing in it
/// shows at the receiver's root (see `receiving::view::granted`).
async fn copy_folders(
    tx: &mut PgConnection,
    received_id: Uuid,
    received_at: chrono::DateTime<chrono::Utc>,
    share: &ShareRow,
) -> Result<()> {
    let (kind, folder_ids, evidence_ids) = scope_args(&share.scope.0);
    let copied: Vec<Uuid> = sqlx::query_scalar(&format!(
        "INSERT INTO received_folders (id, received_id, source_folder_id, name)
         SELECT gen_random_uuid(), $5, f.id, f.name FROM folders f
         WHERE f.id IN ({SCOPE_FOLDERS_SQL}) AND f.created_at <= $6
         ON CONFLICT (received_id, source_folder_id) DO NOTHING
         RETURNING source_folder_id"
    ))
    .bind(share.case_id)
    .bind(kind)
    .bind(&folder_ids)
    .bind(&evidence_ids)
    .bind(received_id)
    .bind(received_at)
    .fetch_all(&mut *tx)
    .await?;
    if !copied.is_empty() {
        sqlx::query(
            "UPDATE received_folders rf SET parent_id = rp.id
             FROM folders f JOIN received_folders rp ON rp.source_folder_id = f.parent_id
             WHERE rf.received_id = $1 AND rp.received_id = $1 AND rf.source_folder_id = f.id
               AND rf.source_folder_id = ANY($2)",
        )
        .bind(received_id)
        .bind(&copied)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Grant every in-scope evidence item in one statement. Returns the ids that
/// were not granted before (R17: a repeated share adds no duplicate).
///
/// R43, R51: an item already granted keeps the share that first granted it
/// (its snapshot filters the item); this share only joins the item's
/// `covering` shares, so revoking either leaves it under its first snapshot
/// while the other still covers it. An item whose covering shares are all
/// revoked (their revoke job has not run yet) is granted anew by this share.
pub async fn grant(
    tx: &mut PgConnection,
    received_id: Uuid,
    share: &ShareRow,
) -> Result<Vec<Uuid>> {
    let (kind, folder_ids, evidence_ids) = scope_args(&share.scope.0);
    let new: Vec<Uuid> = sqlx::query_as::<_, (Uuid, bool)>(&format!(
        "INSERT INTO grants (received_id, evidence_id, share_id, caption_redacted, covering)
         SELECT $5, e.id, $6, e.id = ANY($7), ARRAY[$6::uuid] FROM evidence e
         WHERE e.case_id = $1 AND (
             $2 = 'case'
             OR ($2 = 'folders' AND e.folder_id IN ({SCOPE_FOLDERS_SQL}))
             OR ($2 = 'evidence' AND e.id = ANY($4)))
         -- In key order: the primary key's btree is appended to, not split
         -- at random (ids made before time-ordered UUIDv7 ids are random).
         ORDER BY e.id
         ON CONFLICT (received_id, evidence_id) DO UPDATE SET {cover}
         RETURNING evidence_id, (xmax = 0) AS inserted",
        cover = cover_sql()
    ))
    .bind(share.case_id)
    .bind(kind)
    .bind(&folder_ids)
    .bind(&evidence_ids)
    .bind(received_id)
    .bind(share.id)
    .bind(&share.redact_caption_evidence_ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .filter_map(|(id, inserted)| inserted.then_some(id))
    .collect();
    Ok(new)
}

/// The `ON CONFLICT (received_id, evidence_id) DO UPDATE SET` of every grant
/// upsert (a share's grants and the fan-out's): while a live share still
/// covers the item, its first share stays and the new shares join
/// `covering` (a redaction only ever narrows); otherwise the item is granted
/// afresh, as if it had not been granted before.
pub(crate) fn cover_sql() -> &'static str {
    // The live statuses are written in from the enum: the fragment joins
    // statements whose parameters are their own.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "
    share_id = CASE WHEN grants.covering && ARRAY(SELECT id FROM shares
                         WHERE received_id = grants.received_id AND status IN ({live}))
                    THEN grants.share_id ELSE EXCLUDED.share_id END,
    caption_redacted = CASE WHEN grants.covering && ARRAY(SELECT id FROM shares
                         WHERE received_id = grants.received_id AND status IN ({live}))
                    THEN grants.caption_redacted OR EXCLUDED.caption_redacted
                    ELSE EXCLUDED.caption_redacted END,
    covering = CASE WHEN grants.covering && ARRAY(SELECT id FROM shares
                         WHERE received_id = grants.received_id AND status IN ({live}))
                    THEN ARRAY(SELECT DISTINCT x FROM unnest(grants.covering || EXCLUDED.covering) AS x ORDER BY x)
                    ELSE EXCLUDED.covering END",
            live = crate::db::literals(ShareStatus::LIVE)
        )
    });
    SQL.as_str()
}

/// R29, R43, R51: revoking `share_id` takes back what only it covered: it
/// leaves every item's `covering`, and items no other share covers go.
/// Nothing is re-derived from the scopes of the shares that remain (a folder
/// moved under one of them since is not granted by a revocation), and an
/// item the revoked share granted first keeps that share's snapshot.
/// Returns how many items were taken back.
pub async fn ungrant(tx: &mut PgConnection, received_id: Uuid, share_id: Uuid) -> Result<u64> {
    sqlx::query(
        "UPDATE grants SET covering = array_remove(covering, $2)
         WHERE received_id = $1 AND $2 = ANY(covering)",
    )
    .bind(received_id)
    .bind(share_id)
    .execute(&mut *tx)
    .await?;
    let taken = sqlx::query("DELETE FROM grants WHERE received_id = $1 AND covering = '{}'")
        .bind(received_id)
        .execute(&mut *tx)
        .await?;
    Ok(taken.rows_affected())
}

//! The one writer of the `received` row (R17, R29, R30, R43, R49, R51): every
//! statement that opens, governs, snapshots, imports or ends a collaboration
//! is here, so a rule about the row changes in one place.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;
use crate::policy::PolicySnapshot;

/// R17: open the collaboration of `case_id` with `receiver_org_id`, or
/// extend the one that exists (a later share takes it over and a revoked one
/// lives again). Returns its id and when it began.
pub async fn open_tx(
    tx: &mut PgConnection,
    case_id: Uuid,
    sharer_org_id: Uuid,
    receiver_org_id: Uuid,
    policy: &sqlx::types::Json<PolicySnapshot>,
    share_id: Uuid,
) -> Result<(Uuid, chrono::DateTime<chrono::Utc>)> {
    Ok(sqlx::query_as(
        "INSERT INTO received (id, case_id, sharer_org_id, receiver_org_id, policy, share_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (case_id, receiver_org_id) DO UPDATE
            SET policy = EXCLUDED.policy, share_id = EXCLUDED.share_id, revoked_at = NULL
         RETURNING id, received_at",
    )
    .bind(Uuid::now_v7())
    .bind(case_id)
    .bind(sharer_org_id)
    .bind(receiver_org_id)
    .bind(policy)
    .bind(share_id)
    .fetch_one(&mut *tx)
    .await?)
}

/// R43, R51: the governing snapshot of the collaboration.
pub async fn set_policy_tx(
    tx: &mut PgConnection,
    received_id: Uuid,
    governing: &PolicySnapshot,
) -> Result<()> {
    sqlx::query("UPDATE received SET policy = $2 WHERE id = $1")
        .bind(received_id)
        .bind(sqlx::types::Json(governing))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// R7, R49: the collaboration's snapshot of the sender's audit trail (`{taken_at,
/// items: [AuditItem]}`), or none when the policy withholds it (`allowed`).
/// Its items are the entries of the case that concern what this
/// collaboration was given: the case's own entries (created, updated),
/// entries about granted evidence, and entries about this collaboration's
/// own shares; entries about other evidence, other partners' shares, link
/// shares (their ids), content checks and stopped access are left out.
/// Built by PostgreSQL in one statement, so a case with a long trail is
/// never held in the worker's memory.
pub async fn snapshot_sender_audit_tx(
    tx: &mut PgConnection,
    case_id: Uuid,
    sharer_org_id: Uuid,
    received_id: Uuid,
    allowed: bool,
) -> Result<()> {
    sqlx::query(
        r#"UPDATE received SET sender_snapshot = CASE WHEN $4 THEN jsonb_build_object(
             'taken_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'items', coalesce((
                SELECT jsonb_agg(jsonb_build_object(
                    'id', a.id,
                    'at', to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                    'org_id', a.org_id, 'actor_user_id', a.actor_user_id, 'action', a.action,
                    'case_id', a.case_id, 'evidence_id', a.evidence_id, 'share_id', a.share_id,
                    'details', a.details) ORDER BY a.id)
                FROM audit_log a
                WHERE a.case_id = $1 AND a.org_id = $2 AND NOT EXISTS (SELECT 1 FROM audit_refused r WHERE r.id = a.id)
                  AND (a.evidence_id IS NULL
                       OR EXISTS (SELECT 1 FROM grants g WHERE g.received_id = $3 AND g.evidence_id = a.evidence_id))
                  AND (a.share_id IS NULL
                       OR EXISTS (SELECT 1 FROM shares s WHERE s.id = a.share_id AND s.received_id = $3))
                  AND (a.share_id IS NOT NULL OR a.evidence_id IS NOT NULL
                       OR a.action IN ('case_created', 'case_updated'))),
                '[]'::jsonb)) END
           WHERE id = $3"#,
    )
    .bind(case_id)
    .bind(sharer_org_id)
    .bind(received_id)
    .bind(allowed)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// R19: the collaboration's imported copy is `case_id`.
pub async fn mark_imported_tx(
    tx: &mut PgConnection,
    received_id: Uuid,
    case_id: Uuid,
) -> Result<()> {
    sqlx::query("UPDATE received SET imported_case_id = $2 WHERE id = $1")
        .bind(received_id)
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// R29: those of `received_ids` with no live share left end.
pub async fn end_without_live_share_tx(tx: &mut PgConnection, received_ids: &[Uuid]) -> Result<()> {
    sqlx::query(
        "UPDATE received r SET revoked_at = now() WHERE r.id = ANY($1) AND r.revoked_at IS NULL AND NOT EXISTS
           (SELECT 1 FROM shares s WHERE s.received_id = r.id AND s.status = ANY($2))",
    )
    .bind(received_ids)
    .bind(super::ShareStatus::LIVE)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

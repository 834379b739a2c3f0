//! The named principals of a case (R14, R28, R29, R42, R47, R57): the rows
//! of `case_access`, written here only. A share names users and groups in
//! its transaction; a receiver adds recipients onward; a revocation or the
//! end of a collaboration takes the external view away while the rows stay
//! for the imported copy (R30) and the dissemination log.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::collaboration::ReceivedRow;
use crate::error::Result;

/// A named principal of a share or of an onward addition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Named {
    User(Uuid),
    Group(Uuid),
}

impl Named {
    fn parts(self) -> (Uuid, &'static str) {
        match self {
            Named::User(id) => (id, "user"),
            Named::Group(id) => (id, "group"),
        }
    }
}

/// Record the principals a share names (R14, R42, R47), in the share's
/// transaction: `org_id` is theirs (the partner's, or the owner's for an
/// internal share). Set-based: one statement.
pub async fn name_for_share_tx(
    tx: &mut PgConnection,
    case_id: Uuid,
    org_id: Uuid,
    share_id: Uuid,
    added_by: Uuid,
    named: &[Named],
) -> Result<()> {
    let (ids, kinds): (Vec<Uuid>, Vec<&str>) = named.iter().map(|n| n.parts()).unzip();
    sqlx::query(
        "INSERT INTO case_access (case_id, org_id, principal_id, principal_kind, share_id, added_by)
         SELECT $1, $2, p.id, p.kind, $3, $4 FROM UNNEST($5::uuid[], $6::text[]) AS p (id, kind)
         ON CONFLICT DO NOTHING",
    )
    .bind(case_id)
    .bind(org_id)
    .bind(share_id)
    .bind(added_by)
    .bind(&ids)
    .bind(&kinds)
    .execute(tx)
    .await?;
    Ok(())
}

/// R28: a principal added onward by the receiver. True when it is new, or
/// was added before a collaboration that ended (R51) and is added again.
pub async fn name_onward_tx(
    tx: &mut PgConnection,
    received: &ReceivedRow,
    added_by: Uuid,
    named: Named,
) -> Result<bool> {
    let (id, kind) = named.parts();
    let done = sqlx::query(
        "INSERT INTO case_access (case_id, org_id, principal_id, principal_kind, received_id, added_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (received_id, principal_id) WHERE received_id IS NOT NULL DO UPDATE
            SET revoked_at = NULL, added_by = EXCLUDED.added_by, added_at = now()
          WHERE case_access.revoked_at IS NOT NULL",
    )
    .bind(received.case_id)
    .bind(received.receiver_org_id)
    .bind(id)
    .bind(kind)
    .bind(received.id)
    .bind(added_by)
    .execute(tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// R51, R57: the onward recipients (R28) of those of `received_ids` that
/// have ended lose the external view; the rows stay for the imported copy
/// (R30) and for the dissemination log.
pub async fn end_onward_tx(tx: &mut PgConnection, received_ids: &[Uuid]) -> Result<()> {
    sqlx::query(
        "UPDATE case_access a SET revoked_at = r.revoked_at FROM received r
         WHERE a.received_id = r.id AND r.id = ANY($1) AND r.revoked_at IS NOT NULL
           AND a.revoked_at IS NULL",
    )
    .bind(received_ids)
    .execute(tx)
    .await?;
    Ok(())
}

/// Revoked shares name no one any more for the external view (R29); the
/// rows stay for the imported copy (R30).
pub async fn revoke_shares_tx(tx: &mut PgConnection, share_ids: &[Uuid]) -> Result<()> {
    sqlx::query(
        "UPDATE case_access SET revoked_at = now() WHERE share_id = ANY($1) AND revoked_at IS NULL",
    )
    .bind(share_ids)
    .execute(tx)
    .await?;
    Ok(())
}

/// R44, R57: every row that named `principal_id` (of `org_id`) for
/// `case_id`, whatever its cause (internal or partner shares, onward
/// additions), goes. Returns the share each row was through.
pub async fn remove_from_case_tx(
    tx: &mut PgConnection,
    case_id: Uuid,
    org_id: Uuid,
    principal_id: Uuid,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "DELETE FROM case_access a WHERE a.case_id = $1 AND a.org_id = $2 AND a.principal_id = $3
         RETURNING coalesce(a.share_id, (SELECT r.share_id FROM received r WHERE r.id = a.received_id))",
    )
    .bind(case_id)
    .bind(org_id)
    .bind(principal_id)
    .fetch_all(tx)
    .await?)
}

/// R57: an onward recipient of collaboration `received_id` goes, for the
/// external view and the imported copy alike (an explicit removal, unlike a
/// revocation, R30). Returns whether there was one.
pub async fn remove_onward_tx(
    tx: &mut PgConnection,
    received_id: Uuid,
    named: Named,
) -> Result<bool> {
    let (id, kind) = named.parts();
    Ok(sqlx::query(
        "DELETE FROM case_access WHERE received_id = $1 AND principal_id = $2 AND principal_kind = $3",
    )
    .bind(received_id)
    .bind(id)
    .bind(kind)
    .execute(tx)
    .await?
    .rows_affected()
        > 0)
}

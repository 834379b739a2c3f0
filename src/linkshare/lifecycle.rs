//! A link share after it was accepted (R40): read (get, list), withdrawn
//! (revoke), announced (`link_share.<status>` status events), reminded of
//! before it expires (emailed once), and swept when expired or revoked (its
//! package leaves the store; the row and manifest hash stay as the record of
//! what was sent). Revocations and deletions are audited (R39).

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{load, package_key, LinkShareRow, LinkShareStatus, COLUMNS};
use crate::access;
use crate::audit::{self, Action};
use crate::config::Settings;
use crate::content::store::{ContentStore, Object};
use crate::db::PgEnum;
use crate::error::{Error, Result};
use crate::notify::{self, NoticeKind};
use crate::principal::UserPrincipal;

/// A link share of the user's org on a case the user sees (R41); 404 for
/// anyone else.
pub async fn get_owned(
    db: &mut PgConnection,
    user: &UserPrincipal,
    id: Uuid,
) -> Result<LinkShareRow> {
    match load(db, id).await? {
        Some(row) if row.org_id == user.org_id => {
            access::own_case(db, user, row.case_id)
                .await
                .map_err(|e| match e {
                    Error::NotFound(_) => Error::NotFound("link share"),
                    e => e,
                })?;
            Ok(row)
        }
        _ => Err(Error::NotFound("link share")),
    }
}

/// The link shares of a case of the caller's org that it sees, newest first.
pub async fn list_for_case(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
) -> Result<Vec<LinkShareRow>> {
    let org_id = user.org_id;
    access::own_case(&mut *db, user, case_id).await?;
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM link_shares WHERE case_id = $1 AND org_id = $2
         ORDER BY created_at DESC, id"
    ))
    .bind(case_id)
    .bind(org_id)
    .fetch_all(db)
    .await?)
}

/// Withdraw a link share (a link sent to the wrong address, say): from the
/// commit on, downloads are refused (410) and a build still running discards
/// its package; the sweep deletes a built package within a minute. Audited,
/// with a `link_share.revoked` status event. Revoking twice changes nothing.
pub async fn revoke(db: &PgPool, user: &UserPrincipal, id: Uuid) -> Result<LinkShareRow> {
    let mut tx = crate::db::begin(db).await?;
    let row = get_owned(&mut tx, user, id).await?;
    // R41: withdrawing a link is for the case's owner and admins.
    access::managed(&mut tx, user, row.case_id, access::not_manager).await?;
    let revoked: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "UPDATE link_shares SET status = $2, revoked_at = now()
         WHERE id = $1 AND status = ANY($3) RETURNING revoked_at",
    )
    .bind(id)
    .bind(LinkShareStatus::Revoked)
    .bind([LinkShareStatus::Processing, LinkShareStatus::Complete].as_slice())
    .fetch_optional(&mut *tx)
    .await?;
    if revoked.is_some() {
        audit::record(
            &mut tx,
            Action::LinkShareRevoked,
            audit::Entry {
                org_id: Some(user.org_id),
                actor_user_id: Some(user.user_id),
                case_id: Some(row.case_id),
                details: Some(serde_json::json!({ "link_share_id": id, "was": row.status })),
                ..Default::default()
            },
        )
        .await?;
        status_event_tx(
            &mut tx,
            id,
            row.org_id,
            row.case_id,
            LinkShareStatus::Revoked,
        )
        .await?;
    }
    let row = get_owned(&mut tx, user, id).await?;
    tx.commit().await?;
    Ok(row)
}

/// Delete the packages of expired link shares from the store (R40); the rows
/// stay, with their manifest hash, as the record of what was sent. Safe to run
/// from several processes at once: each package is claimed by its row lock.
/// Returns how many packages were deleted.
pub async fn sweep_expired(db: &PgPool, store: &ContentStore) -> Result<u64> {
    let mut tx = db.begin().await?;
    // The statuses are in the text (made from the enum), not bound: the
    // partial indexes on complete and revoked link shares serve this sweep.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT id, org_id, case_id, package_key FROM link_shares
             WHERE package_deleted_at IS NULL
               AND ((status = {complete} AND expires_at < now()) OR status = {revoked})
             ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED",
            complete = LinkShareStatus::Complete.literal(),
            revoked = LinkShareStatus::Revoked.literal(),
        )
    });
    let expired: Vec<(Uuid, Uuid, Uuid, Option<String>)> =
        sqlx::query_as(SQL.as_str()).fetch_all(&mut *tx).await?;
    for (id, org_id, case_id, key) in &expired {
        let key = package_key(*id, key.as_deref());
        store
            .delete(Object::Package(&key))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("deleting package {id}: {e}")))?;
        sqlx::query("UPDATE link_shares SET package_deleted_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            Action::LinkPackageDeleted,
            audit::Entry {
                org_id: Some(*org_id),
                case_id: Some(*case_id),
                details: Some(serde_json::json!({ "link_share_id": id })),
                ..Default::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(expired.len() as u64)
}

/// The addresses a link share is emailed to: the given one, the user's, or
/// those of the group's members (R47), each once.
pub(super) async fn recipients(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT lower(a) FROM link_shares l CROSS JOIN LATERAL (
             SELECT l.recipient ->> 'email'
             UNION ALL SELECT u.email FROM users u WHERE u.id = (l.recipient ->> 'user_id')::uuid
             UNION ALL SELECT u.email FROM group_members m JOIN users u ON u.id = m.user_id
                        WHERE m.group_id = (l.recipient ->> 'group_id')::uuid) AS r (a)
         WHERE l.id = $1 AND a IS NOT NULL ORDER BY 1",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Publish `link_share.<status>` on the status exchange (ids and status only).
pub async fn status_event_tx(
    tx: &mut PgConnection,
    id: Uuid,
    org_id: Uuid,
    case_id: Uuid,
    status: LinkShareStatus,
) -> sqlx::Result<()> {
    crate::jobs::outbox::status_event_tx(
        tx,
        &[org_id],
        status,
        serde_json::json!({
            "link_share_id": id,
            "case_id": case_id,
            "org_id": org_id,
            "at": chrono::Utc::now(),
        }),
    )
    .await
}

/// Queue the expiry reminder (R40) of every link whose expiry is within
/// `link_reminder_hours` and that lived longer than that (a link valid for
/// less than the reminder window would be reminded as soon as it is sent).
/// Once per link share; safe to run from several processes at once. Returns
/// how many reminders were queued.
pub async fn queue_reminders(db: &PgPool, settings: &Settings) -> Result<u64> {
    if settings.link_reminder_hours == 0 {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    // The status is in the text (made from the enum): the partial index on
    // complete link shares awaiting a reminder serves it.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "UPDATE link_shares SET reminder_queued_at = now()
             WHERE id IN (
                 SELECT id FROM link_shares
                 WHERE status = {complete} AND reminder_queued_at IS NULL AND package_deleted_at IS NULL
                   AND expires_at > now()
                   AND expires_at - make_interval(hours => $1) <= now()
                   AND duration_hours > $1
                 ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED)
             RETURNING id",
            complete = LinkShareStatus::Complete.literal(),
        )
    });
    let due: Vec<Uuid> = sqlx::query_scalar(SQL.as_str())
        .bind(settings.link_reminder_hours as i32)
        .fetch_all(&mut *tx)
        .await?;
    for id in &due {
        for to in recipients(&mut tx, *id).await? {
            notify::enqueue_link_share_tx(&mut tx, NoticeKind::LinkShareReminder, *id, &to).await?;
        }
    }
    tx.commit().await?;
    Ok(due.len() as u64)
}

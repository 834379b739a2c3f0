//! Who a notice goes to (R32, R33, R57), as plain addresses: those of one
//! principal (a user, or a group's members: onward shares, R28, and stopped
//! access, R44) and of the onward recipients of an ended collaboration.
//! Whom a share names is `sharing`'s to say (`sharing::share_recipients`):
//! it hands the addresses here, and notify knows no share.

use sqlx::PgConnection;
use uuid::Uuid;

pub async fn principal_emails(
    db: &mut PgConnection,
    user: Option<Uuid>,
    group: Option<Uuid>,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT email FROM users WHERE id = $1
         UNION SELECT u.email FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = $2",
    )
    .bind(user)
    .bind(group)
    .fetch_all(db)
    .await
}

/// R57: the addresses of the recipients added onward (R28) to collaboration
/// `received_id`, when it has ended (they lose the external view with it);
/// none while it lasts.
pub async fn onward_emails_if_ended(
    db: &mut PgConnection,
    received_id: Uuid,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT DISTINCT u.email FROM received r
           JOIN case_access a ON a.received_id = r.id
           JOIN users u ON u.id = a.principal_id OR u.id IN (
                SELECT m.user_id FROM group_members m WHERE m.group_id = a.principal_id)
          WHERE r.id = $1 AND r.revoked_at IS NOT NULL",
    )
    .bind(received_id)
    .fetch_all(db)
    .await
}

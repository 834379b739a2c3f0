//! Who a notice goes to (R32, R33): a share's named users, the members of
//! its named groups and its named addresses — or, when a partner share names
//! nobody, the partner org's notification address — and the addresses of one
//! onward-share principal (R28).

use sqlx::PgConnection;
use uuid::Uuid;

use crate::sharing::{Recipient, ShareRow};

/// Everyone a share or its revocation notifies (R32, R33): the named users,
/// the members of named groups, the named addresses, or, when nobody is named,
/// the partner org's notification address.
pub async fn share_recipients(
    db: &mut PgConnection,
    share: &ShareRow,
) -> sqlx::Result<Vec<String>> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut emails = Vec::new();
    for r in share.target.0.recipients() {
        match r {
            Recipient::User { user_id }
            | Recipient::Badge {
                user_id: Some(user_id),
                ..
            } => users.push(*user_id),
            Recipient::Badge { user_id: None, .. } => {}
            Recipient::Group { group_id } => groups.push(*group_id),
            Recipient::Email { email } => emails.push(email.clone()),
        }
    }
    let mut out: Vec<String> = sqlx::query_scalar(
        "SELECT email FROM users WHERE id = ANY($1)
         UNION SELECT u.email FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ANY($2)",
    )
    .bind(&users)
    .bind(&groups)
    .fetch_all(&mut *db)
    .await?;
    out.extend(emails);
    if out.is_empty() {
        if let Some(org) = share.target_org_id {
            let addr: Option<String> =
                sqlx::query_scalar("SELECT notification_email FROM orgs WHERE id = $1")
                    .bind(org)
                    .fetch_one(&mut *db)
                    .await?;
            out.extend(addr);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

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

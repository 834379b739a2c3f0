//! Who a share or its revocation notifies (R32, R33): the share's named
//! users, the members of its named groups and its named addresses — or, when
//! a partner share names nobody, the partner org's notification address.
//! Sharing reads its own share and hands `notify` plain addresses.

use sqlx::PgConnection;

use super::{Recipient, ShareRow};

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

//! Onward sharing (R28): the receiver adds users or groups of its own org as
//! recipients of a received or imported case, only when the original share's
//! policy allows `internal_share`; each addition is audited and notified.

use serde::Deserialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::for_case;
use crate::audit::{self, Action};
use crate::error::{Error, Result};
use crate::notify::{self, NoticeKind};
use crate::principal::UserPrincipal;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OnwardRecipient {
    User { user_id: Uuid },
    Group { group_id: Uuid },
}

/// R28: onward sharing within the receiving org, only under `internal_share`
/// of the original share's policy.
pub async fn add_recipient(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    who: OnwardRecipient,
) -> Result<()> {
    let mut tx = db.begin().await?;
    let r = for_case(&mut tx, user.org_id, case_id)
        .await?
        .ok_or(Error::NotFound("case"))?;
    if r.revoked_at.is_some() {
        return Err(Error::ShareRevoked);
    }
    if !r.policy.policy.permissions.internal_share {
        return Err(Error::PolicyForbids(
            "the sharing policy does not allow onward (internal) sharing".into(),
        ));
    }
    let (user_id, group_id) = match who {
        OnwardRecipient::User { user_id } => (Some(user_id), None),
        OnwardRecipient::Group { group_id } => (None, Some(group_id)),
    };
    let belongs: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND org_id = $3)
             OR EXISTS (SELECT 1 FROM groups WHERE id = $2 AND org_id = $3)",
    )
    .bind(user_id)
    .bind(group_id)
    .bind(user.org_id)
    .fetch_one(&mut *tx)
    .await?;
    if !belongs {
        return Err(Error::validation(
            "recipient must be a user or group of your organization",
        ));
    }
    let inserted = sqlx::query(
        "INSERT INTO received_recipients (received_id, user_id, group_id, added_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(r.id)
    .bind(user_id)
    .bind(group_id)
    .bind(user.user_id)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() > 0 {
        audit::record(
            &mut tx,
            Action::OnwardShare,
            audit::Entry {
                org_id: Some(user.org_id),
                actor_user_id: Some(user.user_id),
                case_id: Some(case_id),
                share_id: Some(r.share_id),
                details: Some(serde_json::json!({ "user_id": user_id, "group_id": group_id, "received_id": r.id })),
                ..Default::default()
            },
        )
        .await?;
        let emails = notify::principal_emails(&mut tx, user_id, group_id).await?;
        notify::enqueue_tx(
            &mut tx,
            NoticeKind::OnwardShare,
            Some(r.share_id),
            Some(r.id),
            &emails,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

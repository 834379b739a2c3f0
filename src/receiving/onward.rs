//! Onward sharing (R28): the receiver adds users or groups of its own org as
//! recipients of a received or imported case, only when the original share's
//! policy allows `internal_share`; each addition is audited and notified.

use serde::Deserialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ReceivedRow;
use crate::access::{self, Named};
use crate::audit::{self, Action};
use crate::error::{Error, Result};
use crate::notify::{self, NoticeKind};
use crate::principal::UserPrincipal;

#[derive(Debug, Clone, Deserialize, serde::Serialize, ToSchema)]
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
    let mut tx = crate::db::begin(db).await?;
    let r = access::received(&mut tx, user, case_id).await?;
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
    let named = match (user_id, group_id) {
        (Some(id), _) => Named::User(id),
        (_, Some(id)) => Named::Group(id),
        _ => unreachable!("one of user_id, group_id is set"),
    };
    if access::name_onward_tx(&mut tx, &r, user.user_id, named).await? {
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

/// Where a case goes onward (R45).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Onward {
    /// More users or groups of the org (an internal share).
    Internal,
    /// Another org or a link.
    Outside,
}

/// R45, R51: an imported copy gains recipients only under `internal_share`,
/// and leaves its org (another org, a link) only under `copy_download`, of
/// the collaboration's governing policy — also after the collaboration
/// ended: a revocation never widens what the copy may do. Returns the
/// collaboration when `case_id` is such a copy.
pub async fn check_onward(
    db: &mut sqlx::PgConnection,
    case_id: Uuid,
    onward: Onward,
) -> Result<Option<ReceivedRow>> {
    let r = crate::collaboration::of_imported_copy(db, case_id).await?;
    if let Some(r) = &r {
        let permissions = &r.policy.policy.permissions;
        match onward {
            Onward::Internal if !permissions.internal_share => {
                return Err(Error::PolicyForbids(
                    "the sharing policy of this imported case does not allow sharing it further".into(),
                ))
            }
            Onward::Outside if !permissions.copy_download => {
                return Err(Error::PolicyForbids(
                    "the sharing policy of this imported case does not allow copy/download, so it stays in this organization".into(),
                ))
            }
            _ => {}
        }
    }
    Ok(r)
}

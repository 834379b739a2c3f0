//! The share request (R13–R15): validate scope, target and recipients,
//! refuse what the org may not do yet or at all (R2 before setup, R4 for a
//! non-partner or an `fpp` partner), and record the share with its policy
//! snapshot (R12), its audit entry (R39), its `ShareCase` job and its
//! `share.processing` event in one transaction, so the request answers at
//! once with `processing` and the job exists exactly when the share does.

use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    status_event_tx, Recipient, Scope, ShareCase, ShareRow, ShareStatus, ShareView, Target,
    SHARE_COLUMNS,
};
use crate::access::{self, Named};
use crate::audit::{self, Action};
use crate::cases;
use crate::error::{Error, Result};
use crate::jobs::Job;
use crate::orgs::{self, OrgKind};
use crate::policy;
use crate::principal::UserPrincipal;
use crate::receiving::{self, Onward};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    pub scope: Scope,
    pub target: Target,
    pub message: Option<String>,
    /// R11: evidence whose community-request caption the receiver gets redacted.
    #[serde(default)]
    pub redact_caption_evidence_ids: Vec<Uuid>,
}

/// Accept a share request: validate, record the share with its policy
/// snapshot (R12) and its job in one transaction; a worker does the rest (R15).
pub async fn create(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    mut req: ShareRequest,
) -> Result<ShareView> {
    let mut tx = crate::db::begin(db).await?;
    access::managed(&mut tx, user, case_id, cases::external_not_shareable).await?;
    let org = orgs::get(&mut tx, user.org_id).await?;
    // R2: nothing advanced before an admin completed setup.
    if org.default_policy_id.is_none() {
        return Err(Error::AdvancedSharingNotSetUp);
    }
    validate_scope(&mut tx, case_id, &req.scope).await?;
    if !req.redact_caption_evidence_ids.is_empty() {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT id) FROM evidence WHERE case_id = $1 AND id = ANY($2)",
        )
        .bind(case_id)
        .bind(&req.redact_caption_evidence_ids)
        .fetch_one(&mut *tx)
        .await?;
        if n as usize != distinct(&req.redact_caption_evidence_ids) {
            return Err(Error::validation(
                "redact_caption_evidence_ids must name evidence of this case",
            ));
        }
    }
    crate::limits::opt("message", req.message.as_deref(), crate::limits::TEXT)?;
    for r in req.target.recipients() {
        match r {
            Recipient::Email { email } => {
                crate::limits::text("email", email, crate::limits::SHORT)?
            }
            Recipient::Badge { badge_id, .. } => {
                crate::limits::text("badge_id", badge_id, crate::limits::SHORT)?
            }
            _ => {}
        }
    }
    // R45: an imported copy goes further only as its origin's policy allows.
    let onward = match req.target {
        Target::Internal { .. } => Onward::Internal,
        Target::Partner { .. } => Onward::Outside,
    };
    receiving::check_onward(&mut tx, case_id, onward).await?;
    let (target_kind, target_org, snapshot) = match &mut req.target {
        Target::Internal { recipients } => {
            if recipients.is_empty() {
                return Err(Error::validation(
                    "an internal share names at least one user or group",
                ));
            }
            validate_recipients(&mut tx, user.org_id, recipients, false).await?;
            ("internal", None, None)
        }
        Target::Partner { org_id, recipients } => {
            if *org_id == user.org_id || !orgs::are_partners(&mut tx, user.org_id, *org_id).await? {
                return Err(Error::NotAPartner); // R4
            }
            let partner = orgs::get(&mut tx, *org_id).await?;
            if partner.kind == OrgKind::Fpp {
                return Err(Error::ClassicSharingRequired); // R4, R40
            }
            // A share is not a mail relay: email recipients are at the
            // partner's own domains.
            for r in recipients.iter() {
                if let Recipient::Email { email } = r {
                    if !orgs::at_domains(email, &partner.email_domains) {
                        return Err(Error::validation(if partner.email_domains.is_empty() {
                            format!(
                                "{email:?}: {} has no email domains; name its users, groups or badge IDs",
                                partner.name
                            )
                        } else {
                            format!(
                                "{email:?} is not at {}'s email domains ({})",
                                partner.name,
                                partner.email_domains.join(", ")
                            )
                        }));
                    }
                }
            }
            validate_recipients(&mut tx, *org_id, recipients, true).await?;
            let snapshot = policy::effective(&mut tx, user.org_id, *org_id)
                .await?
                .ok_or(Error::AdvancedSharingNotSetUp)?;
            ("partner", Some(*org_id), Some(snapshot))
        }
    };
    let id = Uuid::now_v7();
    let row: ShareRow = sqlx::query_as(&format!(
        "INSERT INTO shares (id, case_id, org_id, created_by, target_kind, target_org_id, scope, target, message,
                             redact_caption_evidence_ids, policy)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {SHARE_COLUMNS}"
    ))
    .bind(id)
    .bind(case_id)
    .bind(user.org_id)
    .bind(user.user_id)
    .bind(target_kind)
    .bind(target_org)
    .bind(sqlx::types::Json(&req.scope))
    .bind(sqlx::types::Json(&req.target))
    .bind(&req.message)
    .bind(&req.redact_caption_evidence_ids)
    .bind(snapshot.as_ref().map(sqlx::types::Json))
    .fetch_one(&mut *tx)
    .await?;
    // R41, R42: whom the share names may see the case.
    let principal_org = target_org.unwrap_or(user.org_id);
    let named = named(&mut tx, principal_org, req.target.recipients()).await?;
    access::name_for_share_tx(&mut tx, case_id, principal_org, id, user.user_id, &named).await?;
    audit::record(
        &mut tx,
        Action::Share,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(case_id),
            share_id: Some(id),
            details: Some(
                serde_json::json!({ "target_kind": target_kind, "target_org_id": target_org }),
            ),
            ..Default::default()
        },
    )
    .await?;
    let job_id = ShareCase { share_id: id }
        .enqueue_about_tx(&mut tx, user.org_id, case_id)
        .await?;
    status_event_tx(&mut tx, &row, ShareStatus::Processing).await?;
    tx.commit().await?;
    Ok(row.view(Some(job_id)))
}

async fn resolve_badges(
    db: &mut PgConnection,
    org_id: Uuid,
    recipients: &mut [Recipient],
) -> Result<()> {
    let badges: Vec<String> = recipients
        .iter()
        .filter_map(|r| match r {
            Recipient::Badge { badge_id, .. } => Some(badge_id.clone()),
            _ => None,
        })
        .collect();
    if badges.is_empty() {
        return Ok(());
    }
    let found: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT badge_id, id FROM users WHERE org_id = $1 AND badge_id = ANY($2)")
            .bind(org_id)
            .bind(&badges)
            .fetch_all(&mut *db)
            .await?;
    for r in recipients.iter_mut() {
        if let Recipient::Badge { badge_id, user_id } = r {
            let mut matches = found.iter().filter(|(b, _)| b == badge_id);
            match (matches.next(), matches.next()) {
                (Some((_, id)), None) => *user_id = Some(*id),
                (None, _) => {
                    return Err(Error::validation(format!(
                        "badge ID {badge_id:?} names no user of the target organization"
                    )))
                }
                (Some(_), Some(_)) => {
                    return Err(Error::validation(format!(
                        "badge ID {badge_id:?} names more than one user; name the user by id"
                    )))
                }
            }
        }
    }
    Ok(())
}

/// The principals a share's recipients name (R42, R47): users, groups, the
/// user a badge named, and the users of `org_id` whose address was named.
async fn named(
    db: &mut PgConnection,
    org_id: Uuid,
    recipients: &[Recipient],
) -> Result<Vec<Named>> {
    let mut named = Vec::new();
    let mut emails = Vec::new();
    for r in recipients {
        match r {
            Recipient::User { user_id }
            | Recipient::Badge {
                user_id: Some(user_id),
                ..
            } => named.push(Named::User(*user_id)),
            Recipient::Group { group_id } => named.push(Named::Group(*group_id)),
            Recipient::Email { email } => emails.push(email.to_lowercase()),
            Recipient::Badge { user_id: None, .. } => {}
        }
    }
    if !emails.is_empty() {
        let users: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM users WHERE org_id = $1 AND lower(email) = ANY($2)")
                .bind(org_id)
                .bind(&emails)
                .fetch_all(db)
                .await?;
        named.extend(users.into_iter().map(Named::User));
    }
    Ok(named)
}

fn distinct(ids: &[Uuid]) -> usize {
    ids.iter().collect::<std::collections::HashSet<_>>().len()
}

pub(crate) async fn validate_scope(
    db: &mut PgConnection,
    case_id: Uuid,
    scope: &Scope,
) -> Result<()> {
    let (table, ids) = match scope {
        Scope::Case => return Ok(()),
        Scope::Folders { folder_ids } => ("folders", folder_ids),
        Scope::Evidence { evidence_ids } => ("evidence", evidence_ids),
    };
    if ids.is_empty() {
        return Err(Error::validation(format!("scope lists no {table}")));
    }
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT id) FROM {table} WHERE case_id = $1 AND id = ANY($2)"
    ))
    .bind(case_id)
    .bind(ids)
    .fetch_one(db)
    .await?;
    if n as usize != distinct(ids) {
        return Err(Error::validation(format!(
            "scope names {table} that are not in this case"
        )));
    }
    Ok(())
}

/// Users and groups must belong to `org_id`; emails must parse; a badge ID
/// must name exactly one user of `org_id`, whose id is recorded with it (R47).
async fn validate_recipients(
    db: &mut PgConnection,
    org_id: Uuid,
    recipients: &mut [Recipient],
    emails_ok: bool,
) -> Result<()> {
    resolve_badges(&mut *db, org_id, recipients).await?;
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for r in recipients.iter() {
        match r {
            Recipient::Badge { .. } => {}
            Recipient::User { user_id } => users.push(*user_id),
            Recipient::Group { group_id } => groups.push(*group_id),
            Recipient::Email { email } => {
                if !emails_ok {
                    return Err(Error::validation(
                        "internal shares name users or groups, not email addresses",
                    ));
                }
                if !orgs::valid_email(email) {
                    return Err(Error::validation(format!(
                        "{email:?} is not a valid email address"
                    )));
                }
            }
        }
    }
    let (nu, ng): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(DISTINCT id) FROM users WHERE org_id = $1 AND id = ANY($2)),
                (SELECT count(DISTINCT id) FROM groups WHERE org_id = $1 AND id = ANY($3))",
    )
    .bind(org_id)
    .bind(&users)
    .bind(&groups)
    .fetch_one(db)
    .await?;
    if nu as usize != distinct(&users) || ng as usize != distinct(&groups) {
        return Err(Error::validation(
            "recipients must be users or groups of the target organization",
        ));
    }
    Ok(())
}

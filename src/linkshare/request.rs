//! Accepting a link share (R40): the request (scope, recipient,
//! attachments, package, duration), its validation, and the sharing policy
//! that governs it (R10: attachments carrying what the policy excludes are
//! refused, and the policy is recorded so the build applies it again). The
//! link share, its audit entry (R39) and its `BuildLinkShare` job are
//! recorded in one transaction (R35).

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::build::BuildLinkShare;
use super::lifecycle::status_event_tx;
use super::{Attachments, LinkShareStatus, Package};
use crate::access;
use crate::audit::{self, Action};
use crate::cases;
use crate::error::{Error, Result};
use crate::jobs::Job;
use crate::orgs;
use crate::policy::{self, PolicySnapshot};
use crate::principal::UserPrincipal;
use crate::receiving;
use crate::sharing::{self, Scope};

/// The longest validity a link may be given: one year.
pub const MAX_DURATION_HOURS: i32 = 24 * 365;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LinkRecipient {
    /// A user of the sharer's org or of a partner org (e.g. an `fpp` partner, R4).
    User {
        user_id: Uuid,
    },
    Email {
        email: String,
    },
    /// R47: a group of the sharer's org or of a partner org; every member
    /// is emailed the link.
    Group {
        group_id: Uuid,
    },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkShareRequest {
    pub scope: Scope,
    pub recipient: LinkRecipient,
    #[serde(default)]
    pub attachments: Attachments,
    #[serde(default)]
    pub retain_folder_structure: bool,
    pub package: Package,
    /// How long the link stays valid once the package is built (1..=8760).
    pub duration_hours: i32,
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkShareAccepted {
    pub id: Uuid,
    /// Always `processing`.
    pub status: LinkShareStatus,
    pub job_id: Uuid,
}

/// Accept a link share: validate, record it and its job in one transaction.
/// Classic sharing needs no advanced-sharing setup.
pub async fn create(
    db: &PgPool,
    settings: &crate::config::Settings,
    user: &UserPrincipal,
    case_id: Uuid,
    req: LinkShareRequest,
) -> Result<LinkShareAccepted> {
    let mut tx = crate::db::begin(db).await?;
    access::managed(&mut tx, user, case_id, cases::external_not_shareable).await?;
    // R45: an imported copy leaves by link only under `copy_download`.
    receiving::check_onward(&mut tx, case_id, receiving::Onward::Outside).await?;
    sharing::validate_scope(&mut tx, case_id, &req.scope).await?;
    if !(1..=MAX_DURATION_HOURS).contains(&req.duration_hours) {
        return Err(Error::validation(format!(
            "duration_hours must be between 1 and {MAX_DURATION_HOURS}"
        )));
    }
    if req.message.as_ref().is_some_and(|m| m.len() > 10_000) {
        return Err(Error::validation("message is longer than 10000 characters"));
    }
    quota(&mut tx, settings, user).await?;
    let (recipient_kind, recipient_org) = match &req.recipient {
        LinkRecipient::Email { email } => {
            if !orgs::valid_email(email) {
                return Err(Error::validation(format!(
                    "{email:?} is not a valid email address"
                )));
            }
            // R58: an address of a partner's user, or at a partner's
            // domains, is that partner's, and its policy governs the link.
            ("email", email_org(&mut tx, user.org_id, email).await?)
        }
        LinkRecipient::User { user_id: id } | LinkRecipient::Group { group_id: id } => {
            let (table, kind) = match &req.recipient {
                LinkRecipient::User { .. } => ("users", "user"),
                _ => ("groups", "group"),
            };
            let org: Option<Uuid> = sqlx::query_scalar(&format!(
                "SELECT x.org_id FROM {table} x WHERE x.id = $1 AND (x.org_id = $2 OR EXISTS (
                     SELECT 1 FROM partnerships p
                     WHERE (p.org_a = $2 AND p.org_b = x.org_id) OR (p.org_b = $2 AND p.org_a = x.org_id)))"
            ))
            .bind(id)
            .bind(user.org_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(org) = org else {
                return Err(Error::validation(format!(
                    "recipient {kind}_id must be a {kind} of this organization or of a partner organization"
                )));
            };
            (kind, Some(org))
        }
    };
    let policy = governing_policy(&mut tx, user.org_id, recipient_org).await?;
    check_attachments(&req.attachments, policy.as_ref())?;
    // R45, R58: a link share is a download; a partner's users and addresses
    // get one only where the policy for that partner allows copy/download.
    if recipient_org.is_some_and(|org| org != user.org_id)
        && policy
            .as_ref()
            .is_some_and(|p| !p.policy.permissions.copy_download)
    {
        return Err(Error::PolicyForbids(format!(
            "the sharing policy {:?} for this partner does not allow copy/download, so no link can be sent to it",
            policy.as_ref().map(|p| p.policy.name.as_str()).unwrap_or_default()
        )));
    }
    let id = Uuid::new_v4();
    let token_hash = super::token_hash(&super::token(settings, id));
    sqlx::query(
        "INSERT INTO link_shares (id, case_id, org_id, created_by, scope, recipient, attachments,
                                  retain_folder_structure, package, duration_hours, message, token_hash,
                                  policy)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id)
    .bind(case_id)
    .bind(user.org_id)
    .bind(user.user_id)
    .bind(sqlx::types::Json(&req.scope))
    .bind(sqlx::types::Json(&req.recipient))
    .bind(sqlx::types::Json(&req.attachments))
    .bind(req.retain_folder_structure)
    .bind(req.package)
    .bind(req.duration_hours)
    .bind(&req.message)
    .bind(&token_hash[..])
    .bind(policy.as_ref().map(sqlx::types::Json))
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Action::LinkShare,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(case_id),
            details: Some(serde_json::json!({
                "link_share_id": id,
                "recipient_kind": recipient_kind,
                "package": req.package.as_str(),
                "duration_hours": req.duration_hours,
                "policy_id": policy.as_ref().map(|p| p.policy_id),
            })),
            ..Default::default()
        },
    )
    .await?;
    let job_id = BuildLinkShare { link_share_id: id }
        .enqueue_about_tx(&mut tx, user.org_id, case_id)
        .await?;
    status_event_tx(
        &mut tx,
        id,
        user.org_id,
        case_id,
        LinkShareStatus::Processing,
    )
    .await?;
    tx.commit().await?;
    Ok(LinkShareAccepted {
        id,
        status: LinkShareStatus::Processing,
        job_id,
    })
}

/// R58: the org an email recipient belongs to: the sharer's own org or a
/// partner's when a user of it has exactly this address (a partner first), else
/// the partner whose `email_domains` hold the address's domain; none for
/// anyone else. One statement.
async fn email_org(db: &mut PgConnection, org_id: Uuid, email: &str) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "WITH partners AS (
             SELECT CASE WHEN p.org_a = $1 THEN p.org_b ELSE p.org_a END AS id
               FROM partnerships p WHERE p.org_a = $1 OR p.org_b = $1),
         domain AS (SELECT lower(split_part($2, '@', 2)) AS d)
         SELECT org_id FROM (
             SELECT u.org_id, CASE WHEN u.org_id = $1 THEN 1 ELSE 0 END AS rank
               FROM users u
              WHERE lower(u.email) = lower($2)
                AND (u.org_id = $1 OR u.org_id IN (SELECT id FROM partners))
             UNION ALL
             SELECT o.id, 2 FROM orgs o, domain
              WHERE o.id IN (SELECT id FROM partners)
                AND EXISTS (SELECT 1 FROM unnest(o.email_domains) AS x (d)
                             WHERE domain.d = lower(x.d) OR domain.d LIKE '%.' || lower(x.d))) m
         ORDER BY rank, org_id LIMIT 1",
    )
    .bind(org_id)
    .bind(email)
    .fetch_optional(db)
    .await?)
}

/// A user creates at most `max_link_shares_per_user_per_day` link shares in
/// 24 hours (each mails the agency's sender and stores a package), else 429.
async fn quota(
    db: &mut PgConnection,
    settings: &crate::config::Settings,
    user: &UserPrincipal,
) -> Result<()> {
    let limit = settings.max_link_shares_per_user_per_day;
    if limit == 0 {
        return Ok(());
    }
    let made: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM link_shares
          WHERE created_by = $1 AND created_at > now() - interval '24 hours' LIMIT $2) l",
    )
    .bind(user.user_id)
    .bind(i64::from(limit))
    .fetch_one(db)
    .await?;
    if made >= i64::from(limit) {
        return Err(Error::RateLimited(3600));
    }
    Ok(())
}

/// The sharing policy that governs what a link share may carry (R10, R40,
/// R58): for a user, group or address of a partner org, the policy for that
/// partner (its override or the default); for anyone else, the default
/// policy; for the sharer's own org, none (nothing leaves the org). `None`
/// also when the org has set up no policy: classic sharing does not require
/// one.
async fn governing_policy(
    db: &mut PgConnection,
    org_id: Uuid,
    recipient_org: Option<Uuid>,
) -> Result<Option<PolicySnapshot>> {
    match recipient_org {
        Some(org) if org == org_id => Ok(None),
        // No partner_policies row has the nil id: the default applies.
        other => policy::effective(db, org_id, other.unwrap_or(Uuid::nil())).await,
    }
}

/// Attachments that would carry what the governing policy excludes are
/// refused, naming the policy (R10: an excluded field never leaves).
fn check_attachments(attachments: &Attachments, policy: Option<&PolicySnapshot>) -> Result<()> {
    let Some(p) = policy else { return Ok(()) };
    if attachments.transcripts && !p.policy.evidence_terms.transcript {
        return Err(Error::validation(format!(
            "the sharing policy {:?} for this recipient excludes transcripts; \
             set attachments.transcripts to false",
            p.policy.name
        )));
    }
    if attachments.audit_trails && !p.policy.permissions.sender_audit_trail {
        return Err(Error::validation(format!(
            "the sharing policy {:?} for this recipient does not allow the audit trail; \
             set attachments.audit_trails to false",
            p.policy.name
        )));
    }
    Ok(())
}

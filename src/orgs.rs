//! Organizations (R1), their users, groups and partnerships, and the admin
//! setup wizard and receiving settings (R2, R5).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Action};
use crate::error::{Error, Result};
use crate::policy::{self, Policy};

/// R1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "org_kind", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    Lea,
    Justice,
    Fpp,
}

pub use crate::principal::Role;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct Org {
    pub id: Uuid,
    pub name: String,
    pub kind: OrgKind,
    pub notification_email: Option<String>,
    /// The domains email recipients of a share to this org must be at.
    pub email_domains: Vec<String>,
    pub auto_import: bool,
    pub auto_sync: bool,
    #[serde(skip)]
    pub default_policy_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    pub name: String,
    pub kind: OrgKind,
    pub notification_email: Option<String>,
    /// Email domains of the org (e.g. `beta-pd.gov`): email recipients of a
    /// partner share to it must be at one of them (or a subdomain).
    #[serde(default)]
    pub email_domains: Vec<String>,
}

/// Whether `email` is at one of `domains` (or a subdomain of one).
pub fn at_domains(email: &str, domains: &[String]) -> bool {
    let Some((_, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_lowercase();
    domains.iter().any(|d| {
        let d = d.to_lowercase();
        domain == d || domain.ends_with(&format!(".{d}"))
    })
}

pub fn valid_email(s: &str) -> bool {
    let mut parts = s.split('@');
    matches!((parts.next(), parts.next(), parts.next()), (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !s.contains(char::is_whitespace))
}

pub async fn create(db: &PgPool, new: NewOrg) -> Result<Org> {
    if new.name.trim().is_empty() {
        return Err(Error::validation("name must not be empty"));
    }
    crate::limits::text("name", &new.name, crate::limits::NAME)?;
    if let Some(e) = &new.notification_email {
        if !valid_email(e) {
            return Err(Error::validation(
                "notification_email is not a valid email address",
            ));
        }
    }
    if new.email_domains.len() > 20 {
        return Err(Error::validation("email_domains has more than 20 entries"));
    }
    for (i, d) in new.email_domains.iter().enumerate() {
        if !valid_email(&format!("x@{d}")) || d.len() > 253 {
            return Err(Error::validation(format!(
                "email_domains[{i}] is not a domain name"
            )));
        }
    }
    let domains: Vec<String> = new.email_domains.iter().map(|d| d.to_lowercase()).collect();
    // R5: Justice receives with auto-import on by default; LEA chooses at setup.
    let auto_import = new.kind == OrgKind::Justice;
    let mut tx = crate::db::begin(db).await?;
    let org: Org = sqlx::query_as(
        "INSERT INTO orgs (id, name, kind, notification_email, auto_import, email_domains) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, name, kind, notification_email, email_domains, auto_import, auto_sync, default_policy_id",
    )
    .bind(Uuid::now_v7())
    .bind(new.name.trim())
    .bind(new.kind)
    .bind(&new.notification_email)
    .bind(auto_import)
    .bind(&domains)
    .fetch_one(&mut *tx)
    .await?;
    let details = serde_json::json!({ "name": org.name, "kind": org.kind });
    audit::admin(&mut tx, Action::OrgCreated, org.id, None, details).await?;
    tx.commit().await?;
    Ok(org)
}

pub async fn get(db: &mut PgConnection, id: Uuid) -> Result<Org> {
    sqlx::query_as(
        "SELECT id, name, kind, notification_email, email_domains, auto_import, auto_sync, default_policy_id FROM orgs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound("organization"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub badge_id: Option<String>,
    pub role: Role,
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Create a user and return `(id, token)`; only the token's hash is stored.
pub async fn create_user(db: &PgPool, org_id: Uuid, new: NewUser) -> Result<(Uuid, String)> {
    if new.name.trim().is_empty() {
        return Err(Error::validation("name must not be empty"));
    }
    crate::limits::text("name", &new.name, crate::limits::NAME)?;
    if !valid_email(&new.email) {
        return Err(Error::validation("email is not a valid email address"));
    }
    let mut tx = crate::db::begin(db).await?;
    get(&mut tx, org_id).await?;
    let token = format!("cs_{}", hex::encode(rand::random::<[u8; 32]>()));
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (id, org_id, name, email, badge_id, role, token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(org_id)
    .bind(new.name.trim())
    .bind(&new.email)
    .bind(&new.badge_id)
    .bind(new.role)
    .bind(hash_token(&token))
    .execute(&mut *tx)
    .await?;
    let details = serde_json::json!({ "user_id": id, "role": new.role });
    audit::admin(&mut tx, Action::UserCreated, org_id, None, details).await?;
    tx.commit().await?;
    Ok((id, token))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
    #[serde(default)]
    pub member_ids: Vec<Uuid>,
}

pub async fn create_group(db: &PgPool, org_id: Uuid, new: NewGroup) -> Result<Uuid> {
    if new.name.trim().is_empty() {
        return Err(Error::validation("name must not be empty"));
    }
    crate::limits::text("name", &new.name, crate::limits::NAME)?;
    let mut tx = crate::db::begin(db).await?;
    get(&mut tx, org_id).await?;
    let members: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE org_id = $1 AND id = ANY($2)")
            .bind(org_id)
            .bind(&new.member_ids)
            .fetch_one(&mut *tx)
            .await?;
    let mut distinct = new.member_ids.clone();
    distinct.sort();
    distinct.dedup();
    if members as usize != distinct.len() {
        return Err(Error::validation(
            "every member must be a user of this organization",
        ));
    }
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO groups (id, org_id, name) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(org_id)
        .bind(new.name.trim())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO group_members (group_id, org_id, user_id) SELECT $1, $2, unnest($3::uuid[])",
    )
    .bind(id)
    .bind(org_id)
    .bind(&distinct)
    .execute(&mut *tx)
    .await?;
    let details = serde_json::json!({ "group_id": id, "member_ids": distinct });
    audit::admin(&mut tx, Action::GroupCreated, org_id, None, details).await?;
    tx.commit().await?;
    Ok(id)
}

/// Partnerships are symmetric and stored once (smaller id first).
pub async fn create_partnership(db: &PgPool, a: Uuid, b: Uuid) -> Result<()> {
    if a == b {
        return Err(Error::validation(
            "an organization cannot partner with itself",
        ));
    }
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    let mut tx = crate::db::begin(db).await?;
    get(&mut tx, a).await?;
    get(&mut tx, b).await?;
    let created = sqlx::query(
        "INSERT INTO partnerships (org_a, org_b) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(a)
    .bind(b)
    .execute(&mut *tx)
    .await?;
    if created.rows_affected() > 0 {
        for (org, partner) in [(a, b), (b, a)] {
            let details = serde_json::json!({ "partner_org_id": partner });
            audit::admin(&mut tx, Action::PartnershipCreated, org, None, details).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

pub async fn are_partners(db: &mut PgConnection, a: Uuid, b: Uuid) -> Result<bool> {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM partnerships WHERE org_a = $1 AND org_b = $2)",
    )
    .bind(a)
    .bind(b)
    .fetch_one(db)
    .await?)
}

pub async fn partners(db: &mut PgConnection, org_id: Uuid) -> Result<Vec<Org>> {
    Ok(sqlx::query_as(
        "SELECT o.id, o.name, o.kind, o.notification_email, o.email_domains, o.auto_import, o.auto_sync, o.default_policy_id
         FROM partnerships p JOIN orgs o ON o.id = CASE WHEN p.org_a = $1 THEN p.org_b ELSE p.org_a END
         WHERE p.org_a = $1 OR p.org_b = $1 ORDER BY o.name",
    )
    .bind(org_id)
    .fetch_all(db)
    .await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    pub default_policy: Policy,
    pub auto_import: bool,
}

/// R2: the setup wizard, once per org. The row lock serializes two admins.
pub async fn complete_setup(
    db: &PgPool,
    org_id: Uuid,
    actor: Uuid,
    req: SetupRequest,
) -> Result<Uuid> {
    let mut tx = crate::db::begin(db).await?;
    let (kind, done): (OrgKind, Option<Uuid>) =
        sqlx::query_as("SELECT kind, default_policy_id FROM orgs WHERE id = $1 FOR UPDATE")
            .bind(org_id)
            .fetch_one(&mut *tx)
            .await?;
    // R46: a Free Prosecutor Program org receives link shares (R40) only.
    if kind == OrgKind::Fpp {
        return Err(Error::ClassicSharingRequired);
    }
    if done.is_some() {
        return Err(Error::Conflict(
            "advanced sharing setup has already been completed".into(),
        ));
    }
    let policy_id = policy::create(&mut tx, org_id, actor, &req.default_policy).await?;
    sqlx::query(
        "UPDATE orgs SET default_policy_id = $2, setup_completed_at = now(), auto_import = $3 WHERE id = $1",
    )
    .bind(org_id)
    .bind(policy_id)
    .bind(req.auto_import)
    .execute(&mut *tx)
    .await?;
    let details =
        serde_json::json!({ "default_policy_id": policy_id, "auto_import": req.auto_import });
    audit::admin(
        &mut tx,
        Action::SetupCompleted,
        org_id,
        Some(actor),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(policy_id)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceivingSettings {
    pub auto_import: Option<bool>,
    pub auto_sync: Option<bool>,
}

/// R5: `auto_sync` only means something for Justice orgs.
pub async fn update_settings(
    db: &PgPool,
    org_id: Uuid,
    actor: Uuid,
    s: ReceivingSettings,
) -> Result<Org> {
    let mut tx = crate::db::begin(db).await?;
    let org = get(&mut tx, org_id).await?;
    if s.auto_sync == Some(true) && org.kind != OrgKind::Justice {
        return Err(Error::validation(
            "auto_sync applies to justice organizations only",
        ));
    }
    let org = sqlx::query_as(
        "UPDATE orgs SET auto_import = coalesce($2, auto_import), auto_sync = coalesce($3, auto_sync) WHERE id = $1
         RETURNING id, name, kind, notification_email, email_domains, auto_import, auto_sync, default_policy_id",
    )
    .bind(org_id)
    .bind(s.auto_import)
    .bind(s.auto_sync)
    .fetch_one(&mut *tx)
    .await?;
    let details = serde_json::json!({ "auto_import": s.auto_import, "auto_sync": s.auto_sync });
    audit::admin(
        &mut tx,
        Action::SettingsChanged,
        org_id,
        Some(actor),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(org)
}

/// R3: assign (or replace) the policy for one partner.
pub async fn assign_partner_policy(
    db: &PgPool,
    org_id: Uuid,
    actor: Uuid,
    partner: Uuid,
    policy_id: Uuid,
) -> Result<()> {
    let mut tx = crate::db::begin(db).await?;
    if !are_partners(&mut tx, org_id, partner).await? {
        return Err(Error::NotFound("partner"));
    }
    policy::get(&mut tx, org_id, policy_id)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => {
                Error::validation("policy_id does not name a policy of this organization")
            }
            other => other,
        })?;
    sqlx::query(
        "INSERT INTO partner_policies (org_id, partner_org_id, policy_id) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, partner_org_id) DO UPDATE SET policy_id = EXCLUDED.policy_id",
    )
    .bind(org_id)
    .bind(partner)
    .bind(policy_id)
    .execute(&mut *tx)
    .await?;
    let details = serde_json::json!({ "partner_org_id": partner, "policy_id": policy_id });
    audit::admin(
        &mut tx,
        Action::PartnerPolicyAssigned,
        org_id,
        Some(actor),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn remove_partner_policy(
    db: &PgPool,
    org_id: Uuid,
    actor: Uuid,
    partner: Uuid,
) -> Result<()> {
    let mut tx = crate::db::begin(db).await?;
    if !are_partners(&mut tx, org_id, partner).await? {
        return Err(Error::NotFound("partner"));
    }
    sqlx::query("DELETE FROM partner_policies WHERE org_id = $1 AND partner_org_id = $2")
        .bind(org_id)
        .bind(partner)
        .execute(&mut *tx)
        .await?;
    let details = serde_json::json!({ "partner_org_id": partner });
    audit::admin(
        &mut tx,
        Action::PartnerPolicyRemoved,
        org_id,
        Some(actor),
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

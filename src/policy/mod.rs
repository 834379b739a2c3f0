//! Sharing policies (R6–R12): the model, storage, resolution (per-partner over
//! default, R3) and the one filtering function every outbound path uses
//! (external view, import, sync updates, audit snapshot, email; R10).

pub mod filter;

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Action};
use crate::error::{Error, Result};

/// R7: what the receiver may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    pub copy_download: bool,
    pub sender_audit_trail: bool,
    pub internal_share: bool,
}

/// R8: case fields beyond the always-included ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseTerms {
    pub case_notes: bool,
    pub case_tags: bool,
}

/// R9: evidence fields beyond the always-included ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceTerms {
    pub clips_markers: bool,
    pub evidence_notes: bool,
    pub evidence_tags: bool,
    pub gps: bool,
    pub custom_metadata: bool,
    pub device_metadata: bool,
    pub community_request_pii: bool,
    pub transcript: bool,
}

/// A policy body as admins write it (API.md "Policy body"); every leaf required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    pub permissions: Permissions,
    pub case_terms: CaseTerms,
    pub evidence_terms: EvidenceTerms,
}

impl Policy {
    /// The most restrictive of two policies (R43): a term or permission is
    /// allowed only where both allow it.
    pub fn meet(&self, other: &Policy) -> Policy {
        let (p, q) = (&self.permissions, &other.permissions);
        let (c, d) = (&self.case_terms, &other.case_terms);
        let (e, f) = (&self.evidence_terms, &other.evidence_terms);
        Policy {
            name: if self.name == other.name {
                self.name.clone()
            } else {
                format!("{} + {}", self.name, other.name)
            },
            permissions: Permissions {
                copy_download: p.copy_download && q.copy_download,
                sender_audit_trail: p.sender_audit_trail && q.sender_audit_trail,
                internal_share: p.internal_share && q.internal_share,
            },
            case_terms: CaseTerms {
                case_notes: c.case_notes && d.case_notes,
                case_tags: c.case_tags && d.case_tags,
            },
            evidence_terms: EvidenceTerms {
                clips_markers: e.clips_markers && f.clips_markers,
                evidence_notes: e.evidence_notes && f.evidence_notes,
                evidence_tags: e.evidence_tags && f.evidence_tags,
                gps: e.gps && f.gps,
                custom_metadata: e.custom_metadata && f.custom_metadata,
                device_metadata: e.device_metadata && f.device_metadata,
                community_request_pii: e.community_request_pii && f.community_request_pii,
                transcript: e.transcript && f.transcript,
            },
        }
    }

    pub fn validate(&self) -> Result<()> {
        crate::limits::text("name", &self.name, crate::limits::NAME)?;
        if self.name.trim().is_empty() {
            return Err(Error::validation("policy name must not be empty"));
        }
        Ok(())
    }
}

/// A stored policy (its schema: [`schema::StoredPolicy`]).
#[derive(Debug, Clone, Serialize)]
pub struct StoredPolicy {
    pub id: Uuid,
    #[serde(flatten)]
    pub policy: Policy,
}

/// The policy recorded with a share (R12): the resolved policy at share
/// time (its schema: [`schema::PolicySnapshot`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicySnapshot {
    pub policy_id: Uuid,
    /// `default` or `partner` (which assignment supplied it).
    pub source: String,
    #[serde(flatten)]
    pub policy: Policy,
}

/// The OpenAPI schemas of [`StoredPolicy`] and [`PolicySnapshot`] as they
/// serialize: one object, the policy's fields beside their own. Derived from
/// the types, `#[serde(flatten)]` would make them `allOf` [`Policy`, ...],
/// and `Policy` (a request body) forbids any other property, so no stored
/// policy or snapshot would match its own schema.
pub mod schema {
    use super::{CaseTerms, EvidenceTerms, Permissions};
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::{PartialSchema, ToSchema};
    use uuid::Uuid;

    /// A stored policy.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct StoredPolicy {
        id: Uuid,
        name: String,
        permissions: Permissions,
        case_terms: CaseTerms,
        evidence_terms: EvidenceTerms,
    }

    /// Which assignment supplied a policy: the org's default, or the one
    /// assigned to the partner.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub enum PolicySource {
        Default,
        Partner,
    }

    /// The policy recorded with a share (R12): the resolved policy at share time.
    #[derive(ToSchema)]
    #[allow(dead_code)]
    pub struct PolicySnapshot {
        policy_id: Uuid,
        /// Which assignment supplied it.
        source: PolicySource,
        name: String,
        permissions: Permissions,
        case_terms: CaseTerms,
        evidence_terms: EvidenceTerms,
    }

    impl PartialSchema for super::StoredPolicy {
        fn schema() -> RefOr<Schema> {
            StoredPolicy::schema()
        }
    }

    impl ToSchema for super::StoredPolicy {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            StoredPolicy::schemas(schemas)
        }
    }

    impl PartialSchema for super::PolicySnapshot {
        fn schema() -> RefOr<Schema> {
            PolicySnapshot::schema()
        }
    }

    impl ToSchema for super::PolicySnapshot {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            PolicySnapshot::schemas(schemas)
        }
    }
}

/// Store a policy, audited with the admin who wrote it (R50).
pub async fn create(
    db: &mut PgConnection,
    org_id: Uuid,
    actor: Uuid,
    policy: &Policy,
) -> Result<Uuid> {
    policy.validate()?;
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO policies (id, org_id, name, rules) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(org_id)
        .bind(&policy.name)
        .bind(sqlx::types::Json(policy))
        .execute(&mut *db)
        .await?;
    let details = serde_json::json!({ "policy_id": id, "name": policy.name });
    audit::admin(db, Action::PolicyCreated, org_id, Some(actor), details).await?;
    Ok(id)
}

pub async fn get(db: &mut PgConnection, org_id: Uuid, id: Uuid) -> Result<StoredPolicy> {
    let row: Option<(sqlx::types::Json<Policy>,)> =
        sqlx::query_as("SELECT rules FROM policies WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .fetch_optional(db)
            .await?;
    let (sqlx::types::Json(policy),) = row.ok_or(Error::NotFound("policy"))?;
    Ok(StoredPolicy { id, policy })
}

/// Edit a policy (later shares only, R12), audited with the admin (R50).
pub async fn update(
    db: &mut PgConnection,
    org_id: Uuid,
    actor: Uuid,
    id: Uuid,
    policy: &Policy,
) -> Result<()> {
    policy.validate()?;
    let done = sqlx::query(
        "UPDATE policies SET name = $3, rules = $4, updated_at = now() WHERE id = $1 AND org_id = $2",
    )
    .bind(id)
    .bind(org_id)
    .bind(&policy.name)
    .bind(sqlx::types::Json(policy))
    .execute(&mut *db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("policy"));
    }
    let details = serde_json::json!({ "policy_id": id, "name": policy.name });
    audit::admin(db, Action::PolicyUpdated, org_id, Some(actor), details).await?;
    Ok(())
}

/// R2/R3: the policy that governs sharing from `org_id` to `partner_id`: the
/// per-partner assignment if any, else the default. `None` before setup.
pub async fn effective(
    db: &mut PgConnection,
    org_id: Uuid,
    partner_id: Uuid,
) -> Result<Option<PolicySnapshot>> {
    let row: Option<(Uuid, String, sqlx::types::Json<Policy>)> = sqlx::query_as(
        "SELECT p.id, CASE WHEN pp.policy_id IS NULL THEN 'default' ELSE 'partner' END, p.rules
         FROM orgs o
         LEFT JOIN partner_policies pp ON pp.org_id = o.id AND pp.partner_org_id = $2
         JOIN policies p ON p.id = coalesce(pp.policy_id, o.default_policy_id)
         WHERE o.id = $1",
    )
    .bind(org_id)
    .bind(partner_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(
        |(policy_id, source, sqlx::types::Json(policy))| PolicySnapshot {
            policy_id,
            source,
            policy,
        },
    ))
}

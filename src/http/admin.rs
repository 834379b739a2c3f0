//! Admins: the setup wizard (R2), receiving settings (R5), policies and their
//! per-partner assignment (R3); and the effective policy any user may view.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Admin, User};
use super::cases::Items;
use super::error::ErrorBody;
use super::extract::{Json, Path};
use super::AppState;
use crate::error::{Error, Result};
use crate::orgs::{self, Org, OrgKind, ReceivingSettings, SetupRequest};
use crate::policy::{self, Policy, PolicySnapshot, StoredPolicy};

#[derive(Serialize, ToSchema)]
pub struct SetupStatus {
    pub completed: bool,
    pub default_policy_id: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/sharing/setup", tag = "admin", responses((status = 200, body = SetupStatus), (status = 403, body = ErrorBody)))]
pub async fn get_setup(
    Admin(u): Admin,
    State(s): State<AppState>,
) -> Result<axum::Json<SetupStatus>> {
    let org = orgs::get(&mut *s.db.acquire().await?, u.org_id).await?;
    Ok(axum::Json(SetupStatus {
        completed: org.default_policy_id.is_some(),
        default_policy_id: org.default_policy_id,
    }))
}

#[utoipa::path(post, path = "/v1/sharing/setup", tag = "admin", request_body = SetupRequest,
    responses((status = 201, body = SetupStatus), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "already completed (`conflict`), or an fpp org (`classic_sharing_required`, R46)"), (status = 422, body = ErrorBody)))]
pub async fn complete_setup(
    Admin(u): Admin,
    State(s): State<AppState>,
    Json(body): Json<SetupRequest>,
) -> Result<(StatusCode, axum::Json<SetupStatus>)> {
    let id = orgs::complete_setup(&s.db, u.org_id, u.user_id, body).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SetupStatus {
            completed: true,
            default_policy_id: Some(id),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/sharing/settings", tag = "admin", responses((status = 200, body = Org), (status = 403, body = ErrorBody)))]
pub async fn get_settings(Admin(u): Admin, State(s): State<AppState>) -> Result<axum::Json<Org>> {
    Ok(axum::Json(
        orgs::get(&mut *s.db.acquire().await?, u.org_id).await?,
    ))
}

#[utoipa::path(put, path = "/v1/sharing/settings", tag = "admin", request_body = ReceivingSettings,
    responses((status = 200, body = Org), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    Admin(u): Admin,
    State(s): State<AppState>,
    Json(body): Json<ReceivingSettings>,
) -> Result<axum::Json<Org>> {
    Ok(axum::Json(
        orgs::update_settings(&s.db, u.org_id, u.user_id, body).await?,
    ))
}

#[utoipa::path(post, path = "/v1/policies", tag = "admin", request_body = Policy,
    responses((status = 201, body = StoredPolicy), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_policy(
    Admin(u): Admin,
    State(s): State<AppState>,
    Json(body): Json<Policy>,
) -> Result<(StatusCode, axum::Json<StoredPolicy>)> {
    let mut tx = crate::db::begin(&s.db).await?;
    let id = policy::create(&mut tx, u.org_id, u.user_id, &body).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(StoredPolicy { id, policy: body }),
    ))
}

#[utoipa::path(get, path = "/v1/policies/{policy_id}", tag = "admin",
    responses((status = 200, body = StoredPolicy), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_policy(
    Admin(u): Admin,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<StoredPolicy>> {
    Ok(axum::Json(
        policy::get(&mut *s.db.acquire().await?, u.org_id, id).await?,
    ))
}

#[utoipa::path(put, path = "/v1/policies/{policy_id}", tag = "admin", request_body = Policy,
    responses((status = 200, body = StoredPolicy), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_policy(
    Admin(u): Admin,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Json(body): Json<Policy>,
) -> Result<axum::Json<StoredPolicy>> {
    let mut tx = crate::db::begin(&s.db).await?;
    policy::update(&mut tx, u.org_id, u.user_id, id, &body).await?;
    tx.commit().await?;
    Ok(axum::Json(StoredPolicy { id, policy: body }))
}

#[derive(Serialize, ToSchema)]
pub struct PartnerOrg {
    pub id: Uuid,
    pub name: String,
    pub kind: OrgKind,
}

#[derive(Serialize, ToSchema)]
pub struct PartnerItem {
    pub org: PartnerOrg,
    pub policy_id: Option<Uuid>,
    /// Which assignment supplies the partner's policy.
    #[schema(value_type = crate::policy::schema::PolicySource)]
    pub policy_source: String,
}

#[utoipa::path(get, path = "/v1/partners", tag = "admin", responses((status = 200, body = Items<PartnerItem>), (status = 403, body = ErrorBody)))]
pub async fn list_partners(
    User(u): User,
    State(s): State<AppState>,
) -> Result<axum::Json<Items<PartnerItem>>> {
    let mut conn = s.db.acquire().await?;
    let mut items = Vec::new();
    for p in orgs::partners(&mut conn, u.org_id).await? {
        let effective = policy::effective(&mut conn, u.org_id, p.id).await?;
        items.push(PartnerItem {
            org: PartnerOrg {
                id: p.id,
                name: p.name,
                kind: p.kind,
            },
            policy_id: effective.as_ref().map(|e| e.policy_id),
            policy_source: effective
                .map(|e| e.source)
                .unwrap_or_else(|| "default".into()),
        });
    }
    Ok(axum::Json(Items::all(items)))
}

#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignPolicy {
    pub policy_id: Uuid,
}

#[utoipa::path(put, path = "/v1/partners/{org_id}/policy", tag = "admin", request_body = AssignPolicy,
    responses((status = 200, body = PolicySnapshot), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn assign_partner_policy(
    Admin(u): Admin,
    State(s): State<AppState>,
    Path(partner): Path<Uuid>,
    Json(body): Json<AssignPolicy>,
) -> Result<axum::Json<PolicySnapshot>> {
    orgs::assign_partner_policy(&s.db, u.org_id, u.user_id, partner, body.policy_id).await?;
    effective(&s, u.org_id, partner).await
}

#[utoipa::path(delete, path = "/v1/partners/{org_id}/policy", tag = "admin",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_partner_policy(
    Admin(u): Admin,
    State(s): State<AppState>,
    Path(partner): Path<Uuid>,
) -> Result<StatusCode> {
    orgs::remove_partner_policy(&s.db, u.org_id, u.user_id, partner).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/partners/{org_id}/policy", tag = "admin",
    responses((status = 200, body = PolicySnapshot), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn get_partner_policy(
    User(u): User,
    State(s): State<AppState>,
    Path(partner): Path<Uuid>,
) -> Result<axum::Json<PolicySnapshot>> {
    if !orgs::are_partners(&mut *s.db.acquire().await?, u.org_id, partner).await? {
        return Err(Error::NotFound("partner"));
    }
    effective(&s, u.org_id, partner).await
}

async fn effective(s: &AppState, org: Uuid, partner: Uuid) -> Result<axum::Json<PolicySnapshot>> {
    policy::effective(&mut *s.db.acquire().await?, org, partner)
        .await?
        .map(axum::Json)
        .ok_or(Error::AdvancedSharingNotSetUp)
}

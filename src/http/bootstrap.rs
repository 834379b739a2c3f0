//! Service principal: bootstrap of orgs, users, groups and partnerships (R1).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Service;
use super::error::ErrorBody;
use super::extract::{Json, Path};
use super::AppState;
use crate::error::Result;
use crate::orgs::{self, NewGroup, NewOrg, NewUser, Org};

#[utoipa::path(post, path = "/v1/orgs", tag = "bootstrap", request_body = NewOrg,
    responses((status = 201, body = Org), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_org(
    service: Service,
    State(s): State<AppState>,
    Json(body): Json<NewOrg>,
) -> Result<(StatusCode, axum::Json<Org>)> {
    service.unbound()?;
    Ok((
        StatusCode::CREATED,
        axum::Json(orgs::create(&s.db, body).await?),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    pub id: Uuid,
    /// The bearer token; shown once, stored only as a hash.
    pub token: String,
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/users", tag = "bootstrap", request_body = NewUser,
    responses((status = 201, body = CreatedUser), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    service: Service,
    State(s): State<AppState>,
    Path(org_id): Path<Uuid>,
    Json(body): Json<NewUser>,
) -> Result<(StatusCode, axum::Json<CreatedUser>)> {
    service.for_org(org_id)?;
    let (id, token) = orgs::create_user(&s.db, org_id, body).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedUser { id, token })))
}

#[derive(Serialize, ToSchema)]
pub struct Created {
    pub id: Uuid,
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/groups", tag = "bootstrap", request_body = NewGroup,
    responses((status = 201, body = Created), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_group(
    service: Service,
    State(s): State<AppState>,
    Path(org_id): Path<Uuid>,
    Json(body): Json<NewGroup>,
) -> Result<(StatusCode, axum::Json<Created>)> {
    service.for_org(org_id)?;
    let id = orgs::create_group(&s.db, org_id, body).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartnership {
    pub org_ids: [Uuid; 2],
}

/// A partnership: the two orgs that may share with each other.
#[derive(Serialize, ToSchema)]
pub struct Partnership {
    pub org_ids: [Uuid; 2],
}

#[utoipa::path(post, path = "/v1/partnerships", tag = "bootstrap", request_body = NewPartnership,
    responses((status = 201, body = Partnership), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_partnership(
    service: Service,
    State(s): State<AppState>,
    Json(body): Json<NewPartnership>,
) -> Result<(StatusCode, axum::Json<Partnership>)> {
    service.unbound()?;
    orgs::create_partnership(&s.db, body.org_ids[0], body.org_ids[1]).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Partnership {
            org_ids: body.org_ids,
        }),
    ))
}

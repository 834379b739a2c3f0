//! Sharing endpoints (R13–R17, R29–R31): thin wrappers over `sharing` and
//! `revocation`.

use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::auth::User;
use super::cases::Items;
use super::error::ErrorBody;
use super::extract::{Json, Path, Query};
use super::page::PageQuery;
use super::AppState;
use crate::access;
use crate::custody::{self, Jwks, Receipt};
use crate::error::Result;
use crate::notify::{self, NoticeView};
use crate::revocation::{self, BulkRevoke, BulkRevoked, StopAccepted, StopSharing};
use crate::sharing::{self, AccessEntry, Dissemination, ShareRequest, ShareView};

#[utoipa::path(post, path = "/v1/cases/{case_id}/shares", tag = "sharing", request_body = ShareRequest,
    responses((status = 202, body = ShareView), (status = 403, body = ErrorBody, description = "`policy_forbids`: an external case (R45)"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn create_share(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Json(body): Json<ShareRequest>,
) -> Result<(StatusCode, axum::Json<ShareView>)> {
    if body.target.recipients().len() > s.settings.max_recipients_per_share as usize {
        return Err(crate::error::Error::validation(format!(
            "target.recipients names more than {} recipients (the limit per share)",
            s.settings.max_recipients_per_share
        )));
    }
    let view = sharing::create(&s.db, &u, case_id, body).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(view)))
}

#[utoipa::path(get, path = "/v1/shares/{share_id}", tag = "sharing",
    responses((status = 200, body = ShareView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_share(
    User(u): User,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ShareView>> {
    let share = sharing::load_owned(&mut *s.db.acquire().await?, &u, id).await?;
    Ok(axum::Json(share.view(None)))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}/shares", tag = "sharing", params(PageQuery),
    responses((status = 200, body = Items<ShareView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_shares(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Items<ShareView>>> {
    let mut conn = s.db.acquire().await?;
    access::own_case(&mut conn, &u, case_id).await?;
    let items = sharing::list_for_case(&mut conn, case_id).await?;
    Ok(axum::Json(Items::page(items, &page, |s| s.id.to_string())?))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}/access", tag = "sharing",
    responses((status = 200, body = Items<AccessEntry>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn access_list(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
) -> Result<axum::Json<Items<AccessEntry>>> {
    let mut conn = s.db.acquire().await?;
    let (case, _) = access::own_case(&mut conn, &u, case_id).await?;
    Ok(axum::Json(Items::all(
        sharing::access_list(&mut conn, &case).await?,
    )))
}

#[utoipa::path(post, path = "/v1/shares/{share_id}/revoke", tag = "sharing",
    responses((status = 202, body = ShareView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_share(
    User(u): User,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<ShareView>)> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(revocation::revoke(&s.db, &u, id).await?),
    ))
}

#[utoipa::path(post, path = "/v1/shares/revoke", tag = "sharing", request_body = BulkRevoke,
    responses((status = 202, body = BulkRevoked), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn revoke_many(
    User(u): User,
    State(s): State<AppState>,
    Json(body): Json<BulkRevoke>,
) -> Result<(StatusCode, axum::Json<BulkRevoked>)> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(revocation::revoke_many(&s.db, &u, body).await?),
    ))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}/dissemination", tag = "sharing",
    responses((status = 200, body = Items<Dissemination>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn dissemination(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
) -> Result<axum::Json<Items<Dissemination>>> {
    let mut conn = s.db.acquire().await?;
    access::own_case(&mut conn, &u, case_id).await?;
    Ok(axum::Json(Items::all(
        sharing::dissemination(&mut conn, case_id).await?,
    )))
}

#[utoipa::path(get, path = "/v1/shares/{share_id}/notices", tag = "sharing", params(PageQuery),
    responses((status = 200, body = Items<NoticeView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn share_notices(
    User(u): User,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Items<NoticeView>>> {
    let mut conn = s.db.acquire().await?;
    sharing::load_owned(&mut conn, &u, id).await?;
    let items = notify::for_share(&mut conn, id).await?;
    Ok(axum::Json(Items::page(items, &page, |n| n.id.to_string())?))
}

/// R44: stop sharing the case with one principal.
#[utoipa::path(post, path = "/v1/cases/{case_id}/access/revoke", tag = "sharing", request_body = StopSharing,
    responses((status = 202, body = StopAccepted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn stop_sharing(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Json(body): Json<StopSharing>,
) -> Result<(StatusCode, axum::Json<StopAccepted>)> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(revocation::stop_sharing(&s.db, &u, case_id, body).await?),
    ))
}

#[utoipa::path(get, path = "/v1/shares/{share_id}/receipt", tag = "sharing",
    responses((status = 200, body = Receipt, description = "the manifest the sharing org signed, and the receiving org's signed acknowledgement once its import copied the files (R54); JWS compact serializations (EdDSA) verifiable with `GET /v1/orgs/{org_id}/keys`"),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "no such share for this user, or no receipt (an internal share, or one not complete)")))]
pub async fn get_receipt(
    User(u): User,
    State(s): State<AppState>,
    Path(share_id): Path<Uuid>,
) -> Result<axum::Json<Receipt>> {
    Ok(axum::Json(
        crate::sharing::receipt_for(&mut *s.db.acquire().await?, &u, share_id).await?,
    ))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/keys", tag = "sharing", security(()),
    responses((status = 200, body = Jwks, description = "the org's public signing keys (RFC 7517 JWK Set, Ed25519), newest first; retired keys stay listed with `retired_at`, so the receipts they signed stay verifiable (R54)"),
              (status = 404, body = ErrorBody)))]
pub async fn org_keys(
    State(s): State<AppState>,
    Path(org_id): Path<Uuid>,
) -> Result<axum::Json<Jwks>> {
    Ok(axum::Json(
        custody::jwks(&mut *s.db.acquire().await?, org_id).await?,
    ))
}

//! Receiving endpoints (R18–R20, R27, R28).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::User;
use super::cases::Items;
use super::error::ErrorBody;
use super::extract::{Json, Path, Query};
use super::page::PageQuery;
use super::AppState;
use crate::error::Result;
use crate::receiving::{
    self, ApplyRequest, ApplyResult, ImportDetails, ImportStatus, OnwardRecipient, ReceivedItem,
};
use crate::revocation::{RecipientKind, StopAccepted};

#[utoipa::path(get, path = "/v1/received", tag = "receiving", params(PageQuery),
    responses((status = 200, body = Items<ReceivedItem>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_received(
    User(u): User,
    State(s): State<AppState>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Items<ReceivedItem>>> {
    let items = receiving::list(&mut *s.db.acquire().await?, &u).await?;
    Ok(axum::Json(Items::page(items, &page, |r| r.id.to_string())?))
}

#[derive(Serialize, ToSchema)]
pub struct ImportAccepted {
    pub received_id: Uuid,
    pub job_id: Uuid,
    pub status: ImportStatus,
}

#[utoipa::path(post, path = "/v1/received/{received_id}/import", tag = "receiving",
    responses((status = 202, body = ImportAccepted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub async fn import(
    User(u): User,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<ImportAccepted>)> {
    let job_id = receiving::request_import(&s.db, &u, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ImportAccepted {
            received_id: id,
            job_id,
            status: ImportStatus::Processing,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}/import-details", tag = "receiving",
    responses((status = 200, body = ImportDetails), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn import_details(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
) -> Result<axum::Json<ImportDetails>> {
    Ok(axum::Json(
        receiving::import_details(&mut *s.db.acquire().await?, &u, case_id).await?,
    ))
}

#[utoipa::path(post, path = "/v1/cases/{case_id}/updates/apply", tag = "receiving", request_body = ApplyRequest,
    responses((status = 200, body = ApplyResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 410, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn apply_updates(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Json(body): Json<ApplyRequest>,
) -> Result<axum::Json<ApplyResult>> {
    Ok(axum::Json(
        receiving::apply_updates(&s.db, &u, case_id, body).await?,
    ))
}

#[utoipa::path(post, path = "/v1/cases/{case_id}/recipients", tag = "receiving", request_body = OnwardRecipient,
    responses((status = 201, body = OnwardRecipient, description = "added: the recipient"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 410, body = ErrorBody, description = "`share_revoked`: the share was revoked"), (status = 422, body = ErrorBody)))]
pub async fn add_recipient(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Json(body): Json<OnwardRecipient>,
) -> Result<(StatusCode, axum::Json<OnwardRecipient>)> {
    receiving::add_recipient(&s.db, &u, case_id, body.clone()).await?;
    Ok((StatusCode::CREATED, axum::Json(body)))
}

#[utoipa::path(delete, path = "/v1/cases/{case_id}/recipients/{kind}/{id}", tag = "receiving",
    params(("kind" = RecipientKind, Path, description = "`user` or `group`")),
    responses((status = 202, body = StopAccepted, description = "removed at once (the next read is a 404); the job mails the recipient (none when there was nothing to remove)"),
              (status = 403, body = ErrorBody, description = "neither an admin nor the user who added the recipient"),
              (status = 404, body = ErrorBody)))]
pub async fn remove_recipient(
    User(u): User,
    State(s): State<AppState>,
    Path((case_id, kind, id)): Path<(Uuid, RecipientKind, Uuid)>,
) -> Result<(StatusCode, axum::Json<StopAccepted>)> {
    let accepted = crate::revocation::remove_onward(&s.db, &u, case_id, kind, id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)))
}

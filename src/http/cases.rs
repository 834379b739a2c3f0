//! Cases, folders, evidence and the audit trail, as seen by an org: its own
//! cases in full, received cases read-only and filtered (R18).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::{Principal, User};
use super::bootstrap::Created;
use super::error::ErrorBody;
use super::extract::{Json, Path, Query};
use super::page::PageQuery;
use super::AppState;
use crate::access::{self, Seen};
use crate::audit::{self, Action, AuditItem};
use crate::cases::{self, CasePatch, Folder, FolderPatch, NewCase, NewFolder};
use crate::error::{Error, Result};
use crate::evidence::{self, Accepted, EvidenceView, NewEvidence};
use crate::receiving::{self, CaseView};

#[derive(Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
    /// The `cursor` of the next page; null on the last page (and for lists
    /// that are not paginated).
    pub next_cursor: Option<String>,
}

impl<T> Items<T> {
    /// A whole list, not paginated.
    pub fn all(items: Vec<T>) -> Self {
        Items {
            items,
            next_cursor: None,
        }
    }

    /// One page of `items` (ordered), by `q` (R: API.md pagination).
    pub fn page(items: Vec<T>, q: &PageQuery, id: impl Fn(&T) -> String) -> Result<Self> {
        let (items, next_cursor) = super::page::page(items, q, id)?;
        Ok(Items { items, next_cursor })
    }
}

#[utoipa::path(post, path = "/v1/cases", tag = "cases", request_body = NewCase,
    responses((status = 201, body = CaseView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_case(
    User(u): User,
    State(s): State<AppState>,
    Json(body): Json<NewCase>,
) -> Result<(StatusCode, axum::Json<CaseView>)> {
    let mut tx = crate::db::begin(&s.db).await?;
    let case = cases::create(&mut tx, u.org_id, u.user_id, body).await?;
    tx.commit().await?;
    let view = receiving::case_view(&mut *s.db.acquire().await?, &u, case.id).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// true: only received external cases; false: only own and imported cases.
    pub external: Option<bool>,
    /// Items per page: 1 to 1,000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CaseSummary {
    pub id: Uuid,
    pub case_number: String,
    pub title: String,
    pub external: bool,
    pub imported: bool,
    pub sharing_org: Option<receiving::OrgRef>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(get, path = "/v1/cases", tag = "cases", params(ListQuery),
    responses((status = 200, body = Items<CaseSummary>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_cases(
    User(u): User,
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Items<CaseSummary>>> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let rows = access::list_cases(
        &mut *s.db.acquire().await?,
        &u,
        q.external,
        page.after_key()?,
        limit,
    )
    .await?
    .ok_or_else(super::page::stale_cursor)?;
    let items: Vec<CaseSummary> = rows
        .into_iter()
        .map(|r| CaseSummary {
            id: r.id,
            case_number: r.case_number,
            title: r.title,
            external: r.external,
            imported: r.imported,
            sharing_org: r
                .sharing_org_id
                .zip(r.sharing_org_name)
                .map(|(id, name)| receiving::OrgRef { id, name }),
            created_at: r.at,
        })
        .collect();
    let (items, next_cursor) = super::page::next_page(items, limit, |c| c.id.to_string());
    Ok(axum::Json(Items { items, next_cursor }))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}", tag = "cases",
    responses((status = 200, body = CaseView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_case(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
) -> Result<axum::Json<CaseView>> {
    let mut tx = crate::db::begin(&s.db).await?;
    let view = receiving::case_view(&mut tx, &u, case_id).await?;
    tx.commit().await?;
    Ok(axum::Json(view))
}

#[utoipa::path(patch, path = "/v1/cases/{case_id}", tag = "cases", request_body = CasePatch,
    responses((status = 200, body = CaseView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn patch_case(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Json(patch): Json<CasePatch>,
) -> Result<axum::Json<CaseView>> {
    let mut tx = crate::db::begin(&s.db).await?;
    access::managed(&mut tx, &u, case_id, access::read_only).await?;
    let case = cases::owned_for_update(&mut tx, u.org_id, case_id).await?;
    for (name, v) in [("title", &patch.title), ("case_number", &patch.case_number)] {
        if v.as_ref().is_some_and(|v| v.trim().is_empty()) {
            return Err(Error::validation(format!("{name} must not be empty")));
        }
        crate::limits::opt(name, v.as_deref(), crate::limits::SHORT)?;
    }
    crate::limits::opt(
        "description",
        patch.description.as_deref(),
        crate::limits::TEXT,
    )?;
    let mut changed: Vec<(&'static str, Option<String>)> = Vec::new();
    if let Some(t) = patch
        .title
        .as_ref()
        .map(|t| t.trim().to_string())
        .filter(|t| *t != case.title)
    {
        changed.push(("title", Some(t)));
    }
    if let Some(n) = patch
        .case_number
        .as_ref()
        .map(|t| t.trim().to_string())
        .filter(|n| *n != case.case_number)
    {
        changed.push(("case_number", Some(n)));
    }
    if let Some(d) = patch
        .description
        .clone()
        .filter(|d| Some(d) != case.description.as_ref())
    {
        changed.push(("description", Some(d)));
    }
    if !changed.is_empty() {
        cases::write::update_case(
            &mut tx,
            case_id,
            patch.title.as_deref().map(str::trim),
            patch.case_number.as_deref().map(str::trim),
            patch.description.as_deref(),
        )
        .await?;
        // R26: receivers with an imported copy are offered the change.
        receiving::record_case_updates_tx(&mut tx, case_id, &changed).await?;
        audit::record(
            &mut tx,
            Action::CaseUpdated,
            audit::Entry {
                org_id: Some(u.org_id),
                actor_user_id: Some(u.user_id),
                case_id: Some(case_id),
                details: Some(serde_json::json!({ "fields": changed.iter().map(|(f, _)| *f).collect::<Vec<_>>() })),
                ..Default::default()
            },
        )
        .await?;
    }
    let view = receiving::case_view(&mut tx, &u, case_id).await?;
    tx.commit().await?;
    Ok(axum::Json(view))
}

#[utoipa::path(post, path = "/v1/cases/{case_id}/folders", tag = "cases", request_body = NewFolder,
    responses((status = 201, body = Created), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_folder(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Json(body): Json<NewFolder>,
) -> Result<(StatusCode, axum::Json<Created>)> {
    let mut tx = crate::db::begin(&s.db).await?;
    access::writable(&mut tx, &u, case_id).await?;
    let id = cases::create_folder(&mut tx, case_id, body).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}/folders", tag = "cases",
    responses((status = 200, body = Items<Folder>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_folders(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
) -> Result<axum::Json<Items<Folder>>> {
    let mut conn = s.db.acquire().await?;
    let items = match access::case(&mut conn, &u, case_id).await? {
        Seen::Own { .. } => cases::folders(&mut conn, case_id).await?,
        Seen::External { received, .. } => {
            receiving::audit_external_read(&mut conn, &u, &received, "folders").await?;
            receiving::external_folders(&mut conn, received.id).await?
        }
    };
    Ok(axum::Json(Items::all(items)))
}

#[utoipa::path(patch, path = "/v1/folders/{folder_id}", tag = "cases", request_body = FolderPatch,
    responses((status = 200, body = Folder, description = "the folder as it is now"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch_folder(
    User(u): User,
    State(s): State<AppState>,
    Path(folder_id): Path<Uuid>,
    Json(body): Json<FolderPatch>,
) -> Result<axum::Json<Folder>> {
    let mut tx = crate::db::begin(&s.db).await?;
    let case_id = cases::lock_folder(&mut tx, u.org_id, folder_id).await?;
    // R41: those who see the case may organize its folders; others get 404.
    access::writable(&mut tx, &u, case_id)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound("folder"),
            e => e,
        })?;
    let folder = cases::update_folder(&mut tx, case_id, folder_id, body).await?;
    tx.commit().await?;
    Ok(axum::Json(folder))
}

/// A bound service token writes only into its orgs' cases; another org's
/// case does not exist for it (404).
async fn service_may_write(
    s: &AppState,
    scope: &crate::principal::ServiceScope,
    case_id: Uuid,
) -> Result<()> {
    if scope.unbound() {
        return Ok(());
    }
    let org: Option<Uuid> = sqlx::query_scalar("SELECT org_id FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_optional(&s.db)
        .await?;
    match org {
        Some(org) if scope.may_act_for(org) => Ok(()),
        _ => Err(Error::NotFound("case")),
    }
}

#[utoipa::path(post, path = "/v1/cases/{case_id}/evidence", tag = "cases", request_body = NewEvidence,
    responses((status = 202, body = Accepted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_evidence(
    p: Principal,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Json(body): Json<NewEvidence>,
) -> Result<(StatusCode, axum::Json<Accepted>)> {
    let by = match &p {
        Principal::Service(scope) => evidence::Writer::Service(scope),
        Principal::User(u) => evidence::Writer::User(u),
    };
    let accepted = evidence::record(&s.db, case_id, by, body).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)))
}

/// The most items one batch may carry.
pub const MAX_BATCH_ITEMS: usize = 1_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBatch {
    /// 1 to 1,000 evidence bodies, each with its optional client id.
    pub items: Vec<NewEvidence>,
}

/// One item's answer: `status` 202 with `id` and `job_id`, or the error
/// status with the contract's `error` and `message`.
#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    pub index: usize,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Batched HTTP intake: up to 1,000 evidence items into one case in one
/// transaction, one evidence-added job for the batch, an answer per item (a
/// bad item is refused alone). Resending an item with its client id answers
/// as the first time (idempotent), inside a batch too.
#[utoipa::path(post, path = "/v1/cases/{case_id}/evidence:batch", tag = "cases", request_body = EvidenceBatch,
    responses((status = 200, body = Items<BatchResult>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_evidence_batch(
    p: Principal,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Json(body): Json<EvidenceBatch>,
) -> Result<axum::Json<Items<BatchResult>>> {
    if body.items.is_empty() || body.items.len() > MAX_BATCH_ITEMS {
        return Err(Error::validation(format!(
            "items must hold 1 to {MAX_BATCH_ITEMS} evidence bodies"
        )));
    }
    let by = match &p {
        Principal::Service(scope) => {
            service_may_write(&s, scope, case_id).await?;
            None
        }
        Principal::User(u) => Some(u),
    };
    let items = body
        .items
        .into_iter()
        .map(|evidence| evidence::BatchItem {
            case_id,
            org_id: None,
            evidence,
        })
        .collect();
    let results = evidence::record_many(&s.db, by, items).await?;
    let items = results
        .into_iter()
        .enumerate()
        .map(|(index, r)| match r {
            Ok(a) => BatchResult {
                index,
                status: StatusCode::ACCEPTED.as_u16(),
                id: Some(a.id),
                job_id: Some(a.job_id),
                error: None,
                message: None,
            },
            Err(e) => BatchResult {
                index,
                status: super::error::status(&e).as_u16(),
                id: None,
                job_id: None,
                error: Some(super::error::code(&e)),
                message: Some(e.to_string()),
            },
        })
        .collect();
    Ok(axum::Json(Items::all(items)))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}/evidence", tag = "cases", params(PageQuery),
    responses((status = 200, body = Items<EvidenceView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_evidence(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Items<EvidenceView>>> {
    let mut conn = s.db.acquire().await?;
    // Keyset in SQL, own or external: a page of a 100,000-item case reads
    // (and filters) one page.
    let (limit, after) = (page.limit()?, page.after_key()?);
    let rows = match access::case(&mut conn, &u, case_id).await? {
        Seen::Own { scope, .. } => {
            let scope = match scope {
                Some(shares) => Some(access::item_scope(&mut conn, &shares).await?),
                None => None,
            };
            evidence::page_owned(&mut conn, case_id, scope.as_ref(), after, limit).await?
        }
        Seen::External { received, .. } => {
            receiving::audit_external_read(&mut conn, &u, &received, "evidence").await?;
            receiving::external_evidence(&mut conn, &received, after, limit).await?
        }
    };
    let rows = rows.ok_or_else(super::page::stale_cursor)?;
    let (items, next_cursor) = super::page::next_page(rows, limit, |e| e.id.to_string());
    Ok(axum::Json(Items { items, next_cursor }))
}

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub items: Vec<AuditItem>,
    /// The `cursor` of the next page of `items`; null on the last page.
    pub next_cursor: Option<String>,
    /// R7: the sender's audit trail, when the policy allowed sending it.
    pub sender_snapshot: Option<serde_json::Value>,
}

#[utoipa::path(get, path = "/v1/cases/{case_id}/audit", tag = "cases", params(PageQuery),
    responses((status = 200, body = AuditView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn case_audit(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<AuditView>> {
    let mut conn = s.db.acquire().await?;
    let received = match access::case(&mut conn, &u, case_id).await? {
        Seen::External { received, .. } => {
            receiving::audit_external_read(&mut conn, &u, &received, "audit").await?;
            Some(*received)
        }
        // An imported copy shows the sender snapshot of its collaboration.
        Seen::Own { .. } => crate::collaboration::for_case(&mut conn, u.org_id, case_id).await?,
    };
    let limit = page.limit()?;
    let items =
        audit::page_for_case(&mut conn, u.org_id, case_id, page.after_key()?, limit).await?;
    let sender_snapshot = received
        .filter(|r| r.revoked_at.is_none() && r.policy.policy.permissions.sender_audit_trail)
        .and_then(|r| r.sender_snapshot);
    let (items, next_cursor) = super::page::next_page(items, limit, |e| e.id.to_string());
    Ok(axum::Json(AuditView {
        items,
        next_cursor,
        sender_snapshot,
    }))
}

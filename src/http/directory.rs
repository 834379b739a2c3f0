//! `GET /v1/directory`: recipient lookup (R56, `crate::directory`).

use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;

use super::auth::User;
use super::cases::Items;
use super::error::ErrorBody;
use super::extract::Query;
use super::page::{self, PageQuery};
use super::AppState;
use crate::directory::{self, DirectoryEntry, EntryKind, SearchText};
use crate::error::{Error, Result};

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DirectoryQuery {
    /// What to look for, 1 to 200 characters: in the caller's org a prefix
    /// of a user's name, email address or badge ID or of a group's name; in
    /// a partner org an exact email address or badge ID. Case is ignored.
    #[param(min_length = 1, max_length = 200)]
    pub q: String,
    /// Look in this partner org instead of the caller's own (any other org
    /// answers 404).
    pub org_id: Option<Uuid>,
    /// Items per page: 1 to 1,000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/directory", tag = "directory", params(DirectoryQuery),
    responses((status = 200, body = Items<DirectoryEntry>), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn search(
    User(u): User,
    State(s): State<AppState>,
    Query(q): Query<DirectoryQuery>,
) -> Result<axum::Json<Items<DirectoryEntry>>> {
    let text = SearchText::parse(&q.q)?;
    let paging = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = paging.limit()?;
    let after = paging.after()?.map(|c| entry_of(&c)).transpose()?;
    let rows = directory::search(
        &mut *s.db.acquire().await?,
        &u,
        q.org_id,
        &text,
        after,
        limit,
    )
    .await?
    .ok_or_else(page::stale_cursor)?;
    let (items, next_cursor) = page::next_page(rows, limit, |e| entry_id(e.kind, e.id));
    Ok(axum::Json(Items { items, next_cursor }))
}

/// An entry's name in a cursor: its kind and id (`user:<id>`, `group:<id>`),
/// so that the next page knows which table holds it.
fn entry_id(kind: EntryKind, id: Uuid) -> String {
    format!("{}:{id}", kind.as_str())
}

fn entry_of(cursor: &str) -> Result<(EntryKind, Uuid)> {
    cursor
        .split_once(':')
        .and_then(|(kind, id)| Some((EntryKind::parse(kind)?, id.parse().ok()?)))
        .ok_or_else(|| Error::validation("cursor is not a cursor of this list"))
}

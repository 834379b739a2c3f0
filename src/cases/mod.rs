//! Cases and folders of an org (R18, R21): the case model every domain module
//! reads. Who may see or change a case is `access`'s question, asked by the
//! caller before it calls here: this module sits below `access` and never
//! authorizes.

mod items;
pub mod write;

pub use items::{
    CommunityRequest, Content, ContentState, EvidenceData, EvidenceView, Gps, Pii, MAX_TITLE_CHARS,
};

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Action};
use crate::error::{Error, Result};
use crate::limits;

/// The case fields that can reach a receiver (filtered by `policy::filter::case`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct CaseData {
    pub case_number: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    pub case_number: String,
    pub title: String,
    pub description: Option<String>,
    pub notes: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub org_id: Uuid,
    pub owner_id: Option<Uuid>,
    pub case_number: String,
    pub title: String,
    pub description: Option<String>,
    pub notes: sqlx::types::Json<Vec<String>>,
    pub tags: sqlx::types::Json<Vec<String>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl CaseRow {
    pub fn data(&self) -> CaseData {
        CaseData {
            case_number: self.case_number.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            notes: Some(self.notes.0.clone()),
            tags: Some(self.tags.0.clone()),
        }
    }
}

pub const CASE_COLUMNS: &str =
    "id, org_id, owner_id, case_number, title, description, notes, tags, created_at";

pub async fn create(
    db: &mut PgConnection,
    org_id: Uuid,
    owner_id: Uuid,
    new: NewCase,
) -> Result<CaseRow> {
    if new.case_number.trim().is_empty() || new.title.trim().is_empty() {
        return Err(Error::validation("case_number and title must not be empty"));
    }
    limits::text("case_number", &new.case_number, limits::SHORT)?;
    limits::text("title", &new.title, limits::SHORT)?;
    limits::opt("description", new.description.as_deref(), limits::TEXT)?;
    limits::list(
        "notes",
        new.notes.as_deref().unwrap_or_default(),
        limits::TEXT,
    )?;
    limits::list(
        "tags",
        new.tags.as_deref().unwrap_or_default(),
        limits::SHORT,
    )?;
    let data = CaseData {
        case_number: new.case_number.trim().to_string(),
        title: new.title.trim().to_string(),
        description: new.description,
        notes: new.notes,
        tags: new.tags,
    };
    let row = write::insert_case(db, Uuid::now_v7(), org_id, Some(owner_id), &data).await?;
    audit::record(
        db,
        Action::CaseCreated,
        audit::Entry {
            org_id: Some(org_id),
            actor_user_id: Some(owner_id),
            case_id: Some(row.id),
            ..Default::default()
        },
    )
    .await?;
    Ok(row)
}

/// R45: an external (not imported) case goes no further: not to another org,
/// not by link. Its receiver imports it first, where the policy allows.
pub fn external_not_shareable() -> Error {
    Error::PolicyForbids(
        "an external case cannot be shared onward or by link; import it first where the policy allows"
            .into(),
    )
}

/// Lock an owned case row for the rest of the transaction (`NO KEY UPDATE`:
/// evidence and folder inserts, which take key-share locks, are not blocked).
pub async fn owned_for_update(
    db: &mut PgConnection,
    org_id: Uuid,
    case_id: Uuid,
) -> Result<CaseRow> {
    sqlx::query_as(&format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE id = $1 AND org_id = $2 FOR NO KEY UPDATE"
    ))
    .bind(case_id)
    .bind(org_id)
    .fetch_optional(db)
    .await?
    .ok_or(Error::NotFound("case"))
}

/// The org owning `case_id`, if the case exists.
pub async fn org_of(db: &mut PgConnection, case_id: Uuid) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar("SELECT org_id FROM cases WHERE id = $1")
        .bind(case_id)
        .fetch_optional(db)
        .await?)
}

pub async fn by_id(db: &mut PgConnection, case_id: Uuid) -> Result<CaseRow> {
    sqlx::query_as(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1"))
        .bind(case_id)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound("case"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CasePatch {
    pub title: Option<String>,
    pub case_number: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, Clone, ToSchema, sqlx::FromRow)]
pub struct Folder {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFolder {
    pub name: String,
    pub parent_id: Option<Uuid>,
}

pub async fn create_folder(db: &mut PgConnection, case_id: Uuid, new: NewFolder) -> Result<Uuid> {
    if new.name.trim().is_empty() {
        return Err(Error::validation("name must not be empty"));
    }
    limits::text("name", &new.name, limits::NAME)?;
    if let Some(parent) = new.parent_id {
        folder_in_case(db, case_id, parent).await?;
    }
    let id = Uuid::now_v7();
    write::insert_folder(db, id, case_id, new.parent_id, new.name.trim()).await?;
    Ok(id)
}

async fn folder_in_case(db: &mut PgConnection, case_id: Uuid, folder_id: Uuid) -> Result<()> {
    let ok: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM folders WHERE id = $1 AND case_id = $2)")
            .bind(folder_id)
            .bind(case_id)
            .fetch_one(db)
            .await?;
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            "folder_id/parent_id does not name a folder of this case",
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FolderPatch {
    pub name: Option<String>,
    /// Move under another folder of the same case.
    pub parent_id: Option<Uuid>,
}

/// The case of folder `folder_id` of org `org_id`, with the folder locked
/// for an update; 404 for a folder of another org. Whether the user may
/// organize the case's folders (R41) is its caller's question (`access`).
pub async fn lock_folder(db: &mut PgConnection, org_id: Uuid, folder_id: Uuid) -> Result<Uuid> {
    sqlx::query_scalar(
        "SELECT f.case_id FROM folders f JOIN cases c ON c.id = f.case_id WHERE f.id = $1 AND c.org_id = $2 FOR UPDATE OF f",
    )
    .bind(folder_id)
    .bind(org_id)
    .fetch_optional(&mut *db)
    .await?
    .ok_or(Error::NotFound("folder"))
}

/// Rename or move folder `folder_id` of `case_id`, locked by
/// [`lock_folder`]. Receivers' folders are copies (R21) and are not touched.
pub async fn update_folder(
    db: &mut PgConnection,
    case_id: Uuid,
    folder_id: Uuid,
    patch: FolderPatch,
) -> Result<Folder> {
    if let Some(name) = &patch.name {
        if name.trim().is_empty() {
            return Err(Error::validation("name must not be empty"));
        }
        limits::text("name", name, limits::NAME)?;
    }
    if let Some(parent) = patch.parent_id {
        folder_in_case(db, case_id, parent).await?;
        // Refuse cycles: the new parent must not be the folder or below it.
        let cycle: bool = sqlx::query_scalar(
            "WITH RECURSIVE sub AS (SELECT id FROM folders WHERE id = $1
                UNION SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id)
             SELECT EXISTS (SELECT 1 FROM sub WHERE id = $2)",
        )
        .bind(folder_id)
        .bind(parent)
        .fetch_one(&mut *db)
        .await?;
        if cycle {
            return Err(Error::validation("a folder cannot be moved below itself"));
        }
    }
    write::update_folder(
        db,
        folder_id,
        patch.name.as_deref().map(str::trim),
        patch.parent_id,
    )
    .await
}

pub async fn folders(db: &mut PgConnection, case_id: Uuid) -> Result<Vec<Folder>> {
    Ok(sqlx::query_as(
        "SELECT id, name, parent_id FROM folders WHERE case_id = $1 ORDER BY created_at, id",
    )
    .bind(case_id)
    .fetch_all(db)
    .await?)
}

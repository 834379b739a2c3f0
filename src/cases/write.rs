//! The one writer of `cases`, `folders` and `evidence` (#23: one writer per
//! table). The capabilities above decide what is written and when (intake,
//! import, content upload, the file copy, case updates); every statement
//! that changes one of these rows is here, so the rows' invariants (a copy
//! is unique per case and source, a copy's content `uri` names its own
//! object or none, `content_state` moves only out of `pending`) are kept in
//! one place. `layers::tests::one_writer_per_table` keeps it so.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{CaseData, CaseRow, ContentState, EvidenceView, Folder, CASE_COLUMNS};
use crate::error::Result;

/// Insert a case. Its fields are checked by the caller (`create` for a new
/// case; an import copies a checked case through the policy filter).
pub async fn insert_case(
    db: &mut PgConnection,
    id: Uuid,
    org_id: Uuid,
    owner_id: Option<Uuid>,
    data: &CaseData,
) -> Result<CaseRow> {
    Ok(sqlx::query_as(&format!(
        "INSERT INTO cases (id, org_id, owner_id, case_number, title, description, notes, tags)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {CASE_COLUMNS}"
    ))
    .bind(id)
    .bind(org_id)
    .bind(owner_id)
    .bind(&data.case_number)
    .bind(&data.title)
    .bind(&data.description)
    .bind(sqlx::types::Json(data.notes.clone().unwrap_or_default()))
    .bind(sqlx::types::Json(data.tags.clone().unwrap_or_default()))
    .fetch_one(db)
    .await?)
}

/// The case fields a change can reach (R26 offers each to the receivers
/// with an imported copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseField {
    Title,
    CaseNumber,
    Description,
}

impl CaseField {
    /// The field by its name in `case_updates.field` (anything else is the
    /// description, as recorded by `receiving::record_case_updates_tx`).
    pub fn named(name: &str) -> CaseField {
        match name {
            "title" => CaseField::Title,
            "case_number" => CaseField::CaseNumber,
            _ => CaseField::Description,
        }
    }

    fn column(self) -> &'static str {
        match self {
            CaseField::Title => "title",
            CaseField::CaseNumber => "case_number",
            CaseField::Description => "description",
        }
    }
}

/// Set the given fields of a case (`None` keeps a field as it is).
pub async fn update_case(
    db: &mut PgConnection,
    case_id: Uuid,
    title: Option<&str>,
    case_number: Option<&str>,
    description: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE cases SET title = coalesce($2, title), case_number = coalesce($3, case_number),
                description = coalesce($4, description), updated_at = now() WHERE id = $1",
    )
    .bind(case_id)
    .bind(title)
    .bind(case_number)
    .bind(description)
    .execute(db)
    .await?;
    Ok(())
}

/// Set one field of a case to `value` (an accepted case update, R26).
pub async fn set_case_field(
    db: &mut PgConnection,
    case_id: Uuid,
    field: CaseField,
    value: Option<&str>,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE cases SET {} = $2, updated_at = now() WHERE id = $1",
        field.column()
    ))
    .bind(case_id)
    .bind(value)
    .execute(db)
    .await?;
    Ok(())
}

/// Insert a folder (checked by the caller).
pub async fn insert_folder(
    db: &mut PgConnection,
    id: Uuid,
    case_id: Uuid,
    parent_id: Option<Uuid>,
    name: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO folders (id, case_id, parent_id, name) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(case_id)
        .bind(parent_id)
        .bind(name)
        .execute(db)
        .await?;
    Ok(())
}

/// Rename or move a folder (`None` keeps a field as it is).
pub async fn update_folder(
    db: &mut PgConnection,
    folder_id: Uuid,
    name: Option<&str>,
    parent_id: Option<Uuid>,
) -> Result<Folder> {
    Ok(sqlx::query_as(
        "UPDATE folders SET name = coalesce($2, name), parent_id = coalesce($3, parent_id) WHERE id = $1
         RETURNING id, name, parent_id",
    )
    .bind(folder_id)
    .bind(name)
    .bind(parent_id)
    .fetch_one(db)
    .await?)
}

/// Copy a folder tree into `case_id` under the same ids (R21), adding only
/// the folders not there yet; parents are set once every new folder exists.
pub async fn copy_folders(db: &mut PgConnection, case_id: Uuid, tree: &[Folder]) -> Result<()> {
    let ids: Vec<Uuid> = tree.iter().map(|f| f.id).collect();
    let names: Vec<&str> = tree.iter().map(|f| f.name.as_str()).collect();
    let parents: Vec<Option<Uuid>> = tree.iter().map(|f| f.parent_id).collect();
    let added: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO folders (id, case_id, name) SELECT i, $1, n FROM unnest($2::uuid[], $3::text[]) AS u(i, n)
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(case_id)
    .bind(&ids)
    .bind(&names)
    .fetch_all(&mut *db)
    .await?;
    if !added.is_empty() {
        sqlx::query(
            "UPDATE folders f SET parent_id = u.p FROM unnest($1::uuid[], $2::uuid[]) AS u(i, p)
             WHERE f.id = u.i AND f.id = ANY($3) AND u.p IS NOT NULL",
        )
        .bind(&ids)
        .bind(&parents)
        .bind(&added)
        .execute(db)
        .await?;
    }
    Ok(())
}

/// The `ev` CTE of a one-statement intake (`evidence::intake`): insert one
/// item for each row of `source`, the arguments being SQL expressions;
/// returns `id` for an item new now, nothing for one recorded before.
pub fn insert_evidence_cte(
    source: &str,
    id: &str,
    case: &str,
    folder: &str,
    title: &str,
    data: &str,
    job: &str,
) -> String {
    format!(
        "ev AS (INSERT INTO evidence (id, case_id, folder_id, title, data, job_id)
                SELECT {id}, {case}, {folder}, {title}, {data}, {job} FROM {source}
                ON CONFLICT (id) DO NOTHING RETURNING id)"
    )
}

/// New items, one vector per column (batched intake).
#[derive(Debug, Default)]
pub struct NewItems {
    pub ids: Vec<Uuid>,
    pub cases: Vec<Uuid>,
    pub folders: Vec<Option<Uuid>>,
    pub titles: Vec<String>,
    pub data: Vec<serde_json::Value>,
    pub jobs: Vec<Uuid>,
}

/// Insert many items in one statement (UNNEST); an id recorded before is
/// left as it is. Returns `(id, case_id)` of the items new now.
pub async fn insert_evidence(db: &mut PgConnection, items: &NewItems) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "INSERT INTO evidence (id, case_id, folder_id, title, data, job_id)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], $6::uuid[])
         ON CONFLICT (id) DO NOTHING RETURNING id, case_id",
    )
    .bind(&items.ids)
    .bind(&items.cases)
    .bind(&items.folders)
    .bind(&items.titles)
    .bind(&items.data)
    .bind(&items.jobs)
    .fetch_all(db)
    .await?)
}

/// A filtered item to copy into an imported case, with whether its file
/// is to be copied (`Pending`, R53) or there is none.
pub struct ItemCopy {
    pub view: EvidenceView,
    pub content: Option<ContentState>,
}

/// Insert copies into `case_id` in one statement (UNNEST), unique by
/// (case, source item). Returns how many were new, and how many of those
/// have a file to copy (R53).
pub async fn insert_copies(
    db: &mut PgConnection,
    case_id: Uuid,
    copies: Vec<ItemCopy>,
) -> Result<(u64, u64)> {
    let n = copies.len();
    let mut ids = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut folders = Vec::with_capacity(n);
    let mut titles = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    for c in copies {
        states.push(c.content);
        ids.push(Uuid::now_v7());
        sources.push(c.view.id);
        folders.push(c.view.folder_id);
        titles.push(c.view.data.title.clone());
        data.push(serde_json::to_value(&c.view.data).map_err(anyhow::Error::from)?);
    }
    let (copied, files): (i64, i64) = sqlx::query_as(
        "WITH ins AS (
            INSERT INTO evidence (id, case_id, folder_id, title, data, source_evidence_id, content_state)
            SELECT i, $1, f, t, d, s, st
              FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], $6::uuid[], $7::content_state[])
                   AS u(i, f, t, d, s, st)
            ON CONFLICT (case_id, source_evidence_id) DO NOTHING
            RETURNING content_state)
         SELECT count(*), count(content_state) FROM ins",
    )
    .bind(case_id)
    .bind(&ids)
    .bind(&folders)
    .bind(&titles)
    .bind(&data)
    .bind(&sources)
    .bind(&states)
    .fetch_one(db)
    .await?;
    Ok((copied as u64, files as u64))
}

/// Record an item's uploaded file: `content` (sha256, size_bytes, uri,
/// content_type) over what the item held.
pub async fn set_content(
    db: &mut PgConnection,
    evidence_id: Uuid,
    content: serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "UPDATE evidence SET data = jsonb_set(data, '{content}', coalesce(data->'content', '{}'::jsonb) || $2)
         WHERE id = $1",
    )
    .bind(evidence_id)
    .bind(content)
    .execute(db)
    .await?;
    Ok(())
}

/// R53: copies `copies` of item `source_id` are to get its file now: they
/// take its content's description (not its `uri`, which names the sender's
/// object) and become `pending`; copies already holding the file are left
/// alone. Returns the cases of the copies changed.
pub async fn pend_copies(
    db: &mut PgConnection,
    source_id: Uuid,
    copies: &[Uuid],
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "WITH src AS (SELECT data->'content' AS content FROM evidence WHERE id = $1)
         UPDATE evidence c
            SET content_state = $2,
                data = jsonb_set(c.data, '{content}',
                                 coalesce(c.data->'content', '{}'::jsonb)
                                 || (jsonb_strip_nulls(jsonb_build_object(
                                        'sha256', src.content->'sha256',
                                        'size_bytes', src.content->'size_bytes',
                                        'content_type', src.content->'content_type')))
                                 - 'uri')
           FROM src
          WHERE c.id = ANY($4) AND c.source_evidence_id = $1
            AND c.content_state IS DISTINCT FROM $3
         RETURNING c.case_id",
    )
    .bind(source_id)
    .bind(ContentState::Pending)
    .bind(ContentState::Match)
    .bind(copies)
    .fetch_all(db)
    .await?)
}

/// Record the outcome of copying the files of pending copies (R53): a
/// `Match` copy's `uri` names its own object (`store://<id>`); only
/// `pending` rows move. Returns how many moved.
pub async fn record_copy_outcomes(
    db: &mut PgConnection,
    ids: &[Uuid],
    states: &[ContentState],
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE evidence e
            SET content_state = u.state,
                data = CASE WHEN u.state = $3
                            THEN jsonb_set(e.data, '{content,uri}', to_jsonb('store://' || e.id::text))
                            ELSE e.data END
           FROM unnest($1::uuid[], $2::content_state[]) AS u(id, state)
          WHERE e.id = u.id AND e.content_state = $4",
    )
    .bind(ids)
    .bind(states)
    .bind(ContentState::Match)
    .bind(ContentState::Pending)
    .execute(db)
    .await?
    .rows_affected())
}

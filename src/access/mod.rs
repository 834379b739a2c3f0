//! Who may see and do what with a case (R41, R42): the one place that
//! decides it, in SQL, so every route asks the same question the same way
//! and a list is one statement, not a loop of checks.
//!
//! A case of the user's own org (its own, or an imported copy) is seen by
//! the org's admins, its owner and the principals named for it: internal
//! shares' users and groups (R14), and for an imported copy the recipients
//! of the collaboration it came from (R42). Another org's case is seen, as
//! the read-only external view (R18), while the collaboration is live, by the
//! receiving org's admins and the live named principals. Named principals
//! are the rows of `case_access` (see migration 0009); a group names its
//! members at the moment of the query, so membership changes act at once.
//! Everyone else gets 404, exactly as for another org's case.
//!
//! Managing a case (editing it, sharing it, link-sharing it, revoking,
//! stopping sharing) is for its owner and its org's admins; other users who
//! see it may read it and add evidence and folders (R41).
//!
//! This file holds the question (`case`, `writable`, `managed`, …); `named`
//! the one writer of `case_access`, the named principals (R14, R28, R29,
//! R57); `list` a user's case list in one statement (R41, R42).

mod list;
mod named;

pub use list::{list_cases, received_visible_sql, ListedCase};
pub use named::{
    end_onward_tx, name_for_share_tx, name_onward_tx, remove_from_case_tx, remove_onward_tx,
    revoke_shares_tx, Named,
};

use sqlx::PgConnection;
use uuid::Uuid;

use crate::cases::{CaseRow, CASE_COLUMNS};
use crate::collaboration::{self, ReceivedRow};
use crate::error::{Error, Result};
use crate::principal::{Role, UserPrincipal};

/// The principals a user acts as: itself and its groups (`$1` = user id).
/// Bind the user id as `$1` in every query that uses it.
pub const PRINCIPALS_SQL: &str =
    "SELECT $1::uuid AS id UNION ALL SELECT group_id FROM group_members WHERE user_id = $1";

/// Named, live access of the user (`$1`, in org `$2`) to a case known to
/// its owner as `{case}`: a fragment for `EXISTS`.
fn named_sql(case: &str, live_only: bool) -> String {
    format!(
        "SELECT 1 FROM case_access a WHERE a.case_id = {case} AND a.org_id = $2 {live}
           AND a.principal_id IN ({PRINCIPALS_SQL})",
        live = if live_only {
            "AND a.revoked_at IS NULL"
        } else {
            ""
        }
    )
}

/// The visibility of case `c` for user `$1` of org `$2`, admin iff `$3`: a
/// boolean SQL expression over a `cases c` row.
pub fn visible_sql() -> String {
    format!(
        "CASE WHEN c.org_id = $2 THEN
              $3 OR c.owner_id = $1
              OR EXISTS ({internal})
              OR EXISTS (SELECT 1 FROM received r WHERE r.imported_case_id = c.id AND EXISTS ({imported}))
         ELSE EXISTS (SELECT 1 FROM received r
                       WHERE r.case_id = c.id AND r.receiver_org_id = $2 AND r.revoked_at IS NULL
                         AND ($3 OR EXISTS ({external})))
         END",
        internal = named_sql("c.id", true),
        // R30: an imported copy stays with the recipients of its collaboration.
        imported = named_sql("r.case_id", false),
        external = named_sql("c.id", true),
    )
}

/// How the user sees a case it may see.
#[derive(Debug)]
pub enum Seen {
    /// A case of the user's org: its own or an imported copy. `manage`: the
    /// user is its owner or an admin of the org. `scope`: R55, the internal
    /// shares whose scopes (folders, a subset) are all the user sees of the
    /// case's items; `None` when it sees them all.
    Own {
        case: CaseRow,
        manage: bool,
        scope: Option<Vec<Uuid>>,
    },
    /// Another org's case through a live collaboration (R18, R42).
    External {
        case: CaseRow,
        received: Box<ReceivedRow>,
    },
}

impl Seen {
    pub fn case(&self) -> &CaseRow {
        match self {
            Seen::Own { case, .. } | Seen::External { case, .. } => case,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Checked {
    #[sqlx(flatten)]
    case: CaseRow,
    visible: bool,
    /// R55: see [`Seen::Own`]'s `scope`.
    scoped_shares: Option<Vec<Uuid>>,
}

/// R55: for a user (`$1`, org `$2`, admin iff `$3`) who is neither an admin
/// nor the owner of its org's case `c` (not an imported copy, whose
/// recipients see it whole, R30), and is named for it only by internal
/// shares with a folders or evidence scope: those shares. NULL otherwise.
fn scoped_shares_sql() -> String {
    format!(
        "CASE WHEN c.org_id = $2 AND NOT $3 AND c.owner_id IS DISTINCT FROM $1
                   AND NOT EXISTS (SELECT 1 FROM received r WHERE r.imported_case_id = c.id)
                   AND NOT EXISTS (SELECT 1 FROM case_access a LEFT JOIN shares s ON s.id = a.share_id
                                    WHERE a.case_id = c.id AND a.org_id = $2 AND a.revoked_at IS NULL
                                      AND a.principal_id IN ({PRINCIPALS_SQL})
                                      AND (s.id IS NULL OR s.scope->>'kind' = 'case'))
              THEN ARRAY(SELECT DISTINCT a.share_id FROM case_access a
                          WHERE a.case_id = c.id AND a.org_id = $2 AND a.revoked_at IS NULL
                            AND a.principal_id IN ({PRINCIPALS_SQL}))
         END"
    )
}

/// R55: what the internal shares `shares` give of their case: the folders
/// (those shared with all their subfolders, so evidence added later to a
/// shared folder is in them, R22) and the evidence ids. One statement,
/// read once per request: the list then filters by two arrays, a predicate
/// that keeps the list's plan as cheap as the unscoped one.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct ItemScope {
    pub folder_ids: Vec<Uuid>,
    pub evidence_ids: Vec<Uuid>,
}

pub async fn item_scope(db: &mut PgConnection, shares: &[Uuid]) -> Result<ItemScope> {
    Ok(sqlx::query_as(
        "WITH RECURSIVE s AS (SELECT scope FROM shares WHERE id = ANY($1)),
              roots AS (SELECT x::uuid AS id FROM s, jsonb_array_elements_text(s.scope->'folder_ids') x
                         WHERE s.scope->>'kind' = 'folders'),
              sub AS (SELECT f.id FROM folders f WHERE f.id IN (SELECT id FROM roots)
                      UNION
                      SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id)
         SELECT ARRAY(SELECT id FROM sub) AS folder_ids,
                ARRAY(SELECT x::uuid FROM s, jsonb_array_elements_text(s.scope->'evidence_ids') x
                       WHERE s.scope->>'kind' = 'evidence') AS evidence_ids",
    )
    .bind(shares)
    .fetch_one(db)
    .await?)
}

fn is_admin(user: &UserPrincipal) -> bool {
    user.role == Role::Admin
}

/// The case as `user` sees it, or 404 (R41, R42). One statement (two for an
/// external case: its collaboration row).
pub async fn case(db: &mut PgConnection, user: &UserPrincipal, case_id: Uuid) -> Result<Seen> {
    // Built once: every request that names a case runs it.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {CASE_COLUMNS}, {visible} AS visible, {scoped} AS scoped_shares
               FROM cases c WHERE c.id = $4",
            CASE_COLUMNS = prefixed(CASE_COLUMNS),
            visible = visible_sql(),
            scoped = scoped_shares_sql(),
        )
    });
    let found: Option<Checked> = sqlx::query_as(SQL.as_str())
        .bind(user.user_id)
        .bind(user.org_id)
        .bind(is_admin(user))
        .bind(case_id)
        .fetch_optional(&mut *db)
        .await?;
    let Some(Checked {
        case,
        visible: true,
        scoped_shares,
    }) = found
    else {
        return Err(Error::NotFound("case"));
    };
    if case.org_id == user.org_id {
        let manage = is_admin(user) || case.owner_id == Some(user.user_id);
        return Ok(Seen::Own {
            case,
            manage,
            scope: scoped_shares,
        });
    }
    let received = collaboration::external(db, user.org_id, case_id).await?;
    Ok(Seen::External {
        case,
        received: Box::new(received),
    })
}

/// A case the user may add evidence and folders to (R41): one of its org
/// that it sees; 403 for an external case (read-only, R18); 404 otherwise.
pub async fn writable(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
) -> Result<CaseRow> {
    match case(db, user, case_id).await? {
        Seen::Own { case, .. } => Ok(case),
        Seen::External { .. } => Err(Error::Forbidden("an external case is read-only".into())),
    }
}

/// A case the user manages (R41): owner or admin of its org. Another user
/// who sees it gets 403; for an external case, `external` decides the
/// refusal (it is seen, so 404 would be a lie); 404 otherwise.
pub async fn managed(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
    external: impl FnOnce() -> Error,
) -> Result<CaseRow> {
    match case(db, user, case_id).await? {
        Seen::Own {
            case, manage: true, ..
        } => Ok(case),
        Seen::Own { manage: false, .. } => Err(not_manager()),
        Seen::External { .. } => Err(external()),
    }
}

pub fn not_manager() -> Error {
    Error::Forbidden("only the case owner or an admin of its organization may do this".into())
}

/// A case of the user's own org that it sees (the owner side's read models:
/// shares, access list, dissemination, link shares); 404 otherwise, external
/// cases included (a receiver never reads the owner's other shares).
pub async fn own_case(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
) -> Result<(CaseRow, bool)> {
    match case(db, user, case_id).await? {
        Seen::Own { case, manage, .. } => Ok((case, manage)),
        Seen::External { .. } => Err(Error::NotFound("case")),
    }
}

/// Many cases at once (bulk revoke): every one must be seen by the user
/// (else 404 `missing`) and managed by it (else 403). One statement.
pub async fn managed_all(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_ids: &[Uuid],
    missing: &'static str,
) -> Result<()> {
    let (unseen, unmanaged): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE NOT visible),
                count(*) FILTER (WHERE visible AND NOT (org_id = $2 AND ($3 OR owner_id = $1)))
         FROM (SELECT c.org_id, c.owner_id, {visible} AS visible FROM cases c WHERE c.id = ANY($4)) v",
        visible = visible_sql()
    ))
    .bind(user.user_id)
    .bind(user.org_id)
    .bind(is_admin(user))
    .bind(case_ids)
    .fetch_one(db)
    .await?;
    if unseen > 0 {
        Err(Error::NotFound(missing))
    } else if unmanaged > 0 {
        Err(not_manager())
    } else {
        Ok(())
    }
}

/// The read-only refusal of an external case (R18).
pub fn read_only() -> Error {
    Error::Forbidden("an external case is read-only".into())
}

/// The collaboration through which the user sees `case_id` (the external
/// view or its imported copy), or 404 (R42).
pub async fn received(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
) -> Result<ReceivedRow> {
    match case(db, user, case_id).await? {
        Seen::External { received, .. } => Ok(*received),
        // An own case is a collaboration's only as its imported copy.
        Seen::Own { .. } => collaboration::for_case(db, user.org_id, case_id)
            .await?
            .ok_or(Error::NotFound("case")),
    }
}

/// Whether the user sees a collaboration of its org (`GET /v1/received`'s
/// rule, R42), for routes that name it by its id.
pub async fn sees_received(
    db: &mut PgConnection,
    user: &UserPrincipal,
    r: &ReceivedRow,
) -> Result<bool> {
    if r.receiver_org_id != user.org_id {
        return Ok(false);
    }
    sees_received_id(db, user, r.id).await
}

/// [`sees_received`] by the collaboration's id: false for one of another org.
pub async fn sees_received_id(
    db: &mut PgConnection,
    user: &UserPrincipal,
    received_id: Uuid,
) -> Result<bool> {
    Ok(sqlx::query_scalar::<_, bool>(&format!(
        "SELECT {} FROM received r WHERE r.id = $4 AND r.receiver_org_id = $2",
        received_visible_sql()
    ))
    .bind(user.user_id)
    .bind(user.org_id)
    .bind(is_admin(user))
    .bind(received_id)
    .fetch_optional(db)
    .await?
    .unwrap_or(false))
}

/// `CASE_COLUMNS` qualified with `c.`.
fn prefixed(columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("c.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

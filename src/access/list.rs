//! A user's case list (R41, R42) in one statement, from indexed sources,
//! keyset-paged; and the rule of the received list (`GET /v1/received`).

use sqlx::PgConnection;
use uuid::Uuid;

use super::{is_admin, PRINCIPALS_SQL};
use crate::error::Result;
use crate::principal::UserPrincipal;

/// One line of a user's case list.
#[derive(Debug, sqlx::FromRow)]
pub struct ListedCase {
    pub id: Uuid,
    pub case_number: String,
    pub title: String,
    pub external: bool,
    pub imported: bool,
    pub sharing_org_id: Option<Uuid>,
    pub sharing_org_name: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The cases a user sees (R41, R42), in one statement: the rows come from
/// indexed sources (the org's cases for an admin, the user's own cases by
/// `cases_owner`, the rows naming the user or its groups), never from a scan
/// of the org's cases filtered row by row; the plan for a user with 50 of
/// 10,000 cases is in the README (0.7 ms, generic plan). `external`: only received external cases (true) or
/// only own and imported ones (false).
pub async fn list_cases(
    db: &mut PgConnection,
    user: &UserPrincipal,
    external: Option<bool>,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Option<Vec<ListedCase>>> {
    // One page by keyset on (at DESC, id), after the case `after` ($5):
    // PostgreSQL reads the list and keeps the page (a top-N sort), so a page
    // of an org with 10,000 cases sends one page, not the org. The cursor's
    // position is an uncorrelated subquery (computed once): written as a
    // correlated EXISTS, the generic plan's estimate crossed
    // `jit_above_cost` and JIT compilation alone took ~40 ms.
    let rows: Vec<ListedCase> = sqlx::query_as(&format!(
        "{} , mark AS (SELECT at FROM list WHERE id = $5)
         SELECT l.* FROM list l
          WHERE $5::uuid IS NULL
             OR l.at < (SELECT at FROM mark)
             OR (l.at = (SELECT at FROM mark) AND l.id > $5)
          ORDER BY l.at DESC, l.id LIMIT $6",
        list_cases_cte()
    ))
    .bind(user.user_id)
    .bind(user.org_id)
    .bind(is_admin(user))
    .bind(external)
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(&mut *db)
    .await?;
    if rows.is_empty() {
        if let Some(after) = after {
            // An empty page after a cursor: the end, or a case that left the list.
            let known: bool = sqlx::query_scalar(&format!(
                "{} SELECT EXISTS (SELECT 1 FROM list WHERE id = $5)",
                list_cases_cte()
            ))
            .bind(user.user_id)
            .bind(user.org_id)
            .bind(is_admin(user))
            .bind(external)
            .bind(after)
            .fetch_one(&mut *db)
            .await?;
            if !known {
                return Ok(None);
            }
        }
    }
    Ok(Some(rows))
}

/// The whole list of `list_cases` as the CTE `list` ($1 user, $2 org,
/// $3 admin, $4 the `external` filter).
fn list_cases_cte() -> &'static str {
    static CTE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CTE.get_or_init(|| {
        format!(
            "WITH named AS (
                 SELECT a.case_id, a.revoked_at IS NULL AS live FROM case_access a
                  WHERE a.org_id = $2 AND a.principal_id IN ({PRINCIPALS_SQL})),
             own AS (
                 SELECT c.id, c.case_number, c.title, c.created_at FROM cases c WHERE $3 AND c.org_id = $2
                 UNION
                 SELECT c.id, c.case_number, c.title, c.created_at FROM cases c
                  WHERE c.owner_id = $1 AND c.org_id = $2
                 UNION
                 SELECT c.id, c.case_number, c.title, c.created_at FROM named n
                   JOIN cases c ON c.id = n.case_id AND c.org_id = $2 WHERE n.live
                 UNION
                 SELECT c.id, c.case_number, c.title, c.created_at FROM named n
                   JOIN received r ON r.case_id = n.case_id AND r.receiver_org_id = $2
                   JOIN cases c ON c.id = r.imported_case_id),
             list AS (
                 SELECT own.id, own.case_number, own.title, false AS external,
                        EXISTS (SELECT 1 FROM received r WHERE r.imported_case_id = own.id) AS imported,
                        NULL::uuid AS sharing_org_id, NULL::text AS sharing_org_name, own.created_at AS at
                   FROM own
                  WHERE $4::bool IS NULL OR NOT $4
                 UNION ALL
                 SELECT c.id, c.case_number, c.title, true, false, o.id, o.name, r.received_at
                   FROM received r JOIN cases c ON c.id = r.case_id JOIN orgs o ON o.id = r.sharer_org_id
                  WHERE r.receiver_org_id = $2 AND r.revoked_at IS NULL AND r.imported_case_id IS NULL
                    AND ($4::bool IS NULL OR $4)
                    AND ($3 OR r.case_id IN (SELECT case_id FROM named WHERE live)))"
        )
    })
}

/// The collaborations a user of a receiving org sees (`GET /v1/received`,
/// R42): all of them for an admin; for others those naming them (live, or
/// imported: the copy stays with its recipients, R30).
pub fn received_visible_sql() -> String {
    format!(
        "($3 OR EXISTS (SELECT 1 FROM case_access a WHERE a.case_id = r.case_id AND a.org_id = $2
                          AND (a.revoked_at IS NULL OR r.imported_case_id IS NOT NULL)
                          AND a.principal_id IN ({PRINCIPALS_SQL})))"
    )
}

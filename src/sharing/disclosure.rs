//! What the owning org reads about who has its case: its shares, the access
//! list (R16: the owner marked, internal users and groups, partner orgs and
//! their named recipients, and onward recipients, R28) and the dissemination
//! log of onward shares by receivers (R28, R45).

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ShareRow, ShareView, SHARE_COLUMNS};
use crate::cases;
use crate::error::Result;

pub async fn list_for_case(db: &mut PgConnection, case_id: Uuid) -> Result<Vec<ShareView>> {
    let rows: Vec<ShareRow> = sqlx::query_as(&format!(
        "SELECT {SHARE_COLUMNS} FROM shares WHERE case_id = $1 ORDER BY created_at, id"
    ))
    .bind(case_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| r.view(None)).collect())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntry {
    /// user | group | org | email
    pub kind: String,
    pub id: Option<Uuid>,
    pub name: String,
    pub owner: bool,
}

/// R16: everyone with access to the case, the owner marked: the owner,
/// partner orgs with a live share, and every principal named by a live
/// share or added onward (R28) that was not removed (R44), in the order they
/// got access; an email address that names no user of its org is listed as
/// such. One statement.
pub async fn access_list(db: &mut PgConnection, case: &cases::CaseRow) -> Result<Vec<AccessEntry>> {
    let rows: Vec<(String, Option<Uuid>, String, bool)> = sqlx::query_as(
        "WITH live AS (SELECT * FROM shares WHERE case_id = $1 AND status = ANY($3)),
         entries AS (
             SELECT 0 AS pos, c.created_at AS at, 'user' AS kind, u.id, u.name, true AS owner
               FROM cases c JOIN users u ON u.id = c.owner_id WHERE c.id = $1
             UNION ALL
             SELECT 1, s.created_at, 'org', o.id, o.name, false FROM live s JOIN orgs o ON o.id = s.target_org_id
             UNION ALL
             SELECT 1, a.added_at, a.principal_kind, a.principal_id, coalesce(u.name, g.name), false
               FROM case_access a
               LEFT JOIN users u ON u.id = a.principal_id LEFT JOIN groups g ON g.id = a.principal_id
               LEFT JOIN received r ON r.id = a.received_id
              WHERE a.case_id = $1 AND a.revoked_at IS NULL AND (a.received_id IS NULL OR r.revoked_at IS NULL)
                AND a.principal_id IS DISTINCT FROM $2
             UNION ALL
             SELECT 1, s.created_at, 'email', NULL, e.r ->> 'email', false
               FROM live s CROSS JOIN LATERAL jsonb_array_elements(s.target -> 'recipients') AS e (r)
              WHERE e.r ? 'email' AND NOT EXISTS (
                    SELECT 1 FROM users u WHERE u.org_id = s.target_org_id AND lower(u.email) = lower(e.r ->> 'email')))
         SELECT kind, id, name, owner FROM (
             SELECT DISTINCT ON (kind = 'email', coalesce(id::text, lower(name))) *
               FROM entries ORDER BY kind = 'email', coalesce(id::text, lower(name)), pos, at) d
         ORDER BY pos, at, name",
    )
    .bind(case.id)
    .bind(case.owner_id)
    .bind(super::ShareStatus::LIVE)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, id, name, owner)| AccessEntry {
            kind,
            id,
            name,
            owner,
        })
        .collect())
}

/// One onward share (R28, R45) as the owning org sees it: the secondary
/// dissemination of its case by a receiver — a recipient added at the
/// receiver, or a share of the receiver's imported copy with another org or
/// a link share of it made while the collaboration lasted. Entries stay
/// after the collaboration ends: they are history (R51).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Dissemination {
    /// recipient | share | link_share
    pub kind: String,
    pub received_id: Uuid,
    /// The share the collaboration is governed by.
    pub share_id: Uuid,
    pub receiving_org_id: Uuid,
    pub receiving_org_name: String,
    pub added_by: Uuid,
    pub added_by_name: String,
    /// user | group (a recipient), org (a share), email | user (a link share's recipient)
    pub recipient_kind: String,
    /// The user, group or org; null for a link share sent to an email address.
    pub recipient_id: Option<Uuid>,
    pub recipient_name: String,
    pub added_at: chrono::DateTime<chrono::Utc>,
}

pub async fn dissemination(db: &mut PgConnection, case_id: Uuid) -> Result<Vec<Dissemination>> {
    Ok(sqlx::query_as(
        "SELECT 'recipient' AS kind, r.id AS received_id, r.share_id, o.id AS receiving_org_id,
                o.name AS receiving_org_name, a.added_by, ab.name AS added_by_name,
                a.principal_kind AS recipient_kind, a.principal_id AS recipient_id,
                coalesce(u.name, g.name) AS recipient_name, a.added_at
         FROM case_access a
         JOIN received r ON r.id = a.received_id
         JOIN orgs o ON o.id = r.receiver_org_id
         JOIN users ab ON ab.id = a.added_by
         LEFT JOIN users u ON u.id = a.principal_id
         LEFT JOIN groups g ON g.id = a.principal_id
         WHERE r.case_id = $1
         UNION ALL
         SELECT 'share', r.id, r.share_id, o.id, o.name, s.created_by, ab.name,
                'org', s.target_org_id, t.name, s.created_at
         FROM received r
         JOIN shares s ON s.case_id = r.imported_case_id AND s.target_kind = 'partner'
         JOIN orgs o ON o.id = r.receiver_org_id
         JOIN users ab ON ab.id = s.created_by
         JOIN orgs t ON t.id = s.target_org_id
         WHERE r.case_id = $1 AND s.created_at <= coalesce(r.revoked_at, 'infinity')
         UNION ALL
         SELECT 'link_share', r.id, r.share_id, o.id, o.name, l.created_by, ab.name,
                CASE WHEN l.recipient ? 'email' THEN 'email' ELSE 'user' END,
                (l.recipient ->> 'user_id')::uuid,
                coalesce(l.recipient ->> 'email', lu.name, ''), l.created_at
         FROM received r
         JOIN link_shares l ON l.case_id = r.imported_case_id
         JOIN orgs o ON o.id = r.receiver_org_id
         JOIN users ab ON ab.id = l.created_by
         LEFT JOIN users lu ON lu.id = (l.recipient ->> 'user_id')::uuid
         WHERE r.case_id = $1 AND l.created_at <= coalesce(r.revoked_at, 'infinity')
         ORDER BY added_at",
    )
    .bind(case_id)
    .fetch_all(db)
    .await?)
}

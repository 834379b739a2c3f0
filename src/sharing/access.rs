//! What the owning org reads about who has its case: its shares, the access
//! list (R16: the owner marked, internal users and groups, partner orgs and
//! their named recipients, and onward recipients, R28) and the dissemination
//! log of onward shares by receivers (R28, R45).

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Recipient, ShareRow, ShareView, SHARE_COLUMNS};
use crate::cases;
use crate::error::Result;
use crate::orgs;

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

/// R16: everyone with access to the case, the owner marked.
pub async fn access_list(db: &mut PgConnection, case: &cases::CaseRow) -> Result<Vec<AccessEntry>> {
    let mut items = Vec::new();
    if let Some(owner) = case.owner_id {
        let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
            .bind(owner)
            .fetch_one(&mut *db)
            .await?;
        items.push(AccessEntry {
            kind: "user".into(),
            id: Some(owner),
            name,
            owner: true,
        });
    }
    let shares: Vec<ShareRow> = sqlx::query_as(&format!(
        "SELECT {SHARE_COLUMNS} FROM shares WHERE case_id = $1 AND status IN ('processing', 'complete')
         ORDER BY created_at"
    ))
    .bind(case.id)
    .fetch_all(&mut *db)
    .await?;
    let mut seen = std::collections::HashSet::new();
    for share in shares {
        if let Some(org_id) = share.target_org_id {
            if seen.insert(("org", org_id.to_string())) {
                let org = orgs::get(db, org_id).await?;
                items.push(AccessEntry {
                    kind: "org".into(),
                    id: Some(org_id),
                    name: org.name,
                    owner: false,
                });
            }
        }
        for r in share.target.0.recipients() {
            let entry = match r {
                Recipient::Badge { user_id: None, .. } => continue,
                Recipient::User { user_id }
                | Recipient::Badge {
                    user_id: Some(user_id),
                    ..
                } => {
                    let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
                        .bind(user_id)
                        .fetch_one(&mut *db)
                        .await?;
                    AccessEntry {
                        kind: "user".into(),
                        id: Some(*user_id),
                        name,
                        owner: false,
                    }
                }
                Recipient::Group { group_id } => {
                    let name: String = sqlx::query_scalar("SELECT name FROM groups WHERE id = $1")
                        .bind(group_id)
                        .fetch_one(&mut *db)
                        .await?;
                    AccessEntry {
                        kind: "group".into(),
                        id: Some(*group_id),
                        name,
                        owner: false,
                    }
                }
                Recipient::Email { email } => AccessEntry {
                    kind: "email".into(),
                    id: None,
                    name: email.clone(),
                    owner: false,
                },
            };
            let key = (
                if entry.kind == "email" {
                    "email"
                } else {
                    "principal"
                },
                entry
                    .id
                    .map(|i| i.to_string())
                    .unwrap_or(entry.name.clone()),
            );
            if Some(&entry.id) != Some(&case.owner_id) && seen.insert(key) {
                items.push(entry);
            }
        }
    }
    // Onward recipients added by receivers (R28).
    let onward: Vec<(String, Uuid, String)> = sqlx::query_as(
        "SELECT CASE WHEN rr.user_id IS NOT NULL THEN 'user' ELSE 'group' END,
                coalesce(rr.user_id, rr.group_id), coalesce(u.name, g.name)
         FROM received_recipients rr JOIN received r ON r.id = rr.received_id
         LEFT JOIN users u ON u.id = rr.user_id LEFT JOIN groups g ON g.id = rr.group_id
         WHERE r.case_id = $1 AND r.revoked_at IS NULL ORDER BY rr.added_at",
    )
    .bind(case.id)
    .fetch_all(&mut *db)
    .await?;
    for (kind, id, name) in onward {
        if seen.insert(("principal", id.to_string())) {
            items.push(AccessEntry {
                kind,
                id: Some(id),
                name,
                owner: false,
            });
        }
    }
    Ok(items)
}

/// One onward share (R28) as the owning org sees it: the secondary
/// dissemination of its case by a receiver.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Dissemination {
    pub received_id: Uuid,
    /// The share the collaboration is governed by.
    pub share_id: Uuid,
    pub receiving_org_id: Uuid,
    pub receiving_org_name: String,
    pub added_by: Uuid,
    pub added_by_name: String,
    /// user | group
    pub recipient_kind: String,
    pub recipient_id: Uuid,
    pub recipient_name: String,
    pub added_at: chrono::DateTime<chrono::Utc>,
}

pub async fn dissemination(db: &mut PgConnection, case_id: Uuid) -> Result<Vec<Dissemination>> {
    Ok(sqlx::query_as(
        "SELECT r.id AS received_id, r.share_id, o.id AS receiving_org_id, o.name AS receiving_org_name,
                rr.added_by, a.name AS added_by_name,
                CASE WHEN rr.user_id IS NOT NULL THEN 'user' ELSE 'group' END AS recipient_kind,
                coalesce(rr.user_id, rr.group_id) AS recipient_id, coalesce(u.name, g.name) AS recipient_name,
                rr.added_at
         FROM received_recipients rr
         JOIN received r ON r.id = rr.received_id
         JOIN orgs o ON o.id = r.receiver_org_id
         JOIN users a ON a.id = rr.added_by
         LEFT JOIN users u ON u.id = rr.user_id
         LEFT JOIN groups g ON g.id = rr.group_id
         WHERE r.case_id = $1 ORDER BY rr.added_at",
    )
    .bind(case_id)
    .fetch_all(db)
    .await?)
}

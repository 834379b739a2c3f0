//! Updates to an imported copy (R24–R27, R30). Newly granted evidence is
//! applied at once for Justice orgs with `auto_sync` and offered as an
//! available update to everyone else (R25); case-level changes by the sharer
//! are always offered, never applied (R26); the receiver applies all or a
//! selection, and only evidence still granted through a live share is offered
//! (R27). A revoked collaboration gets no further updates (R30).

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::import::copy_evidence_tx;
use crate::audit::{self, Action};
use crate::cases;
use crate::collaboration::{lock, ReceivedRow};
use crate::error::{Error, Result};
use crate::orgs::{self, OrgKind};
use crate::principal::UserPrincipal;

/// R24, R25: newly granted evidence reaches an external view by the grant
/// itself; an imported copy gets it applied (Justice with auto sync) or
/// offered as an available update (everyone else).
pub async fn deliver_new_evidence_tx(
    tx: &mut PgConnection,
    received_id: Uuid,
    evidence_ids: &[Uuid],
) -> Result<()> {
    if evidence_ids.is_empty() {
        return Ok(());
    }
    let r = lock(tx, received_id).await?;
    deliver_to(tx, &r, evidence_ids).await
}

/// `deliver_new_evidence_tx` for a row the caller has locked already.
pub async fn deliver_to(
    tx: &mut PgConnection,
    r: &ReceivedRow,
    evidence_ids: &[Uuid],
) -> Result<()> {
    if evidence_ids.is_empty() {
        return Ok(());
    }
    let Some(imported) = r.imported_case_id else {
        return Ok(());
    };
    if r.revoked_at.is_some() {
        return Ok(()); // R30: no further updates
    }
    let org = orgs::get(tx, r.receiver_org_id).await?;
    if org.kind == OrgKind::Justice && org.auto_sync {
        copy_evidence_tx(tx, r, imported, Some(evidence_ids)).await?;
        // R50: audited with the job that synced it as actor.
        audit::record(
            tx,
            Action::AutoSync,
            audit::Entry {
                org_id: Some(r.receiver_org_id),
                case_id: Some(imported),
                share_id: Some(r.share_id),
                details: Some(
                    serde_json::json!({ "received_id": r.id, "evidence_ids": evidence_ids }),
                ),
                ..Default::default()
            },
        )
        .await?;
    } else {
        let ids: Vec<Uuid> = evidence_ids.iter().map(|_| Uuid::now_v7()).collect();
        sqlx::query(
            "INSERT INTO evidence_updates (id, received_id, evidence_id)
             SELECT i, $1, e FROM unnest($2::uuid[], $3::uuid[]) AS u(i, e)
             ON CONFLICT (received_id, evidence_id, kind) DO NOTHING",
        )
        .bind(r.id)
        .bind(&ids)
        .bind(evidence_ids)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// R26: the sharer changed case fields; every live imported copy is offered
/// the change, never applied automatically.
pub async fn record_case_updates_tx(
    tx: &mut PgConnection,
    case_id: Uuid,
    changed: &[(&'static str, Option<String>)],
) -> Result<()> {
    for (field, new_value) in changed {
        sqlx::query(&format!(
            "INSERT INTO case_updates (id, received_id, field, old_value, new_value)
             SELECT gen_random_uuid(), r.id, $2, c.{field}, $3
             FROM received r JOIN cases c ON c.id = r.imported_case_id
             WHERE r.case_id = $1 AND r.revoked_at IS NULL AND c.{field} IS DISTINCT FROM $3"
        ))
        .bind(case_id)
        .bind(field)
        .bind(new_value)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseUpdate {
    pub id: Uuid,
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceUpdate {
    pub id: Uuid,
    pub evidence_id: Uuid,
    pub evidence_title: String,
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Updates {
    pub case: Vec<CaseUpdate>,
    pub evidence: Vec<EvidenceUpdate>,
}

pub(super) async fn pending_updates(db: &mut PgConnection, r: &ReceivedRow) -> Result<Updates> {
    if r.revoked_at.is_some() || r.imported_case_id.is_none() {
        return Ok(Updates {
            case: vec![],
            evidence: vec![],
        });
    }
    let case: Vec<(Uuid, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT id, field, old_value, new_value FROM case_updates WHERE received_id = $1 AND applied_at IS NULL ORDER BY created_at, id",
    )
    .bind(r.id)
    .fetch_all(&mut *db)
    .await?;
    // Only evidence still granted through a live share is offered (R27).
    let evidence: Vec<(Uuid, Uuid, String, String)> = sqlx::query_as(
        "SELECT u.id, u.evidence_id, e.title, u.kind FROM evidence_updates u
         JOIN evidence e ON e.id = u.evidence_id
         JOIN grants g ON g.received_id = u.received_id AND g.evidence_id = u.evidence_id
         WHERE u.received_id = $1 AND u.applied_at IS NULL
           AND g.covering && ARRAY(SELECT s.id FROM shares s WHERE s.received_id = $1 AND s.status = $2)
         ORDER BY u.created_at, u.id",
    )
    .bind(r.id)
    .bind(crate::collaboration::ShareStatus::Complete)
    .fetch_all(&mut *db)
    .await?;
    Ok(Updates {
        case: case
            .into_iter()
            .map(|(id, field, old, new)| CaseUpdate {
                id,
                field,
                old,
                new,
            })
            .collect(),
        evidence: evidence
            .into_iter()
            .map(|(id, evidence_id, evidence_title, kind)| EvidenceUpdate {
                id,
                evidence_id,
                evidence_title,
                kind,
            })
            .collect(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    #[serde(default)]
    pub case_update_ids: Vec<Uuid>,
    #[serde(default)]
    pub evidence_update_ids: Vec<Uuid>,
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplyResult {
    pub applied_case_updates: usize,
    pub applied_evidence_updates: usize,
}

/// R27: apply all or a selection of the offered updates to the imported copy.
pub async fn apply_updates(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    req: ApplyRequest,
) -> Result<ApplyResult> {
    let mut tx = crate::db::begin(db).await?;
    // R41: case updates edit the copy itself, which only its owner and the
    // org's admins may do; any reader of the copy may take evidence updates.
    let (found, manage) = match crate::access::case(&mut tx, user, case_id).await? {
        crate::access::Seen::External { received, .. } => (*received, false),
        crate::access::Seen::Own { manage, .. } => (
            crate::collaboration::for_case(&mut tx, user.org_id, case_id)
                .await?
                .ok_or(Error::NotFound("case"))?,
            manage,
        ),
    };
    let r = lock(&mut tx, found.id).await?;
    let Some(imported) = r.imported_case_id.filter(|c| *c == case_id) else {
        return Err(Error::validation(
            "updates apply to an imported case; import it first",
        ));
    };
    if r.revoked_at.is_some() {
        return Err(Error::ShareRevoked);
    }
    let pending = pending_updates(&mut tx, &r).await?;
    let pick = |all_ids: Vec<Uuid>, wanted: &[Uuid]| -> Result<Vec<Uuid>> {
        if req.all {
            return Ok(all_ids);
        }
        if let Some(bad) = wanted.iter().find(|w| !all_ids.contains(w)) {
            return Err(Error::validation(format!(
                "{bad} is not a pending update of this case"
            )));
        }
        Ok(wanted.to_vec())
    };
    let case_ids = pick(
        pending.case.iter().map(|u| u.id).collect(),
        &req.case_update_ids,
    )?;
    let ev_ids = pick(
        pending.evidence.iter().map(|u| u.id).collect(),
        &req.evidence_update_ids,
    )?;
    if !case_ids.is_empty() && !manage {
        return Err(Error::Forbidden(
            "only the case owner or an admin of its organization may apply case updates".into(),
        ));
    }

    for u in pending.case.iter().filter(|u| case_ids.contains(&u.id)) {
        let field = cases::write::CaseField::named(&u.field);
        cases::write::set_case_field(&mut tx, imported, field, u.new.as_deref()).await?;
    }
    sqlx::query("UPDATE case_updates SET applied_at = now() WHERE id = ANY($1)")
        .bind(&case_ids)
        .execute(&mut *tx)
        .await?;
    let evidence_ids: Vec<Uuid> = pending
        .evidence
        .iter()
        .filter(|u| ev_ids.contains(&u.id))
        .map(|u| u.evidence_id)
        .collect();
    copy_evidence_tx(&mut tx, &r, imported, Some(&evidence_ids)).await?;
    sqlx::query("UPDATE evidence_updates SET applied_at = now() WHERE id = ANY($1)")
        .bind(&ev_ids)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Action::UpdateApplied,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(imported),
            share_id: Some(r.share_id),
            details: Some(
                serde_json::json!({ "case_update_ids": case_ids, "evidence_update_ids": ev_ids }),
            ),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(ApplyResult {
        applied_case_updates: case_ids.len(),
        applied_evidence_updates: ev_ids.len(),
    })
}

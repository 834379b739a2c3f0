//! New evidence after a share (R22–R25, R31): the evidence-added job grants
//! the new item to every collaboration whose live share covers it (whole case,
//! or a shared folder or one of its subfolders; never an evidence-subset
//! share), then hands it to the receiving side (external view at once, auto
//! sync, or an available update).
//!
//! Race with revocation (R31): the live shares are read `FOR SHARE`, and a
//! revoke updates the share row, so the two serialize on that row. If the
//! revoke committed first, the share is no longer live here; if this job
//! locked first, the revoke waits for it and is acknowledged after it.

use std::collections::HashMap;
use uuid::Uuid;

use super::{Scope, ShareStatus};
use crate::context::JobContext;
use crate::jobs::{Job, JobError};
use crate::receiving;

/// Intake owns the payload (it writes the job); the handler is here.
pub use crate::evidence::EvidenceAdded;

/// At most this many other queued evidence-added jobs of the same case are
/// done by one handler run (see `EvidenceAdded::run`).
const COALESCE_LIMIT: i64 = 200;

impl Job for EvidenceAdded {
    const NAME: &'static str = "evidence-added";
    type Context = JobContext;

    /// Grants this evidence, and with it the evidence of other evidence-added
    /// jobs of the same case that are still queued (a burst into one case is
    /// fanned out in a few set-based statements instead of one job at a
    /// time). Those jobs are claimed `FOR UPDATE SKIP LOCKED` and completed in
    /// this transaction, so each evidence item is fanned out exactly once:
    /// when their messages arrive the runner finds them complete and acks
    /// them; a job a runner claimed first is skipped here and runs itself.
    async fn run(&self, job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let mut tx = ctx.db.begin().await?;
        crate::audit::act_as_job(&mut tx, job_id).await?;
        let evidence: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(
            "SELECT case_id, folder_id FROM evidence WHERE id = $1 AND source_evidence_id IS NULL",
        )
        .bind(self.evidence_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((case_id, folder_id)) = evidence else {
            return Err(JobError::permanent(format!(
                "evidence {} does not exist",
                self.evidence_id
            )));
        };
        crate::jobs::record_subject("case_id", case_id);
        // Coalescing (a queue feature): the oldest queued evidence-added
        // jobs of this case, locked `SKIP LOCKED`; their evidence is fanned
        // out here and they are completed in this transaction.
        let taken: Vec<(Uuid, EvidenceAdded)> =
            crate::jobs::take_queued(&mut tx, case_id, COALESCE_LIMIT).await?;
        let by_evidence: HashMap<Uuid, Uuid> = taken
            .iter()
            .flat_map(|(job, e)| {
                std::iter::once(e.evidence_id)
                    .chain(e.more.iter().copied())
                    .map(move |id| (id, *job))
            })
            .collect();
        let absorbed: Vec<(Uuid, Uuid, Option<Uuid>)> = if by_evidence.is_empty() {
            vec![]
        } else {
            let ids: Vec<Uuid> = by_evidence.keys().copied().collect();
            let found: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
                "SELECT id, folder_id FROM evidence
                  WHERE id = ANY($1) AND id <> $2 AND case_id = $3 AND source_evidence_id IS NULL",
            )
            .bind(&ids)
            .bind(self.evidence_id)
            .bind(case_id)
            .fetch_all(&mut *tx)
            .await?;
            found
                .into_iter()
                .map(|(e, folder)| (by_evidence[&e], e, folder))
                .collect()
        };
        let mut items = vec![(self.evidence_id, folder_id)];
        if !self.more.is_empty() {
            let more: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
                "SELECT id, folder_id FROM evidence WHERE id = ANY($1) AND case_id = $2 AND id <> $3",
            )
            .bind(&self.more)
            .bind(case_id)
            .bind(self.evidence_id)
            .fetch_all(&mut *tx)
            .await?;
            items.extend(more);
        }
        items.extend(absorbed.iter().map(|(_, e, f)| (*e, *f)));
        fan_out(&mut tx, case_id, &items).await?;
        let mut jobs: Vec<Uuid> = absorbed.iter().map(|(j, ..)| *j).collect();
        jobs.sort();
        jobs.dedup();
        if !jobs.is_empty() {
            crate::jobs::complete_unrun_tx(&mut tx, &jobs).await?;
            tracing::debug!(
                coalesced = jobs.len(),
                "evidence-added jobs done in this run"
            );
        }
        tx.commit().await?;
        metrics::counter!("caseshare_jobs_coalesced_total", "kind" => <EvidenceAdded as Job>::NAME)
            .increment(jobs.len() as u64);
        Ok(())
    }
}

/// Grant `items` (evidence id, folder) of `case_id` to every collaboration
/// whose live share covers them, and hand them to the receiving side.
async fn fan_out(
    tx: &mut sqlx::PgConnection,
    case_id: Uuid,
    items: &[(Uuid, Option<Uuid>)],
) -> Result<(), JobError> {
    // Shares still `processing` are locked too: if their job is running
    // right now we wait for it and then see it complete (its grant
    // statement may have run before this evidence committed). If it has
    // not started, its grant statement will find this evidence itself.
    type ShareRow = (
        Uuid,
        Option<Uuid>,
        sqlx::types::Json<Scope>,
        Vec<Uuid>,
        ShareStatus,
    );
    let shares: Vec<(Uuid, Uuid, Scope, Vec<Uuid>)> = sqlx::query_as::<_, ShareRow>(
        "SELECT id, received_id, scope, redact_caption_evidence_ids, status FROM shares
         WHERE case_id = $1 AND status = ANY($2) AND target_kind = 'partner'
         ORDER BY created_at FOR SHARE",
    )
    .bind(case_id)
    .bind(ShareStatus::LIVE)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .filter_map(
        |(id, received, scope, redact, status)| match (status, received) {
            (ShareStatus::Complete, Some(r)) => Some((id, r, scope.0, redact)),
            _ => None,
        },
    )
    .collect();
    if shares.is_empty() {
        return Ok(());
    }
    // Each folder with its ancestors: a share of any of them covers it.
    let folders: Vec<Uuid> = {
        let mut f: Vec<Uuid> = items.iter().filter_map(|(_, f)| *f).collect();
        f.sort();
        f.dedup();
        f
    };
    let folder_shares = shares
        .iter()
        .any(|(_, _, scope, _)| matches!(scope, Scope::Folders { .. }));
    let mut ancestors: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    if folder_shares && !folders.is_empty() {
        let pairs: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "WITH RECURSIVE up AS (
                 SELECT id AS start, id, parent_id FROM folders WHERE id = ANY($1)
                 UNION SELECT up.start, f.id, f.parent_id FROM folders f JOIN up ON f.id = up.parent_id)
             SELECT start, id FROM up",
        )
        .bind(&folders)
        .fetch_all(&mut *tx)
        .await?;
        for (start, id) in pairs {
            ancestors.entry(start).or_default().push(id);
        }
    }
    // One grant per collaboration and evidence (R17), first granted by its
    // oldest covering share (its snapshot filters the item, R43), covered by
    // every live share whose scope holds it (R51: revoking one leaves the
    // item with the others); never through an evidence-subset share (R22).
    // A caption redacted by any covering share stays redacted.
    let mut grants: HashMap<(Uuid, Uuid), (Vec<Uuid>, bool)> = HashMap::new();
    for (evidence_id, folder_id) in items {
        let up = folder_id.and_then(|f| ancestors.get(&f));
        for (share_id, received_id, scope, redact) in &shares {
            let covers = match scope {
                Scope::Case => true,
                Scope::Folders { folder_ids } => {
                    up.is_some_and(|up| folder_ids.iter().any(|f| up.contains(f)))
                }
                Scope::Evidence { .. } => false,
            };
            if covers {
                let grant = grants.entry((*received_id, *evidence_id)).or_default();
                grant.0.push(*share_id);
                grant.1 |= redact.contains(evidence_id);
            }
        }
    }
    if grants.is_empty() {
        return Ok(());
    }
    let mut received_ids: Vec<Uuid> = grants.keys().map(|(r, _)| *r).collect();
    received_ids.sort();
    received_ids.dedup();
    // Lock the collaborations in one order, shared: revokes and imports
    // wait for us, other evidence-added jobs do not.
    let rows = crate::collaboration::share_lock(&mut *tx, &received_ids)
        .await
        .map_err(JobError::from)?;
    // One row per (collaboration, evidence, covering share), in share age
    // order; PostgreSQL folds them into one grant each.
    let (mut r, mut e, mut s, mut c) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((received, evidence), (covering, redact)) in &grants {
        for share in covering {
            r.push(*received);
            e.push(*evidence);
            s.push(*share);
            c.push(*redact);
        }
    }
    let granted: std::collections::HashSet<(Uuid, Uuid)> =
        sqlx::query_as::<_, (Uuid, Uuid, bool)>(&format!(
            "INSERT INTO grants (received_id, evidence_id, share_id, caption_redacted, covering)
             SELECT r, e, (array_agg(s ORDER BY n))[1], bool_or(c), array_agg(s ORDER BY s)
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bool[]) WITH ORDINALITY AS t (r, e, s, c, n)
             GROUP BY r, e
             ON CONFLICT (received_id, evidence_id) DO UPDATE SET {}
             RETURNING received_id, evidence_id, (xmax = 0)",
            super::cover_sql()
        ))
        .bind(&r)
        .bind(&e)
        .bind(&s)
        .bind(&c)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .filter_map(|(r, e, inserted)| inserted.then_some((r, e)))
        .collect();
    for row in &rows {
        // In the order the items came (the order they were added).
        let new: Vec<Uuid> = items
            .iter()
            .map(|(e, _)| *e)
            .filter(|e| granted.contains(&(row.id, *e)))
            .collect();
        if new.is_empty() {
            continue;
        }
        // R50: the grants are audited with the job as actor (`act_as_job`),
        // one entry per collaboration and run, under the collaboration's share.
        crate::audit::record(
            &mut *tx,
            crate::audit::Action::AutoShare,
            crate::audit::Entry {
                org_id: Some(row.sharer_org_id),
                case_id: Some(case_id),
                share_id: Some(row.share_id),
                details: Some(serde_json::json!({
                    "received_id": row.id, "receiver_org_id": row.receiver_org_id, "evidence_ids": new,
                })),
                ..Default::default()
            },
        )
        .await?;
        receiving::deliver_to(&mut *tx, row, &new)
            .await
            .map_err(JobError::from)?;
    }
    Ok(())
}

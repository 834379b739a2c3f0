//! Recording evidence (R35, R41): one item in one statement (with its
//! evidence-added job, outbox row, audit entry and idempotency claim), or a
//! batch set-based in one transaction, each item answered on its own.

use sqlx::PgPool;
use uuid::Uuid;

use super::{Accepted, EvidenceAdded, NewEvidence, Writer};
use crate::access;
use crate::audit::{self, Action};
use crate::error::{Error, Result};
use crate::jobs::{Job, Requester};
use crate::principal::UserPrincipal;

/// Record one evidence item in `case_id` with its evidence-added job, its
/// outbox row, its audit entry and the request's idempotency claim, all in
/// **one statement** (a data-modifying CTE, committed on its own): two
/// round trips in all, the first taking the audit entry's id and time (its
/// MAC is computed between them) and the case's org. No transaction is
/// held open across round trips, so a burst of intake does not park
/// connections idle in transaction. Answers as `record_many` does for one
/// item: 404/403 for the case, 422 for a folder of another case, 409 for an
/// id used elsewhere or a key claimed by another request, and a resent
/// client id answers as the first time.
pub async fn record(
    db: &PgPool,
    case_id: Uuid,
    by: Writer<'_>,
    new: NewEvidence,
) -> Result<Accepted> {
    new.data.validate()?;
    let (audit_id, audit_at_us, case_org): (i64, i64, Option<Uuid>) = sqlx::query_as(&format!(
        "SELECT {}, (SELECT org_id FROM cases WHERE id = $1)",
        audit::RESERVE_COLUMNS
    ))
    .bind(case_id)
    .fetch_one(db)
    .await?;
    let Some(case_org) = case_org else {
        return Err(Error::NotFound("case"));
    };
    // $1 user, $2 the org it acts in, $3 sees every case of it (as
    // `access::visible_sql`): a service acts in the case's org, as an admin.
    let (user, org, all) = match by {
        Writer::User(u) => (
            Some(u.user_id),
            u.org_id,
            u.role == crate::principal::Role::Admin,
        ),
        Writer::Service(scope) if scope.may_act_for(case_org) => (None, case_org, true),
        Writer::Service(_) => return Err(Error::NotFound("case")),
    };
    let id = new.id.unwrap_or_else(Uuid::now_v7);
    let job_id = Uuid::now_v7();
    let reserved = audit::Reserved::new(audit_id, audit_at_us);
    let mac = reserved
        .mac(
            Action::EvidenceAdded,
            &audit::Entry {
                org_id: Some(org),
                actor_user_id: user,
                case_id: Some(case_id),
                evidence_id: Some(id),
                ..Default::default()
            },
        )
        .map_err(Error::Database)?;
    let claim = crate::idempotency::pending();
    let job = serde_json::to_value(EvidenceAdded {
        evidence_id: id,
        more: vec![],
    })
    .map_err(|e| Error::Internal(e.into()))?;
    let data = serde_json::to_value(&new.data).map_err(|e| Error::Internal(e.into()))?;

    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH c AS (SELECT c.id, c.org_id, {visible} AS visible FROM cases c WHERE c.id = $4),
                  folder_ok AS (SELECT $6::uuid IS NULL
                                    OR EXISTS (SELECT 1 FROM folders f WHERE f.id = $6 AND f.case_id = $4) AS ok),
                  ok AS (SELECT 1 FROM c, folder_ok WHERE c.visible AND c.org_id = $2 AND folder_ok.ok),
                  claim AS ({claim}),
                  go AS (SELECT 1 FROM ok WHERE $15::bytea IS NULL OR EXISTS (SELECT 1 FROM claim)),
                  {ev},
                  {jobs},
                  {aud}
             SELECT (SELECT visible FROM c) AS visible,
                    (SELECT c.org_id FROM c) AS org_id,
                    (SELECT ok FROM folder_ok) AS folder_ok,
                    EXISTS (SELECT 1 FROM claim) AS claimed,
                    EXISTS (SELECT 1 FROM ev) AS inserted,
                    (SELECT e.case_id FROM evidence e WHERE e.id = $5) AS earlier_case,
                    (SELECT e.job_id FROM evidence e WHERE e.id = $5) AS earlier_job",
            visible = access::visible_sql(),
            claim = crate::idempotency::claim_sql(
                "SELECT $15::bytea, $16::text, $17::bytea FROM ok WHERE $15::bytea IS NOT NULL",
                "$18"
            ),
            ev = crate::cases::write::insert_evidence_cte("go", "$5", "$4", "$6", "$7", "$8", "$9"),
            jobs = crate::jobs::outbox::enqueue_ctes("ev", "$9", "$19", "$10", "$2", "$4", "$4", "$11"),
            aud = audit::insert_reserved_cte("ev", ["$12", "$13", "$2", "$1", "$20", "$4", "$5", "$14"]),
        )
    });
    #[derive(sqlx::FromRow)]
    struct Done {
        visible: Option<bool>,
        org_id: Option<Uuid>,
        folder_ok: bool,
        claimed: bool,
        inserted: bool,
        earlier_case: Option<Uuid>,
        earlier_job: Option<Uuid>,
    }
    let done: Done = sqlx::query_as(SQL.as_str())
        .bind(user)
        .bind(org)
        .bind(all)
        .bind(case_id)
        .bind(id)
        .bind(new.folder_id)
        .bind(new.data.title.trim())
        .bind(&data)
        .bind(job_id)
        .bind(&job)
        .bind(crate::jobs::outbox::message(job_id, EvidenceAdded::NAME))
        .bind(reserved.id)
        .bind(reserved.at())
        .bind(&mac)
        .bind(claim.as_ref().map(|c| c.scope.to_vec()))
        .bind(claim.as_ref().map(|c| c.key.clone()))
        .bind(claim.as_ref().map(|c| c.request_hash.to_vec()))
        .bind(crate::idempotency::TTL_HOURS as i32)
        .bind(EvidenceAdded::NAME)
        .bind(Action::EvidenceAdded.as_str())
        .fetch_one(db)
        .await?;
    match (done.visible, done.org_id) {
        (Some(true), Some(o)) if o == org => {}
        (Some(true), Some(_)) => {
            return Err(Error::Forbidden("an external case is read-only".into()))
        }
        _ => return Err(Error::NotFound("case")),
    }
    if !done.folder_ok {
        return Err(Error::validation(
            "folder_id/parent_id does not name a folder of this case",
        ));
    }
    if let Some(claim) = &claim {
        claim.settle(done.claimed)?;
    }
    if done.inserted {
        crate::jobs::relay::wake();
        return Ok(Accepted { id, job_id });
    }
    // The id was recorded before (a resend answers as the first time), or
    // by a statement that committed after this one's snapshot was taken.
    let earlier = match (done.earlier_case, done.earlier_job) {
        (Some(c), j) => Some((c, j)),
        (None, _) => {
            sqlx::query_as::<_, (Uuid, Option<Uuid>)>(
                "SELECT case_id, job_id FROM evidence WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(db)
            .await?
        }
    };
    match earlier {
        Some((c, Some(job_id))) if c == case_id => Ok(Accepted { id, job_id }),
        _ => Err(Error::Conflict(
            "an evidence item with this id already exists elsewhere".into(),
        )),
    }
}

/// One item of a batch: the case it goes to and the evidence.
pub struct BatchItem {
    pub case_id: Uuid,
    /// The org the item claims its case belongs to (upstream events); an
    /// item whose case is another org's is refused as not found.
    pub org_id: Option<Uuid>,
    pub evidence: NewEvidence,
}

/// Record a batch of evidence in one transaction, set-based: one statement
/// per step (cases, folders, evidence, duplicates, audit) whatever the batch
/// size, and one evidence-added job per case. Each item gets its own result:
/// an invalid item (bad body, unknown case or folder, an id used elsewhere)
/// is refused alone and the rest are recorded. A client id already recorded
/// in the same case answers as the first time (idempotent retries, inside a
/// batch too). `by`: the user (who must be able to add to each case, R41),
/// or `None` for a trusted service. The outer error is the database's: then
/// nothing was recorded.
pub async fn record_many(
    db: &PgPool,
    by: Option<&UserPrincipal>,
    items: Vec<BatchItem>,
) -> Result<Vec<Result<Accepted>>> {
    let mut results: Vec<Option<Result<Accepted>>> = (0..items.len()).map(|_| None).collect();
    let ids: Vec<Uuid> = items
        .iter()
        .map(|i| i.evidence.id.unwrap_or_else(Uuid::now_v7))
        .collect();
    for (i, item) in items.iter().enumerate() {
        if let Err(e) = item.evidence.data.validate() {
            results[i] = Some(Err(e));
        }
    }
    let mut tx = crate::db::begin(db).await?;
    // The cases, each checked once.
    let mut case_ids: Vec<Uuid> = items.iter().map(|i| i.case_id).collect();
    case_ids.sort();
    case_ids.dedup();
    let mut orgs: std::collections::HashMap<Uuid, Uuid> = std::collections::HashMap::new();
    match by {
        None => {
            let found: Vec<(Uuid, Uuid)> =
                sqlx::query_as("SELECT id, org_id FROM cases WHERE id = ANY($1)")
                    .bind(&case_ids)
                    .fetch_all(&mut *tx)
                    .await?;
            orgs.extend(found);
        }
        Some(u) => {
            for case_id in &case_ids {
                match access::writable(&mut tx, u, *case_id).await {
                    Ok(case) => {
                        orgs.insert(case.id, case.org_id);
                    }
                    Err(Error::Database(e)) => return Err(Error::Database(e)),
                    Err(e) => {
                        for (i, item) in items.iter().enumerate() {
                            if item.case_id == *case_id && results[i].is_none() {
                                results[i] = Some(Err(same_error(&e)));
                            }
                        }
                    }
                }
            }
        }
    }
    // Folders must be folders of the item's case.
    let folder_ids: Vec<Uuid> = items.iter().filter_map(|i| i.evidence.folder_id).collect();
    let folders: std::collections::HashMap<Uuid, Uuid> = if folder_ids.is_empty() {
        Default::default()
    } else {
        sqlx::query_as::<_, (Uuid, Uuid)>("SELECT id, case_id FROM folders WHERE id = ANY($1)")
            .bind(&folder_ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect()
    };
    // One job per case: its id is written with the evidence.
    let jobs: std::collections::HashMap<Uuid, Uuid> =
        orgs.keys().map(|c| (*c, Uuid::now_v7())).collect();
    let mut seen = std::collections::HashSet::new();
    let mut new_items = crate::cases::write::NewItems::default();
    for (i, item) in items.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        match orgs.get(&item.case_id) {
            Some(org) if item.org_id.is_none_or(|claimed| claimed == *org) => {}
            _ => {
                results[i] = Some(Err(Error::NotFound("case")));
                continue;
            }
        }
        if let Some(f) = item.evidence.folder_id {
            if folders.get(&f) != Some(&item.case_id) {
                results[i] = Some(Err(Error::validation(
                    "folder_id/parent_id does not name a folder of this case",
                )));
                continue;
            }
        }
        if !seen.insert(ids[i]) {
            continue; // the same id twice in one batch: the first one counts
        }
        new_items.ids.push(ids[i]);
        new_items.cases.push(item.case_id);
        new_items.folders.push(item.evidence.folder_id);
        new_items
            .titles
            .push(item.evidence.data.title.trim().to_string());
        new_items.data.push(
            serde_json::to_value(&item.evidence.data).map_err(|e| Error::Internal(e.into()))?,
        );
        new_items.jobs.push(jobs[&item.case_id]);
    }
    let inserted = crate::cases::write::insert_evidence(&mut tx, &new_items).await?;
    let inserted_ids: std::collections::HashSet<Uuid> = inserted.iter().map(|(i, _)| *i).collect();
    // Ids recorded before: a retry answers as the first time did.
    let earlier: Vec<Uuid> = new_items
        .ids
        .iter()
        .filter(|i| !inserted_ids.contains(i))
        .copied()
        .collect();
    let earlier: std::collections::HashMap<Uuid, (Uuid, Option<Uuid>)> = if earlier.is_empty() {
        Default::default()
    } else {
        sqlx::query_as::<_, (Uuid, Uuid, Option<Uuid>)>(
            "SELECT id, case_id, job_id FROM evidence WHERE id = ANY($1)",
        )
        .bind(&earlier)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(id, c, j)| (id, (c, j)))
        .collect()
    };
    // One evidence-added job per case with new evidence.
    let mut by_case: std::collections::BTreeMap<Uuid, Vec<Uuid>> = Default::default();
    for (id, case_id) in &inserted {
        by_case.entry(*case_id).or_default().push(*id);
    }
    for (case_id, mut ids) in by_case {
        let first = ids.remove(0);
        EvidenceAdded {
            evidence_id: first,
            more: ids,
        }
        .enqueue_with_id_tx(
            &mut tx,
            jobs[&case_id],
            Requester::subject(orgs[&case_id], case_id).coalescing(case_id),
        )
        .await?;
    }
    let entries: Vec<audit::Entry> = inserted
        .iter()
        .map(|(id, case_id)| audit::Entry {
            org_id: Some(orgs[case_id]),
            actor_user_id: by.map(|u| u.user_id),
            case_id: Some(*case_id),
            evidence_id: Some(*id),
            ..Default::default()
        })
        .collect();
    audit::record_many(&mut tx, Action::EvidenceAdded, &entries).await?;
    tx.commit().await?;
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, item)| match results[i].take() {
            Some(r) => r,
            None if inserted_ids.contains(&ids[i]) => Ok(Accepted {
                id: ids[i],
                job_id: jobs[&item.case_id],
            }),
            None => match earlier.get(&ids[i]) {
                Some((c, Some(job_id))) if *c == item.case_id => Ok(Accepted {
                    id: ids[i],
                    job_id: *job_id,
                }),
                _ => Err(Error::Conflict(
                    "an evidence item with this id already exists elsewhere".into(),
                )),
            },
        })
        .collect())
}

/// The same refusal for every item of one case.
fn same_error(e: &Error) -> Error {
    match e {
        Error::NotFound(what) => Error::NotFound(what),
        Error::Forbidden(m) => Error::Forbidden(m.clone()),
        other => Error::validation(other.to_string()),
    }
}

//! `caseshare dead-letters list|show|requeue|purge` (R36): the job rows in
//! PostgreSQL are the record of truth, `<prefix>.dead` holds the messages.
//! See the module documentation of `operations` for what a requeue does.

use chrono::{DateTime, Utc};
use lapin::options::QueuePurgeOptions;
use sqlx::{PgConnection, PgPool};
use std::fmt::Write as _;
use uuid::Uuid;

use super::{broker, is_not_found, one_line, passive_declare, pool, time, topology, OpsError};
use crate::audit::{self, Action};
use crate::config::Settings;
use crate::context::JobContext;
use crate::job_registry;
use crate::jobs::{outbox, relay, JobStatus, Registry};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadJob {
    pub id: Uuid,
    pub kind: String,
    pub org_id: Option<Uuid>,
    pub attempts: i32,
    pub deliveries: i32,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeadLetters {
    /// Jobs in status `dead`, oldest death first.
    pub jobs: Vec<DeadJob>,
    /// `<prefix>.dead`.
    pub dead_queue: String,
    /// Messages waiting in `<prefix>.dead`; `None` if it could not be read.
    pub dead_queue_messages: Option<u32>,
    /// Why the queue could not be read (broker down, queue missing).
    pub broker_error: Option<String>,
}

/// Dead jobs from PostgreSQL, and the depth of the broker's dead-letter
/// queue. A broker that cannot be reached does not hide the jobs.
pub async fn list(settings: &Settings) -> anyhow::Result<DeadLetters> {
    let db = pool(settings).await?;
    let jobs = sqlx::query_as::<_, DeadJob>(
        "SELECT id, kind, org_id, attempts, deliveries, created_at, finished_at, last_error
         FROM jobs WHERE status = $1 ORDER BY finished_at NULLS FIRST, id",
    )
    .bind(JobStatus::Dead)
    .fetch_all(&db)
    .await;
    db.close().await;
    let jobs = jobs?;
    let dead_queue = topology(settings).dead_queue();
    let depth = async {
        let conn = broker(settings).await?;
        let r = passive_declare(&conn, &dead_queue).await;
        let _ = conn.close(200, "done".into()).await;
        r?.map(|(messages, _)| messages)
            .ok_or_else(|| anyhow::Error::new(OpsError::QueueMissing(dead_queue.clone())))
    }
    .await;
    let (dead_queue_messages, broker_error) = match depth {
        Ok(n) => (Some(n), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    Ok(DeadLetters {
        jobs,
        dead_queue,
        dead_queue_messages,
        broker_error,
    })
}

impl DeadLetters {
    pub fn render(&self) -> String {
        let mut out = String::new();
        match (self.dead_queue_messages, &self.broker_error) {
            (Some(n), _) => {
                let _ = writeln!(out, "{}: {} message(s) waiting", self.dead_queue, n);
            }
            (None, e) => {
                let _ = writeln!(
                    out,
                    "{}: unknown ({})",
                    self.dead_queue,
                    e.as_deref().unwrap_or("unavailable")
                );
            }
        }
        let _ = writeln!(out, "{} dead job(s)", self.jobs.len());
        if self.jobs.is_empty() {
            return out;
        }
        let _ = writeln!(
            out,
            "{:<36}  {:<14} {:>8}  {:<23}  LAST ERROR",
            "JOB ID", "KIND", "ATTEMPTS", "FINISHED AT"
        );
        for j in &self.jobs {
            let _ = writeln!(
                out,
                "{:<36}  {:<14} {:>8}  {:<23}  {}",
                j.id,
                j.kind,
                j.attempts,
                time(j.finished_at),
                one_line(j.last_error.as_deref().unwrap_or("-"), 72)
            );
        }
        out
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobDetail {
    pub id: Uuid,
    pub kind: String,
    pub org_id: Option<Uuid>,
    pub status: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub deliveries: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Its outbox rows (the first enqueue, then one per requeue): (id, created, published).
    #[sqlx(skip)]
    pub outbox: Vec<(i64, DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// When it was requeued by an operator (from the audit trail).
    #[sqlx(skip)]
    pub requeued_at: Vec<DateTime<Utc>>,
}

/// One job row in full, whatever its status.
pub async fn show(settings: &Settings, job_id: Uuid) -> anyhow::Result<JobDetail> {
    let db = pool(settings).await?;
    let r = show_in(&db, job_id).await;
    db.close().await;
    r
}

async fn show_in(db: &PgPool, job_id: Uuid) -> anyhow::Result<JobDetail> {
    let mut job: JobDetail = sqlx::query_as(
        "SELECT id, kind, org_id, status::text AS status, payload, attempts, deliveries, last_error,
                created_at, started_at, finished_at, updated_at
         FROM jobs WHERE id = $1",
    )
    .bind(job_id)
    .fetch_optional(db)
    .await?
    .ok_or(OpsError::NotFound(job_id))?;
    job.outbox = sqlx::query_as(
        "SELECT id, created_at, published_at FROM outbox WHERE job_id = $1 ORDER BY id",
    )
    .bind(job_id)
    .fetch_all(db)
    .await?;
    job.requeued_at = sqlx::query_scalar(
        "SELECT at FROM audit_log WHERE action = $1 AND details->>'job_id' = $2 ORDER BY id",
    )
    .bind(Action::DeadLetterRequeued.as_str())
    .bind(job_id.to_string())
    .fetch_all(db)
    .await?;
    Ok(job)
}

impl JobDetail {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let org = self.org_id.map(|o| o.to_string());
        let rows: [(&str, String); 11] = [
            ("job", self.id.to_string()),
            ("kind", self.kind.clone()),
            ("status", self.status.clone()),
            ("org", org.unwrap_or_else(|| "-".into())),
            ("attempts", self.attempts.to_string()),
            ("deliveries", self.deliveries.to_string()),
            ("created at", time(Some(self.created_at))),
            ("started at", time(self.started_at)),
            ("finished at", time(self.finished_at)),
            ("updated at", time(Some(self.updated_at))),
            (
                "requeued",
                if self.requeued_at.is_empty() {
                    "never".into()
                } else {
                    self.requeued_at
                        .iter()
                        .map(|t| time(Some(*t)))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ),
        ];
        for (k, v) in rows {
            let _ = writeln!(out, "{:<12} {}", format!("{k}:"), v);
        }
        let error = self.last_error.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "{:<12} {}",
            "last error:",
            error.replace('\n', &format!("\n{:13}", ""))
        );
        let payload = serde_json::to_string_pretty(&self.payload)
            .unwrap_or_else(|_| self.payload.to_string());
        let _ = writeln!(out, "payload:");
        for line in payload.lines() {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out, "outbox:");
        let _ = writeln!(out, "  {:>10}  {:<23}  PUBLISHED AT", "ROW", "CREATED AT");
        for (id, created, published) in &self.outbox {
            let _ = writeln!(
                out,
                "  {:>10}  {:<23}  {}",
                id,
                time(Some(*created)),
                published.map_or_else(|| "not yet".to_string(), |p| time(Some(p)))
            );
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeueTarget {
    Job(Uuid),
    AllDead,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeued {
    pub job_id: Uuid,
    pub kind: String,
    /// What was made workable again besides the job row, e.g.
    /// `notice <id>: failed -> pending`.
    pub subject_reset: Option<String>,
}

#[derive(sqlx::FromRow)]
struct LockedJob {
    id: Uuid,
    kind: String,
    org_id: Option<Uuid>,
    status: JobStatus,
    payload: serde_json::Value,
}

/// Put dead jobs back to work (see the module documentation). All of it, for
/// one job or all dead jobs, commits in one transaction or not at all.
pub async fn requeue(settings: &Settings, target: RequeueTarget) -> anyhow::Result<Vec<Requeued>> {
    let db = pool(settings).await?;
    let r = requeue_in(&db, target).await;
    db.close().await;
    r
}

async fn requeue_in(db: &PgPool, target: RequeueTarget) -> anyhow::Result<Vec<Requeued>> {
    let registry = job_registry::registry();
    let mut tx = db.begin().await?;
    let select = "SELECT id, kind, org_id, status, payload FROM jobs";
    let jobs: Vec<LockedJob> = match target {
        RequeueTarget::Job(id) => {
            let job: LockedJob = sqlx::query_as(&format!("{select} WHERE id = $1 FOR UPDATE"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(OpsError::NotFound(id))?;
            if job.status != JobStatus::Dead {
                return Err(OpsError::NotDead {
                    id,
                    status: job.status.to_string(),
                }
                .into());
            }
            vec![job]
        }
        RequeueTarget::AllDead => {
            sqlx::query_as(&format!(
                "{select} WHERE status = $1 ORDER BY finished_at NULLS FIRST, id FOR UPDATE"
            ))
            .bind(JobStatus::Dead)
            .fetch_all(&mut *tx)
            .await?
        }
    };
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(requeue_one(&mut tx, &registry, job).await?);
    }
    tx.commit().await?;
    // A relay in this process looks now; the others find the rows by their poll.
    if !out.is_empty() {
        relay::wake();
    }
    Ok(out)
}

async fn requeue_one(
    tx: &mut PgConnection,
    registry: &Registry<JobContext>,
    job: LockedJob,
) -> anyhow::Result<Requeued> {
    crate::jobs::requeue_tx(tx, job.id).await?;
    outbox::republish(tx, job.id, &job.kind).await?;
    let reopened = registry.requeue(&job.kind, job.payload, tx).await?;

    audit::record(
        tx,
        Action::DeadLetterRequeued,
        audit::Entry {
            org_id: job.org_id,
            actor_user_id: None,
            details: Some(serde_json::json!({ "job_id": job.id, "kind": job.kind })),
            ..reopened.filed_under
        },
    )
    .await?;
    Ok(Requeued {
        job_id: job.id,
        kind: job.kind,
        subject_reset: reopened.subject,
    })
}

pub fn render_requeued(rows: &[Requeued]) -> String {
    let mut out = String::new();
    for r in rows {
        let _ = write!(out, "requeued {} ({})", r.job_id, r.kind);
        if let Some(s) = &r.subject_reset {
            let _ = write!(out, "; {s}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{} job(s) requeued", rows.len());
    out
}

/// Empty `<prefix>.dead`; returns how many messages were removed. The job
/// rows are the history and stay.
pub async fn purge(settings: &Settings) -> anyhow::Result<u32> {
    let queue = topology(settings).dead_queue();
    let conn = broker(settings).await?;
    let r = async {
        let ch = conn.create_channel().await?;
        match ch
            .queue_purge(queue.clone().into(), QueuePurgeOptions::default())
            .await
        {
            Ok(n) => {
                let _ = ch.close(200, "done".into()).await;
                Ok(n)
            }
            Err(e) if is_not_found(&e) => Err(OpsError::QueueMissing(queue.clone()).into()),
            Err(e) => Err(anyhow::Error::from(e)),
        }
    }
    .await;
    let _ = conn.close(200, "done".into()).await;
    r
}

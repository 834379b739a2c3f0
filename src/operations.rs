//! Operator commands (R36, R37): queue depth (`caseshare queues`) and
//! dead-letter handling (`caseshare dead-letters list|show|requeue|purge`).
//!
//! Each function takes the process `Settings`, opens its own small pool and
//! broker connection, and closes them again; the CLI prints what they return
//! with the `render` methods (plain-text tables).
//!
//! Dead letters live in two places: the job row in PostgreSQL (status `dead`,
//! `last_error`, the payload: the record of truth) and a copy of the message in
//! the broker's `<prefix>.dead` queue (headers `x-reason`, `x-kind`,
//! `x-job-id`). `requeue` works from the job row; `purge` empties the queue.
//!
//! Requeue, per job, in ONE transaction:
//! - the job row goes back to `queued` with `attempts = 0` (a fresh retry
//!   budget) and `started_at`/`finished_at` cleared; `deliveries` and
//!   `last_error` are kept as history (the runner overwrites `last_error` if
//!   the job fails again; a success keeps it, as for any retried job);
//! - a `jobs` outbox row exactly like `Job::enqueue_tx` writes for the existing
//!   job id, and a relay wake-up (`relay::notify_tx`);
//! - what the job's dead-letter hook (`Job::on_dead`) marked is made workable
//!   again, because the handlers only act on live subjects:
//!   `send-notice` sets its notice from `failed` back to `pending` (`deliver`
//!   only sends pending notices; a notice already `sent` stays sent, so a
//!   requeue never mails twice); `share-case` sets its share from `failed`
//!   back to `processing` (failure cleared) and records a `share.processing`
//!   status event; the other kinds have no hook and need nothing;
//! - an `audit_log` entry `dead_letter_requeued` with `{"job_id", "kind"}`
//!   (`org_id` = the job's org, `share_id` when the subject is a share).
//!
//! Only jobs in status `dead` are requeued; anything else is refused with
//! [`OpsError::NotDead`] and changes nothing. The message copy in
//! `<prefix>.dead` is left alone by `requeue` (AMQP cannot remove one message
//! from the middle of a queue); `purge` clears the queue once the operator is
//! done with it, and the job rows stay as the history. Upstream evidence
//! events dead-lettered without a job row (kind `evidence-event`) are only in
//! the queue: the publisher has to resend them.

use chrono::{DateTime, Utc};
use lapin::options::{QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::FieldTable;
use lapin::Connection;
use sqlx::{PgConnection, PgPool};
use std::fmt::Write as _;
use uuid::Uuid;

use crate::amqp::Topology;
use crate::audit::{self, Action};
use crate::config::Settings;
use crate::jobs::{self, relay, JobKind};
use crate::sharing::{ShareRow, SHARE_COLUMNS};

/// Refusals an operator should see as such (not as an internal failure).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpsError {
    #[error("job {0} does not exist")]
    NotFound(Uuid),
    #[error("job {id} is {status}, not dead: only dead jobs can be requeued")]
    NotDead { id: Uuid, status: String },
    #[error(
        "queue {0} does not exist (is the AMQP prefix right, and has the deployment started once?)"
    )]
    QueueMissing(String),
}

fn topology(settings: &Settings) -> Topology {
    Topology::new(&settings.amqp_prefix, &settings.retry_delays_ms)
}

async fn pool(settings: &Settings) -> anyhow::Result<PgPool> {
    crate::db::connect(&settings.database_url, 2).await
}

async fn broker(settings: &Settings) -> anyhow::Result<Connection> {
    let conn = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        crate::amqp::connect(&settings.amqp_url, "caseshare-cli"),
    )
    .await
    .map_err(|_| anyhow::anyhow!("timed out connecting to the broker"))??;
    Ok(conn)
}

fn is_not_found(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(p) if p.get_id() == 404)
}

/// Depth and consumers of one queue by passive declare; `None` if the queue
/// does not exist. A channel per call, because a 404 closes the channel.
async fn passive_declare(conn: &Connection, queue: &str) -> anyhow::Result<Option<(u32, u32)>> {
    let ch = conn.create_channel().await?;
    let opts = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match ch
        .queue_declare(queue.into(), opts, FieldTable::default())
        .await
    {
        Ok(info) => {
            let _ = ch.close(200, "done".into()).await;
            Ok(Some((info.message_count(), info.consumer_count())))
        }
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut out: String = flat.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".into())
}

// ---------------------------------------------------------------------------
// queues
// ---------------------------------------------------------------------------

/// One row of `caseshare queues`; `None` when the queue does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub queue: String,
    pub messages: Option<u32>,
    pub consumers: Option<u32>,
}

/// Every queue of this deployment with its depth and consumers.
pub async fn queues(settings: &Settings) -> anyhow::Result<Vec<QueueDepth>> {
    let conn = broker(settings).await?;
    let mut out = Vec::new();
    let mut result = Ok(());
    for queue in topology(settings).all_queues() {
        match passive_declare(&conn, &queue).await {
            Ok(stats) => out.push(QueueDepth {
                queue,
                messages: stats.map(|s| s.0),
                consumers: stats.map(|s| s.1),
            }),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = conn.close(200, "done".into()).await;
    result.map(|()| out)
}

pub fn render_queues(rows: &[QueueDepth]) -> String {
    let mut out = format!("{:<48} {:>10} {:>10}\n", "QUEUE", "MESSAGES", "CONSUMERS");
    for q in rows {
        let n = |v: Option<u32>| v.map_or_else(|| "missing".to_string(), |v| v.to_string());
        let _ = writeln!(
            out,
            "{:<48} {:>10} {:>10}",
            q.queue,
            n(q.messages),
            n(q.consumers)
        );
    }
    out
}

// ---------------------------------------------------------------------------
// dead-letters list
// ---------------------------------------------------------------------------

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
         FROM jobs WHERE status = 'dead' ORDER BY finished_at NULLS FIRST, id",
    )
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

// ---------------------------------------------------------------------------
// dead-letters show
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// dead-letters requeue
// ---------------------------------------------------------------------------

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
    status: String,
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
    let mut tx = db.begin().await?;
    let select = "SELECT id, kind, org_id, status::text AS status, payload FROM jobs";
    let jobs: Vec<LockedJob> = match target {
        RequeueTarget::Job(id) => {
            let job: LockedJob = sqlx::query_as(&format!("{select} WHERE id = $1 FOR UPDATE"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(OpsError::NotFound(id))?;
            if job.status != "dead" {
                return Err(OpsError::NotDead {
                    id,
                    status: job.status,
                }
                .into());
            }
            vec![job]
        }
        RequeueTarget::AllDead => {
            sqlx::query_as(&format!(
                "{select} WHERE status = 'dead' ORDER BY finished_at NULLS FIRST, id FOR UPDATE"
            ))
            .fetch_all(&mut *tx)
            .await?
        }
    };
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(requeue_one(&mut tx, job).await?);
    }
    if !out.is_empty() {
        relay::notify_tx(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(out)
}

async fn requeue_one(tx: &mut PgConnection, job: LockedJob) -> anyhow::Result<Requeued> {
    sqlx::query(
        "UPDATE jobs SET status = 'queued', attempts = 0, started_at = NULL, finished_at = NULL,
                updated_at = now()
         WHERE id = $1",
    )
    .bind(job.id)
    .execute(&mut *tx)
    .await?;
    // Exactly what `Job::enqueue_tx` records, for the existing job id.
    let message = serde_json::json!({ "job_id": job.id, "kind": job.kind });
    sqlx::query(
        "INSERT INTO outbox (exchange, routing_key, payload, job_id) VALUES ('jobs', $1, $2, $3)",
    )
    .bind(&job.kind)
    .bind(&message)
    .bind(job.id)
    .execute(&mut *tx)
    .await?;

    let (subject_reset, share_id) = reset_subject(tx, &job).await?;

    audit::record(
        tx,
        Action::DeadLetterRequeued,
        audit::Entry {
            org_id: job.org_id,
            share_id,
            details: Some(serde_json::json!({ "job_id": job.id, "kind": job.kind })),
            ..Default::default()
        },
    )
    .await?;
    Ok(Requeued {
        job_id: job.id,
        kind: job.kind,
        subject_reset,
    })
}

/// Undo what the kind's `on_dead` hook marked, so that the handler acts on the
/// redelivery instead of treating the subject as finished.
async fn reset_subject(
    tx: &mut PgConnection,
    job: &LockedJob,
) -> anyhow::Result<(Option<String>, Option<Uuid>)> {
    match JobKind::parse(&job.kind) {
        Some(JobKind::SendNotice) => {
            let Ok(j) = serde_json::from_value::<crate::notify::SendNotice>(job.payload.clone())
            else {
                return Ok((None, None));
            };
            let share_id: Option<Option<Uuid>> = sqlx::query_scalar(
                "UPDATE notices SET status = 'pending' WHERE id = $1 AND status = 'failed'
                 RETURNING share_id",
            )
            .bind(j.notice_id)
            .fetch_optional(&mut *tx)
            .await?;
            Ok(match share_id {
                Some(share_id) => (
                    Some(format!("notice {}: failed -> pending", j.notice_id)),
                    share_id,
                ),
                None => (None, None),
            })
        }
        Some(JobKind::ShareCase) => {
            let Ok(j) = serde_json::from_value::<crate::sharing::ShareCase>(job.payload.clone())
            else {
                return Ok((None, None));
            };
            let share: Option<ShareRow> = sqlx::query_as(&format!(
                "UPDATE shares SET status = 'processing', failure = NULL
                 WHERE id = $1 AND status = 'failed' RETURNING {SHARE_COLUMNS}"
            ))
            .bind(j.share_id)
            .fetch_optional(&mut *tx)
            .await?;
            match share {
                Some(share) => {
                    jobs::status_event_tx(
                        tx,
                        "share.processing",
                        crate::sharing::status_payload(&share, "processing"),
                    )
                    .await?;
                    Ok((
                        Some(format!("share {}: failed -> processing", share.id)),
                        Some(share.id),
                    ))
                }
                None => Ok((None, Some(j.share_id))),
            }
        }
        Some(JobKind::BuildLinkShare) => {
            let Ok(j) =
                serde_json::from_value::<crate::linkshare::BuildLinkShare>(job.payload.clone())
            else {
                return Ok((None, None));
            };
            let reopened: Option<(Uuid, Uuid)> = sqlx::query_as(
                "UPDATE link_shares SET status = 'processing', failure = NULL
                 WHERE id = $1 AND status = 'failed' RETURNING org_id, case_id",
            )
            .bind(j.link_share_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((org_id, case_id)) = reopened else {
                return Ok((None, None));
            };
            crate::linkshare::status_event_tx(tx, j.link_share_id, org_id, case_id, "processing")
                .await?;
            Ok((
                Some(format!(
                    "link share {}: failed -> processing",
                    j.link_share_id
                )),
                None,
            ))
        }
        _ => Ok((None, None)),
    }
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

// ---------------------------------------------------------------------------
// dead-letters purge
// ---------------------------------------------------------------------------

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

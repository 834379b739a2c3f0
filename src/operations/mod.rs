//! Operator commands (R36, R37): queue depth (`caseshare queues`, `queues.rs`),
//! the job table by kind and status (`caseshare jobs stats`, `jobs.rs`)
//! and dead-letter handling (`caseshare dead-letters list|show|requeue|purge`,
//! `dead_letters.rs`).
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
//!   job id (the relays find them by their poll, `relay::POLL`);
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

pub mod dead_letters;
pub mod jobs;
pub mod queues;

pub use dead_letters::{
    list, purge, render_requeued, requeue, show, DeadJob, DeadLetters, JobDetail, RequeueTarget,
    Requeued,
};
pub use jobs::{job_stats, JobStats, KindStats};
pub use queues::{queues, render_queues, QueueDepth};

use chrono::{DateTime, Utc};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::Connection;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Settings;
use crate::job_registry::topology;

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

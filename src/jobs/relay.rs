//! The outbox relay: publishes committed `outbox` rows to RabbitMQ with
//! publisher confirms, then marks them published (R35).
//!
//! Rows are claimed with `FOR UPDATE SKIP LOCKED`, so any number of relays (one
//! per `api`/`worker`/`serve` process) share the work. A row is marked only
//! after the broker confirmed it; a crash in between republishes it, which is
//! harmless because consumers are idempotent. A broker outage leaves rows in
//! the table until the broker is back: nothing accepted is lost.
//!
//! Waking: no `NOTIFY` on the commit path. PostgreSQL takes one global lock
//! at the commit of every transaction that notified (to keep notifications
//! in commit order), so every intake commit of the database would serialize
//! through it. A process's own rows wake its relay in-process ([`wake`],
//! called where a row is written): the relay then looks again after 1, 2,
//! 4 … 64 ms, by when the writing transaction has committed; rows written by
//! other processes (a CLI requeue, a relay that died) are found by the poll
//! every [`POLL`].

use crate::amqp::{self, Publisher, Topology};
use crate::jobs::retry::reconnect_backoff;
use crate::shutdown::Shutdown;
use lapin::types::FieldTable;
use sqlx::PgPool;
use std::time::Duration;

const BATCH: i64 = 500;
/// How often a relay looks for rows nobody woke it for.
pub const POLL: Duration = Duration::from_millis(100);

/// This process's relay wake-up (one relay per process).
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Wake this process's relay: an outbox row is being written (the relay
/// looks again shortly, by when the writing transaction has committed).
pub fn wake() {
    WAKE.notify_one();
}

pub struct Relay {
    pub db: PgPool,
    pub amqp_url: String,
    pub topology: Topology,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    exchange: String,
    routing_key: String,
    payload: serde_json::Value,
}

impl Relay {
    pub async fn run(self, shutdown: Shutdown) {
        let mut backoff = reconnect_backoff();
        while !shutdown.is_triggered() {
            match self.session(&shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(error = %e, ?delay, "outbox relay interrupted; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait() => break,
                    }
                }
            }
        }
        tracing::debug!("outbox relay stopped");
    }

    async fn session(&self, shutdown: &Shutdown) -> anyhow::Result<()> {
        let conn = amqp::connect(
            &self.amqp_url,
            &format!("caseshare-relay:{}", self.topology.prefix),
        )
        .await?;
        let publisher = Publisher::open(&conn).await?;
        self.topology.declare(publisher.channel()).await?;
        loop {
            // Drain everything that is waiting, then sleep until woken (or
            // the poll interval, for rows written by other processes).
            while self.publish_batch(&publisher).await? == BATCH as usize {}
            self.record_backlog().await;
            tokio::select! {
                _ = shutdown.wait() => {
                    let _ = conn.close(200, "shutdown".into()).await;
                    return Ok(());
                }
                _ = WAKE.notified() => {
                    // The row's transaction commits right after it was
                    // written: look again until it is there (or 127 ms).
                    for delay in [1, 2, 4, 8, 16, 32, 64] {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        if self.publish_batch(&publisher).await? > 0 {
                            break;
                        }
                    }
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn publish_batch(&self, publisher: &Publisher) -> anyhow::Result<usize> {
        let mut tx = self.db.begin().await?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, exchange, routing_key, payload FROM outbox
             WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(rows.len());
        // Publish the whole batch, then wait for all confirms together.
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let exchange = match row.exchange.as_str() {
                "jobs" => self.topology.jobs_exchange(),
                _ => self.topology.status_exchange(),
            };
            let body = serde_json::to_vec(&row.payload)?;
            let message_id = format!("outbox-{}", row.id);
            let p = publisher.clone();
            let routing_key = row.routing_key.clone();
            let broadcast = row.exchange != "jobs";
            pending.push(async move {
                if broadcast {
                    p.broadcast(&exchange, &routing_key, &body, &message_id)
                        .await
                } else {
                    p.publish(
                        &exchange,
                        &routing_key,
                        &body,
                        FieldTable::default(),
                        Some(&message_id),
                    )
                    .await
                }
            });
            ids.push(row.id);
        }
        let results = futures_util::future::join_all(pending).await;
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => {}
                // A status event nobody is bound to is fine: status is a broadcast.
                Err(amqp::PublishError::Unroutable(_)) if row.exchange == "status" => {}
                Err(e) => return Err(e.into()),
            }
        }
        sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("caseshare_outbox_published_total").increment(ids.len() as u64);
        Ok(ids.len())
    }

    async fn record_backlog(&self) {
        let row: Result<(i64, Option<f64>), _> = sqlx::query_as(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.db)
        .await;
        if let Ok((n, age)) = row {
            metrics::gauge!("caseshare_outbox_backlog").set(n as f64);
            metrics::gauge!("caseshare_outbox_oldest_unpublished_seconds").set(age.unwrap_or(0.0));
        }
    }
}

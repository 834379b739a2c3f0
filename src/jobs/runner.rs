//! The job runner: consumes every job queue (and the upstream events queue)
//! with manual acks and bounded prefetch, and owns what every job shares:
//! claiming, retry with backoff and jitter, dead-lettering, spans, metrics.
//!
//! Outcomes (R36):
//! - handler `Ok` -> job `complete`, ack;
//! - `Transient` below the attempt budget -> republished to the retry step
//!   queue (confirmed) and acked; the TTL brings it back;
//! - `Permanent`, budget exhausted, or a malformed message -> published to the
//!   dead-letter queue with the reason, job `dead`, ack.
//!
//! The ack always comes after the outcome is durable, so a crash anywhere means
//! a redelivery, never a loss; handlers are idempotent, so never a double effect.
//!
//! The upstream events queue (R38), consumed in batches, is `jobs::events`.

use crate::amqp::{self, Publisher, Topology};
pub use crate::jobs::faults::Faults;
use crate::jobs::registry::Registry;
use crate::jobs::retry::{
    jittered_delay, publish_with_expiration, reconnect_backoff, retry_headers, step_for_attempt,
};
use crate::jobs::rows;
use crate::jobs::{JobError, JobMessage, JobStatus};
use crate::shutdown::Shutdown;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

/// Consumes the queues of every kind in `registry`; handlers get `ctx`.
pub struct Worker<C> {
    pub ctx: C,
    pub registry: Arc<Registry<C>>,
    pub db: sqlx::PgPool,
    pub topology: Topology,
    pub amqp_url: String,
    pub concurrency: u16,
    pub event_batch: EventBatch,
    pub max_attempts: u32,
    pub faults: Arc<Faults>,
    /// A running job touches its row every quarter of this, so that the
    /// rescuer (`jobs::rescue`) leaves it alone.
    pub job_lease: Duration,
}

/// Batched broker intake (R38): at most `max` deliveries per transaction,
/// collected for at most `wait` after the first.
#[derive(Debug, Clone, Copy)]
pub struct EventBatch {
    pub max: u16,
    pub wait: Duration,
}

/// Why a consumer loop ended.
pub(super) enum Ended {
    Shutdown,
    Crashed,
}

impl<C: Send + Sync + 'static> Worker<C> {
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let mut backoff = reconnect_backoff();
        while !shutdown.is_triggered() {
            match self.clone().session(&shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    let delay = backoff.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(error = %e, ?delay, "worker lost its broker session; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait() => break,
                    }
                }
            }
        }
        tracing::debug!("worker stopped");
    }

    async fn session(self: Arc<Self>, shutdown: &Shutdown) -> anyhow::Result<()> {
        let conn = Arc::new(
            amqp::connect(
                &self.amqp_url,
                &format!("caseshare-worker:{}", self.topology.prefix),
            )
            .await?,
        );
        let publisher = Publisher::open(&conn).await?;
        self.topology.declare(publisher.channel()).await?;
        let mut consumers = JoinSet::new();
        for kind in self.registry.names() {
            let queue = self.topology.job_queue(kind);
            consumers.spawn(self.clone().consume(
                conn.clone(),
                publisher.clone(),
                queue,
                kind,
                shutdown.clone(),
            ));
        }
        if self.registry.event_handler().is_some() {
            consumers.spawn(self.clone().consume_events(
                conn.clone(),
                publisher.clone(),
                shutdown.clone(),
            ));
        }
        tracing::info!(prefix = %self.topology.prefix, "worker consuming");

        let mut result = Ok(());
        while let Some(joined) = consumers.join_next().await {
            match joined {
                Ok(Ok(Ended::Shutdown)) => {}
                Ok(Ok(Ended::Crashed)) => {
                    result = Err(anyhow::anyhow!("simulated crash"));
                    consumers.abort_all();
                }
                Ok(Err(e)) => {
                    result = Err(e);
                    consumers.abort_all();
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    result = Err(anyhow::anyhow!("consumer task failed: {e}"));
                    consumers.abort_all();
                }
            }
        }
        if result.is_ok() {
            let _ = conn.close(200, "shutdown".into()).await;
        }
        result
    }

    async fn consume(
        self: Arc<Self>,
        conn: Arc<Connection>,
        publisher: Publisher,
        queue: String,
        kind: &'static str,
        shutdown: Shutdown,
    ) -> anyhow::Result<Ended> {
        let channel = conn.create_channel().await?;
        let prefetch = self.registry.prefetch(kind, self.concurrency);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("{}-{}", queue, Uuid::new_v4());
        let mut consumer = channel
            .basic_consume(
                queue.clone().into(),
                tag.clone().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut in_flight: JoinSet<Result<(), HandleError>> = JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.wait() => {
                    // Stop taking deliveries, let in-flight jobs finish (their
                    // acks need the channel), then close it.
                    let _ = channel.basic_cancel(tag.clone().into(), BasicCancelOptions::default()).await;
                    while in_flight.join_next().await.is_some() {}
                    let _ = channel.close(200, "shutdown".into()).await;
                    return Ok(Ended::Shutdown);
                }
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    match done {
                        Ok(Ok(())) => {
                            metrics::counter!("caseshare_messages_settled_total", "queue" => queue.clone()).increment(1);
                        }
                        Ok(Err(HandleError::Crash)) => {
                            // Die like a killed process: no ack, channel gone.
                            in_flight.abort_all();
                            let _ = channel.close(320, "simulated crash".into()).await;
                            return Ok(Ended::Crashed);
                        }
                        Ok(Err(HandleError::Broker(e))) => return Err(e.into()),
                        Err(e) => return Err(anyhow::anyhow!("delivery task failed: {e}")),
                    }
                }
                next = consumer.next() => {
                    let delivery = match next {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => return Err(e.into()),
                        None => anyhow::bail!("consumer on {queue} was cancelled"),
                    };
                    metrics::counter!("caseshare_messages_delivered_total", "queue" => queue.clone()).increment(1);
                    let me = self.clone();
                    let publisher = publisher.clone();
                    in_flight.spawn(async move { me.handle_job(kind, delivery, &publisher).await });
                }
            }
        }
    }

    async fn handle_job(
        &self,
        kind: &'static str,
        delivery: Delivery,
        publisher: &Publisher,
    ) -> Result<(), HandleError> {
        let message: JobMessage = match serde_json::from_slice(&delivery.data) {
            Ok(m) => m,
            Err(e) => {
                self.dead_letter(
                    &delivery,
                    publisher,
                    None,
                    kind,
                    &format!("malformed message: {e}"),
                    None,
                )
                .await?;
                return Ok(());
            }
        };
        let job_id = message.job_id;
        let (span, subjects) = self.registry.span(job_id, kind);
        async {
            let claimed = match rows::claim(&self.db, job_id, kind).await {
                Ok(c) => c,
                Err(e) => {
                    // Database down: put the message back for later.
                    tracing::warn!(error = %e, "cannot claim job; requeueing");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await?;
                    return Ok(());
                }
            };
            let Some((attempts, payload)) = claimed else {
                let attempts = match rows::attempts(&self.db, job_id).await {
                    Ok(a) => a,
                    Err(_) => Some(1), // cannot tell: treat as finished, never dead-letter
                };
                if let Some(attempts) = attempts {
                    // Already finished: a redelivery or a duplicate publish, or
                    // (never attempted) done by another job's run (coalesced).
                    if attempts > 0 {
                        metrics::counter!("caseshare_jobs_duplicate_deliveries_total", "kind" => kind).increment(1);
                    }
                    delivery.ack(BasicAckOptions::default()).await?;
                    return Ok(());
                }
                self.dead_letter(&delivery, publisher, Some(job_id), kind, "unknown job id", None)
                    .await?;
                return Ok(());
            };
            let span = tracing::Span::current();
            span.record("attempt", attempts);
            // What the job is about, for following it through the logs.
            for field in subjects {
                if let Some(id) = payload.get(field).and_then(|v| v.as_str()) {
                    span.record(*field, id);
                }
            }
            let started = Instant::now();
            let outcome = {
                let run = self.registry.run(kind, job_id, payload.clone(), &self.ctx);
                tokio::pin!(run);
                let every = (self.job_lease / 4).max(Duration::from_millis(100));
                let mut alive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tokio::select! {
                        outcome = &mut run => break outcome,
                        _ = alive.tick() => {
                            // A sign of life for the rescuer; a failure here
                            // only risks a harmless second run.
                            let _ = rows::touch(&self.db, job_id).await;
                        }
                    }
                }
            };
            metrics::histogram!("caseshare_job_duration_seconds", "kind" => kind)
                .record(started.elapsed().as_secs_f64());
            match outcome {
                Ok(()) => {
                    if self.faults.take(kind) {
                        return Err(HandleError::Crash);
                    }
                    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "job complete");
                    if let Some(latency) = self.finish(job_id, JobStatus::Complete, None).await {
                        metrics::histogram!("caseshare_job_latency_seconds", "kind" => kind).record(latency);
                    }
                    metrics::counter!("caseshare_jobs_total", "kind" => kind, "outcome" => JobStatus::Complete.as_str()).increment(1);
                    delivery.ack(BasicAckOptions::default()).await?;
                }
                Err(e @ JobError::Transient { .. }) if (attempts as u32) < self.max_attempts => {
                    let reason = e.chain();
                    let steps = &self.topology.retry_delays_ms;
                    let step = step_for_attempt(attempts as u32, steps.len());
                    let delay = jittered_delay(steps[step]);
                    tracing::warn!(%reason, ?delay, "job failed; retrying");
                    let props_headers = retry_headers(&delivery, &reason);
                    let published = publish_with_expiration(
                        publisher,
                        &self.topology.retry_exchange(step),
                        kind,
                        &delivery.data,
                        props_headers,
                        delay,
                    )
                    .await;
                    if let Err(e) = published {
                        tracing::warn!(error = %e, "cannot schedule retry; requeueing");
                        delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await?;
                        return Ok(());
                    }
                    let _ = rows::retrying(&self.db, job_id, &reason).await;
                    metrics::counter!("caseshare_jobs_retried_total", "kind" => kind).increment(1);
                    delivery.ack(BasicAckOptions::default()).await?;
                }
                Err(e) => {
                    let reason = match &e {
                        JobError::Transient { .. } => format!("gave up after {attempts} attempts: {}", e.chain()),
                        JobError::Permanent { .. } => e.chain(),
                    };
                    tracing::error!(%reason, "job failed for good");
                    let subject = Some((kind, payload));
                    self.dead_letter(&delivery, publisher, Some(job_id), kind, &reason, subject)
                        .await?;
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// R38: an upstream system published to the events exchange; the
    /// registered event handler records it.
    pub(super) async fn dead_letter(
        &self,
        delivery: &Delivery,
        publisher: &Publisher,
        job_id: Option<Uuid>,
        kind: &str,
        reason: &str,
        subject: Option<(&str, serde_json::Value)>,
    ) -> Result<(), HandleError> {
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        headers.insert("x-reason".into(), AMQPValue::LongString(reason.into()));
        headers.insert("x-kind".into(), AMQPValue::LongString(kind.into()));
        if let Some(id) = job_id {
            headers.insert(
                "x-job-id".into(),
                AMQPValue::LongString(id.to_string().into()),
            );
        }
        if let Err(e) = publisher
            .publish(
                &self.topology.dead_exchange(),
                kind,
                &delivery.data,
                headers,
                None,
            )
            .await
        {
            tracing::warn!(error = %e, "cannot dead-letter; requeueing");
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await?;
            return Ok(());
        }
        // The job's subject shows the failure (a share `failed`, a notice
        // `failed`) before the job itself reads `dead`; the hooks are idempotent.
        if let Some((job_kind, payload)) = subject {
            self.registry
                .dead(job_kind, payload, &self.ctx, reason)
                .await;
        }
        if let Some(id) = job_id {
            self.finish(id, JobStatus::Dead, Some(reason)).await;
        }
        metrics::counter!("caseshare_jobs_dead_lettered_total", "kind" => kind.to_string())
            .increment(1);
        delivery.ack(BasicAckOptions::default()).await?;
        Ok(())
    }

    /// Record the outcome; returns the job's latency (created to finished).
    async fn finish(&self, job_id: Uuid, status: JobStatus, error: Option<&str>) -> Option<f64> {
        match rows::finish(&self.db, job_id, status, error).await {
            Ok(latency) => Some(latency),
            Err(e) => {
                // The handler's effects are keyed, so a redelivery will finish it.
                tracing::warn!(error = %e, %job_id, "cannot record job outcome");
                None
            }
        }
    }
}

#[derive(Debug)]
pub(super) enum HandleError {
    Crash,
    Broker(lapin::Error),
}

impl From<lapin::Error> for HandleError {
    fn from(e: lapin::Error) -> Self {
        HandleError::Broker(e)
    }
}

#[cfg(test)]
mod tests {
    // A log filter on the runner must show the job spans it runs in.
    #[test]
    fn job_spans_have_the_runners_target() {
        assert_eq!(
            crate::jobs::SPAN_TARGET,
            module_path!().trim_end_matches("::tests")
        );
    }
}

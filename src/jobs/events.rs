//! The upstream events queue (R38), consumed by the runner in batches: what
//! is waiting is recorded in one transaction by the registry's events
//! handler, then settled together or, when some failed, one by one.

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::Connection;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use super::registry::{EventError, Upstream};
use super::runner::{Ended, HandleError, Worker};
use crate::amqp::Publisher;
use crate::shutdown::Shutdown;

impl<C: Send + Sync + 'static> Worker<C> {
    /// The upstream events queue (R38), batched: take what is waiting (up
    /// to `event_batch.max` deliveries, or what arrives within
    /// `event_batch.wait` of the first), record it in one transaction, then
    /// settle: one `multiple` ack when every event was recorded; otherwise
    /// each delivery alone (an invalid event is dead-lettered by itself, the
    /// rest go through). Batches run one after another on the channel, so a
    /// `multiple` ack covers exactly the batch.
    pub(super) async fn consume_events(
        self: Arc<Self>,
        conn: Arc<Connection>,
        publisher: Publisher,
        shutdown: Shutdown,
    ) -> anyhow::Result<Ended> {
        let queue = self.topology.events_queue();
        let channel = conn.create_channel().await?;
        let max = usize::from(self.event_batch.max.max(1));
        channel
            .basic_qos(
                self.event_batch.max.max(self.concurrency),
                BasicQosOptions::default(),
            )
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
        loop {
            let first = tokio::select! {
                _ = shutdown.wait() => {
                    let _ = channel.basic_cancel(tag.clone().into(), BasicCancelOptions::default()).await;
                    let _ = channel.close(200, "shutdown".into()).await;
                    return Ok(Ended::Shutdown);
                }
                next = consumer.next() => match next {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => return Err(e.into()),
                    None => anyhow::bail!("consumer on {queue} was cancelled"),
                },
            };
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + self.event_batch.wait;
            while batch.len() < max {
                match tokio::time::timeout_at(deadline, consumer.next()).await {
                    Ok(Some(Ok(d))) => batch.push(d),
                    Ok(Some(Err(e))) => return Err(e.into()),
                    Ok(None) => anyhow::bail!("consumer on {queue} was cancelled"),
                    Err(_) => break,
                }
            }
            metrics::counter!("caseshare_messages_delivered_total", "queue" => queue.clone())
                .increment(batch.len() as u64);
            metrics::histogram!("caseshare_event_batch_size").record(batch.len() as f64);
            match self.handle_events(&batch, &publisher).await {
                Ok(()) => {
                    metrics::counter!("caseshare_messages_settled_total", "queue" => queue.clone())
                        .increment(batch.len() as u64);
                }
                Err(HandleError::Crash) => {
                    let _ = channel.close(320, "simulated crash".into()).await;
                    return Ok(Ended::Crashed);
                }
                Err(HandleError::Broker(e)) => return Err(e.into()),
            }
        }
    }

    async fn handle_events(
        &self,
        batch: &[Delivery],
        publisher: &Publisher,
    ) -> Result<(), HandleError> {
        let Some(events) = self.registry.event_handler() else {
            return Ok(());
        };
        let upstream: Vec<Upstream> = batch
            .iter()
            .map(|d| Upstream {
                user_id: d.properties.user_id().as_ref().map(|u| u.as_str()),
                body: d.data.as_slice(),
            })
            .collect();
        let results = events.handle(&self.ctx, &upstream).await;
        // Fault injection (crash tests): the batch is recorded, not yet acked.
        if self.faults.take(events.kind) {
            return Err(HandleError::Crash);
        }
        let recorded = results.iter().filter(|r| r.is_ok()).count();
        metrics::counter!("caseshare_events_ingested_total").increment(recorded as u64);
        if recorded == batch.len() {
            if let Some(last) = batch.last() {
                last.ack(BasicAckOptions { multiple: true }).await?;
            }
            return Ok(());
        }
        let mut waited = false;
        for (delivery, result) in batch.iter().zip(results) {
            match result {
                Ok(()) => {
                    delivery.ack(BasicAckOptions::default()).await?;
                }
                Err(EventError::Invalid(reason)) => {
                    self.dead_letter(delivery, publisher, None, events.kind, &reason, None)
                        .await?;
                }
                Err(EventError::Unavailable(reason)) => {
                    if !waited {
                        tracing::warn!(%reason, "cannot record events yet; requeueing");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        waited = true;
                    }
                    delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await?;
                }
            }
        }
        Ok(())
    }
}

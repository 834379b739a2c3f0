//! RabbitMQ: connection, topology and a confirming publisher (R35, R36).
//!
//! Topology, every name under the configured prefix `P`:
//! - `P.jobs` (direct exchange) -> one durable quorum queue per job kind,
//!   `P.jobs.<kind>`, bound by the kind; a queue's own poison-message limit
//!   (`x-delivery-limit`) dead-letters into `P.dead`.
//! - `P.retry.<n>` (fanout exchange + queue per backoff step): messages wait
//!   there for the step's TTL, then dead-letter back to `P.jobs` with their
//!   original routing key. One queue per step, because a TTL only expires
//!   messages at a queue's head.
//! - `P.dead` (fanout exchange + quorum queue): jobs that failed for good,
//!   with the reason in the `x-reason` header.
//! - `P.events` (topic exchange) -> `P.events.evidence-added` (`evidence.added`):
//!   upstream systems publish evidence here instead of calling HTTP (R38).
//! - `P.status` (topic exchange): status events such as `share.complete` (R15).

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

pub const EVIDENCE_ADDED_ROUTING_KEY: &str = "evidence.added";

#[derive(Debug, Clone)]
pub struct Topology {
    pub prefix: String,
    pub retry_delays_ms: Vec<u64>,
    /// The job kinds whose queues this deployment declares (the registry's).
    pub job_kinds: Vec<&'static str>,
}

impl Topology {
    pub fn new(prefix: &str, retry_delays_ms: &[u64]) -> Self {
        Self {
            prefix: prefix.to_string(),
            retry_delays_ms: retry_delays_ms.to_vec(),
            job_kinds: Vec::new(),
        }
    }

    /// With a queue for each of these job kinds.
    pub fn with_job_kinds(mut self, kinds: Vec<&'static str>) -> Self {
        self.job_kinds = kinds;
        self
    }
    pub fn jobs_exchange(&self) -> String {
        format!("{}.jobs", self.prefix)
    }
    pub fn job_queue(&self, kind: &str) -> String {
        format!("{}.jobs.{}", self.prefix, kind)
    }
    pub fn retry_exchange(&self, step: usize) -> String {
        format!("{}.retry.{}", self.prefix, step)
    }
    pub fn retry_queue(&self, step: usize) -> String {
        format!("{}.retry.{}", self.prefix, step)
    }
    pub fn dead_exchange(&self) -> String {
        format!("{}.dead", self.prefix)
    }
    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }
    pub fn events_queue(&self) -> String {
        format!("{}.events.evidence-added", self.prefix)
    }
    pub fn status_exchange(&self) -> String {
        format!("{}.status", self.prefix)
    }

    /// Every queue this deployment owns, for metrics and the `queues` command.
    pub fn all_queues(&self) -> Vec<String> {
        let mut queues: Vec<String> = self.job_kinds.iter().map(|k| self.job_queue(k)).collect();
        queues.push(self.events_queue());
        queues.extend((0..self.retry_delays_ms.len()).map(|i| self.retry_queue(i)));
        queues.push(self.dead_queue());
        queues
    }

    /// Declare everything; idempotent, run by every process on start.
    pub async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        exchange(ch, &self.jobs_exchange(), ExchangeKind::Direct).await?;
        exchange(ch, &self.dead_exchange(), ExchangeKind::Fanout).await?;
        exchange(ch, &self.events_exchange(), ExchangeKind::Topic).await?;
        exchange(ch, &self.status_exchange(), ExchangeKind::Topic).await?;
        let dead = self.dead_exchange();
        queue(ch, &self.dead_queue(), quorum_args(None, None), &dead, "").await?;
        for kind in &self.job_kinds {
            let args = quorum_args(Some(&dead), Some(20));
            queue(ch, &self.job_queue(kind), args, &self.jobs_exchange(), kind).await?;
        }
        for (step, delay) in self.retry_delays_ms.iter().enumerate() {
            let ex = self.retry_exchange(step);
            exchange(ch, &ex, ExchangeKind::Fanout).await?;
            let mut args = quorum_args(Some(&self.jobs_exchange()), None);
            // Upper bound: each message carries its own jittered expiration in [d, 2d).
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(2 * *delay as i64),
            );
            queue(ch, &self.retry_queue(step), args, &ex, "").await?;
        }
        let args = quorum_args(Some(&dead), Some(20));
        queue(
            ch,
            &self.events_queue(),
            args,
            &self.events_exchange(),
            EVIDENCE_ADDED_ROUTING_KEY,
        )
        .await?;
        Ok(())
    }
}

async fn exchange(ch: &Channel, name: &str, kind: ExchangeKind) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(name.into(), kind, durable, FieldTable::default())
        .await
}

/// Declare a durable queue and bind it to `exchange` with `key`.
async fn queue(
    ch: &Channel,
    name: &str,
    args: FieldTable,
    exchange: &str,
    key: &str,
) -> lapin::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(name.into(), durable, args).await?;
    ch.queue_bind(
        name.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
}

fn quorum_args(dead_letter_exchange: Option<&str>, delivery_limit: Option<i64>) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    if let Some(dlx) = dead_letter_exchange {
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.into()),
        );
        args.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString("at-least-once".into()),
        );
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
    }
    if let Some(limit) = delivery_limit {
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(limit));
    }
    args
}

/// Connect to the broker. `urls` is one AMQP URL or several separated by
/// commas, the nodes of one cluster: they are tried in turn from a random
/// one, so processes spread over the nodes and a reconnect after a node is
/// lost lands on another (quorum queues live on every node).
pub async fn connect(urls: &str, name: &str) -> lapin::Result<Connection> {
    let nodes: Vec<&str> = node_urls(urls).collect();
    let start = if nodes.len() > 1 {
        rand::random_range(0..nodes.len())
    } else {
        0
    };
    let mut last = None;
    for i in 0..nodes.len() {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        match Connection::connect(nodes[(start + i) % nodes.len()], props).await {
            Ok(conn) => return Ok(conn),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no AMQP URL").into()
    }))
}

/// The node URLs of a (possibly comma-separated) `CASESHARE_AMQP_URL`.
pub fn node_urls(urls: &str) -> impl Iterator<Item = &str> {
    urls.split(',').map(str::trim).filter(|u| !u.is_empty())
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("broker refused the message (nack)")]
    Nacked,
    #[error("message was unroutable: {0}")]
    Unroutable(String),
}

/// A channel in confirm mode. Every publish is `mandatory`, and a confirm that
/// carries a returned message counts as a failure (see FIELD-NOTES.md).
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
}

impl Publisher {
    pub async fn open(conn: &Connection) -> lapin::Result<Self> {
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self { channel })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
        message_id: Option<&str>,
    ) -> Result<(), PublishError> {
        let mut props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(headers);
        if let Some(id) = message_id {
            props = props.with_message_id(id.into());
        }
        self.publish_with(exchange, routing_key, body, props).await
    }

    /// Publish with explicit properties; confirmed and mandatory like `publish`.
    pub async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), PublishError> {
        self.send(exchange, routing_key, body, props, true).await
    }

    /// Publish a broadcast (status events, R15), confirmed but not
    /// `mandatory`: with no reader bound, the broker drops it quietly
    /// instead of returning it (lapin logs every returned message, body and
    /// all, as a warning: a newcomer's log filled with one per event).
    pub async fn broadcast(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        message_id: &str,
    ) -> Result<(), PublishError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message_id.into());
        self.send(exchange, routing_key, body, props, false).await
    }

    async fn send(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
        mandatory: bool,
    ) -> Result<(), PublishError> {
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..Default::default()
                },
                body,
                props,
            )
            .await?
            .await?;
        if confirm.is_nack() {
            return Err(PublishError::Nacked);
        }
        if let Some(returned) = confirm.take_message() {
            return Err(PublishError::Unroutable(returned.reply_text.to_string()));
        }
        Ok(())
    }
}

pub fn header_str(headers: &FieldTable, key: &str) -> Option<String> {
    headers
        .inner()
        .get(&ShortString::from(key))
        .and_then(|v| match v {
            AMQPValue::LongString(s) => Some(s.to_string()),
            AMQPValue::ShortString(s) => Some(s.to_string()),
            _ => None,
        })
}

//! Status events (R59) as a subscriber sees them: a queue bound to one
//! org's events on the deployment's status exchange.

use super::*;

/// A listener on the deployment's status exchange (`<prefix>.status`), bound
/// to some events of one org (R59: `status.<org_id>.<event>`), collecting
/// every event as (event, JSON body), the event without the
/// `status.<org_id>.` prefix.
pub struct StatusListener {
    conn: lapin::Connection,
    channel: lapin::Channel,
    queue: String,
    prefix: String,
    events: std::sync::Mutex<Vec<(String, Value)>>,
}

impl StatusListener {
    /// Bind an exclusive queue to `org`'s events matching `keys` (e.g.
    /// `share.#`).
    pub async fn bind(app: &TestApp, org: Uuid, keys: &[&str]) -> StatusListener {
        Self::bind_keys(app, format!("status.{org}."), keys).await
    }

    /// Bind to every event of every org; events keep their whole routing key.
    pub async fn bind_all(app: &TestApp) -> StatusListener {
        Self::bind_keys(app, String::new(), &["#"]).await
    }

    async fn bind_keys(app: &TestApp, prefix: String, keys: &[&str]) -> StatusListener {
        use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
        use lapin::types::FieldTable;
        let exchange = format!("{}.status", app.prefix);
        let conn = caseshare::amqp::connect(&app.amqp_url, "status-listener")
            .await
            .unwrap();
        // The topology is declared asynchronously at start: wait for the exchange.
        eventually("the status exchange to exist", || async {
            // A failed passive declare closes its channel: a fresh one each time.
            let ch = conn.create_channel().await.ok()?;
            ch.exchange_declare(
                exchange.clone().into(),
                lapin::ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()
        })
        .await;
        let channel = conn.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .name()
            .to_string();
        for key in keys {
            channel
                .queue_bind(
                    queue.clone().into(),
                    exchange.clone().into(),
                    format!("{prefix}{key}").into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
        StatusListener {
            conn,
            channel,
            queue,
            prefix,
            events: Default::default(),
        }
    }

    /// Wait until an event with each of `keys` has arrived (in any order,
    /// each as often as it is listed); returns every event seen so far.
    pub async fn wait_for(&self, keys: &[&str]) -> Vec<(String, Value)> {
        use lapin::options::BasicGetOptions;
        eventually(&format!("status events {keys:?}"), || async {
            while let Ok(Some(m)) = self
                .channel
                .basic_get(self.queue.clone().into(), BasicGetOptions { no_ack: true })
                .await
            {
                let body: Value =
                    serde_json::from_slice(&m.delivery.data).expect("a JSON event body");
                let key = m.delivery.routing_key.as_str();
                let event = key
                    .strip_prefix(self.prefix.as_str())
                    .unwrap_or_else(|| panic!("{key} reached a listener bound to {}", self.prefix));
                self.events.lock().unwrap().push((event.to_string(), body));
            }
            let got = self.events.lock().unwrap();
            keys.iter()
                .all(|k| {
                    let wanted = keys.iter().filter(|w| *w == k).count();
                    got.iter().filter(|(key, _)| key == k).count() >= wanted
                })
                .then(|| got.clone())
        })
        .await
    }

    pub async fn close(self) {
        let _ = self.conn.close(200, "bye".into()).await;
    }
}

/// The `x-reason` of the next `n` messages of `topology`'s dead-letter
/// queue, in the order they are taken (each one waited for).
pub async fn dead_letter_reasons(
    ch: &lapin::Channel,
    topology: &caseshare::amqp::Topology,
    n: usize,
) -> Vec<String> {
    let mut reasons = Vec::with_capacity(n);
    while reasons.len() < n {
        let got = eventually("a dead letter", || async {
            ch.basic_get(
                topology.dead_queue().into(),
                lapin::options::BasicGetOptions { no_ack: true },
            )
            .await
            .ok()
            .flatten()
        })
        .await;
        let headers = got.properties.headers().clone().unwrap_or_default();
        reasons.push(caseshare::amqp::header_str(&headers, "x-reason").unwrap_or_default());
    }
    reasons
}

//! `caseshare queues`: every queue of the deployment with its depth and
//! consumers, by passive declare (R37).

use std::fmt::Write as _;

use super::{broker, passive_declare, topology};
use crate::config::Settings;

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

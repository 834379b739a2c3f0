//! Retry delays: exponential steps (one RabbitMQ queue each) with jitter from
//! `backon` (the maintained successor of `backoff`, RUSTSEC-2025-0012).
//!
//! Step `i` has a base delay `b_i`; a message waits `b_i + jitter`, jitter in
//! `[0, b_i)`, so the step queue's TTL is `2 * b_i` as an upper bound.

use backon::{BackoffBuilder, ConstantBuilder, ExponentialBuilder};
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use std::time::Duration;

/// Which retry step an attempt (1-based, the one that just failed) goes to.
pub fn step_for_attempt(attempt: u32, steps: usize) -> usize {
    (attempt.saturating_sub(1) as usize).min(steps.saturating_sub(1))
}

/// The jittered delay for a step.
pub fn jittered_delay(base_ms: u64) -> Duration {
    ConstantBuilder::default()
        .with_delay(Duration::from_millis(base_ms))
        .with_jitter()
        .with_max_times(1)
        .build()
        .next()
        .unwrap_or(Duration::from_millis(base_ms))
}

/// Backoff for reconnecting to the broker or database: 100 ms doubling to 10 s,
/// with jitter, forever.
pub fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}

/// The delivery's headers plus the reason of the failure being retried.
pub(crate) fn retry_headers(delivery: &Delivery, reason: &str) -> FieldTable {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert("x-last-error".into(), AMQPValue::LongString(reason.into()));
    headers
}

/// Publish to a retry step's exchange with the jittered delay as the
/// message's expiration; the step queue dead-letters it back when it expires.
pub(crate) async fn publish_with_expiration(
    publisher: &crate::amqp::Publisher,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    headers: FieldTable,
    delay: Duration,
) -> Result<(), crate::amqp::PublishError> {
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(headers)
        .with_expiration(delay.as_millis().to_string().into());
    publisher
        .publish_with(exchange, routing_key, body, props)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    // R36: exponential steps, jitter within [base, 2*base).
    #[test]
    fn r36_delays_are_jittered_within_the_step() {
        for _ in 0..100 {
            let d = jittered_delay(1000);
            assert!(
                d >= Duration::from_millis(1000) && d < Duration::from_millis(2000),
                "{d:?}"
            );
        }
        let distinct: std::collections::HashSet<_> =
            (0..20).map(|_| jittered_delay(1000)).collect();
        assert!(distinct.len() > 1, "jitter must be on");
    }

    #[test]
    fn r36_attempts_map_to_increasing_steps() {
        assert_eq!(step_for_attempt(1, 5), 0);
        assert_eq!(step_for_attempt(2, 5), 1);
        assert_eq!(step_for_attempt(9, 5), 4);
    }

    #[test]
    fn reconnect_backoff_grows_and_is_bounded() {
        let delays: Vec<_> = reconnect_backoff().take(12).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(20)));
        assert!(delays[8] > delays[0]);
    }
}

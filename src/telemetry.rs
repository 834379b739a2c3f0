//! Logging (tracing, text or JSON) and the process-wide Prometheus recorder.
//! Log lines carry ids and kinds only, never evidence field values (R10).
//!
//! Every metric the service records is listed once in [`METRICS`], with its
//! type and help text: the recorder describes them all when it is installed,
//! so every family in `/metrics` has its `# HELP` and `# TYPE` lines (a unit
//! test below fails when a `metrics::counter!`/`gauge!`/`histogram!` in `src/`
//! names a metric missing from the list). Each process also reports
//! `caseshare_build_info` and the standard `process_*` metrics (RSS, CPU
//! seconds, open file descriptors, threads, start time), refreshed on each
//! scrape.

use crate::config::LogFormat;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        // The message and the event's fields at the top level of each line
        // (`{"timestamp","level","message",...,"span":{...}}`), where log
        // shippers look for them; the job span stays under "span".
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric of the service: (name, type, help). README's metrics table
/// says the same in more words.
pub const METRICS: &[(&str, MetricType, &str)] = {
    use MetricType::*;
    &[
        ("caseshare_build_info", Gauge, "Always 1; the version of the running binary is in the label."),
        ("caseshare_queue_messages", Gauge, "Messages in each RabbitMQ queue of this deployment (passive declare at scrape time)."),
        ("caseshare_queue_consumers", Gauge, "Consumers on each RabbitMQ queue of this deployment; 0 on a jobs queue means no worker runs."),
        ("caseshare_jobs_by_status", Gauge, "Job rows in PostgreSQL by kind and status, read at scrape time; every known kind and status is reported, 0 included."),
        ("caseshare_notices", Gauge, "Notice rows in PostgreSQL by status, read at scrape time; every status is reported, 0 included."),
        ("caseshare_jobs_total", Counter, "Jobs this process finished, by kind and outcome."),
        ("caseshare_jobs_retried_total", Counter, "Transient job failures this process scheduled on a retry queue."),
        ("caseshare_jobs_dead_lettered_total", Counter, "Jobs this process sent to the dead-letter queue (permanent failure, attempts exhausted, malformed message)."),
        ("caseshare_jobs_duplicate_deliveries_total", Counter, "Deliveries of jobs that had already finished (redelivery after a crash or a lost ack)."),
        ("caseshare_jobs_rescued_total", Counter, "Jobs published again by the rescuer after showing no life for their lease (CASESHARE_JOB_LEASE_SECS)."),
        ("caseshare_http_rate_limited_total", Counter, "Requests refused with 429 because their token was over its rate."),
        ("caseshare_audit_entries_refused_total", Counter, "Audit entries the sealer refused: no valid MAC, written outside the service."),
        ("caseshare_event_batch_size", Histogram, "Upstream events (R38) recorded per transaction by the batched events consumer."),
        ("caseshare_jobs_coalesced_total", Counter, "Queued jobs completed by another job's run of the same case."),
        ("caseshare_job_duration_seconds", Histogram, "Handler time of one job attempt."),
        ("caseshare_job_latency_seconds", Histogram, "From a job's creation to its completion, retries included."),
        ("caseshare_messages_delivered_total", Counter, "AMQP deliveries this process received, by queue."),
        ("caseshare_messages_settled_total", Counter, "AMQP deliveries this process acked or rejected after handling, by queue."),
        ("caseshare_events_ingested_total", Counter, "Upstream evidence events consumed from the events queue."),
        ("caseshare_outbox_published_total", Counter, "Outbox rows this process published with a broker confirm."),
        ("caseshare_outbox_backlog", Gauge, "Committed outbox rows not yet published."),
        ("caseshare_outbox_oldest_unpublished_seconds", Gauge, "Age of the oldest unpublished outbox row (0 when none)."),
        ("caseshare_http_requests_total", Counter, "HTTP requests by route template, method and status."),
        ("caseshare_http_request_duration_seconds", Histogram, "HTTP request latency by route template and method."),
        ("caseshare_emails_sent_total", Counter, "Notices accepted by the SMTP server, by kind."),
        ("caseshare_emails_failed_total", Counter, "Notices given up on (SMTP 5xx or retry budget exhausted)."),
    ]
};

/// The standard process metrics (`process_resident_memory_bytes`,
/// `process_cpu_seconds_total`, `process_open_fds`, ...).
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Describe every metric and set the build info; run once, right after the
/// recorder is installed (descriptions given to no recorder are lost).
fn describe_all() {
    for (name, kind, help) in METRICS {
        match kind {
            MetricType::Counter => metrics::describe_counter!(*name, *help),
            MetricType::Gauge => metrics::describe_gauge!(*name, *help),
            MetricType::Histogram => {
                metrics::describe_histogram!(*name, metrics::Unit::Seconds, *help)
            }
        }
    }
    metrics::gauge!("caseshare_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    process_collector().describe();
}

/// Refresh what is read from the process itself; called on each scrape.
pub fn collect_process_metrics() {
    process_collector().collect();
}

/// The Prometheus recorder is global to the process; installed once, by the
/// first `Application::build` (any role: workers record metrics too).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("static buckets are valid");
            let handle = match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (e.g. by an embedding program):
                // keep a private one so /metrics still answers.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe_all();
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `(macro, metric name)` for every `metrics::counter!("…"` (and gauge,
    /// histogram) under `dir`.
    fn recorded_in(dir: &Path, out: &mut Vec<(String, String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                recorded_in(&path, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for kind in ["counter", "gauge", "histogram"] {
                let needle = format!("{kind}!(");
                for (at, _) in text.match_indices(&needle) {
                    let rest = text[at + needle.len()..].trim_start();
                    let Some(rest) = rest.strip_prefix('"') else {
                        continue;
                    };
                    let name = &rest[..rest.find('"').unwrap()];
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    {
                        continue; // not a metric name (e.g. this comment's example)
                    }
                    out.push((path.display().to_string(), kind.into(), name.into()));
                }
            }
        }
    }

    #[test]
    fn every_recorded_metric_is_described_with_its_type() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        recorded_in(&src, &mut found);
        assert!(found.len() > 15, "the scan found the metrics: {found:?}");
        for (file, kind, name) in found {
            let described = METRICS.iter().find(|(n, _, _)| *n == name);
            let Some((_, t, _)) = described else {
                panic!("{file}: {name} is recorded but not in telemetry::METRICS");
            };
            assert_eq!(
                format!("{t:?}").to_lowercase(),
                kind,
                "{file}: {name} is a {kind}"
            );
        }
    }

    #[test]
    fn metric_names_do_not_collide_under_openmetrics() {
        // OpenMetrics strips `_total` from a counter's family name (and
        // `_bucket`/`_sum`/`_count` belong to histograms): no other metric
        // may be named like that.
        for (name, kind, _) in METRICS {
            if *kind == MetricType::Counter {
                assert!(name.ends_with("_total"), "{name}");
                let family = name.trim_end_matches("_total");
                assert!(
                    METRICS.iter().all(|(n, _, _)| *n != family),
                    "{name} collides with {family}"
                );
            }
        }
    }
}

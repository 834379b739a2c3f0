//! Operations: liveness, readiness (database and broker), Prometheus metrics
//! (queue depth read from the broker, jobs and notices by status from
//! PostgreSQL, zero-filled; R37), job status, and the OpenAPI document.
//! `serve` and `api` serve the first three on the API's address, `worker` on
//! its own (`http::ops_router`, `CASESHARE_METRICS_ADDR`).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Principal;
use super::error::ErrorBody;
use super::extract::Path;
use super::AppState;
use crate::error::{Error, Result};
use crate::jobs::{self, JobView};

/// A lazily (re)connected broker channel for probes; never used for jobs.
#[derive(Default)]
pub struct BrokerProbe {
    inner: tokio::sync::Mutex<Option<(lapin::Connection, lapin::Channel)>>,
    /// When the gauges that cost a query (queues, jobs, notices) were last
    /// collected: `/metrics` is unauthenticated, so a scrape storm must not
    /// become a storm of passive declares and table aggregates.
    collected: std::sync::Mutex<Option<std::time::Instant>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueStats {
    pub queue: String,
    pub messages: u32,
    pub consumers: u32,
}

impl BrokerProbe {
    /// True at most once per `every` (always when `every` is zero): this
    /// caller collects, the others render the gauges' last values.
    fn collect_due(&self, every: std::time::Duration) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.collected.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < every) {
            return false;
        }
        *last = Some(now);
        true
    }

    async fn channel(&self, url: &str) -> anyhow::Result<lapin::Channel> {
        let mut guard = self.inner.lock().await;
        if let Some((conn, ch)) = guard.as_ref() {
            if conn.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        let conn = tokio::time::timeout(
            Duration::from_secs(3),
            crate::amqp::connect(url, "caseshare-probe"),
        )
        .await??;
        let ch = conn.create_channel().await?;
        *guard = Some((conn, ch.clone()));
        Ok(ch)
    }

    /// Depth and consumers of each queue, by passive declare.
    pub async fn queue_stats(
        &self,
        url: &str,
        queues: &[String],
    ) -> anyhow::Result<Vec<QueueStats>> {
        let mut out = Vec::with_capacity(queues.len());
        for q in queues {
            let ch = self.channel(url).await?;
            let opts = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            match ch
                .queue_declare(q.clone().into(), opts, FieldTable::default())
                .await
            {
                Ok(info) => out.push(QueueStats {
                    queue: q.clone(),
                    messages: info.message_count(),
                    consumers: info.consumer_count(),
                }),
                // A passive declare of a missing queue closes the channel;
                // the next call reconnects.
                Err(_) => out.push(QueueStats {
                    queue: q.clone(),
                    messages: 0,
                    consumers: 0,
                }),
            }
        }
        Ok(out)
    }
}

#[utoipa::path(get, path = "/healthz", tag = "ops", security(()),
    responses((status = 200, body = String, content_type = "text/plain", description = "`ok`")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Whether each dependency answered the readiness probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub database: bool,
    pub broker: bool,
}

#[utoipa::path(get, path = "/readyz", tag = "ops", security(()),
    responses((status = 200, body = Readiness, description = "ready"),
              (status = 503, body = Readiness, description = "the database or the broker is unreachable")))]
pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let db = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&s.db)
        .await
        .is_ok();
    let broker = s.probe.channel(&s.settings.amqp_url).await.is_ok();
    let status = if db && broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(Readiness {
            database: db,
            broker,
        }),
    )
}

#[utoipa::path(get, path = "/metrics", tag = "ops", security(()),
    responses((status = 200, body = String, content_type = "text/plain", description = "Prometheus text format (version 0.0.4)")))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let every = std::time::Duration::from_secs(s.settings.metrics_refresh_secs);
    if s.probe.collect_due(every) {
        if let Ok(stats) = s
            .probe
            .queue_stats(&s.settings.amqp_url, &s.topology.all_queues())
            .await
        {
            for q in stats {
                metrics::gauge!("caseshare_queue_messages", "queue" => q.queue.clone())
                    .set(q.messages as f64);
                metrics::gauge!("caseshare_queue_consumers", "queue" => q.queue)
                    .set(q.consumers as f64);
            }
        }
        if let Ok(rows) = job_counts(&s).await {
            for ((kind, status), n) in rows {
                metrics::gauge!("caseshare_jobs_by_status", "kind" => kind, "status" => status)
                    .set(n as f64);
            }
        }
        if let Ok(rows) = notice_counts(&s).await {
            for (status, n) in rows {
                metrics::gauge!("caseshare_notices", "status" => status).set(n as f64);
            }
        }
    }
    crate::telemetry::collect_process_metrics();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// Jobs by (kind, status), zero-filled: the recorder keeps a gauge's last
/// value forever, so a label set whose rows are gone must be set to 0, not
/// left out. Known label sets: every registered kind and every kind seen in
/// an earlier scrape, crossed with every value of the `job_status` type.
async fn job_counts(s: &AppState) -> sqlx::Result<BTreeMap<(String, String), i64>> {
    static SEEN_KINDS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let statuses = enum_values(&s.db, "job_status").await?;
    let rows = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT kind, status::text, count(*) FROM jobs GROUP BY 1, 2",
    )
    .fetch_all(&s.db)
    .await?;
    let mut kinds = SEEN_KINDS.lock().unwrap_or_else(|e| e.into_inner());
    kinds.extend(s.topology.job_kinds.iter().map(|k| k.to_string()));
    kinds.extend(rows.iter().map(|(k, _, _)| k.clone()));
    let mut counts: BTreeMap<(String, String), i64> = kinds
        .iter()
        .flat_map(|k| statuses.iter().map(move |st| ((k.clone(), st.clone()), 0)))
        .collect();
    counts.extend(rows.into_iter().map(|(k, st, n)| ((k, st), n)));
    Ok(counts)
}

/// Notices by status, zero-filled like [`job_counts`].
async fn notice_counts(s: &AppState) -> sqlx::Result<BTreeMap<String, i64>> {
    let mut counts: BTreeMap<String, i64> = enum_values(&s.db, "notice_status")
        .await?
        .into_iter()
        .map(|st| (st, 0))
        .collect();
    let rows =
        sqlx::query_as::<_, (String, i64)>("SELECT status::text, count(*) FROM notices GROUP BY 1")
            .fetch_all(&s.db)
            .await?;
    counts.extend(rows);
    Ok(counts)
}

/// The values of a PostgreSQL enum type, in their declared order: the
/// statuses a gauge must report even when no row has them.
async fn enum_values(db: &sqlx::PgPool, type_name: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT enumlabel::text FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
          WHERE t.typname = $1 ORDER BY e.enumsortorder",
    )
    .bind(type_name)
    .fetch_all(db)
    .await
}

#[utoipa::path(get, path = "/v1/jobs/{job_id}", tag = "ops",
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn get_job(
    p: Principal,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<JobView>> {
    let job = jobs::find(&s.db, id).await?.ok_or(Error::NotFound("job"))?;
    match p {
        Principal::Service(scope)
            if scope.unbound() || job.org_id.is_some_and(|o| scope.may_act_for(o)) => {}
        Principal::Service(_) => return Err(Error::NotFound("job")),
        // R41: a job about a case is read by those who see the case.
        Principal::User(u) if job.org_id == Some(u.org_id) => {
            if let Some(case_id) = job.subject_id {
                crate::access::case(&mut *s.db.acquire().await?, &u, case_id)
                    .await
                    .map_err(|e| match e {
                        Error::NotFound(_) => Error::NotFound("job"),
                        e => e,
                    })?;
            }
        }
        Principal::User(_) => return Err(Error::NotFound("job")),
    }
    Ok(axum::Json(job))
}

pub async fn openapi() -> impl IntoResponse {
    axum::Json(super::openapi::document())
}

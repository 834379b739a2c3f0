//! `caseshare jobs stats`: the operator's view of the job table (R37): per
//! kind, how many jobs are in each status, how many retries they took, and
//! the latency (creation to completion, retries included) of the jobs that
//! completed in the last `window_hours`. The same numbers as the
//! `caseshare_jobs_by_status` gauge and the latency histogram, without
//! Prometheus.

use std::fmt::Write as _;

use super::pool;
use crate::config::Settings;
use crate::jobs::JobStatus;

/// One kind's row.
#[derive(Debug, Clone, PartialEq)]
pub struct KindStats {
    pub kind: String,
    pub queued: i64,
    pub running: i64,
    pub retrying: i64,
    pub complete: i64,
    pub dead: i64,
    /// Attempts beyond the first, over every job of the kind.
    pub retries: i64,
    /// Of the jobs completed in the window; `None` when none did.
    pub p50_latency_s: Option<f64>,
    pub p95_latency_s: Option<f64>,
    pub max_latency_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobStats {
    pub window_hours: u32,
    pub kinds: Vec<KindStats>,
}

/// Every registered kind (and any other kind with rows), zero-filled.
pub async fn job_stats(settings: &Settings, window_hours: u32) -> anyhow::Result<JobStats> {
    let db = pool(settings).await?;
    let kinds: Vec<String> = crate::job_registry::registry()
        .names()
        .into_iter()
        .map(String::from)
        .collect();
    let rows = sqlx::query_as::<
        _,
        (
            String,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            Option<f64>,
            Option<f64>,
            Option<f64>,
        ),
    >(
        "WITH k AS (SELECT unnest($1::text[]) AS kind UNION SELECT DISTINCT kind FROM jobs),
              lat AS (
                SELECT kind, extract(epoch FROM finished_at - created_at)::float8 AS s
                  FROM jobs
                 WHERE status = $6 AND finished_at > now() - make_interval(hours => $2))
         SELECT k.kind,
                count(j.id) FILTER (WHERE j.status = $3),
                count(j.id) FILTER (WHERE j.status = $4),
                count(j.id) FILTER (WHERE j.status = $5),
                count(j.id) FILTER (WHERE j.status = $6),
                count(j.id) FILTER (WHERE j.status = $7),
                coalesce(sum(greatest(j.attempts - 1, 0)), 0)::bigint,
                (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) FROM lat WHERE lat.kind = k.kind),
                (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY s) FROM lat WHERE lat.kind = k.kind),
                (SELECT max(s) FROM lat WHERE lat.kind = k.kind)
           FROM k LEFT JOIN jobs j ON j.kind = k.kind
          GROUP BY k.kind
          ORDER BY k.kind",
    )
    .bind(&kinds)
    .bind(window_hours as i32)
    .bind(JobStatus::Queued)
    .bind(JobStatus::Running)
    .bind(JobStatus::Retrying)
    .bind(JobStatus::Complete)
    .bind(JobStatus::Dead)
    .fetch_all(&db)
    .await?;
    db.close().await;
    Ok(JobStats {
        window_hours,
        kinds: rows
            .into_iter()
            .map(
                |(kind, queued, running, retrying, complete, dead, retries, p50, p95, max)| {
                    KindStats {
                        kind,
                        queued,
                        running,
                        retrying,
                        complete,
                        dead,
                        retries,
                        p50_latency_s: p50,
                        p95_latency_s: p95,
                        max_latency_s: max,
                    }
                },
            )
            .collect(),
    })
}

fn seconds(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(s) if s < 10.0 => format!("{s:.3}s"),
        Some(s) => format!("{s:.0}s"),
    }
}

impl JobStats {
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<20} {:>8} {:>8} {:>8} {:>9} {:>6} {:>8} {:>12} {:>12} {:>12}\n",
            "KIND",
            "QUEUED",
            "RUNNING",
            "RETRYING",
            "COMPLETE",
            "DEAD",
            "RETRIES",
            "P50_LATENCY",
            "P95_LATENCY",
            "MAX_LATENCY"
        );
        for k in &self.kinds {
            let _ = writeln!(
                out,
                "{:<20} {:>8} {:>8} {:>8} {:>9} {:>6} {:>8} {:>12} {:>12} {:>12}",
                k.kind,
                k.queued,
                k.running,
                k.retrying,
                k.complete,
                k.dead,
                k.retries,
                seconds(k.p50_latency_s),
                seconds(k.p95_latency_s),
                seconds(k.max_latency_s)
            );
        }
        let _ = writeln!(
            out,
            "latency: creation to completion of the jobs completed in the last {} h",
            self.window_hours
        );
        out
    }
}

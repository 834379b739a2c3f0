//! Job rows as the queue changes them: every `UPDATE jobs` of the service
//! is here (claiming, signs of life, outcomes, coalescing, rescue, requeue),
//! so a rule about a job's status changes in one place. New rows are
//! written by `outbox` with their outbox message.
//!
//! Coalescing is a queue feature (as River's unique jobs): a job enqueued
//! with a coalesce key (`Requester::coalescing`) may be taken, while still
//! queued, by a run of another job of its kind and key ([`take_queued`]),
//! which does its work and completes it in the same transaction
//! ([`complete_unrun_tx`]); its message is then acked unrun.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Job, JobStatus};
use crate::db::PgEnum;

/// The oldest queued jobs of kind `J` with `coalesce_key` (at most `limit`),
/// locked for the caller's transaction; those another run holds are
/// skipped. The cost is the limit, not the backlog: the partial index
/// `jobs_queued_by_coalesce_key` hands them over in order (the key is a
/// uuid, e.g. the case the jobs are about; the kind is checked on the rows,
/// migration 0026).
pub async fn take_queued<J: Job>(
    tx: &mut PgConnection,
    coalesce_key: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, J)>> {
    // The status is in the text (made from the enum), not bound, so that a
    // generic plan still uses the partial index.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT id, payload FROM jobs
              WHERE kind = $1 AND coalesce_key = $2 AND status = {queued} AND coalesce_key IS NOT NULL
              ORDER BY created_at, id LIMIT $3
              FOR UPDATE SKIP LOCKED",
            queued = JobStatus::Queued.literal()
        )
    });
    let rows: Vec<(Uuid, serde_json::Value)> = sqlx::query_as(SQL.as_str())
        .bind(J::NAME)
        .bind(coalesce_key)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    rows.into_iter()
        .map(|(id, payload)| {
            serde_json::from_value(payload)
                .map(|job| (id, job))
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .collect()
}

/// Mark jobs `complete` that another job's run did in the caller's
/// transaction (coalescing); their messages are then acked unrun.
pub async fn complete_unrun_tx(tx: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = $2, started_at = coalesce(started_at, now()),
                finished_at = now(), updated_at = now()
         WHERE id = ANY($1)",
    )
    .bind(ids)
    .bind(JobStatus::Complete)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Claim job `job_id` of `kind` for a run: `running`, one more attempt and
/// delivery; its attempts and payload. None when it is finished (or unknown).
pub(super) async fn claim(
    db: &PgPool,
    job_id: Uuid,
    kind: &str,
) -> sqlx::Result<Option<(i32, serde_json::Value)>> {
    sqlx::query_as(
        "UPDATE jobs SET status = $3, attempts = attempts + 1, deliveries = deliveries + 1,
                started_at = coalesce(started_at, now()), updated_at = now()
         WHERE id = $1 AND kind = $2 AND status <> ALL($4)
         RETURNING attempts, payload",
    )
    .bind(job_id)
    .bind(kind)
    .bind(JobStatus::Running)
    .bind([JobStatus::Complete, JobStatus::Dead].as_slice())
    .fetch_optional(db)
    .await
}

/// The attempts of a job that could not be claimed (none: no such job).
pub(super) async fn attempts(db: &PgPool, job_id: Uuid) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar("SELECT attempts FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_optional(db)
        .await
}

/// A running job's sign of life, for the rescuer.
pub(super) async fn touch(db: &PgPool, job_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE jobs SET updated_at = now() WHERE id = $1 AND status = $2")
        .bind(job_id)
        .bind(JobStatus::Running)
        .execute(db)
        .await?;
    Ok(())
}

/// A transient failure, retried after its backoff.
pub(super) async fn retrying(db: &PgPool, job_id: Uuid, reason: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE jobs SET status = $3, last_error = $2, updated_at = now() WHERE id = $1")
        .bind(job_id)
        .bind(reason)
        .bind(JobStatus::Retrying)
        .execute(db)
        .await?;
    Ok(())
}

/// Record a job's outcome; its latency (created to finished), in seconds.
pub(super) async fn finish(
    db: &PgPool,
    job_id: Uuid,
    status: JobStatus,
    error: Option<&str>,
) -> sqlx::Result<f64> {
    sqlx::query_scalar::<_, f64>(
        "UPDATE jobs SET status = $2, last_error = coalesce($3, last_error),
                finished_at = now(), updated_at = now() WHERE id = $1
         RETURNING EXTRACT(EPOCH FROM finished_at - created_at)::float8",
    )
    .bind(job_id)
    .bind(status)
    .bind(error)
    .fetch_one(db)
    .await
}

/// A dead job queued again (an operator's requeue, R36): a fresh attempt
/// budget; the caller publishes it again (`outbox::republish`).
pub async fn requeue_tx(tx: &mut PgConnection, job_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = $2, attempts = 0, started_at = NULL, finished_at = NULL,
                updated_at = now()
         WHERE id = $1",
    )
    .bind(job_id)
    .bind(JobStatus::Queued)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The jobs `running` with no sign of life for `lease` (at most 1,000):
/// their lease starts again and they are published again through the
/// outbox, in one statement (the rescuer, `rescue`).
pub(super) async fn stuck(
    db: &PgPool,
    lease: std::time::Duration,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    // The status is in the text (made from the enum), not bound: the
    // partial index `jobs_running_since` serves this query.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH stuck AS (
             SELECT id, kind FROM jobs
              WHERE status = {running} AND updated_at < now() - make_interval(secs => $1)
              ORDER BY updated_at LIMIT 1000
              FOR UPDATE SKIP LOCKED),
              bumped AS (UPDATE jobs j SET updated_at = now() FROM stuck WHERE j.id = stuck.id),
              out AS (INSERT INTO outbox (exchange, routing_key, payload, job_id)
                      SELECT 'jobs', kind, jsonb_build_object('job_id', id, 'kind', kind), id FROM stuck)
         SELECT id, kind FROM stuck",
            running = JobStatus::Running.literal()
        )
    });
    sqlx::query_as(SQL.as_str())
        .bind(lease.as_secs_f64())
        .fetch_all(db)
        .await
}

//! The rescuer (as River's): a job whose worker stopped without the broker
//! giving its message to another — its process frozen, the message lost
//! to a purged queue or a failed-over node — would stay `running` for good.
//! A running job shows life: its worker touches `updated_at` every quarter
//! of the lease while the handler runs ([`super::runner`]). A job that has
//! shown none for a whole lease is published again through the outbox; the
//! next worker to take it runs it (handlers are idempotent, and a finished
//! job's extra message is acked unrun).

use sqlx::PgPool;
use std::time::Duration;

/// Publish again the jobs `running` with no sign of life for `lease` (at
/// most 1,000 per call; concurrent rescuers skip each other's rows, and a
/// rescued job's lease starts again). Returns how many were rescued.
pub async fn rescue(db: &PgPool, lease: Duration) -> sqlx::Result<u64> {
    let rescued = super::rows::stuck(db, lease).await?;
    for (id, kind) in &rescued {
        tracing::warn!(job_id = %id, kind = %kind, lease_secs = lease.as_secs(),
            "job showed no life for its lease; published again");
        metrics::counter!("caseshare_jobs_rescued_total", "kind" => kind.clone()).increment(1);
    }
    if !rescued.is_empty() {
        super::relay::wake();
    }
    Ok(rescued.len() as u64)
}

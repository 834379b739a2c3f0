//! The periodic duties of a process, each a task of its own: sealing new
//! audit entries into the HMAC chain (R39; every process, as often as the
//! relay looks for rows, which used to do it), rescuing jobs left running
//! past their lease (R35, R36), and the sweeps (R40: expired packages leave
//! the store within a minute and recipients are reminded before their links
//! expire; idempotency keys past their 24 h; what a crash left in the
//! scratch space). A failed round is logged and tried again next time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::content::store::ContentStore;
use crate::shutdown::Shutdown;

/// Run `round` every `period` until shutdown.
fn every<F, Fut>(tasks: &mut JoinSet<()>, period: Duration, stop: &Shutdown, mut round: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let stop = stop.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = stop.wait() => break,
                _ = tick.tick() => round().await,
            }
        }
    });
}

/// R39: seal new audit entries into the chain (one sealer at a time across
/// processes: `audit::seal` takes an advisory lock).
pub fn spawn_sealer(
    tasks: &mut JoinSet<()>,
    db: &sqlx::PgPool,
    settings: &Settings,
    stop: &Shutdown,
) {
    let (db, key) = (db.clone(), settings.audit_key());
    every(tasks, crate::jobs::relay::POLL, stop, move || {
        let (db, key) = (db.clone(), key.clone());
        async move {
            if let Err(e) = crate::audit::seal(&db, &key).await {
                tracing::warn!(error = %e, "cannot seal the audit trail");
            }
        }
    });
}

/// The duties of a worker process: the rescuer and the sweeps.
pub fn spawn_workers(
    tasks: &mut JoinSet<()>,
    db: &sqlx::PgPool,
    settings: &Arc<Settings>,
    store: &ContentStore,
    stop: &Shutdown,
) {
    // The rescuer: jobs left running past their lease go out again.
    let lease = Duration::from_secs(settings.job_lease_secs);
    let pool = db.clone();
    every(
        tasks,
        (lease / 2).min(Duration::from_secs(60)),
        stop,
        move || {
            let db = pool.clone();
            async move {
                if let Err(e) = crate::jobs::rescue::rescue(&db, lease).await {
                    tracing::warn!(error = %e, "cannot rescue jobs");
                }
            }
        },
    );
    let (pool, settings, store) = (db.clone(), settings.clone(), store.clone());
    every(tasks, Duration::from_secs(60), stop, move || {
        let (db, settings, store) = (pool.clone(), settings.clone(), store.clone());
        async move {
            if let Err(e) = crate::linkshare::sweep_expired(&db, &store).await {
                tracing::warn!(error = %e, "cannot sweep expired packages");
            }
            if let Err(e) = crate::linkshare::queue_reminders(&db, &settings).await {
                tracing::warn!(error = %e, "cannot queue link expiry reminders");
            }
            if let Err(e) = crate::idempotency::sweep(&db).await {
                tracing::warn!(error = %e, "cannot sweep idempotency keys");
            }
            match store.sweep_temp(Duration::from_secs(24 * 3600)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "removed stale temporary files"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep temporary files"),
            }
        }
    });
}

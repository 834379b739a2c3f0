//! Building the application once, for the binary and the tests alike: the
//! database (created and migrated), the outbox relay, the workers and the HTTP
//! API, as the roles ask. `serve` runs all of them in one process. Every
//! process installs the Prometheus recorder and answers `/healthz`, `/readyz`
//! and `/metrics`: on the API's address, or without the API (`worker`) on
//! `CASESHARE_METRICS_ADDR`. The periodic duties (audit sealing, the job
//! rescuer, the sweeps) are `maintenance`.

mod maintenance;

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinSet;

use crate::config::Settings;
use crate::content::store::ContentStore;
use crate::context::JobContext;
use crate::jobs::relay::Relay;
use crate::jobs::runner::{EventBatch, Faults, Worker};
use crate::jobs::Job;
use crate::mail::Mailer;
use crate::shutdown::Shutdown;
use crate::{db, http, job_registry, notify, orgs, telemetry};

#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub api: bool,
    pub workers: bool,
}

impl Roles {
    pub const SERVE: Roles = Roles {
        api: true,
        workers: true,
    };
    pub const API: Roles = Roles {
        api: true,
        workers: false,
    };
    pub const WORKER: Roles = Roles {
        api: false,
        workers: true,
    };
}

pub struct Application {
    addr: Option<SocketAddr>,
    ops_addr: SocketAddr,
    shutdown: Shutdown,
    tasks: JoinSet<()>,
    faults: Arc<Faults>,
    pub db: sqlx::PgPool,
    pub settings: Arc<Settings>,
    pub store: ContentStore,
}

impl Application {
    pub async fn build(settings: Settings, roles: Roles) -> anyhow::Result<Self> {
        // Before any work starts, so nothing recorded is lost (workers too).
        let metrics = telemetry::metrics_handle();
        db::ensure_database(&settings.database_url).await?;
        let pool = db::connect(&settings.database_url, settings.db_max_connections).await?;
        if settings.migrate_on_start {
            db::migrate(&pool).await?;
        }
        let settings = Arc::new(settings);
        // Entries this process writes are signed where they are written.
        crate::audit::install_key(&settings.audit_key());
        let store = ContentStore::from_settings(&settings)?;
        let registry = Arc::new(job_registry::registry());
        let topology = job_registry::topology(&settings);
        let shutdown = Shutdown::new();
        let faults = Arc::new(Faults::default());
        let mut tasks = JoinSet::new();

        // Every process relays the outbox; SKIP LOCKED lets them share it.
        let relay = Relay {
            db: pool.clone(),
            amqp_url: settings.amqp_url.clone(),
            topology: topology.clone(),
        };
        tasks.spawn(relay.run(shutdown.clone()));
        // Every process seals new audit entries into the chain (R39).
        maintenance::spawn_sealer(&mut tasks, &pool, &settings, &shutdown);

        if roles.workers {
            // Bounds each SMTP step, and sets the notices' lease (files too).
            let smtp_timeout = std::time::Duration::from_secs(settings.smtp_timeout_secs);
            let ctx = JobContext {
                db: pool.clone(),
                settings: settings.clone(),
                topology: topology.clone(),
                // As many pooled SMTP connections as notices in flight.
                mailer: if settings.smtp_url.is_empty() {
                    let dir = std::path::Path::new(&settings.mail_dir);
                    tracing::warn!(
                        mail_dir = %dir.display(),
                        "no SMTP relay configured (CASESHARE_SMTP_URL): emails are written as .eml files to mail_dir"
                    );
                    Mailer::to_files(dir, &settings.mail_from, smtp_timeout)?
                } else {
                    Mailer::new(
                        &settings.smtp_url,
                        &settings.mail_from,
                        registry
                            .prefetch(notify::SendNotice::NAME, settings.worker_concurrency)
                            .into(),
                        smtp_timeout,
                    )?
                },
                store: store.clone(),
            };
            let worker = Arc::new(Worker {
                ctx,
                registry: registry.clone(),
                db: pool.clone(),
                topology: topology.clone(),
                amqp_url: settings.amqp_url.clone(),
                concurrency: settings.worker_concurrency,
                event_batch: EventBatch {
                    max: settings.event_batch_max,
                    wait: std::time::Duration::from_millis(settings.event_batch_wait_ms),
                },
                max_attempts: settings.max_attempts,
                faults: faults.clone(),
                job_lease: std::time::Duration::from_secs(settings.job_lease_secs),
            });
            tasks.spawn(worker.run(shutdown.clone()));
            maintenance::spawn_workers(&mut tasks, &pool, &settings, &store, &shutdown);
        }
        // Every process is observable: the API serves /healthz, /readyz and
        // /metrics among its routes; a process without it serves only those,
        // on the metrics address.
        let state = http::AppState {
            store: store.clone(),
            db: pool.clone(),
            settings: settings.clone(),
            topology: topology.clone(),
            service_token_hashes: Arc::new(
                settings
                    .service_tokens
                    .iter()
                    .map(|entry| {
                        crate::principal::ServiceScope::parse(entry)
                            .map(|(token, scope)| (orgs::hash_token(&token), scope))
                            .map_err(|e| anyhow::anyhow!("CASESHARE_SERVICE_TOKENS: {e}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
            ),
            metrics,
            probe: Arc::new(http::ops::BrokerProbe::default()),
            rate_limit: http::RateLimit::from_settings(&settings),
            token_cache: Default::default(),
        };
        let (bind, app, what) = if roles.api {
            (settings.http_addr, http::router(state), "caseshare API")
        } else {
            (
                settings.metrics_addr,
                http::ops_router(state),
                "caseshare health and metrics",
            )
        };
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
        let bound = listener.local_addr()?;
        let stop = shutdown.clone();
        let header_read_timeout = std::time::Duration::from_secs(settings.header_read_timeout_secs);
        tasks.spawn(http::server::serve(
            listener,
            app,
            header_read_timeout,
            stop,
        ));
        tracing::info!(addr = %bound, "{what} listening");
        let (addr, ops_addr) = if roles.api {
            (Some(bound), bound)
        } else {
            (None, bound)
        };
        Ok(Self {
            addr,
            ops_addr,
            shutdown,
            tasks,
            faults,
            db: pool,
            settings,
            store,
        })
    }

    /// The bound HTTP address (None when the API role is off).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Where `/healthz`, `/readyz` and `/metrics` answer: the API's address,
    /// or `CASESHARE_METRICS_ADDR` in a process without the API.
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_addr
    }

    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }

    /// Run until shutdown is triggered and every task has drained.
    pub async fn run_until_stopped(mut self) {
        while self.tasks.join_next().await.is_some() {}
        self.db.close().await;
    }

    /// Trigger shutdown and wait for a clean stop.
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.run_until_stopped().await;
    }
}

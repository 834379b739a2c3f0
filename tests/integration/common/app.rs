//! One test application: the real `Application` on a random port, with its
//! own database and AMQP prefix (`spawn_app`, `spawn_with(Options)`), and
//! its cleanup when the test ends, passed or not.

use super::*;

/// A change to the settings of a test app (`Options::tune`).
pub type Tune = std::sync::Arc<dyn Fn(&mut Settings) + Send + Sync>;

pub struct Options {
    pub roles: Roles,
    pub max_attempts: u32,
    pub retry_delays_ms: Vec<u64>,
    pub smtp: bool,
    /// Reuse an existing database/prefix (a second process of the same deployment).
    pub join: Option<(String, String)>,
    /// Override the harness's worker concurrency (8) — for benchmarks.
    pub worker_concurrency: Option<u16>,
    /// Override the harness's pool size (8) — for benchmarks.
    pub db_max_connections: Option<u32>,
    /// Keep content in an S3 bucket (a real S3 server on loopback) instead
    /// of the local store.
    pub s3: bool,
    /// Change any other setting before the app starts.
    pub tune: Option<Tune>,
    /// Use this broker (one URL or a cluster's, comma-separated) instead of
    /// the harness's.
    pub amqp_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            roles: Roles::SERVE,
            max_attempts: 4,
            retry_delays_ms: vec![100, 200, 400],
            smtp: true,
            join: None,
            worker_concurrency: None,
            db_max_connections: None,
            s3: false,
            tune: None,
            amqp_url: None,
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: sqlx::PgPool,
    pub prefix: String,
    pub database_url: String,
    pub amqp_url: String,
    pub smtp: Option<SmtpSink>,
    pub s3: Option<s3::S3Server>,
    pub app: Option<Application>,
    /// This test created the database (not one joining another's deployment):
    /// it drops it when it stops.
    pub(super) owns_database: bool,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    if std::env::var_os("RUST_LOG").is_some() {
        caseshare::telemetry::init_logging(caseshare::config::LogFormat::Text);
    }
    let services = super::services::services().await;
    let owns_database = opts.join.is_none();
    let (database_url, prefix) = opts.join.clone().unwrap_or_else(|| {
        let id = Uuid::new_v4().simple().to_string();
        (
            super::services::with_database(&services.database_url, &format!("caseshare_test_{id}")),
            format!("cs-test-{}", &id[..12]),
        )
    });
    let smtp = if opts.smtp {
        Some(SmtpSink::start().await)
    } else {
        None
    };
    let amqp_url = opts
        .amqp_url
        .clone()
        .unwrap_or_else(|| services.amqp_url.clone());
    let mut settings = Settings::defaults().expect("default settings");
    settings.database_url = database_url.clone();
    settings.amqp_url = amqp_url.clone();
    settings.amqp_prefix = prefix.clone();
    settings.http_addr = "127.0.0.1:0".parse().unwrap();
    settings.metrics_addr = "127.0.0.1:0".parse().unwrap();
    // Tests read gauges right after what changes them.
    settings.metrics_refresh_secs = 0;
    settings.service_tokens = vec![SERVICE_TOKEN.into()];
    settings.audit_key = TEST_AUDIT_KEY.into();
    settings.download_key = TEST_DOWNLOAD_KEY.into();
    settings.max_attempts = opts.max_attempts;
    settings.retry_delays_ms = opts.retry_delays_ms.clone();
    settings.worker_concurrency = opts.worker_concurrency.unwrap_or(8);
    settings.db_max_connections = opts.db_max_connections.unwrap_or(8);
    if let Some(tune) = &opts.tune {
        tune(&mut settings);
    }
    settings.public_url = "http://caseshare.test".into();
    // One content store per deployment (joined processes share it).
    settings.content_dir = std::env::temp_dir().join(format!("caseshare-test-{prefix}"));
    if let Some(s) = &smtp {
        settings.smtp_url = s.url();
    }
    // Without the sink: .eml files, in a directory of this test's own.
    settings.mail_dir = std::env::temp_dir()
        .join(format!("caseshare-test-{prefix}-mail"))
        .display()
        .to_string();
    let s3 = if opts.s3 {
        let server = s3::S3Server::start().await;
        settings.content_store = caseshare::config::StoreKind::S3;
        settings.s3_endpoint = server.endpoint.clone();
        settings.s3_bucket = s3::BUCKET.into();
        settings.s3_access_key_id = s3::ACCESS_KEY.into();
        settings.s3_secret_access_key = s3::SECRET_KEY.into();
        Some(server)
    } else {
        None
    };
    let app = Application::build(settings, opts.roles)
        .await
        .expect("application starts");
    let base = app
        .addr()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    TestApp {
        base,
        client: reqwest::Client::new(),
        db: app.db.clone(),
        prefix,
        database_url,
        amqp_url,
        smtp,
        s3,
        app: Some(app),
        owns_database,
    }
}

/// Wait until a worker consumes the events queue of `topology`. A worker
/// starts consuming only once its own declare (queues *and* bindings) is
/// done; a queue that merely exists may not be bound yet, and a message
/// published then is dropped. Each probe uses a channel of its own, since a
/// passive declare of a queue not there yet closes its channel.
pub async fn wait_for_events_consumer(
    conn: &lapin::Connection,
    topology: &caseshare::amqp::Topology,
) {
    eventually("a worker consuming the events queue", || async {
        let ch = conn.create_channel().await.ok()?;
        let info = ch
            .queue_declare(
                topology.events_queue().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .ok()?;
        let _ = ch.close(200, "probed".into()).await;
        (info.consumer_count() > 0).then_some(())
    })
    .await;
}

/// A test that panicked never reached `stop`: remove its broker objects anyway,
/// so a failing run does not leave queues behind.
impl Drop for TestApp {
    fn drop(&mut self) {
        if self.app.is_none() {
            return;
        }
        let (url, prefix) = (self.amqp_url.clone(), self.prefix.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(cleanup_broker(&url, &prefix));
            }
        })
        .join();
    }
}

pub(super) async fn drop_database(database_url: &str) {
    use sqlx::Connection;
    let Ok(url) = url::Url::parse(database_url) else {
        return;
    };
    let name = url.path().trim_start_matches('/').to_string();
    let mut admin = url.clone();
    admin.set_path("/postgres");
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin.as_str()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

pub(super) async fn cleanup_broker(amqp_url: &str, prefix: &str) {
    let Ok(conn) = caseshare::amqp::connect(amqp_url, "cleanup").await else {
        return;
    };
    let Ok(ch) = conn.create_channel().await else {
        return;
    };
    // Every queue, including one per registered job kind.
    let topology = caseshare::amqp::Topology::new(prefix, &[100, 200, 400])
        .with_job_kinds(caseshare::worker::registry().names());
    for q in topology.all_queues() {
        let _ = ch
            .queue_delete(q.into(), QueueDeleteOptions::default())
            .await;
    }
    let mut exchanges = vec![
        topology.jobs_exchange(),
        topology.dead_exchange(),
        topology.events_exchange(),
        topology.status_exchange(),
    ];
    exchanges.extend((0..3).map(|i| topology.retry_exchange(i)));
    for e in exchanges {
        let _ = ch
            .exchange_delete(e.into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "bye".into()).await;
}

//! The test harness: every test spawns the real application (the same
//! `Application::build` as the binary) on a random port, against its own
//! database and its own AMQP prefix, so tests run in parallel without seeing
//! each other. Nothing is mocked: PostgreSQL, RabbitMQ and SMTP are real.
//!
//! Services, once per test process:
//! - by default `CASESHARE_TEST_DATABASE_URL` / `CASESHARE_TEST_AMQP_URL`,
//!   else the local defaults (127.0.0.1:5432, 127.0.0.1:5672), else a
//!   container (testcontainers) for the one that is unreachable when a Docker
//!   engine answers; otherwise the test fails loudly with how to start them.
//! - with `CASESHARE_TEST_CONTAINERS=1`: containers for both, even when the
//!   local services are up (the URLs above are then ignored). A container
//!   that cannot be started or never becomes ready fails the test.
//!
//! Images of those containers (`CASESHARE_TEST_IMAGES`):
//! - `upstream` (the default): the pinned upstream images `postgres:16-alpine`
//!   and `rabbitmq:3.13-management-alpine`, on the engine's default network,
//!   their ports mapped to random host ports (testcontainers_modules).
//! - `debian`: `caseshare-test/postgres:15` and `caseshare-test/rabbitmq:3.10`,
//!   made from Debian's packages by `.ci/containers up`, on the host's
//!   network (`--network host`) since that engine has no bridge; each
//!   listens on free loopback ports the harness picks here and passes to it
//!   (PostgreSQL on its command line, RabbitMQ's AMQP, distribution and epmd
//!   ports in its environment), so nothing clashes with the local services.
//!
//! The harness's containers carry the label `caseshare-test` and are removed
//! when the test process ends (a watcher process does it: the containers
//! live in a static, which is never dropped). Tests that act on the broker
//! itself go through `rabbitmqctl()` and `BrokerContainer`, which work in
//! both modes.
//!
//! Shared helpers: `world` (two partnered orgs and a case, shared or not),
//! `refused` (refused requests, one or a table of them), `mail` (reading the
//! mails the SMTP sink accepted).

mod contract;
mod mail;
mod process;
mod refused;
pub mod s3;
pub mod smtp;
mod world;

use caseshare::config::Settings;
use caseshare::startup::{Application, Roles};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::future::Future;
use std::time::Duration;
use tokio::sync::OnceCell;
use uuid::Uuid;

pub use contract::{contract, Answer};
pub use mail::*;
pub use process::*;
pub use refused::*;
pub use smtp::{Mail, Mode, SmtpSink};
pub use world::*;

pub const SERVICE_TOKEN: &str = "test-service-token";
/// The audit key every test application runs with (tests only; a deployment
/// configures its own or generates one per installation, R60).
pub const TEST_AUDIT_KEY: &str = "caseshare-test-audit-key-0123456789abcdef";
/// The download-token key of the test applications (tests only, R60).
pub const TEST_DOWNLOAD_KEY: &str = "caseshare-test-download-key-0123456789abcdef";

struct Services {
    /// A URL of the server's maintenance database; each test gets its own db.
    database_url: String,
    amqp_url: String,
    /// The broker's container, when the harness started one.
    broker_container: Option<String>,
}

/// The services, or why they could not be had: a failure is kept, so every
/// later test fails at once with the same message (a container that never
/// becomes ready is waited for once, not once per test).
static SERVICES: OnceCell<Result<Services, String>> = OnceCell::const_new();
/// The harness's containers (only when it uses containers). A static is
/// never dropped: `remove_when_process_ends` removes them.
static CONTAINERS: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send>>> =
    std::sync::Mutex::new(Vec::new());

async fn pg_reachable(url: &str) -> bool {
    use sqlx::Connection;
    matches!(
        tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(url)).await,
        Ok(Ok(_))
    )
}

async fn amqp_reachable(url: &str) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(3),
            caseshare::amqp::connect(url, "probe")
        )
        .await,
        Ok(Ok(_))
    )
}

fn docker_available() -> bool {
    std::process::Command::new("docker")
        .arg("info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `CASESHARE_TEST_CONTAINERS=1`: containers for both services, whatever
/// runs locally.
fn containers_requested() -> bool {
    std::env::var("CASESHARE_TEST_CONTAINERS").is_ok_and(|v| v == "1")
}

/// Which images the harness's containers run (`CASESHARE_TEST_IMAGES`).
#[derive(Clone, Copy, PartialEq)]
enum Images {
    /// Pinned upstream images, ports mapped (a normal Docker host).
    Upstream,
    /// The Debian-built images of `.ci/containers`, host network.
    Debian,
}

fn images() -> Images {
    match std::env::var("CASESHARE_TEST_IMAGES").as_deref() {
        Err(_) | Ok("") | Ok("upstream") => Images::Upstream,
        Ok("debian") => Images::Debian,
        Ok(other) => panic!("CASESHARE_TEST_IMAGES={other}: expected `upstream` or `debian`"),
    }
}

async fn services() -> &'static Services {
    match SERVICES.get_or_init(start_services).await {
        Ok(services) => services,
        Err(e) => panic!("{e}"),
    }
}

async fn start_services() -> Result<Services, String> {
    if containers_requested() {
        if !docker_available() {
            return Err(
                "CASESHARE_TEST_CONTAINERS=1 but no Docker engine answers (`docker info`). \
                        Start one (on this project's CI machines: `.ci/containers up`)."
                    .into(),
            );
        }
        let database_url = start_postgres_container().await?;
        let broker = BrokerContainer::try_start().await?;
        let services = Services {
            database_url,
            amqp_url: broker.amqp_url.clone(),
            broker_container: Some(broker.id().to_string()),
        };
        CONTAINERS.lock().unwrap().push(Box::new(broker));
        return Ok(services);
    }
    let mut database_url = std::env::var("CASESHARE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut amqp_url = std::env::var("CASESHARE_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let mut broker_container = None;
    if !pg_reachable(&database_url).await {
        if !docker_available() {
            return Err(format!(
                "PostgreSQL is not reachable at {database_url} and Docker is not available. \
                 Start it (e.g. `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) \
                 or set CASESHARE_TEST_DATABASE_URL."
            ));
        }
        database_url = start_postgres_container().await?;
    }
    if !amqp_reachable(&amqp_url).await {
        if !docker_available() {
            return Err(format!(
                "RabbitMQ is not reachable at {amqp_url} and Docker is not available. \
                 Start it (e.g. `rabbitmq-server -detached`) or set CASESHARE_TEST_AMQP_URL."
            ));
        }
        let broker = BrokerContainer::try_start().await?;
        amqp_url = broker.amqp_url.clone();
        broker_container = Some(broker.id().to_string());
        CONTAINERS.lock().unwrap().push(Box::new(broker));
    }
    Ok(Services {
        database_url,
        amqp_url,
        broker_container,
    })
}

/// A free TCP port on loopback, for a host-network container to listen on.
/// (Closed again before the container binds it; nothing else here takes
/// ports that way in between.)
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Label every harness container, so that `.ci/containers clean` finds any
/// left behind, and have a watcher remove it once this test process is gone.
/// The watcher is its own process group with no pipe of ours, so neither
/// the test runner's Ctrl-C nor its output capture waits on it.
fn remove_when_process_ends(id: &str) {
    use std::os::unix::process::CommandExt;
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; docker rm -f -v {id} >/dev/null 2>&1",
        std::process::id()
    );
    let _ = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
}

const CONTAINER_LABEL: &str = "caseshare-test";
/// How long a container may take to become ready (PostgreSQL takes about a
/// second here, RabbitMQ about eight).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

async fn start_postgres_container() -> Result<String, String> {
    use testcontainers::core::WaitFor;
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{GenericImage, ImageExt};
    let (container, port): (Box<dyn std::any::Any + Send>, u16) = match images() {
        Images::Upstream => {
            let container = testcontainers_modules::postgres::Postgres::default()
                .with_host_auth()
                .with_tag("16-alpine")
                .with_label(CONTAINER_LABEL, "postgres")
                .start()
                .await
                .map_err(|e| format!("start PostgreSQL container (postgres:16-alpine): {e}"))?;
            remove_when_process_ends(container.id());
            let port = container
                .get_host_port_ipv4(5432)
                .await
                .map_err(|e| format!("PostgreSQL container's port: {e}"))?;
            (Box::new(container), port)
        }
        Images::Debian => {
            // The image's entrypoint starts PostgreSQL on 127.0.0.1:PORT
            // (its cluster was made when the image was built).
            let port = free_port();
            let container = GenericImage::new("caseshare-test/postgres", "15")
                .with_wait_for(WaitFor::message_on_stderr(
                    "database system is ready to accept connections",
                ))
                .with_network("host")
                .with_cmd([port.to_string()])
                .with_label(CONTAINER_LABEL, "postgres")
                .with_startup_timeout(STARTUP_TIMEOUT)
                .start()
                .await
                .map_err(|e| {
                    format!(
                        "start PostgreSQL container (caseshare-test/postgres:15; \
                         `.ci/containers up` builds it): {e}"
                    )
                })?;
            remove_when_process_ends(container.id());
            (Box::new(container), port)
        }
    };
    CONTAINERS.lock().unwrap().push(container);
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    if !pg_reachable(&url).await {
        return Err(format!(
            "the PostgreSQL container is ready but {url} does not answer"
        ));
    }
    Ok(url)
}

/// A RabbitMQ broker in a container of its own: the harness's when it uses
/// containers, or one a test starts to restart it without disturbing the
/// other tests. Removed when dropped.
pub struct BrokerContainer {
    pub amqp_url: String,
    container: BrokerHandle,
}

enum BrokerHandle {
    Upstream(testcontainers::ContainerAsync<testcontainers_modules::rabbitmq::RabbitMq>),
    Debian(testcontainers::ContainerAsync<testcontainers::GenericImage>),
}

impl BrokerContainer {
    /// Start a broker with the harness's images (`CASESHARE_TEST_IMAGES`);
    /// panics if it cannot be started or never accepts AMQP sessions.
    pub async fn start() -> BrokerContainer {
        Self::try_start().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Its AMQP port is fixed for its life, so a restart keeps the URL: a
    /// free port the broker listens on (host network) or is mapped to.
    async fn try_start() -> Result<BrokerContainer, String> {
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::AsyncRunner;
        use testcontainers::{GenericImage, ImageExt};
        let port = free_port();
        let container = match images() {
            Images::Upstream => BrokerHandle::Upstream(
                testcontainers_modules::rabbitmq::RabbitMq::default()
                    .with_tag("3.13-management-alpine")
                    .with_mapped_port(port, 5672.tcp())
                    .with_label(CONTAINER_LABEL, "rabbitmq")
                    .start()
                    .await
                    .map_err(|e| {
                        format!("start RabbitMQ container (rabbitmq:3.13-management-alpine): {e}")
                    })?,
            ),
            Images::Debian => {
                // The distribution port and epmd's port are the node's own
                // too: the machine's broker keeps 25672 and epmd 4369.
                let (dist, epmd) = (free_port(), free_port());
                BrokerHandle::Debian(
                    GenericImage::new("caseshare-test/rabbitmq", "3.10")
                        .with_wait_for(WaitFor::message_on_stdout("Server startup complete"))
                        .with_network("host")
                        .with_env_var("RABBITMQ_NODENAME", format!("cs-test-{port}@localhost"))
                        .with_env_var("RABBITMQ_NODE_PORT", port.to_string())
                        .with_env_var("RABBITMQ_DIST_PORT", dist.to_string())
                        .with_env_var("ERL_EPMD_PORT", epmd.to_string())
                        .with_label(CONTAINER_LABEL, "rabbitmq")
                        .with_startup_timeout(STARTUP_TIMEOUT)
                        .start()
                        .await
                        .map_err(|e| {
                            format!(
                                "start RabbitMQ container (caseshare-test/rabbitmq:3.10; \
                                 `.ci/containers up` builds it): {e}"
                            )
                        })?,
                )
            }
        };
        let broker = BrokerContainer {
            amqp_url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            container,
        };
        remove_when_process_ends(broker.id());
        broker.wait_until_reachable().await?;
        Ok(broker)
    }

    pub fn id(&self) -> &str {
        match &self.container {
            BrokerHandle::Upstream(c) => c.id(),
            BrokerHandle::Debian(c) => c.id(),
        }
    }

    /// Stop the broker (SIGTERM, as a restart does; its data stays).
    pub async fn stop(&self) {
        match &self.container {
            BrokerHandle::Upstream(c) => c.stop().await,
            BrokerHandle::Debian(c) => c.stop().await,
        }
        .expect("stop the broker container");
    }

    /// Start the stopped broker again, on the same port, and wait until it
    /// accepts AMQP sessions.
    pub async fn start_again(&self) {
        match &self.container {
            BrokerHandle::Upstream(c) => c.start().await,
            BrokerHandle::Debian(c) => c.start().await,
        }
        .expect("start the broker container again");
        self.wait_until_reachable()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    async fn wait_until_reachable(&self) -> Result<(), String> {
        let url = &self.amqp_url;
        let deadline = tokio::time::Instant::now() + STARTUP_TIMEOUT;
        while !amqp_reachable(url).await {
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "the RabbitMQ container {} does not accept AMQP sessions at {url}",
                    self.id()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }
}

/// Whether the harness's services run in containers (so a test may start a
/// broker container of its own).
pub async fn uses_containers() -> bool {
    services().await.broker_container.is_some()
}

/// `rabbitmqctl` for the harness's broker: the machine's, or the one inside
/// the harness's broker container (`docker exec`). Call after the harness's
/// services are up (any `spawn_app`).
pub fn rabbitmqctl() -> std::process::Command {
    let Some(Ok(services)) = SERVICES.get() else {
        panic!("rabbitmqctl(): start an app first (the harness's services are not up yet)");
    };
    match &services.broker_container {
        None => std::process::Command::new("rabbitmqctl"),
        Some(id) => {
            let mut cmd = std::process::Command::new("docker");
            cmd.args(["exec", id, "rabbitmqctl"]);
            cmd
        }
    }
}

fn with_database(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("database url");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// The email domain the harness gives an org named `name` (e.g. `beta-pd.example`).
pub fn org_domain(name: &str) -> String {
    format!("{}.example", name.to_lowercase().replace(' ', "-"))
}

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
    owns_database: bool,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    if std::env::var_os("RUST_LOG").is_some() {
        caseshare::telemetry::init_logging(caseshare::config::LogFormat::Text);
    }
    let services = services().await;
    let owns_database = opts.join.is_none();
    let (database_url, prefix) = opts.join.clone().unwrap_or_else(|| {
        let id = Uuid::new_v4().simple().to_string();
        (
            with_database(&services.database_url, &format!("caseshare_test_{id}")),
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

/// Poll `check` until it returns `Some`, or fail after 30 s. No fixed sleeps.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A whole answer of the app (`TestApp::send`).
pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The status and the body as JSON (a body that is not JSON as a string).
    pub fn json(self) -> (StatusCode, Value) {
        let text = String::from_utf8_lossy(&self.body).into_owned();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (self.status, value)
    }

    /// What the contract checker needs of this answer to `method` `path`.
    pub fn answer<'a>(&'a self, method: &'a Method, path: &'a str) -> Answer<'a> {
        Answer {
            method,
            path,
            status: self.status,
            content_type: self
                .headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            body: &self.body,
        }
    }
}

/// The path of `url` as the router sees it (no query string).
pub fn request_path(url: &url::Url) -> String {
    url.path().to_string()
}

pub struct Org {
    pub id: Uuid,
    pub admin: String,
    pub admin_id: Uuid,
    pub user: String,
    pub user_id: Uuid,
}

/// The titles `token` sees in `case`'s evidence list, sorted.
pub async fn evidence_titles(app: &TestApp, token: &str, case: Uuid) -> Vec<String> {
    let (s, v) = app.get(&format!("/v1/cases/{case}/evidence"), token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut t: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

/// SHA-256 (hex) of `bytes`.
pub fn sha(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// The local content store of a test app.
pub fn content_dir(app: &TestApp) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("caseshare-test-{}", app.prefix))
}

/// `PUT /v1/evidence/{evidence}/content` with `bytes` as `media`: the status
/// and the JSON body.
pub async fn upload_as(
    app: &TestApp,
    token: &str,
    evidence: Uuid,
    bytes: Vec<u8>,
    media: &str,
) -> (StatusCode, Value) {
    let res = app
        .send(
            app.client
                .put(format!("{}/v1/evidence/{evidence}/content", app.base))
                .bearer_auth(token)
                .header("content-type", media)
                .body(bytes),
        )
        .await;
    let status = res.status;
    (
        status,
        serde_json::from_slice(&res.body).unwrap_or(Value::Null),
    )
}

/// [`upload_as`] an `application/octet-stream`.
pub async fn upload(
    app: &TestApp,
    token: &str,
    evidence: Uuid,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    upload_as(app, token, evidence, bytes, "application/octet-stream").await
}

/// [`upload_as`], which must be stored (200).
pub async fn put_file(app: &TestApp, token: &str, evidence: Uuid, bytes: Vec<u8>, media: &str) {
    let (s, v) = upload_as(app, token, evidence, bytes, media).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

pub fn policy(all: bool) -> Value {
    json!({
        "name": if all { "everything" } else { "nothing" },
        "permissions": { "copy_download": all, "sender_audit_trail": all, "internal_share": all },
        "case_terms": { "case_notes": all, "case_tags": all },
        "evidence_terms": {
            "clips_markers": all, "evidence_notes": all, "evidence_tags": all, "gps": all,
            "custom_metadata": all, "device_metadata": all, "community_request_pii": all, "transcript": all
        }
    })
}

/// Set one switch of a policy body, e.g. `set(&mut p, "permissions.copy_download", false)`.
pub fn set(policy: &mut Value, path: &str, value: bool) {
    let (a, b) = path.split_once('.').unwrap();
    policy[a][b] = json!(value);
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await.json()
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// Send a raw body (for malformed JSON tests).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string());
        self.send(req).await.json()
    }

    /// Send any request to the app (uploads, downloads, custom headers) and
    /// read the whole answer, checked against the served OpenAPI document
    /// like every other request of the tests.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Response {
        let (method, path, response) = self.fetch(req).await;
        self.conform(&method, &path, &response).await;
        response
    }

    /// Send a request and read the whole answer, unchecked, with the
    /// request's method and path: for a caller that checks the answer itself
    /// (the fuzz test collects every violation instead of stopping at one).
    pub async fn fetch(&self, req: reqwest::RequestBuilder) -> (Method, String, Response) {
        let (client, req) = req.build_split();
        let req = req.expect("a well-formed request");
        let (method, path) = (req.method().clone(), request_path(req.url()));
        let res = client.execute(req).await.expect("request sent");
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.bytes().await.unwrap_or_default().to_vec();
        (
            method,
            path,
            Response {
                status,
                headers,
                body,
            },
        )
    }

    /// Panic when `response` (to `method` `path`) violates the served
    /// OpenAPI document.
    pub async fn conform(&self, method: &Method, path: &str, response: &Response) {
        contract(&self.client, &self.base)
            .await
            .assert(&response.answer(method, path));
    }

    pub async fn create_org(&self, name: &str, kind: &str) -> Org {
        let (s, org) = self
            .post(
                "/v1/orgs",
                SERVICE_TOKEN,
                json!({ "name": name, "kind": kind,
                "notification_email": format!("desk@{}", org_domain(name)),
                "email_domains": [org_domain(name)] }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{org}");
        let id: Uuid = org["id"].as_str().unwrap().parse().unwrap();
        let (admin_id, admin) = self
            .create_user(id, &format!("{name} Admin"), "admin")
            .await;
        let (user_id, user) = self.create_user(id, &format!("{name} User"), "user").await;
        Org {
            id,
            admin,
            admin_id,
            user,
            user_id,
        }
    }

    pub async fn create_user(&self, org: Uuid, name: &str, role: &str) -> (Uuid, String) {
        let domain: Option<String> =
            sqlx::query_scalar("SELECT email_domains[1] FROM orgs WHERE id = $1")
                .bind(org)
                .fetch_optional(&self.db)
                .await
                .unwrap()
                .flatten();
        let email = format!(
            "{}@{}",
            name.to_lowercase().replace(' ', "."),
            domain.unwrap_or_else(|| format!("{}.example", &org.simple().to_string()[..8]))
        );
        let (s, u) = self
            .post(
                &format!("/v1/orgs/{org}/users"),
                SERVICE_TOKEN,
                json!({ "name": name, "email": email, "role": role }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        (
            u["id"].as_str().unwrap().parse().unwrap(),
            u["token"].as_str().unwrap().to_string(),
        )
    }

    pub async fn user_email(&self, user: Uuid) -> String {
        sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn partner(&self, a: Uuid, b: Uuid) {
        let (s, v) = self
            .post(
                "/v1/partnerships",
                SERVICE_TOKEN,
                json!({ "org_ids": [a, b] }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    pub async fn setup(&self, org: &Org, policy: Value, auto_import: bool) -> Uuid {
        let (s, v) = self
            .post(
                "/v1/sharing/setup",
                &org.admin,
                json!({ "default_policy": policy, "auto_import": auto_import }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["default_policy_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn create_case(&self, token: &str, title: &str) -> Uuid {
        let (s, v) = self
            .post(
                "/v1/cases",
                token,
                json!({ "case_number": format!("CN-{}", &Uuid::new_v4().simple().to_string()[..6]), "title": title,
                        "description": "a description", "notes": ["case note one"], "tags": ["case-tag"] }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn create_folder(
        &self,
        token: &str,
        case: Uuid,
        name: &str,
        parent: Option<Uuid>,
    ) -> Uuid {
        let (s, v) = self
            .post(
                &format!("/v1/cases/{case}/folders"),
                token,
                json!({ "name": name, "parent_id": parent }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().parse().unwrap()
    }

    /// Add evidence and return (evidence id, job id).
    pub async fn add_evidence(&self, token: &str, case: Uuid, body: Value) -> (Uuid, Uuid) {
        let (s, v) = self
            .post(&format!("/v1/cases/{case}/evidence"), token, body)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        (
            v["id"].as_str().unwrap().parse().unwrap(),
            v["job_id"].as_str().unwrap().parse().unwrap(),
        )
    }

    /// The `i64` a query answers, e.g. `SELECT count(*) FROM shares`.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db).await.unwrap()
    }

    pub async fn job_status(&self, job: Uuid) -> String {
        sqlx::query_scalar("SELECT status::text FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn wait_job(&self, job: Uuid) -> String {
        eventually("job to finish", || async {
            let s = self.job_status(job).await;
            (s == "complete" || s == "dead").then_some(s)
        })
        .await
    }

    /// Wait until no job is queued, running or retrying and the outbox is empty.
    pub async fn drain(&self) {
        eventually("all jobs to finish", || async {
            let busy: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM jobs WHERE status IN ('queued', 'running', 'retrying'))
                      + (SELECT count(*) FROM outbox WHERE published_at IS NULL)",
            )
            .fetch_one(&self.db)
            .await
            .unwrap();
            (busy == 0).then_some(())
        })
        .await
    }

    pub async fn share(&self, token: &str, case: Uuid, body: Value) -> Value {
        let (s, v) = self
            .post(&format!("/v1/cases/{case}/shares"), token, body)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["status"], "processing");
        v
    }

    /// Share a whole case with a partner org and wait until the share is complete.
    pub async fn share_case_with(&self, token: &str, case: Uuid, partner: Uuid) -> Value {
        let body = json!({ "scope": { "kind": "case" }, "target": { "kind": "partner", "org_id": partner, "recipients": [] } });
        let share = self.share(token, case, body).await;
        let done = self.wait_share(token, share["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "complete", "{done}");
        done
    }

    /// Share, wait until the share is complete and every job (notices
    /// included) has finished. Returns the completed share.
    pub async fn share_and_settle(&self, token: &str, case: Uuid, body: Value) -> Value {
        let share = self.share(token, case, body).await;
        let done = self.wait_share(token, share["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "complete", "{done}");
        self.drain().await;
        done
    }

    pub async fn wait_share(&self, token: &str, share_id: &str) -> Value {
        eventually("share to complete", || async {
            let (_, v) = self.get(&format!("/v1/shares/{share_id}"), token).await;
            (v["status"] != "processing").then_some(v)
        })
        .await
    }

    /// Stop the application, remove this test's broker objects and, when it
    /// created it, its database (best effort: a database another process of
    /// the test still uses stays, for `.ci/run`'s sweep).
    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
        self.cleanup_broker().await;
        if self.owns_database {
            self.db.close().await;
            drop_database(&self.database_url).await;
        }
    }

    pub async fn cleanup_broker(&self) {
        cleanup_broker(&self.amqp_url, &self.prefix).await
    }
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

async fn drop_database(database_url: &str) {
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

async fn cleanup_broker(amqp_url: &str, prefix: &str) {
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

/// A listener on the deployment's status exchange (`<prefix>.status`), bound
/// to some events of one org (R59: `status.<org_id>.<event>`), collecting
/// every event as (event, JSON body), the event without the
/// `status.<org_id>.` prefix.
pub struct StatusListener {
    conn: lapin::Connection,
    channel: lapin::Channel,
    queue: String,
    prefix: String,
    events: std::sync::Mutex<Vec<(String, Value)>>,
}

impl StatusListener {
    /// Bind an exclusive queue to `org`'s events matching `keys` (e.g.
    /// `share.#`).
    pub async fn bind(app: &TestApp, org: Uuid, keys: &[&str]) -> StatusListener {
        Self::bind_keys(app, format!("status.{org}."), keys).await
    }

    /// Bind to every event of every org; events keep their whole routing key.
    pub async fn bind_all(app: &TestApp) -> StatusListener {
        Self::bind_keys(app, String::new(), &["#"]).await
    }

    async fn bind_keys(app: &TestApp, prefix: String, keys: &[&str]) -> StatusListener {
        use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
        use lapin::types::FieldTable;
        let exchange = format!("{}.status", app.prefix);
        let conn = caseshare::amqp::connect(&app.amqp_url, "status-listener")
            .await
            .unwrap();
        // The topology is declared asynchronously at start: wait for the exchange.
        eventually("the status exchange to exist", || async {
            // A failed passive declare closes its channel: a fresh one each time.
            let ch = conn.create_channel().await.ok()?;
            ch.exchange_declare(
                exchange.clone().into(),
                lapin::ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .ok()
        })
        .await;
        let channel = conn.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .name()
            .to_string();
        for key in keys {
            channel
                .queue_bind(
                    queue.clone().into(),
                    exchange.clone().into(),
                    format!("{prefix}{key}").into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
        StatusListener {
            conn,
            channel,
            queue,
            prefix,
            events: Default::default(),
        }
    }

    /// Wait until an event with each of `keys` has arrived (in any order,
    /// each as often as it is listed); returns every event seen so far.
    pub async fn wait_for(&self, keys: &[&str]) -> Vec<(String, Value)> {
        use lapin::options::BasicGetOptions;
        eventually(&format!("status events {keys:?}"), || async {
            while let Ok(Some(m)) = self
                .channel
                .basic_get(self.queue.clone().into(), BasicGetOptions { no_ack: true })
                .await
            {
                let body: Value =
                    serde_json::from_slice(&m.delivery.data).expect("a JSON event body");
                let key = m.delivery.routing_key.as_str();
                let event = key
                    .strip_prefix(self.prefix.as_str())
                    .unwrap_or_else(|| panic!("{key} reached a listener bound to {}", self.prefix));
                self.events.lock().unwrap().push((event.to_string(), body));
            }
            let got = self.events.lock().unwrap();
            keys.iter()
                .all(|k| {
                    let wanted = keys.iter().filter(|w| *w == k).count();
                    got.iter().filter(|(key, _)| key == k).count() >= wanted
                })
                .then(|| got.clone())
        })
        .await
    }

    pub async fn close(self) {
        let _ = self.conn.close(200, "bye".into()).await;
    }
}

/// A standard tool, if installed; with `CASESHARE_REQUIRE_TOOLS=1` (CI) a
/// missing tool fails the test (`install` says how to get it).
pub fn tool(name: &str, install: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CASESHARE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{name} is required ({install})"
        );
        eprintln!("note: {name} is not installed; that check is skipped");
    }
    found
}

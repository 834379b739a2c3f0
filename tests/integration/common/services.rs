//! The services every test uses, found or started once per test process:
//! the local PostgreSQL and RabbitMQ (or those the environment names), or
//! containers (testcontainers: upstream images with ports mapped, or the
//! Debian-built images on the host network), and the broker helpers that
//! work in both modes (`rabbitmqctl()`, `BrokerContainer`).

use super::*;

pub(super) struct Services {
    /// A URL of the server's maintenance database; each test gets its own db.
    pub(super) database_url: String,
    pub(super) amqp_url: String,
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

pub(super) async fn services() -> &'static Services {
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

pub(super) fn with_database(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("database url");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

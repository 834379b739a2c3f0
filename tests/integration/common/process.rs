//! A real `caseshare worker` process of a test application's deployment (its
//! database, broker prefix and SMTP sink), for tests and benchmarks that kill
//! one: nothing in-process survives a kill the way a process does not.

use super::{TestApp, TEST_AUDIT_KEY, TEST_DOWNLOAD_KEY};
use std::process::{Child, Command, Stdio};

/// Killed and reaped when dropped.
pub struct WorkerProcess(pub Child);

impl WorkerProcess {
    /// SIGKILL: no chance to clean up, as a crash or an OOM kill.
    pub fn kill(&mut self) {
        self.0.kill().expect("kill worker");
        self.0.wait().expect("reap worker");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn_worker(app: &TestApp) -> WorkerProcess {
    spawn_worker_with(app, "warn", Stdio::null(), &[])
}

/// A worker with `RUST_LOG=log`, its stdout to `stdout`, and `env` on top of
/// the harness's settings.
pub fn spawn_worker_with(
    app: &TestApp,
    log: &str,
    stdout: Stdio,
    env: &[(&str, &str)],
) -> WorkerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_caseshare"))
        .arg("worker")
        .env_remove("CASESHARE_CONFIG")
        .env("CASESHARE_DATABASE_URL", &app.database_url)
        .env("CASESHARE_AMQP_URL", &app.amqp_url)
        .env("CASESHARE_AMQP_PREFIX", &app.prefix)
        .env("CASESHARE_METRICS_ADDR", "127.0.0.1:0")
        .env("CASESHARE_AUDIT_KEY", TEST_AUDIT_KEY)
        .env("CASESHARE_DOWNLOAD_KEY", TEST_DOWNLOAD_KEY)
        .env("CASESHARE_RETRY_DELAYS_MS", "100,200,400")
        .env("CASESHARE_WORKER_CONCURRENCY", "8")
        .env("CASESHARE_DB_MAX_CONNECTIONS", "6")
        .env(
            "CASESHARE_SMTP_URL",
            app.smtp
                .as_ref()
                .map(|s| s.url())
                .unwrap_or_else(|| "smtp://127.0.0.1:1".into()),
        )
        .env("RUST_LOG", log)
        .env("CASESHARE_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a caseshare worker process");
    WorkerProcess(child)
}

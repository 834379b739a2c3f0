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
//! Rooms: `services` (the services, local or in containers), `app` (one
//! test application and its cleanup), `client` (requests and the calls the
//! scenarios repeat), `contract` (every answer against the served OpenAPI
//! document), `world` (two partnered orgs and a case, shared or not),
//! `refused` (refused requests, one or a table of them), `files` (uploads),
//! `mail` and `smtp` (the SMTP sink and reading what it accepted), `events`
//! (status events), `process` (a real worker process, to kill), `s3` (an S3
//! server on loopback).

mod app;
mod client;
mod contract;
mod events;
mod files;
mod mail;
mod process;
mod refused;
pub mod s3;
mod services;
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

pub use app::*;
pub use client::*;
pub use contract::{contract, Answer};
pub use events::*;
pub use files::*;
pub use mail::*;
pub use process::*;
pub use refused::*;
pub use services::*;
pub use smtp::{Mail, Mode, SmtpSink};
pub use world::*;

pub const SERVICE_TOKEN: &str = "test-service-token";
/// The audit key every test application runs with (tests only; a deployment
/// configures its own or generates one per installation, R60).
pub const TEST_AUDIT_KEY: &str = "caseshare-test-audit-key-0123456789abcdef";
/// The download-token key of the test applications (tests only, R60).
pub const TEST_DOWNLOAD_KEY: &str = "caseshare-test-download-key-0123456789abcdef";

/// The email domain the harness gives an org named `name` (e.g. `beta-pd.example`).
pub fn org_domain(name: &str) -> String {
    format!("{}.example", name.to_lowercase().replace(' ', "-"))
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

pub struct Org {
    pub id: Uuid,
    pub admin: String,
    pub admin_id: Uuid,
    pub user: String,
    pub user_id: Uuid,
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

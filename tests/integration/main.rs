//! The integration tests, as one test binary (`cargo test --test
//! integration`): every module spawns the real application through the
//! harness in `common` (PostgreSQL, RabbitMQ and SMTP are real; see
//! `common/mod.rs`). Test names carry the spec rule ids (`r32_...`).

mod common;

mod access;
mod audit_chain;
mod broker_permissions;
mod browser;
mod clients;
mod cluster;
mod custody;
mod directory;
mod disclosure;
mod evidence_files;
mod idempotency;
mod input_and_limits;
mod intake;
mod isolation;
mod link_sharing;
mod metrics;
mod model;
mod notifications;
mod observability;
mod operations;
mod pipeline;
mod receiving;
mod resilience;
mod revocation;
mod setup;
mod sharing;

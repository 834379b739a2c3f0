//! caseshare: cross-organization sharing of cases and digital evidence between
//! police agencies and prosecutors, governed by policy and auditable.
//!
//! Where the rules of `SPEC.md` live:
//! - `orgs` (R1–R5), `policy` (R6–R12, the one filter), `sharing` (R13–R17,
//!   R22–R23 fan-out), `receiving` (R18–R21, R24–R28), `revocation` (R29–R31),
//!   `notify` (R32–R34), `audit` (R39), `evidence` (intake, R38),
//!   `linkshare` (R40: link shares, ZIP/ISO packages, downloads), `content`
//!   (evidence content: upload, verification, and the store, local or S3);
//! - `jobs` (outbox, runner, retry; R35–R36), `amqp` (topology), `http` (the
//!   contract of `API.md`), `config`, `db`, `telemetry` (R37), `startup`;
//! - `operations` (operator commands: queue depth and dead letters; R36–R37).

pub mod amqp;
pub mod audit;
pub mod cases;
pub mod cli;
pub mod config;
pub mod content;
pub mod context;
pub mod db;
pub mod error;
pub mod evidence;
pub mod http;
pub mod jobs;
pub mod linkshare;
pub mod mail;
pub mod notify;
pub mod operations;
pub mod orgs;
pub mod policy;
pub mod principal;
pub mod receiving;
pub mod revocation;
pub mod sharing;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod worker;

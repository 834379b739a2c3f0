//! caseshare: cross-organization sharing of cases and digital evidence between
//! police agencies and prosecutors, governed by policy and auditable.
//!
//! Dependencies point down only: `main`/`cli` → `startup` and `worker` (the
//! job registry, the one place that names every job kind) → `http` (the
//! contract of `API.md`; turns `error::Error` into answers) → the domain
//! (`orgs`, `cases`, `evidence`, `policy`, `sharing`, `receiving`,
//! `revocation`, `notify`, `linkshare`, `content`, `principal`) → the
//! infrastructure (`jobs`, `amqp`, `content::store`, `mail`, `context`,
//! `audit`, `db`, `config`, `telemetry`, `shutdown`), which names no domain
//! type. `operations` (operator commands) sits beside `cli`.
//!
//! Where each rule of `SPEC.md` lives:
//!
//! | rules | file |
//! |---|---|
//! | R1 | `orgs.rs`, `http/bootstrap.rs` |
//! | R2, R3, R5 | `orgs.rs`, `policy/mod.rs`, `http/admin.rs` |
//! | R4 | `sharing/request.rs` (partners, `classic_sharing_required`) |
//! | R6–R11 | `policy/filter.rs` (the one filter), `policy/mod.rs` |
//! | R12 | `policy/mod.rs` (snapshots), `sharing/request.rs` |
//! | R13, R14 | `sharing/request.rs`, `sharing/grants.rs` |
//! | R15 | `sharing/request.rs`, `sharing/job.rs`, `jobs/outbox.rs` (status events) |
//! | R16 | `sharing/access.rs` |
//! | R17 | `sharing/grants.rs` (`materialize`), `sharing/job.rs` |
//! | R18 | `receiving/view.rs`, `cases.rs` |
//! | R19 | `receiving/import.rs` |
//! | R20 | `receiving/details.rs` |
//! | R21 | `sharing/grants.rs` (`copy_folders`), `receiving/import.rs` |
//! | R22 | `sharing/fanout.rs` |
//! | R23 | `sharing/grants.rs`, `receiving/view.rs`, `receiving/import.rs` |
//! | R24–R27 | `receiving/updates.rs`, `receiving/view.rs` |
//! | R28 | `receiving/onward.rs`, `sharing/access.rs` (dissemination) |
//! | R29–R31 | `revocation/mod.rs`, `sharing/fanout.rs` (R31's race) |
//! | R32, R33 | `notify/recipients.rs`, `notify/enqueue.rs`, `notify/render.rs` |
//! | R33, R34 | `notify/send.rs`, `mail.rs` |
//! | R35 | `jobs/outbox.rs`, `jobs/relay.rs`, `jobs/runner.rs` |
//! | R36 | `jobs/runner.rs`, `jobs/retry.rs`, `operations/dead_letters.rs` |
//! | R37 | `telemetry.rs`, `http/ops.rs`, `operations/queues.rs` |
//! | R38 | `evidence.rs`, `worker.rs` (the events handler) |
//! | R39 | `audit.rs` |
//! | R40 | `linkshare/{request,build,lifecycle,download,package,iso9660}.rs`, `content/` |
//! | R41, R42 | not yet: per-principal case access (open issue "Access control"); it will live in `sharing/access.rs` and the read paths of `cases.rs` and `receiving/` |
//! | R43 | `receiving/view.rs` (each item filtered by its granting share's snapshot), `sharing/grants.rs` (`govern`: the strictest live snapshot), `revocation/mod.rs` |
//! | R44 | not yet: `revocation/` |
//! | R45 | partly: an external case is not shared onward or by link (`cases::owned_or`, `external_not_shareable`, used by `sharing/request.rs` and `linkshare/request.rs`); the dissemination log in `sharing/access.rs`; imported copies in the origin's log and `copy_download` for link shares to partner users not yet |
//! | R46 | `orgs.rs` (`complete_setup`: fpp orgs get `classic_sharing_required`) |
//! | R47 | partly: badge-ID recipients of shares, `sharing/request.rs` (`resolve_badges`), `notify/recipients.rs`, `sharing/access.rs`; a link share to a group not yet |
//! | R49 | `sharing/grants.rs` (`audit_in_scope`: the sender audit snapshot limited to the collaboration's grants and shares) |
//! | R50 | partly: admin changes and bootstrap actions with their actor, `audit.rs` (`admin`), `orgs.rs`, `policy/mod.rs`; reads of external cases beyond the case view and automatic actions with the job as actor not yet |
//! | R48 | not yet (see the access-control issue) |

pub mod access;
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

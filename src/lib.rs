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
//! | R41, R42 | `access.rs` (the visibility predicate, `case_access` rows; lists in one statement), asked by every route: `http/cases.rs`, `sharing/`, `receiving/`, `linkshare/`, `revocation/`, `content/upload.rs`, `http/ops.rs` (jobs) |
//! | R43 | `receiving/view.rs` (each item filtered by its granting share's snapshot), `sharing/grants.rs` (`govern`: the strictest live snapshot), `revocation/mod.rs` |
//! | R44 | `revocation/stop.rs` (`POST /v1/cases/{id}/access/revoke`, `StopSharingJob`), `access.rs` |
//! | R45 | `receiving/onward.rs` (`check_onward`: imported copies under `copy_download`/`internal_share`), `cases::external_not_shareable`, `linkshare/request.rs` (partner recipients need `copy_download`), `sharing/access.rs` (dissemination log with onward shares and link shares of imported copies) |
//! | R46 | `orgs.rs` (`complete_setup`: fpp orgs get `classic_sharing_required`) |
//! | R47 | `sharing/request.rs` (`resolve_badges`, `named`: users, groups, badges, emails), `linkshare/request.rs` (group recipients), `linkshare/lifecycle.rs` (`recipients`) |
//! | R49 | `sharing/grants.rs` (`audit_in_scope`: the sender audit snapshot limited to the collaboration's grants and shares) |
//! | R50 | `audit.rs` (`admin`, `act_as_job`), `receiving/view.rs` (`audit_external_read`), `sharing/fanout.rs` (`auto_share`), `receiving/updates.rs` (`auto_sync`), `orgs.rs`, `policy/mod.rs` |
//! | R48 | `receiving/details.rs` |
//! | R51 | `sharing/grants.rs` (`covering`), `receiving/view.rs` (`snapshots`), `receiving/onward.rs` |
//! | R52 | `content/read.rs`, `http/links.rs` (`get_content`, `Served`) |
//! | R53 | `receiving/files.rs` (`CopyContent`), `receiving/import.rs`, `content/store.rs` (`put_verified`) |
//! | R54 | `custody.rs` (keys, manifests, acknowledgements), `sharing/job.rs`, `receiving/files.rs`, `cli.rs` (`receipt verify`) |
//! | R56 | `directory.rs` (recipient lookup: own-org prefixes, partners' exact email or badge), `http/directory.rs`, migration 0019 |
//! | R57 | `revocation/`, `access.rs` (`end_onward_tx`) |
//! | R58 | `linkshare/request.rs` (`email_org`, `governing_policy`), `linkshare/build.rs` (`packaged_audit`) |
//! | R59 | `jobs/outbox.rs` (`status_event`), `publishers.rs` |
//! | R60 | `keys.rs`, `linkshare/mod.rs` (`token`), `idempotency.rs` |

pub mod access;
pub mod amqp;
pub mod audit;
pub mod cases;
pub mod cli;
pub mod config;
pub mod content;
pub mod context;
pub mod custody;
pub mod db;
pub mod directory;
pub mod error;
pub mod evidence;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod keys;
pub mod limits;
pub mod linkshare;
pub mod mail;
pub mod notify;
pub mod operations;
pub mod orgs;
pub mod policy;
pub mod principal;
pub mod publishers;
pub mod receiving;
pub mod revocation;
pub mod sharing;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod templating;
pub mod worker;

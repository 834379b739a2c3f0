//! caseshare: cross-organization sharing of cases and digital evidence between
//! police agencies and prosecutors, governed by policy and auditable.
//!
//! Dependencies point down only, and a test keeps them so: the layer order is
//! written once, in `src/layers.rs` (`LAYERS`, top first), and
//! `layers::tests::dependencies_point_down_only` (run by `cargo test`) reads
//! every `crate::…` path of `src/` and fails, naming file, line and both
//! modules, when a module names one of its own layer or of a higher one, or
//! when a module has no place in the order. Top to bottom:
//!
//! 1. `main`, `cli`: the binary and its commands;
//! 2. `startup` (builds the application once), `operations` (operator commands);
//! 3. `http` (the contract of `API.md`; turns `error::Error` into answers),
//!    `job_registry` (the one place that names every job kind);
//! 4. the domain, the capabilities that use the most first: `linkshare`,
//!    `revocation`; `sharing`; `receiving`; `directory`; `notify`, `orgs`;
//!    `context` (what a job handler gets); `content`, `custody`; `evidence`
//!    (intake); `access` (who sees what); `collaboration` (the `received`
//!    row); `policy`; `cases` (the case and evidence model);
//! 5. the infrastructure, which names no domain type: `jobs`, `keys`,
//!    `telemetry`, `limits`, `db`, `linktoken`; `idempotency`, `config`;
//!    `amqp`, `mail`, `publishers`, `audit`, `templating`, `shutdown`,
//!    `principal`, `error`.
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
//! | R16 | `sharing/disclosure.rs` |
//! | R17 | `sharing/grants.rs` (`materialize`), `sharing/job.rs`, `collaboration/write.rs` (`open_tx`: the one writer of `received`) |
//! | R18 | `receiving/view.rs`, `collaboration/mod.rs` (`external`, `granted`), `cases/` |
//! | R19 | `receiving/import.rs`, `cases/write.rs` (`insert_case`, `insert_copies`) |
//! | R20 | `receiving/details.rs` |
//! | R21 | `sharing/grants.rs` (`copy_folders`), `receiving/import.rs`, `cases/write.rs` (`copy_folders`) |
//! | R22 | `sharing/fanout.rs` |
//! | R23 | `sharing/grants.rs`, `receiving/view.rs`, `receiving/import.rs` |
//! | R24–R27 | `receiving/updates.rs`, `receiving/view.rs`, `cases/write.rs` (`set_case_field`: an accepted case update) |
//! | R28 | `receiving/onward.rs`, `access/named.rs` (`name_onward_tx`), `sharing/disclosure.rs` (dissemination) |
//! | R29–R31 | `revocation/mod.rs`, `collaboration/write.rs` (`end_without_live_share_tx`), `sharing/fanout.rs` (R31's race) |
//! | R32, R33 | `sharing/recipients.rs` (whom a share names), `notify/recipients.rs`, `notify/enqueue.rs`, `notify/render.rs` |
//! | R33, R34 | `notify/send.rs`, `mail.rs` |
//! | R35 | `jobs/outbox.rs`, `jobs/relay.rs`, `jobs/runner.rs`, `jobs/rows.rs` (every job-row update; coalescing: `take_queued`), `jobs/rescue.rs` |
//! | R36 | `jobs/runner.rs`, `jobs/retry.rs`, `jobs/rows.rs`, `operations/dead_letters.rs` |
//! | R37 | `telemetry.rs`, `http/ops.rs`, `operations/queues.rs` |
//! | R38 | `evidence/events.rs`, `evidence/intake.rs`, `jobs/events.rs` (the batched consumer), `job_registry.rs` (the events handler) |
//! | R39 | `audit/mod.rs` (recording), `audit/read.rs`, `audit/chain.rs` (the HMAC chain, sealing, verification), `startup/maintenance.rs` (the sealer task) |
//! | R40 | `linkshare/{request,plan,build,lifecycle,download,package,iso9660}.rs`, `content/` |
//! | R41, R42 | `access/mod.rs` (the visibility predicate), `access/named.rs` (`case_access` rows), `access/list.rs` (lists in one statement), asked by every route: `http/cases.rs`, `sharing/`, `receiving/`, `linkshare/`, `revocation/`, `content/upload.rs`, `http/ops.rs` (jobs), `http/cases.rs` (folders: `cases` never authorizes) |
//! | R43 | `receiving/view.rs` (each item filtered by its granting share's snapshot), `sharing/grants.rs` (`govern`: the strictest live snapshot), `revocation/mod.rs` |
//! | R44 | `revocation/stop.rs` (`POST /v1/cases/{id}/access/revoke`, `StopSharingJob`), `access/named.rs` |
//! | R45 | `receiving/onward.rs` (`check_onward`: imported copies under `copy_download`/`internal_share`), `cases/mod.rs` (`external_not_shareable`), `linkshare/request.rs` (partner recipients need `copy_download`), `sharing/disclosure.rs` (dissemination log with onward shares and link shares of imported copies) |
//! | R46 | `orgs.rs` (`complete_setup`: fpp orgs get `classic_sharing_required`) |
//! | R47 | `sharing/request.rs` (`resolve_badges`, `named`: users, groups, badges, emails), `linkshare/request.rs` (group recipients), `linkshare/lifecycle.rs` (`recipients`) |
//! | R49 | `collaboration/write.rs` (`snapshot_sender_audit_tx`: the sender audit snapshot limited to the collaboration's grants and shares), `sharing/grants.rs` |
//! | R50 | `audit/mod.rs` (`admin`, `act_as_job`), `receiving/view.rs` (`audit_external_read`), `sharing/fanout.rs` (`auto_share`), `receiving/updates.rs` (`auto_sync`), `orgs.rs`, `policy/mod.rs` |
//! | R48 | `receiving/details.rs` |
//! | R51 | `sharing/grants.rs` (`covering`), `receiving/view.rs` (`snapshots`), `receiving/onward.rs` |
//! | R52 | `content/read.rs`, `http/links.rs` (`get_content`, `Served`) |
//! | R53 | `receiving/files.rs` (`CopyContent`), `collaboration/copies.rs` (`pend_copies_tx`), `receiving/import.rs`, `cases/write.rs` (`pend_copies`, `record_copy_outcomes`), `content/store/` (`put_verified`) |
//! | R54 | `custody/` (`keys.rs`, `sign.rs`: manifests, acknowledgements; `mod.rs`: receipts), `sharing/receipt.rs` (who may read one), `sharing/job.rs`, `receiving/files.rs`, `cli.rs` (`receipt verify`) |
//! | R56 | `directory.rs` (recipient lookup: own-org prefixes, partners' exact email or badge), `http/directory.rs`, migration 0019 |
//! | R57 | `revocation/`, `access/named.rs` (`end_onward_tx`, `remove_onward_tx`) |
//! | R58 | `linkshare/request.rs` (`email_org`, `governing_policy`), `linkshare/plan.rs` (`packaged_audit`) |
//! | R59 | `jobs/outbox.rs` (`status_event_tx`: routing keys from the `StatusEvent` enums), `publishers.rs` |
//! | R60 | `keys.rs`, `linktoken.rs` (`token`), `idempotency.rs` |

pub mod access;
pub mod amqp;
pub mod audit;
pub mod cases;
pub mod cli;
mod collaboration;
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
pub mod job_registry;
pub mod jobs;
pub mod keys;
#[cfg(test)]
mod layers;
pub mod limits;
pub mod linkshare;
mod linktoken;
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

/// The job registry's former name, kept for existing callers.
pub use job_registry as worker;

//! Command line (API.md "Running"): `serve`, `api`, `worker`, `migrate`,
//! operator commands (`queues`, `jobs stats`, `dead-letters`, `audit`,
//! `content`; implemented in `operations` and the domains) and
//! `healthcheck`, the container health probe.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::config::Settings;
use crate::operations::{self, RequeueTarget};
use crate::startup::{Application, Roles};
use crate::{db, telemetry};

#[derive(Parser, Debug)]
#[command(
    name = "caseshare",
    version,
    about = "Cross-organization case and evidence sharing"
)]
pub struct Cli {
    /// The configuration file (TOML; keys as in config/default.toml). When
    /// named it must exist; without it config/default.toml is read if present.
    #[arg(long, global = true, env = "CASESHARE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not apply migrations on start (serve, api, worker).
    #[arg(long, global = true)]
    pub no_migrate: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// HTTP API and all workers in one process.
    Serve,
    /// HTTP API (and outbox relay) only.
    Api,
    /// Workers (and outbox relay) only; run as many as you like.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Print each queue with its depth and consumers.
    Queues,
    /// The job table: jobs by kind and status, retries, latency.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Inspect, requeue and purge dead-lettered jobs.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
    /// The tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The evidence content store.
    Content {
        #[command(subcommand)]
        command: ContentCommand,
    },
    /// Custody receipts (R54).
    Receipt {
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// Orgs' receipt signing keys (R54).
    SigningKeys {
        #[command(subcommand)]
        command: SigningKeysCommand,
    },
    /// Exit 0 when this deployment's process answers GET /healthz (for
    /// container health checks; runtime images have no curl).
    Healthcheck {
        /// Probe a worker: CASESHARE_METRICS_ADDR instead of CASESHARE_HTTP_ADDR.
        #[arg(long)]
        worker: bool,
    },
    /// Print the OpenAPI document (the one `GET /openapi.json` serves), to
    /// generate a client without a running service.
    Openapi,
}

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// Per kind: jobs in each status, retries, and completion latency.
    Stats {
        /// Latency of the jobs completed in the last this many hours.
        #[arg(long, default_value_t = 24)]
        window_hours: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReceiptCommand {
    /// Check a receipt offline (the JSON of `GET /v1/shares/{id}/receipt`):
    /// the manifest's and the acknowledgement's signatures, the payloads as
    /// signed, the acknowledgement naming this manifest. Non-zero exit naming
    /// the first failure.
    Verify {
        /// The receipt, as served.
        file: std::path::PathBuf,
        /// JWK Sets (`GET /v1/orgs/{id}/keys`) of the sharing and the
        /// receiving org; repeat for both. Without it, the keys are read from
        /// this deployment's database.
        #[arg(long)]
        keys: Vec<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SigningKeysCommand {
    /// Retire the org's signing key and make a new one; the retired key stays
    /// published, so what it signed stays verifiable.
    Rotate { org_id: Uuid },
}

#[derive(Subcommand, Debug)]
pub enum ContentCommand {
    /// Re-hash stored evidence content against the recorded SHA-256 (audited per case).
    Verify {
        /// Only this case.
        #[arg(long)]
        case: Option<Uuid>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Seal pending entries, then walk the HMAC chain and report the first
    /// broken link; with `--checkpoint`, also that the chain still holds the
    /// checkpoint's entry (entries removed from the end are caught).
    Verify {
        /// A checkpoint printed by `caseshare audit checkpoint` (its JSON).
        #[arg(long)]
        checkpoint: Option<String>,
    },
    /// Seal pending entries and print the signed head of the chain (JSON:
    /// seq, hash, signature), for operators to store outside the database.
    Checkpoint,
}

#[derive(Subcommand, Debug)]
pub enum DeadLettersCommand {
    /// Dead jobs (from PostgreSQL) and the depth of the `<prefix>.dead` queue.
    List,
    /// One job row in full: payload, attempts, deliveries, last error, times.
    Show { job_id: Uuid },
    /// Put a dead job (or every dead job) back to work, in one transaction.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["job_id", "all"])))]
    Requeue {
        /// The dead job to requeue.
        job_id: Option<Uuid>,
        /// Requeue every job whose status is `dead`.
        #[arg(long)]
        all: bool,
    },
    /// Empty the `<prefix>.dead` queue; the job rows stay as the history.
    Purge,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Openapi = cli.command {
        println!("{:#}", crate::http::openapi::document());
        return Ok(());
    }
    let mut settings = Settings::load(cli.config.as_deref())?;
    telemetry::init_logging(settings.log_format);
    match crate::keys::resolve(&mut settings)? {
        crate::keys::Resolved::Configured => {}
        crate::keys::Resolved::Read(path) => tracing::info!(
            key_file = %path.display(),
            "keys not configured: using this installation's generated keys"
        ),
        crate::keys::Resolved::Generated(path) => tracing::warn!(
            key_file = %path.display(),
            "keys not configured: generated this installation's audit and download keys (mode 0600); set CASESHARE_AUDIT_KEY and CASESHARE_DOWNLOAD_KEY from a secret store for production"
        ),
    }
    crate::audit::install_key(&settings.audit_key());
    if !settings.publisher_bindings().is_configured() {
        if settings.production {
            tracing::warn!("no upstream publisher is bound to an org (CASESHARE_EVENT_PUBLISHERS): upstream evidence events are refused");
        } else {
            tracing::info!("no upstream publisher is bound to an org (CASESHARE_EVENT_PUBLISHERS): upstream evidence events are accepted from any publisher");
        }
    }
    if cli.no_migrate {
        settings.migrate_on_start = false;
    }
    let roles = match cli.command {
        Command::Serve => Roles::SERVE,
        Command::Api => Roles::API,
        Command::Worker => Roles::WORKER,
        Command::Migrate => {
            db::ensure_database(&settings.database_url).await?;
            let pool = db::connect(&settings.database_url, 2).await?;
            db::migrate(&pool).await?;
            println!("migrations applied");
            return Ok(());
        }
        Command::Queues => return queues(&settings).await,
        Command::Jobs {
            command: JobsCommand::Stats { window_hours },
        } => {
            print!(
                "{}",
                operations::job_stats(&settings, window_hours)
                    .await?
                    .render()
            );
            return Ok(());
        }
        Command::Openapi => unreachable!("answered before the settings are read"),
        Command::Healthcheck { worker } => {
            let addr = if worker {
                settings.metrics_addr
            } else {
                settings.http_addr
            };
            return healthcheck(addr).await;
        }
        Command::DeadLetters { command } => return dead_letters(&settings, command).await,
        Command::Audit {
            command: AuditCommand::Verify { checkpoint },
        } => return audit_verify(&settings, checkpoint.as_deref()).await,
        Command::Audit {
            command: AuditCommand::Checkpoint,
        } => return audit_checkpoint(&settings).await,
        Command::Content {
            command: ContentCommand::Verify { case },
        } => return content_verify(&settings, case).await,
        Command::Receipt {
            command: ReceiptCommand::Verify { file, keys },
        } => return receipt_verify(&settings, &file, &keys).await,
        Command::SigningKeys {
            command: SigningKeysCommand::Rotate { org_id },
        } => {
            let pool = db::connect(&settings.database_url, 2).await?;
            let seal = crate::custody::seal_key(&settings.audit_key());
            let kid = crate::custody::rotate(&pool, &seal, org_id).await?;
            println!("org {org_id} now signs with key {kid}; the retired key stays published");
            return Ok(());
        }
    };
    let app = Application::build(settings, roles).await?;
    app.shutdown().on_signals();
    app.run_until_stopped().await;
    Ok(())
}

async fn queues(settings: &Settings) -> anyhow::Result<()> {
    let rows = operations::queues(settings).await?;
    print!("{}", operations::render_queues(&rows));
    Ok(())
}

async fn dead_letters(settings: &Settings, command: DeadLettersCommand) -> anyhow::Result<()> {
    match command {
        DeadLettersCommand::List => print!("{}", operations::list(settings).await?.render()),
        DeadLettersCommand::Show { job_id } => {
            print!("{}", operations::show(settings, job_id).await?.render())
        }
        DeadLettersCommand::Requeue { job_id, all: _ } => {
            // clap guarantees exactly one of `<job_id>` and `--all`.
            let target = job_id.map_or(RequeueTarget::AllDead, RequeueTarget::Job);
            let rows = operations::requeue(settings, target).await?;
            print!("{}", operations::render_requeued(&rows));
        }
        DeadLettersCommand::Purge => {
            let n = operations::purge(settings).await?;
            println!(
                "purged {n} message(s) from {}",
                crate::job_registry::topology(settings).dead_queue()
            );
        }
    }
    Ok(())
}

/// Exit status 0 when the chain is intact, an error naming the first broken link otherwise.
async fn audit_verify(settings: &Settings, checkpoint: Option<&str>) -> anyhow::Result<()> {
    let checkpoint: Option<crate::audit::Checkpoint> = checkpoint
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--checkpoint is not a checkpoint's JSON: {e}"))?;
    let pool = db::connect(&settings.database_url, 2).await?;
    let key = settings.audit_key();
    crate::audit::seal(&pool, &key).await?;
    match crate::audit::verify(&pool, &key, checkpoint.as_ref()).await? {
        Ok(n) => {
            println!("audit trail intact: {n} sealed entries verified");
            Ok(())
        }
        Err(broken) => anyhow::bail!(
            "audit trail broken at seq {} (entry id {}): {}",
            broken.seq,
            broken.id,
            broken.reason
        ),
    }
}

/// Print the signed head of the audit chain.
async fn audit_checkpoint(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::connect(&settings.database_url, 2).await?;
    let key = settings.audit_key();
    crate::audit::seal(&pool, &key).await?;
    match crate::audit::checkpoint(&pool, &key).await? {
        Some(cp) => println!("{}", serde_json::to_string(&cp)?),
        None => anyhow::bail!("nothing is sealed yet: no checkpoint"),
    }
    Ok(())
}

/// Exit status 0 when every stored item matches its recorded hash.
async fn content_verify(settings: &Settings, case: Option<Uuid>) -> anyhow::Result<()> {
    let pool = db::connect(&settings.database_url, 2).await?;
    let store = crate::content::store::ContentStore::from_settings(settings)?;
    let report = crate::linkshare::verify_content(&pool, &store, case).await?;
    print!("{}", report.render());
    if !report.problems.is_empty() {
        anyhow::bail!(
            "{} stored item(s) failed verification",
            report.problems.len()
        );
    }
    Ok(())
}

/// `caseshare receipt verify`: exit 0 when both signatures and the hashes
/// binding them check out.
async fn receipt_verify(
    settings: &Settings,
    file: &std::path::Path,
    key_files: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    use crate::custody::{Jwks, Receipt};
    let receipt: Receipt = serde_json::from_slice(&std::fs::read(file)?)
        .map_err(|e| anyhow::anyhow!("{} is not a receipt: {e}", file.display()))?;
    let mut keys = Jwks { keys: vec![] };
    for path in key_files {
        let set: Jwks = serde_json::from_slice(&std::fs::read(path)?)
            .map_err(|e| anyhow::anyhow!("{} is not a JWK Set: {e}", path.display()))?;
        keys.keys.extend(set.keys);
    }
    if key_files.is_empty() {
        let pool = db::connect(&settings.database_url, 2).await?;
        let mut conn = pool.acquire().await?;
        let orgs = [
            &receipt.manifest["sharing_org_id"],
            &receipt
                .acknowledgement
                .as_ref()
                .map_or(serde_json::Value::Null, |a| {
                    a.content["receiving_org_id"].clone()
                }),
        ];
        let orgs: Vec<Uuid> = orgs
            .iter()
            .filter_map(|o| o.as_str()?.parse().ok())
            .collect();
        keys.keys
            .extend(crate::custody::keys_of(&mut conn, &orgs).await?.keys);
    }
    let checked = crate::custody::verify_receipt(&receipt, &keys)
        .map_err(|e| anyhow::anyhow!("receipt {}: {e}", file.display()))?;
    println!("{checked}");
    Ok(())
}

/// GET /healthz over plain HTTP/1.0 (no client library, no shell): exit
/// status 0 on a 200 within 3 s. A wildcard listen address is probed on
/// loopback.
async fn healthcheck(mut addr: SocketAddr) -> anyhow::Result<()> {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .map_err(|_| anyhow::anyhow!("http://{addr}/healthz did not answer within 3 s"))?
        .map_err(|e| anyhow::anyhow!("http://{addr}/healthz: {e}"))?;
    let status_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    if status_line.split_whitespace().nth(1) == Some("200") {
        println!("ok");
        Ok(())
    } else {
        anyhow::bail!("http://{addr}/healthz answered {status_line:?}")
    }
}

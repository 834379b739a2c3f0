//! Command line (API.md "Running"): `serve`, `api`, `worker`, `migrate`, and
//! operator commands (`queues`).

use clap::{Parser, Subcommand};

use crate::amqp::Topology;
use crate::config::Settings;
use crate::startup::{Application, Roles};
use crate::{db, telemetry};

#[derive(Parser, Debug)]
#[command(
    name = "caseshare",
    version,
    about = "Cross-organization case and evidence sharing"
)]
pub struct Cli {
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
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    telemetry::init_logging(settings.log_format);
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
    };
    let app = Application::build(settings, roles).await?;
    app.shutdown().on_signals();
    app.run_until_stopped().await;
    Ok(())
}

async fn queues(settings: &Settings) -> anyhow::Result<()> {
    let topology = Topology::new(&settings.amqp_prefix, &settings.retry_delays_ms);
    let probe = crate::http::ops::BrokerProbe::default();
    let stats = probe
        .queue_stats(&settings.amqp_url, &topology.all_queues())
        .await?;
    println!("{:<48} {:>10} {:>10}", "QUEUE", "MESSAGES", "CONSUMERS");
    for q in stats {
        println!("{:<48} {:>10} {:>10}", q.queue, q.messages, q.consumers);
    }
    Ok(())
}

//! The `caseshare` binary: the command line only; everything else is the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = caseshare::cli::Cli::parse();
    match caseshare::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("caseshare: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

// TEMPORARY dispatch so tests/testsvc.rs has a binary to run; the lead replaces this file.
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rollcheck::testsvc;

#[derive(Parser)]
#[command(name = "rollcheck")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The slow test service.
    Serve(testsvc::ServeArgs),
    /// HTTP health probe: exit 0 on 2xx, 1 otherwise.
    Probe(testsvc::ProbeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Serve(args) => testsvc::serve(args.into()).await?,
        Command::Probe(args) => {
            if let Err(e) = testsvc::probe(&args.url, args.timeout.into()).await {
                eprintln!("probe: {e}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

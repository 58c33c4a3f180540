use std::process::ExitCode;

use cce_upgrade_watch::cli::Cli;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    Cli::parse().run().await
}

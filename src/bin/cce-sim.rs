//! `cce-sim`: the CCE simulator that the tests, the demo and the benchmark run in place of
//! Huawei Cloud. Not part of the shipped image.

use std::process::ExitCode;

use cce_upgrade_watch::sim::cli::SimArgs;
use clap::Parser;

/// Serve the CCE upgrade-workflow API with scenarios, AK/SK and token authentication, fault
/// injection and an admin API.
#[derive(Parser, Debug)]
#[command(name = "cce-sim", version)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    cce_upgrade_watch::sim::cli::run(Cli::parse().sim).await
}

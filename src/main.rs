use std::process::ExitCode;

use cce_upgrade_watch::cli::Cli;
use clap::Parser;

/// Why: see the dependency's comment in Cargo.toml.
#[cfg(any(target_env = "gnu", target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    Cli::parse().run().await
}

//! Command line: one binary, one subcommand per job. Every flag can also be set from
//! the environment variable named in its help.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cce-upgrade-watch",
    version,
    about = "Watch Huawei Cloud CCE cluster upgrades from Kubernetes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the UpgradeWorkflowWatch CustomResourceDefinition as YAML.
    Crd,
    /// Fetch an upgrade workflow (or list a cluster's) from the CCE API, to check access.
    Get(Box<crate::get::GetArgs>),
    /// Run the operator: mirror every UpgradeWorkflowWatch's workflow into its status.
    Run(Box<crate::run::RunArgs>),
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        match self.command {
            Command::Crd => match crate::crd::crd_yaml() {
                Ok(yaml) => {
                    print!("{yaml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot render the CRD: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Get(args) => crate::get::run(*args).await,
            Command::Run(args) => match crate::run::run(*args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "operator stopped");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
        }
    }
}

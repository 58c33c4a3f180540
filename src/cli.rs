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
    /// Print the CustomResourceDefinitions as YAML: every one, or the one named by its plural.
    Crd {
        /// upgradeworkflowwatches, cceaccounts or clustercceaccounts.
        plural: Option<String>,
    },
    /// Print every condition reason, failure category and Event reason the operator writes.
    Reasons,
    /// Print the API reference (docs/reference.md): every field, column, rule and reason.
    Reference,
    /// Fetch an upgrade workflow (or list a cluster's) from the CCE API, to check access.
    Get(Box<crate::get::GetArgs>),
    /// Run the operator: mirror every UpgradeWorkflowWatch's workflow into its status.
    Run(Box<crate::run::RunArgs>),
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        match self.command {
            Command::Crd { plural } => match crate::crd::crd_yaml(plural.as_deref()) {
                Ok(yaml) => write_out(&yaml),
                Err(e) => {
                    eprintln!("error: cannot render the CRD: {e}");
                    ExitCode::FAILURE
                }
            },
            Command::Reasons => write_out(&reasons()),
            Command::Reference => write_out(&crate::reference::markdown()),
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

/// Writes `text` to standard output. A reader that stops early (`| grep -q`, `| head`) is
/// not an error, and nothing panics on a closed pipe, as `print!` would.
fn write_out(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The reasons a user meets, as a Markdown list the docs can publish.
pub fn reasons() -> String {
    use crate::failure::Category;
    use crate::reconciler::core::conditions::Reason;
    use crate::reconciler::core::events::EventReason;
    use crate::reconciler::core::set::{SetEventReason, SetReason};
    let mut out = String::from("# Condition reasons\n\n");
    for reason in Reason::STATES {
        out.push_str(&format!("- `{}`: {}\n", reason.as_str(), reason.meaning()));
    }
    out.push_str(
        "\n# Failure categories (Synced, Stalled and Ready reasons when CCE cannot be read)\n\n",
    );
    for category in Category::ALL {
        out.push_str(&format!("- `{category}`: {}\n", category.meaning()));
    }
    out.push_str("\n# UpgradeWatchSet condition reasons\n\n");
    for reason in SetReason::STATES {
        out.push_str(&format!("- `{}`: {}\n", reason.as_str(), reason.meaning()));
    }
    out.push_str("\n# Event reasons\n\n");
    for reason in EventReason::ALL {
        out.push_str(&format!("- `{reason}`: {}\n", reason.when()));
    }
    for reason in SetEventReason::ALL {
        out.push_str(&format!("- `{}`: {}\n", reason.as_str(), reason.when()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_reasons_name_every_reason_once() {
        let text = reasons();
        let named = text.lines().filter(|l| l.starts_with("- `")).count();
        assert_eq!(named, 15 + 27 + 6 + 11 + 2);
        for reason in [
            "NoWorkflow",
            "WorkflowNotFound",
            "TaskDiagnosed",
            "StatusRejected",
        ] {
            assert!(text.contains(&format!("- `{reason}`")), "{reason}");
        }
    }
}

//! cce-upgrade-watch: a Kubernetes operator that mirrors Huawei Cloud CCE cluster upgrade
//! workflows into `UpgradeWorkflowWatch` resources.
#![forbid(unsafe_code)]

pub mod cce;
pub mod cli;
pub mod crd;
pub mod credentials;
pub mod diagnosis;
pub mod duration;
pub mod failure;
pub mod get;
#[cfg(test)]
mod layers;
pub mod limits;
pub mod metrics;
pub mod reconciler;
pub mod reference;
pub mod run;
pub mod runtime;
/// The CCE simulator behind the `cce-sim` binary; only tests, the demo and the benchmark
/// build it, so the shipped operator carries none of it.
#[cfg(feature = "sim")]
pub mod sim;

//! The test kit every end-to-end test, the simulator's tests and the benchmarks use: the
//! control plane ([`plane`]), the simulator's IAM wired to it ([`iam`]), a namespace per
//! test ([`namespace`]), the simulator ([`sim`]), the operator with its log checked for
//! secrets ([`operator`], [`secrets`]), watches and their Events ([`watch`], [`events`]),
//! UpgradeWatchSets and the watches they generate ([`set`]),
//! kubectl ([`kubectl`]), a process's connections to a server ([`sockets`]), its CPU and
//! memory ([`procfs`]) and the one poll-until loop ([`eventually`]). Built-in ids and keys
//! come from `cce_upgrade_watch::sim::builtin`, never copied.

// Each test binary uses its own part of the kit.
#![allow(dead_code, unused_imports)]

pub mod argocd;
pub mod commands;
pub mod events;
pub mod eventually;
pub mod flux;
pub mod gotool;
pub mod iam;
pub mod kubectl;
pub mod namespace;
pub mod operator;
pub mod plane;
pub mod procfs;
pub mod python_sdk;
pub mod secrets;
pub mod set;
pub mod sim;
pub mod sockets;
pub mod watch;

pub use events::{SUCCESS_EVENTS, count, events, raw_events, reasons, wait_events};
pub use kubectl::{kubectl, kubectl_stdin, kubectl_until_success};
pub use namespace::{namespace, setup, setup_on};
pub use plane::{client, install_crd};
pub use secrets::{builtin_secret, sim_secret};
pub use watch::{
    cond, converged, play_to_end, sim_account, sim_watch, synced_message, wait_converged,
    wait_watch,
};

use std::path::PathBuf;

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

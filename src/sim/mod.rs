//! The CCE simulator (`cce-sim`): an HTTP(S) server that speaks the CCE
//! upgrade-workflow API of `cce-api.md` §5–§8 and the diagnostic reads of
//! `cce-diagnostics.md` (pre-checks, upgrade tasks, snapshot tasks, the cluster), authenticates like Huawei's API gateway
//! (§3.5), plays upgrade scenarios on a clock that can run faster than real time, injects
//! faults, and reports what it served on a separate admin listener.
//!
//! Layout, leaves first; every file names what it owns and whether it is pure, and a test
//! (`layers`, built for tests only) keeps the `use` graph between these files free of cycles and the
//! operator's modules out of it but for `crate::cce` and `crate::duration`:
//! - leaves: [`clock`] (the injected clock, time arithmetic), [`route`] (the operations
//!   served), [`ids`] (id templates, derived ids), [`http`] (CCE, gateway and admin
//!   answers);
//! - [`timeline`]: the steps a workflow plays; [`scenario`]: the scenario YAML format;
//!   [`builtin`]: the built-in scenarios (data files in `scenarios/`, one table), their
//!   timelines and credentials with their fixed ids; [`plan`]: a scenario expanded into
//!   the objects the simulator starts with (ids for N copies);
//! - [`state`]: the world of clusters and workflows and the CCE operations on it,
//!   [`flow`]: how a timeline moves one workflow (clock injected, no I/O),
//!   [`diagnostics`]: the runs of its tasks and what the diagnostic APIs say about them, and
//!   [`fleet`]: a cluster's own life (appearing, upgrades without a workflow, deletion), the
//!   cluster object ShowCluster and ListClusters answer with, ListClusters' filters;
//! - [`fault`]: which injected fault, if any, hits a request;
//! - [`auth`]: credentials and request authentication with the project's one signer;
//! - [`iam`]: IAM, STS and the pod-identity agent: ServiceAccount tokens verified against
//!   the API server's keys and traded for temporary keys;
//! - [`observe`]: request counters and the request log;
//! - [`server`]: the CCE routes and the request pipeline;
//! - [`admin`]: the admin API (never on the CCE listener);
//! - [`net`]: the accept loop (TLS, connection resets), [`tls`]: certificates;
//! - [`cli`]: the `cce-sim` command line.
//!
//! This file only declares the modules and re-exports [`Clock`], [`SystemClock`] and
//! [`Route`] where callers outside the simulator found them.

pub mod admin;
pub mod auth;
pub mod builtin;
pub mod cli;
pub mod clock;
pub mod diagnostics;
pub mod fault;
pub mod fleet;
pub mod flow;
pub mod http;
pub mod iam;
pub mod ids;
pub mod net;
pub mod observe;
pub mod plan;
pub mod route;
pub mod scenario;
pub mod server;
pub mod state;
pub mod timeline;
pub mod tls;

#[cfg(test)]
mod layers;

pub use clock::{Clock, SystemClock};
pub use route::Route;

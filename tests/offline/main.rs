//! Every integration test that needs no control plane (`make unit` runs them): the property
//! tests, the CCE client and `get` against in-process servers, the simulator's own tests
//! and the GitOps health checks (Flux's and Argo CD's own Go packages, built with Go). One
//! binary with a module per suite.

#[path = "../common/mod.rs"]
mod common;

mod cce_client;
mod cce_clusters;
mod get_command;
mod gitops_health;
mod properties;
mod sim_auth;
mod sim_cli;
mod sim_faults;
mod sim_iam;
mod sim_scenarios;

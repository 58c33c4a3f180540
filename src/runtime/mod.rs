//! Process plumbing shared by the subcommands: logging, the admin HTTP server, leadership,
//! shutdown and the Kubernetes client.

pub mod admin;
pub mod kube_client;
pub mod leader;
pub mod logging;
pub mod relist;
pub mod shutdown;

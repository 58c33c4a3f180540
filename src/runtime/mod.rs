//! Process plumbing shared by the subcommands: logging, the admin HTTP server, leadership
//! and shutdown.

pub mod admin;
pub mod leader;
pub mod logging;
pub mod shutdown;

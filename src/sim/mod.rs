//! The CCE simulator (`cce-sim`): an HTTP(S) server that speaks the CCE
//! upgrade-workflow API of `cce-api.md` §5–§8, authenticates like Huawei's API gateway
//! (§3.5), plays upgrade scenarios on a clock that can run faster than real time, injects
//! faults, and reports what it served on a separate admin listener.
//!
//! Layout, pure parts first:
//! - [`scenario`]: the scenario YAML format, the built-in scenarios and timelines, and
//!   their expansion into a [`scenario::Plan`] (ids for N copies);
//! - [`state`]: the world of clusters and workflows and the CCE operations on it, and
//!   [`flow`]: how a timeline moves one workflow (clock injected, no I/O);
//! - [`fault`]: which injected fault, if any, hits a request;
//! - [`auth`]: credentials and request authentication with the project's one signer;
//! - [`observe`]: request counters and the request log;
//! - [`server`]: the CCE routes, error bodies and the request pipeline;
//! - [`admin`]: the admin API (never on the CCE listener);
//! - [`net`]: the accept loop (TLS, connection resets), [`tls`]: certificates;
//! - [`cli`]: the `cce-sim` command line.

pub mod admin;
pub mod auth;
pub mod builtin;
pub mod cli;
pub mod fault;
pub mod flow;
pub mod net;
pub mod observe;
pub mod scenario;
pub mod server;
pub mod state;
pub mod tls;

use jiff::Timestamp;

/// Where the simulator reads the time. Tests inject a fixed or stepped clock; the server
/// uses the wall clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The four CCE operations the simulator serves, as faults and counters name them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    Show,
    List,
    Create,
    Cancel,
}

impl Route {
    pub const ALL: [Route; 4] = [Route::Show, Route::List, Route::Create, Route::Cancel];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Show => "show",
            Route::List => "list",
            Route::Create => "create",
            Route::Cancel => "cancel",
        }
    }

    pub fn parse(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

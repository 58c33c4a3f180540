//! The CCE simulator (`cce-sim`): an HTTP(S) server that speaks the CCE
//! upgrade-workflow API of `cce-api.md` §5–§8 and the diagnostic reads of
//! `cce-diagnostics.md` (pre-checks, upgrade tasks, snapshot tasks, the cluster), authenticates like Huawei's API gateway
//! (§3.5), plays upgrade scenarios on a clock that can run faster than real time, injects
//! faults, and reports what it served on a separate admin listener.
//!
//! Layout, pure parts first:
//! - [`timeline`]: the steps a workflow plays and the built-in timelines; [`scenario`]: the
//!   scenario YAML format and its expansion into a [`scenario::Plan`] (ids for N copies);
//!   [`builtin`]: the built-in scenarios and credentials with their fixed ids;
//! - [`state`]: the world of clusters and workflows and the CCE operations on it,
//!   [`flow`]: how a timeline moves one workflow (clock injected, no I/O), and
//!   [`diagnostics`]: the runs of its tasks and what the diagnostic APIs say about them;
//! - [`fault`]: which injected fault, if any, hits a request;
//! - [`auth`]: credentials and request authentication with the project's one signer;
//! - [`iam`]: IAM, STS and the pod-identity agent: ServiceAccount tokens verified against
//!   the API server's keys and traded for temporary keys;
//! - [`observe`]: request counters and the request log;
//! - [`server`]: the CCE routes, error bodies and the request pipeline;
//! - [`admin`]: the admin API (never on the CCE listener);
//! - [`net`]: the accept loop (TLS, connection resets), [`tls`]: certificates;
//! - [`cli`]: the `cce-sim` command line.

pub mod admin;
pub mod auth;
pub mod builtin;
pub mod cli;
pub mod diagnostics;
pub mod fault;
pub mod flow;
pub mod iam;
pub mod net;
pub mod observe;
pub mod scenario;
pub mod server;
pub mod state;
pub mod timeline;
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

/// The operations the simulator serves, as faults and counters name them: the four of the
/// upgrade workflow, the diagnostic reads, then IAM's.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    Show,
    List,
    Create,
    Cancel,
    ShowPrecheck,
    ListPrechecks,
    ShowUpgradeTask,
    ListUpgradeTasks,
    ShowCluster,
    ListSnapshots,
    IamIdToken,
    IamSecurityToken,
    StsAssumeWithOidc,
    PodIdentity,
}

impl Route {
    pub const ALL: [Route; 14] = [
        Route::Show,
        Route::List,
        Route::Create,
        Route::Cancel,
        Route::ShowPrecheck,
        Route::ListPrechecks,
        Route::ShowUpgradeTask,
        Route::ListUpgradeTasks,
        Route::ShowCluster,
        Route::ListSnapshots,
        Route::IamIdToken,
        Route::IamSecurityToken,
        Route::StsAssumeWithOidc,
        Route::PodIdentity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Show => "show",
            Route::List => "list",
            Route::Create => "create",
            Route::Cancel => "cancel",
            Route::ShowPrecheck => "show-precheck",
            Route::ListPrechecks => "list-prechecks",
            Route::ShowUpgradeTask => "show-upgrade-task",
            Route::ListUpgradeTasks => "list-upgrade-tasks",
            Route::ShowCluster => "show-cluster",
            Route::ListSnapshots => "list-snapshots",
            Route::IamIdToken => "iam-id-token",
            Route::IamSecurityToken => "iam-security-token",
            Route::StsAssumeWithOidc => "sts-assume-with-oidc",
            Route::PodIdentity => "pod-identity",
        }
    }

    pub fn parse(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Show, List, Create and cancel of upgrade workflows: what a fault without a route hits.
    pub fn is_workflow(self) -> bool {
        matches!(
            self,
            Route::Show | Route::List | Route::Create | Route::Cancel
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_parse_back_and_match_their_serde_names() {
        for route in Route::ALL {
            assert_eq!(Route::parse(route.as_str()), Some(route));
            assert_eq!(
                serde_json::to_value(route).expect("json"),
                serde_json::json!(route.as_str())
            );
        }
        assert_eq!(Route::ALL.iter().filter(|r| r.is_workflow()).count(), 4);
    }
}

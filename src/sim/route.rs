//! The operations the simulator serves, as faults, counters and the request log name
//! them. A leaf: it uses no other simulator module. Pure.

/// The operations the simulator serves, as faults and counters name them: the four of the
/// upgrade workflow, the diagnostic reads, ListClusters (both families), then IAM's.
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
    ListClusters,
    IamIdToken,
    IamSecurityToken,
    StsAssumeWithOidc,
    PodIdentity,
}

impl Route {
    pub const ALL: [Route; 15] = [
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
        Route::ListClusters,
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
            Route::ListClusters => "list-clusters",
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

//! The built-in scenarios, timelines and credentials, with the fixed ids tests, scripts and
//! the demo name. Every built-in scenario lives in [`PROJECT_ID`] and uses its own id
//! prefix, so any set of them can run together.
//!
//! | scenario | cluster (copy `i`) | workflow (copy `i`) | what happens (scenario seconds) |
//! | --- | --- | --- | --- |
//! | `success` | `c1000000-0000-4000-8000-{i:12}` | `f1000000-0000-4000-8000-{i:12}` | PreCheck 15–60, Snapshot 75–105, Cluster 120–240, PostCheck 255–300 → Success |
//! | `cluster-fails-then-retry` | `c2000000-…` | `f2000000-…` | as success until Cluster fails at 210 (Pending), retried 270, Success 390, PostCheck → Success at 450 |
//! | `cancel` | `c3000000-…` | `f3000000-…` | PreCheck passes, Snapshot fails at 105 (Pending: cancellable), cancelled at 165 |
//! | `precheck-expires` | `c4000000-…` | `f4000000-…` | PreCheck passes at 60 and expires at 180; Cluster starts at 240 and fails at 300 (Pending) |
//! | `autopilot-success` | `c5000000-…` (Autopilot) | `f5000000-…` | `success` on an Autopilot cluster (`/autopilot/v3/`) |
//! | `idle` | `c6000000-…` | none | a cluster without workflow, to create one through the API |
//! | `precheck-fails` | `c7000000-…` | `f7000000-…` | PreCheck fails at 60 (Pending): an Exception (node `worker-2` NotReady) and a Risk (a deprecated API); run again 120, passes 165; Snapshot 180–210, Cluster 225–345, PostCheck 360–405 → Success |
//! | `cluster-pauses` | `c8000000-…` | `f8000000-…` | as success until the Cluster task pauses at 170 (40%), continues at 230, succeeds at 320; PostCheck → Success at 380 |
//! | `seed-example` | `b4b9e60f-8aa2-11ee-af09-0255ac10004f` | `c271e39e-1a6e-4d3d-8fa8-2a36329c68d1` | Huawei's §8 example, static (one copy only) |
//!
//! Clusters start at [`FROM_VERSION`] and upgrade to [`TO_VERSION`]. With `--speed 60`
//! the longest timeline ends in 7.5 s.

use super::auth::CredentialDef;
use super::scenario::{ClusterDef, DEFAULT_PROJECT_ID, ScenarioFile, WorkflowDef};
use crate::cce::ApiFamily;
use crate::cce::model::{SEED_EXAMPLE, Workflow};

/// The project every built-in scenario lives in (and the built-in credentials belong to).
pub const PROJECT_ID: &str = DEFAULT_PROJECT_ID;
/// Version the built-in clusters run before their upgrade.
pub const FROM_VERSION: &str = "v1.28.15-r10";
/// Version the built-in workflows upgrade to.
pub const TO_VERSION: &str = "v1.29.13-r0";

/// Permanent AK/SK of the built-in credentials.
pub const ACCESS_KEY: &str = "SIMAK0000000000000001";
pub const SECRET_KEY: &str = "simSK0000000000000000000000000000000000001";
/// Temporary AK/SK with their security token.
pub const TEMP_ACCESS_KEY: &str = "SIMTMPAK000000000001";
pub const TEMP_SECRET_KEY: &str = "simTmpSK00000000000000000000000000000001";
pub const SECURITY_TOKEN: &str = "simSecurityToken-0001";
/// IAM token.
pub const TOKEN: &str = "MIIsimToken-0001";

/// The seed example's ids (Huawei's own, from cce-api.md §8).
pub const SEED_CLUSTER_ID: &str = "b4b9e60f-8aa2-11ee-af09-0255ac10004f";
pub const SEED_WORKFLOW_ID: &str = "c271e39e-1a6e-4d3d-8fa8-2a36329c68d1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Success,
    ClusterFailsThenRetry,
    Cancel,
    PrecheckExpires,
    AutopilotSuccess,
    Idle,
    SeedExample,
    PrecheckFails,
    ClusterPauses,
}

impl Builtin {
    pub const ALL: [Builtin; 9] = [
        Builtin::Success,
        Builtin::ClusterFailsThenRetry,
        Builtin::Cancel,
        Builtin::PrecheckExpires,
        Builtin::AutopilotSuccess,
        Builtin::Idle,
        Builtin::SeedExample,
        Builtin::PrecheckFails,
        Builtin::ClusterPauses,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Success => "success",
            Builtin::ClusterFailsThenRetry => "cluster-fails-then-retry",
            Builtin::Cancel => "cancel",
            Builtin::PrecheckExpires => "precheck-expires",
            Builtin::AutopilotSuccess => "autopilot-success",
            Builtin::Idle => "idle",
            Builtin::SeedExample => "seed-example",
            Builtin::PrecheckFails => "precheck-fails",
            Builtin::ClusterPauses => "cluster-pauses",
        }
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The digit in this scenario's id prefix.
    fn number(self) -> u8 {
        match self {
            Builtin::Success => 1,
            Builtin::ClusterFailsThenRetry => 2,
            Builtin::Cancel => 3,
            Builtin::PrecheckExpires => 4,
            Builtin::AutopilotSuccess => 5,
            Builtin::Idle => 6,
            Builtin::SeedExample => 0,
            Builtin::PrecheckFails => 7,
            Builtin::ClusterPauses => 8,
        }
    }

    /// Whether `--workflows N` can copy it (the seed example has Huawei's fixed ids).
    pub fn copyable(self) -> bool {
        self != Builtin::SeedExample
    }

    fn cluster_template(self) -> String {
        match self {
            Builtin::SeedExample => SEED_CLUSTER_ID.into(),
            b => format!("c{}000000-0000-4000-8000-{{i:12}}", b.number()),
        }
    }

    fn workflow_template(self) -> String {
        match self {
            Builtin::SeedExample => SEED_WORKFLOW_ID.into(),
            b => format!("f{}000000-0000-4000-8000-{{i:12}}", b.number()),
        }
    }

    /// Cluster id of copy `i`.
    pub fn cluster_id(self, i: u64) -> String {
        match self {
            Builtin::SeedExample => SEED_CLUSTER_ID.into(),
            b => format!("c{}000000-0000-4000-8000-{i:012}", b.number()),
        }
    }

    /// Workflow id of copy `i` (`idle` has none; its id is still reserved).
    pub fn workflow_id(self, i: u64) -> String {
        match self {
            Builtin::SeedExample => SEED_WORKFLOW_ID.into(),
            b => format!("f{}000000-0000-4000-8000-{i:012}", b.number()),
        }
    }

    pub fn cluster_type(self) -> ApiFamily {
        match self {
            Builtin::AutopilotSuccess => ApiFamily::Autopilot,
            _ => ApiFamily::Standard,
        }
    }

    /// The scenario as a file would say it.
    pub fn scenario(self) -> ScenarioFile {
        let (cluster_version, timeline) = match self {
            Builtin::Success | Builtin::AutopilotSuccess => (FROM_VERSION, Some("success")),
            Builtin::ClusterFailsThenRetry => (FROM_VERSION, Some("cluster-fails-then-retry")),
            Builtin::Cancel => (FROM_VERSION, Some("cancel")),
            Builtin::PrecheckExpires => (FROM_VERSION, Some("precheck-expires")),
            Builtin::PrecheckFails => (FROM_VERSION, Some("precheck-fails")),
            Builtin::ClusterPauses => (FROM_VERSION, Some("cluster-pauses")),
            Builtin::Idle => (FROM_VERSION, None),
            Builtin::SeedExample => ("v1.17.17-r0", None),
        };
        let mut workflows = Vec::new();
        if let Some(timeline) = timeline {
            workflows.push(WorkflowDef {
                id: self.workflow_template(),
                cluster_id: self.cluster_template(),
                target_version: Some(TO_VERSION.into()),
                timeline: Some(timeline.into()),
                ..WorkflowDef::default()
            });
        }
        if self == Builtin::SeedExample {
            // The example is part of the binary; it always parses (tested in cce::model).
            let fixed = serde_json::from_str::<Workflow>(SEED_EXAMPLE).ok();
            workflows.push(WorkflowDef {
                id: self.workflow_template(),
                cluster_id: self.cluster_template(),
                fixed,
                ..WorkflowDef::default()
            });
        }
        ScenarioFile {
            name: Some(self.name().into()),
            project_id: Some(PROJECT_ID.into()),
            clusters: vec![ClusterDef {
                id: self.cluster_template(),
                cluster_type: self.cluster_type(),
                project_id: None,
                version: cluster_version.into(),
            }],
            workflows,
            ..ScenarioFile::default()
        }
    }
}

/// Credentials used when no `--credentials` file is given, all for [`PROJECT_ID`].
pub fn credentials() -> Vec<CredentialDef> {
    vec![
        CredentialDef {
            access_key: Some(ACCESS_KEY.into()),
            secret_key: Some(SECRET_KEY.into()),
            project_id: PROJECT_ID.into(),
            ..CredentialDef::default()
        },
        CredentialDef {
            access_key: Some(TEMP_ACCESS_KEY.into()),
            secret_key: Some(TEMP_SECRET_KEY.into()),
            security_token: Some(SECURITY_TOKEN.into()),
            project_id: PROJECT_ID.into(),
            ..CredentialDef::default()
        },
        CredentialDef {
            token: Some(TOKEN.into()),
            project_id: PROJECT_ID.into(),
            ..CredentialDef::default()
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_instantiates_with_its_documented_ids() {
        for b in Builtin::ALL {
            assert_eq!(Builtin::from_name(b.name()), Some(b));
            let plan = b.scenario().instantiate(None).expect("instantiates");
            assert_eq!(plan.clusters[0].id, b.cluster_id(0));
            assert_eq!(plan.clusters[0].project_id, PROJECT_ID);
            assert_eq!(plan.clusters[0].cluster_type, b.cluster_type());
            if b != Builtin::Idle {
                assert_eq!(plan.workflows[0].id, b.workflow_id(0));
            }
            if b.copyable() {
                let plan = b.scenario().instantiate(Some(3)).expect("copies");
                assert_eq!(plan.clusters[2].id, b.cluster_id(2));
            }
        }
        let seed = Builtin::SeedExample
            .scenario()
            .instantiate(None)
            .expect("seed");
        let fixed = seed.workflows[0].fixed.clone().expect("fixed");
        let original: Workflow = serde_json::from_str(SEED_EXAMPLE).expect("parse");
        assert_eq!(fixed, original);
    }

    #[test]
    fn all_builtins_run_together() {
        let mut plan = Builtin::Success.scenario().instantiate(None).expect("ok");
        for b in &Builtin::ALL[1..] {
            plan.merge(b.scenario().instantiate(None).expect("ok"))
                .expect("no id clash");
        }
    }
}

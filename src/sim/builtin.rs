//! The built-in scenarios, timelines and credentials, with the fixed ids tests, scripts and
//! the demo name. Each built-in scenario is one file of the scenario format
//! ([`super::scenario`]) in `src/sim/scenarios/`, embedded in the binary and listed once in
//! the table below: the set `cce-sim` starts by default, the names it accepts and lists, and
//! the typed handle tests use ([`Builtin`]) all come from that table. The timelines those
//! files define are the built-in timelines every scenario, `--on-create` and the admin API
//! may name. Pure: the files are parsed once, on first use.
//!
//! Every built-in scenario lives in [`PROJECT_ID`] and uses its own id prefix, so any set of
//! them can run together:
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
//! | `fleet` | `c9000000-0000-4000-800N-{i:12}`, N = 0…6 (see [`FLEET`]) | `f9000000-…` (on `fleet-rolling`) | seven clusters for discovery: one upgrading through a workflow created at 30 (Upgrading 150–270), one steady, one upgrading without a workflow 40–140, one failing without a workflow at 120 (Error), one appearing at 90, one Deleting at 150 and gone at 180, one Autopilot |
//!
//! Clusters start at [`FROM_VERSION`] and upgrade to [`TO_VERSION`]. With `--speed 60`
//! the longest timeline ends in 7.5 s.
//!
//! A new built-in scenario is its file `scenarios/<name>.yaml`, its line in the table, and
//! its line in the test of documented ids below (plus a test of what it plays, in `state`).

use std::sync::LazyLock;

use super::auth::CredentialDef;
use super::ids::{expand_id, is_template};
use super::scenario::{DEFAULT_PROJECT_ID, ScenarioFile};
use super::timeline::{Timeline, parse_timeline};
use crate::cce::ApiFamily;

/// The project every built-in scenario lives in (and the built-in credentials belong to).
pub const PROJECT_ID: &str = DEFAULT_PROJECT_ID;
/// Version the built-in clusters run before their upgrade.
pub const FROM_VERSION: &str = "v1.28.15-r10";
/// Version the built-in workflows upgrade to.
pub const TO_VERSION: &str = "v1.29.13-r0";

/// The timeline of a scenario's workflow that names none, and of workflows created through
/// the API unless `onCreate` says otherwise.
pub const DEFAULT_TIMELINE: &str = "success";

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

/// Declares [`Builtin`] from the table: one variant per line, its name, and its file
/// `scenarios/<name>.yaml` embedded.
macro_rules! builtins {
    ($($variant:ident => $name:literal,)+) => {
        /// A built-in scenario.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Builtin {
            $($variant,)+
        }

        impl Builtin {
            /// Every built-in scenario, in table order: what `cce-sim` starts by default.
            pub const ALL: [Builtin; [$($name),+].len()] = [$(Builtin::$variant),+];

            pub fn name(self) -> &'static str {
                match self {
                    $(Builtin::$variant => $name,)+
                }
            }

            /// The scenario file as written.
            fn text(self) -> &'static str {
                match self {
                    $(Builtin::$variant => include_str!(concat!("scenarios/", $name, ".yaml")),)+
                }
            }
        }
    };
}

builtins! {
    Success => "success",
    ClusterFailsThenRetry => "cluster-fails-then-retry",
    Cancel => "cancel",
    PrecheckExpires => "precheck-expires",
    AutopilotSuccess => "autopilot-success",
    Idle => "idle",
    SeedExample => "seed-example",
    PrecheckFails => "precheck-fails",
    ClusterPauses => "cluster-pauses",
    Fleet => "fleet",
}

/// The clusters of the `fleet` scenario, in the order of its file: the cluster id of copy
/// `i` of member `n` is `c9000000-0000-4000-800{n}-{i:12}`, its name `{name}-{i:2}`.
pub const FLEET: [FleetMember; 7] = [
    FleetMember::new("fleet-rolling", ApiFamily::Standard),
    FleetMember::new("fleet-steady", ApiFamily::Standard),
    FleetMember::new("fleet-direct", ApiFamily::Standard),
    FleetMember::new("fleet-broken", ApiFamily::Standard),
    FleetMember::new("fleet-late", ApiFamily::Standard),
    FleetMember::new("fleet-retired", ApiFamily::Standard),
    FleetMember::new("fleet-autopilot", ApiFamily::Autopilot),
];

/// One cluster of the `fleet` scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetMember {
    pub name: &'static str,
    pub family: ApiFamily,
}

impl FleetMember {
    const fn new(name: &'static str, family: ApiFamily) -> Self {
        Self { name, family }
    }

    /// The member's position in [`FLEET`].
    fn index(self) -> usize {
        FLEET.iter().position(|m| *m == self).unwrap_or_default()
    }

    /// Cluster id of copy `i`.
    pub fn cluster_id(self, i: u64) -> String {
        format!("c9000000-0000-4000-800{}-{i:012}", self.index())
    }

    /// Cluster name of copy `i`.
    pub fn cluster_name(self, i: u64) -> String {
        format!("{}-{i:02}", self.name)
    }
}

/// Every built-in scenario's file, parsed, in table order; named after its table entry.
static FILES: LazyLock<Vec<ScenarioFile>> =
    LazyLock::new(|| Builtin::ALL.iter().map(|b| b.parse()).collect());

/// The timelines the built-in files define, in table order.
static TIMELINES: LazyLock<Vec<Timeline>> = LazyLock::new(|| {
    FILES
        .iter()
        .flat_map(|file| &file.timelines)
        .map(|(name, steps)| {
            parse_timeline(name, steps).unwrap_or_else(|e| panic!("built-in timeline: {e}"))
        })
        .collect()
});

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    // The files are part of the binary and a unit test parses each one, so a failure here
    // is a build that was never tested.
    fn parse(self) -> ScenarioFile {
        let mut file = ScenarioFile::from_yaml(self.text())
            .unwrap_or_else(|e| panic!("built-in scenario {}: {e}", self.name()));
        file.name.get_or_insert_with(|| self.name().to_string());
        file
    }

    fn file(self) -> &'static ScenarioFile {
        &FILES[self as usize]
    }

    /// The scenario as its file says it.
    pub fn scenario(self) -> ScenarioFile {
        self.file().clone()
    }

    /// Whether `--workflows N` can copy it (the seed example has Huawei's fixed ids).
    pub fn copyable(self) -> bool {
        let file = self.file();
        let clusters = file.clusters.iter().map(|c| &c.id);
        clusters
            .chain(file.workflows.iter().map(|w| &w.id))
            .all(|id| is_template(id))
    }

    /// Cluster id of copy `i`.
    pub fn cluster_id(self, i: u64) -> String {
        self.file()
            .clusters
            .first()
            .map(|c| copy_id(&c.id, i))
            .unwrap_or_default()
    }

    /// Workflow id of copy `i`; empty for a scenario without workflow (`idle`).
    pub fn workflow_id(self, i: u64) -> String {
        self.file()
            .workflows
            .first()
            .map(|w| copy_id(&w.id, i))
            .unwrap_or_default()
    }

    pub fn cluster_type(self) -> ApiFamily {
        self.file()
            .clusters
            .first()
            .map(|c| c.cluster_type)
            .unwrap_or_default()
    }
}

fn copy_id(template: &str, i: u64) -> String {
    expand_id(template, i).unwrap_or_else(|e| panic!("built-in id: {e}"))
}

/// A built-in timeline by name: one a built-in scenario's file defines.
pub fn timeline(name: &str) -> Option<Timeline> {
    TIMELINES.iter().find(|t| t.name == name).cloned()
}

/// The names of the built-in timelines, in table order.
pub fn timeline_names() -> Vec<&'static str> {
    TIMELINES.iter().map(|t| t.name.as_str()).collect()
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
    use crate::cce::model::{SEED_EXAMPLE, Workflow};

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
                assert!(plan.clusters.iter().any(|c| c.id == b.cluster_id(2)));
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

    /// One line per built-in: the id prefix scripts, tests and the demo rely on, the
    /// cluster type, and whether it has a workflow.
    #[test]
    fn ids_follow_the_documented_prefixes() {
        use ApiFamily::{Autopilot, Standard};
        let table = [
            (Builtin::Success, 1, Standard, true),
            (Builtin::ClusterFailsThenRetry, 2, Standard, true),
            (Builtin::Cancel, 3, Standard, true),
            (Builtin::PrecheckExpires, 4, Standard, true),
            (Builtin::AutopilotSuccess, 5, Autopilot, true),
            (Builtin::Idle, 6, Standard, false),
            (Builtin::PrecheckFails, 7, Standard, true),
            (Builtin::ClusterPauses, 8, Standard, true),
            (Builtin::Fleet, 9, Standard, true),
        ];
        for (b, n, family, has_workflow) in table {
            assert!(b.copyable(), "{}", b.name());
            assert_eq!(b.cluster_type(), family, "{}", b.name());
            assert_eq!(
                b.cluster_id(42),
                format!("c{n}000000-0000-4000-8000-000000000042")
            );
            let workflow = if has_workflow {
                format!("f{n}000000-0000-4000-8000-000000000042")
            } else {
                String::new()
            };
            assert_eq!(b.workflow_id(42), workflow);
        }
        let seed = Builtin::SeedExample;
        assert!(!seed.copyable());
        assert_eq!(seed.cluster_id(0), SEED_CLUSTER_ID);
        assert_eq!(seed.workflow_id(0), SEED_WORKFLOW_ID);
        assert_eq!(table.len() + 1, Builtin::ALL.len());
    }

    #[test]
    fn builtins_upgrade_from_and_to_the_documented_versions() {
        for b in Builtin::ALL
            .into_iter()
            .filter(|b| *b != Builtin::SeedExample)
        {
            let plan = b.scenario().instantiate(None).expect("plan");
            assert!(plan.clusters.iter().all(|c| c.version == FROM_VERSION));
            for w in &plan.workflows {
                assert_eq!(w.cluster_version, FROM_VERSION);
                assert_eq!(w.target_version, TO_VERSION);
            }
        }
    }

    #[test]
    fn every_builtin_timeline_parses_and_names_are_unique() {
        // Scenario files, `--on-create` and error messages name them in this order.
        assert_eq!(
            timeline_names(),
            [
                "success",
                "cluster-fails-then-retry",
                "cancel",
                "precheck-expires",
                "precheck-fails",
                "cluster-pauses",
            ]
        );
        for name in timeline_names() {
            let tl = timeline(name).expect(name);
            assert!(!tl.steps.is_empty());
        }
        assert!(timeline(DEFAULT_TIMELINE).is_some());
        assert!(timeline("nope").is_none());
    }

    #[test]
    fn the_fleet_has_its_documented_members() {
        let plan = Builtin::Fleet
            .scenario()
            .instantiate(Some(2))
            .expect("fleet");
        assert_eq!(plan.clusters.len(), 2 * FLEET.len());
        for (i, copy) in plan.clusters.chunks(FLEET.len()).enumerate() {
            for (member, cluster) in FLEET.iter().zip(copy) {
                assert_eq!(cluster.id, member.cluster_id(i as u64));
                assert_eq!(cluster.name, Some(member.cluster_name(i as u64)));
                assert_eq!(cluster.cluster_type, member.family);
            }
        }
        let by_name = |name: &str| {
            plan.clusters
                .iter()
                .find(|c| c.name.as_deref() == Some(name))
                .expect(name)
        };
        assert_eq!(by_name("fleet-direct-00").upgrades.len(), 1);
        assert!(by_name("fleet-broken-01").upgrades[0].fails);
        assert_eq!(by_name("fleet-late-00").created_at, 90.0);
        assert_eq!(by_name("fleet-retired-00").deleted_at, Some(150.0));
        assert_eq!(plan.workflows[0].cluster_id, FLEET[0].cluster_id(0));
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

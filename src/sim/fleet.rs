//! A cluster's own life, for fleets: when it appears, the upgrades it goes through without
//! a workflow (as Huawei's Terraform provider runs them, cce-clusters.md §3.1: `Upgrading`
//! with an upgrade task and no workflow, then `Available` at the new version or `Error`),
//! when it is deleted; the cluster object ShowCluster and ListClusters both answer with
//! (§1.4, §2: the keys and fields of each family as Huawei's SDK models them); and
//! ListClusters' query filters. Pure: the time is passed in.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::clock::{plus, scaled};
use super::diagnostics::{RunContext, TaskRun};
use super::ids::derived_uuid;
use super::scenario::UpgradeDef;
use crate::cce::ApiFamily;
use crate::cce::diagnostics::cluster::{
    Cluster, ClusterEndpoint, ClusterMetadata, ClusterPhase, ClusterSpec, ClusterStatus,
    ContainerNetwork, EniNetwork, EniSubnet, HostNetwork,
};
use crate::cce::model::{TaskState, TaskType};
use crate::cce::time::format_go;
use crate::cce::version::ClusterVersion;

/// Scenario seconds a deleted cluster shows `Deleting` before it is gone.
pub const DELETING_FOR: f64 = 30.0;
/// Where a failing upgrade without a workflow stops, in percent.
pub const FAILED_AT_PERCENT: f64 = 60.0;
/// The time zone of every Standard cluster (Autopilot clusters carry none).
const TIMEZONE: &str = "Asia/Shanghai";

/// An upgrade without a workflow, validated (scenario seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct UpgradePlan {
    pub at: f64,
    pub takes: f64,
    pub to: String,
    pub fails: bool,
}

/// A scenario's upgrades of one cluster, checked: each after the cluster appears and after
/// the one before ended, to a version CCE could write.
pub fn parse_upgrades(defs: &[UpgradeDef], created_at: f64) -> Result<Vec<UpgradePlan>, String> {
    let mut free_from = created_at;
    let mut out = Vec::with_capacity(defs.len());
    for def in defs {
        if !(def.at.is_finite() && def.at >= free_from) {
            return Err(format!(
                "the upgrade to {} starts at {}: upgrades start once the cluster exists and the one before ended",
                def.to, def.at
            ));
        }
        if !(def.takes.is_finite() && def.takes > 0.0) {
            return Err(format!("the upgrade to {}: takes must be > 0", def.to));
        }
        if ClusterVersion::parse(&def.to).is_none() {
            return Err(format!(
                "the upgrade to {:?}: to must be a version such as v1.29.13-r0",
                def.to
            ));
        }
        let fails = match def
            .result
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("success") => false,
            Some("failed") => true,
            Some(other) => return Err(format!("result {other:?}: use Success or Failed")),
        };
        free_from = def.at + def.takes;
        out.push(UpgradePlan {
            at: def.at,
            takes: def.takes,
            to: def.to.clone(),
            fails,
        });
    }
    Ok(out)
}

/// CCE's rule for a cluster's name: 4–128 characters, a lower-case letter first, lower
/// case, digits and `-`, no `-` last.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (4..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "cluster name {name:?}: 4–128 characters, lower case, digits and '-', a letter first"
        )),
    }
}

/// `CCE` or `Turbo`; an Autopilot cluster is always Turbo.
pub fn check_category(category: Option<&str>, family: ApiFamily) -> Result<(), String> {
    match (category, family) {
        (None | Some("Turbo"), _) | (Some("CCE"), ApiFamily::Standard) => Ok(()),
        (Some(other), _) => Err(format!(
            "category {other:?}: CCE or Turbo (an Autopilot cluster is Turbo)"
        )),
    }
}

/// An upgrade without a workflow, on the clock.
#[derive(Debug, Clone)]
struct Direct {
    task_id: String,
    from: String,
    to: String,
    starts: Timestamp,
    ends: Timestamp,
    fails: bool,
}

/// When a cluster exists, and the upgrades it goes through without a workflow.
#[derive(Debug, Clone)]
pub(super) struct Life {
    pub appears: Timestamp,
    deleting: Option<Timestamp>,
    gone: Option<Timestamp>,
    upgrades: Vec<Direct>,
}

impl Life {
    /// The life of cluster `id` starting at `version`, offsets scaled from `start`.
    pub fn new(
        id: &str,
        version: &str,
        created_at: f64,
        deleted_at: Option<f64>,
        upgrades: &[UpgradePlan],
        (start, speed): (Timestamp, f64),
    ) -> Life {
        let at = |secs: f64| plus(start, scaled(speed, secs));
        let mut from = version.to_string();
        let upgrades = upgrades
            .iter()
            .enumerate()
            .map(|(n, u)| {
                let direct = Direct {
                    task_id: derived_uuid(&format!("direct-upgrade/{id}/{n}")),
                    from: from.clone(),
                    to: u.to.clone(),
                    starts: at(u.at),
                    ends: at(u.at + u.takes),
                    fails: u.fails,
                };
                if !u.fails {
                    from = u.to.clone();
                }
                direct
            })
            .collect();
        Life {
            appears: at(created_at),
            deleting: deleted_at.map(at),
            gone: deleted_at.map(|d| at(d + DELETING_FOR)),
            upgrades,
        }
    }

    /// A cluster added at `now` (admin API): there from now on, nothing planned.
    pub fn from_now(now: Timestamp) -> Life {
        Life {
            appears: now,
            deleting: None,
            gone: None,
            upgrades: Vec::new(),
        }
    }

    /// Whether CCE knows the cluster at `now`.
    pub fn present(&self, now: Timestamp) -> bool {
        now >= self.appears && self.gone.is_none_or(|gone| now < gone)
    }

    /// `Deleting`, once the deletion started.
    pub fn deleting(&self, now: Timestamp) -> Option<ClusterStatus> {
        self.deleting.filter(|d| now >= *d).map(|_| ClusterStatus {
            phase: Some(ClusterPhase::Deleting),
            reason: Some("Deleting".into()),
            message: Some("the cluster is being deleted".into()),
            ..ClusterStatus::default()
        })
    }

    /// What the newest upgrade without a workflow started by `now` says, and when it
    /// started.
    pub fn direct_status(&self, now: Timestamp) -> Option<(Timestamp, ClusterStatus)> {
        let u = self.upgrades.iter().rev().find(|u| u.starts <= now)?;
        let status = |phase, reason: Option<&str>, message: Option<String>| ClusterStatus {
            phase: Some(phase),
            reason: reason.map(str::to_string),
            message,
            ..ClusterStatus::default()
        };
        let status = match (now < u.ends, u.fails) {
            (true, _) => status(
                ClusterPhase::Upgrading,
                Some("Upgrading"),
                Some(format!("upgrading the cluster to {}", u.to)),
            ),
            (false, false) => status(ClusterPhase::Available, None, None),
            (false, true) => status(
                ClusterPhase::Error,
                Some("UpgradeFailed"),
                Some(format!(
                    "upgrading the control plane to {} failed at {FAILED_AT_PERCENT:.0}%",
                    u.to
                )),
            ),
        };
        Some((u.starts, status))
    }

    /// The version the newest finished upgrade without a workflow left, and when.
    pub fn direct_version(&self, now: Timestamp) -> Option<(Timestamp, String)> {
        self.upgrades
            .iter()
            .rev()
            .find(|u| !u.fails && u.ends <= now)
            .map(|u| (u.ends, u.to.clone()))
    }

    /// The upgrade tasks of the upgrades started by `now`, oldest first, as
    /// ListUpgradeClusterTasks reports them (`build` makes the answer of one).
    pub fn upgrade_tasks<T>(
        &self,
        now: Timestamp,
        cluster_id: &str,
        build: impl Fn(&TaskRun, &RunContext<'_>) -> T,
    ) -> Vec<T> {
        self.upgrades
            .iter()
            .filter(|u| u.starts <= now)
            .map(|u| {
                let run = u.run(now);
                let ctx = RunContext {
                    cluster_id,
                    from: &u.from,
                    to: &u.to,
                    now,
                    origin: u.starts,
                };
                build(&run, &ctx)
            })
            .collect()
    }
}

impl Direct {
    /// The task's run at `now`: running from 0 towards 100 (or where it fails), then done.
    fn run(&self, now: Timestamp) -> TaskRun {
        let started = format_go(self.starts);
        let mut run = TaskRun::new(
            TaskType::Cluster,
            self.task_id.clone(),
            self.starts,
            &started,
        );
        run.start = Some(started);
        let target = if self.fails { FAILED_AT_PERCENT } else { 100.0 };
        if now < self.ends {
            run.status = TaskState::Running;
            run.heading = Some((self.ends.duration_since(self.starts), target));
        } else {
            let ended = format_go(self.ends);
            run.status = if self.fails {
                TaskState::Failed
            } else {
                TaskState::Success
            };
            run.progress = target;
            run.changed = self.ends;
            run.updated = Some(ended.clone());
            run.end = Some(ended);
        }
        run
    }
}

/// What the cluster object says, gathered by the world.
pub(super) struct Looks<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub family: ApiFamily,
    pub category: Option<&'a str>,
    pub labels: &'a BTreeMap<String, String>,
    pub created: Timestamp,
    /// The full version, `vA.B.C-rN` for the clusters scenarios write.
    pub version: &'a str,
    pub status: ClusterStatus,
}

/// The cluster object of ShowCluster and of ListClusters' items, with the fields of its
/// family: Standard clusters have `timezone` and `legacyVersion`, Autopilot ones neither;
/// Turbo and Autopilot clusters have an ENI network.
pub(super) fn cluster_object(looks: Looks<'_>, detail: bool) -> Cluster {
    let standard = looks.family == ApiFamily::Standard;
    let category = looks
        .category
        .unwrap_or(if standard { "CCE" } else { "Turbo" });
    let turbo = category == "Turbo";
    let parsed = ClusterVersion::parse(looks.version);
    let (version, platform_version) = match parsed {
        Some(v) => v.wire_fields(),
        None => (looks.version.to_string(), None),
    };
    let legacy_version = parsed
        .filter(|v| standard && v.patch.is_some() && v.revision.is_some())
        .map(|v| v.to_string());
    let derived = |what: &str| Some(derived_uuid(&format!("{what}/{}", looks.id)));
    let created = format_go(looks.created);
    let mut annotations = BTreeMap::new();
    if detail && standard {
        // The node figures `detail=true` adds (§1.1); the simulator's clusters have three.
        annotations.insert("totalNodesNumber".to_string(), "3".to_string());
        annotations.insert("activeNodesNumber".to_string(), "3".to_string());
    }
    Cluster {
        kind: Some("Cluster".into()),
        api_version: Some("v3".into()),
        metadata: Some(ClusterMetadata {
            name: Some(looks.name.to_string()),
            uid: Some(looks.id.to_string()),
            alias: Some(looks.name.to_string()),
            labels: looks.labels.clone(),
            annotations,
            creation_timestamp: Some(created.clone()),
            update_timestamp: Some(created),
            timezone: standard.then(|| TIMEZONE.to_string()),
        }),
        spec: Some(ClusterSpec {
            category: Some(category.to_string()),
            cluster_type: Some("VirtualMachine".into()),
            flavor: Some(
                if standard {
                    "cce.s2.small"
                } else {
                    "cce.autopilot.cluster"
                }
                .into(),
            ),
            version: Some(version),
            platform_version,
            legacy_version,
            host_network: Some(HostNetwork {
                vpc: derived("vpc"),
                subnet: derived("subnet"),
                security_group: None,
            }),
            container_network: Some(ContainerNetwork {
                mode: Some(if turbo { "eni" } else { "vpc-router" }.into()),
            }),
            eni_network: turbo.then(|| EniNetwork {
                subnets: Some(vec![EniSubnet {
                    subnet_id: derived("eni-subnet"),
                }]),
            }),
        }),
        status: Some(ClusterStatus {
            endpoints: Some(vec![ClusterEndpoint {
                url: Some(format!("https://{}:5443", internal_address(looks.id))),
                endpoint_type: Some("Internal".into()),
            }]),
            ..looks.status
        }),
    }
}

/// A private address derived from the id, so each cluster has its own.
fn internal_address(id: &str) -> String {
    let h = derived_uuid(id);
    let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap_or(1);
    format!("192.168.{}.{}", byte(0), byte(2).max(2))
}

/// ListClusters' query (§1.1): `detail`, and the filters `status` (a phase), `type` (the
/// masters' architecture) and `version`. CCE does not document how `version` matches; the
/// simulator takes it as a prefix of the cluster's version part by part (`v1.28` matches
/// `v1.28` and `v1.28.15-r10`), and compares text exactly when it is no version. Other
/// parameters are ignored, as a gateway does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub detail: bool,
    pub status: Option<String>,
    pub arch: Option<String>,
    pub version: Option<String>,
}

impl ListQuery {
    pub fn of(query: &[(String, String)]) -> ListQuery {
        let mut q = ListQuery::default();
        for (name, value) in query {
            let value = Some(value.clone()).filter(|v| !v.is_empty());
            match name.as_str() {
                "detail" => q.detail = value.is_some_and(|v| v.eq_ignore_ascii_case("true")),
                "status" => q.status = value,
                "type" => q.arch = value,
                "version" => q.version = value,
                _ => {}
            }
        }
        q
    }

    /// Whether `cluster` passes the filters.
    pub fn admits(&self, cluster: &Cluster) -> bool {
        let spec = cluster.spec.as_ref();
        let status_ok = self.status.as_deref().is_none_or(|want| {
            cluster
                .phase()
                .is_some_and(|p| p.means(&ClusterPhase::from(want)))
        });
        let arch_ok = self
            .arch
            .as_deref()
            .is_none_or(|want| spec.and_then(|s| s.cluster_type.as_deref()) == Some(want));
        let version_ok = self.version.as_deref().is_none_or(|want| {
            match (ClusterVersion::parse(want), cluster.version()) {
                (Some(prefix), Some(have)) => have.has_prefix(&prefix),
                _ => spec.and_then(|s| s.version.as_deref()) == Some(want),
            }
        });
        status_ok && arch_ok && version_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("ts")
    }

    fn upgrade(at: f64, takes: f64, to: &str, result: Option<&str>) -> UpgradeDef {
        UpgradeDef {
            at,
            takes,
            to: to.into(),
            result: result.map(str::to_string),
        }
    }

    #[test]
    fn upgrades_are_checked_in_order_and_for_their_result() {
        let ok = parse_upgrades(
            &[
                upgrade(10.0, 20.0, "v1.29.13-r0", None),
                upgrade(30.0, 5.0, "v1.30.1-r0", Some("failed")),
            ],
            5.0,
        )
        .expect("valid");
        assert_eq!((ok[0].fails, ok[1].fails), (false, true));
        for (defs, created, needle) in [
            (
                vec![upgrade(1.0, 5.0, "v1.29.1-r0", None)],
                5.0,
                "starts at 1",
            ),
            (
                vec![
                    upgrade(10.0, 20.0, "v1.29.1-r0", None),
                    upgrade(25.0, 5.0, "v1.30.1-r0", None),
                ],
                0.0,
                "the one before ended",
            ),
            (vec![upgrade(10.0, 0.0, "v1.29.1-r0", None)], 0.0, "takes"),
            (vec![upgrade(10.0, 5.0, "latest", None)], 0.0, "such as"),
            (
                vec![upgrade(10.0, 5.0, "v1.29.1-r0", Some("maybe"))],
                0.0,
                "Success or Failed",
            ),
        ] {
            let e = parse_upgrades(&defs, created).expect_err(needle);
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn names_and_categories_follow_cces_rules() {
        assert!(check_name("web-01").is_ok());
        for bad in ["web", "Web-01", "1web", "web-", "web_01"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_category(Some("Turbo"), ApiFamily::Autopilot).is_ok());
        assert!(check_category(Some("CCE"), ApiFamily::Autopilot).is_err());
        assert!(check_category(Some("turbo"), ApiFamily::Standard).is_err());
    }

    #[test]
    fn a_cluster_appears_upgrades_fails_and_disappears_on_the_clock() {
        let plans = parse_upgrades(
            &[
                upgrade(10.0, 20.0, "v1.29.13-r0", None),
                upgrade(40.0, 10.0, "v1.30.2-r0", Some("Failed")),
            ],
            5.0,
        )
        .expect("plans");
        let life = Life::new("c1", "v1.28.15-r10", 5.0, Some(100.0), &plans, (t(0), 1.0));
        assert!(!life.present(t(4)) && life.present(t(5)));
        assert!(life.direct_status(t(9)).is_none());
        let phase = |at| life.direct_status(t(at)).and_then(|(_, s)| s.phase);
        assert_eq!(phase(10), Some(ClusterPhase::Upgrading));
        assert_eq!(phase(30), Some(ClusterPhase::Available));
        assert_eq!(
            life.direct_version(t(30)).map(|v| v.1).as_deref(),
            Some("v1.29.13-r0")
        );
        assert_eq!(phase(45), Some(ClusterPhase::Upgrading));
        assert_eq!(phase(50), Some(ClusterPhase::Error));
        assert_eq!(
            life.direct_version(t(60)).map(|v| v.1).as_deref(),
            Some("v1.29.13-r0")
        );
        assert!(life.deleting(t(99)).is_none());
        assert_eq!(
            life.deleting(t(100)).and_then(|s| s.phase),
            Some(ClusterPhase::Deleting)
        );
        assert!(life.present(t(129)) && !life.present(t(130)));
    }

    #[test]
    fn the_upgrade_task_runs_then_ends_where_the_upgrade_does() {
        let plans = parse_upgrades(&[upgrade(0.0, 100.0, "v1.29.13-r0", Some("Failed"))], 0.0)
            .expect("plans");
        let life = Life::new("c1", "v1.28.15-r10", 0.0, None, &plans, (t(0), 1.0));
        let summary = |run: &TaskRun, ctx: &RunContext<'_>| {
            (
                run.status.clone(),
                run.progress_at(ctx.now, ctx.origin).round(),
                ctx.from.to_string(),
            )
        };
        let running = life.upgrade_tasks(t(50), "c1", summary);
        assert_eq!(running, [(TaskState::Running, 30.0, "v1.28.15-r10".into())]);
        let ended = life.upgrade_tasks(t(150), "c1", summary);
        assert_eq!(ended[0].0, TaskState::Failed);
        assert_eq!(ended[0].1, FAILED_AT_PERCENT);
    }

    #[test]
    fn each_family_carries_the_fields_its_sdk_model_has() {
        let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let looks = |family, category| Looks {
            id: "c1",
            name: "web-01",
            family,
            category,
            labels: &labels,
            created: t(0),
            version: "v1.28.15-r10",
            status: ClusterStatus {
                phase: Some(ClusterPhase::Available),
                ..ClusterStatus::default()
            },
        };
        let standard = cluster_object(looks(ApiFamily::Standard, None), true);
        let spec = standard.spec.clone().expect("spec");
        assert_eq!(spec.version.as_deref(), Some("v1.28"));
        assert_eq!(spec.platform_version.as_deref(), Some("cce.15.10"));
        assert_eq!(spec.legacy_version.as_deref(), Some("v1.28.15-r10"));
        assert_eq!(spec.category.as_deref(), Some("CCE"));
        assert!(spec.eni_network.is_none());
        let meta = standard.metadata.clone().expect("metadata");
        assert_eq!(meta.timezone.as_deref(), Some(TIMEZONE));
        assert_eq!(meta.annotations.len(), 2, "detail");
        let autopilot = cluster_object(looks(ApiFamily::Autopilot, None), true);
        let spec = autopilot.spec.clone().expect("spec");
        assert_eq!(spec.legacy_version, None);
        assert_eq!(spec.category.as_deref(), Some("Turbo"));
        assert!(spec.eni_network.is_some());
        assert_eq!(
            autopilot.metadata.as_ref().and_then(|m| m.timezone.clone()),
            None
        );
        assert_eq!(standard.version(), autopilot.version());
    }

    #[test]
    fn the_query_filters_on_phase_architecture_and_version_prefix() {
        let labels = BTreeMap::new();
        let cluster = cluster_object(
            Looks {
                id: "c1",
                name: "web-01",
                family: ApiFamily::Standard,
                category: None,
                labels: &labels,
                created: t(0),
                version: "v1.28.15-r10",
                status: ClusterStatus {
                    phase: Some(ClusterPhase::Upgrading),
                    ..ClusterStatus::default()
                },
            },
            false,
        );
        let query = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            ListQuery::of(&pairs)
        };
        assert!(query(&[]).admits(&cluster));
        assert!(query(&[("status", "Upgrading"), ("type", "VirtualMachine")]).admits(&cluster));
        assert!(query(&[("version", "v1.28"), ("detail", "TRUE")]).admits(&cluster));
        assert!(query(&[("detail", "true")]).detail);
        assert!(query(&[("version", "v1.28.15-r10"), ("other", "x")]).admits(&cluster));
        assert!(!query(&[("status", "Available")]).admits(&cluster));
        assert!(!query(&[("type", "ARM64")]).admits(&cluster));
        assert!(!query(&[("version", "v1.2")]).admits(&cluster));
        assert!(!query(&[("version", "odd")]).admits(&cluster));
    }
}

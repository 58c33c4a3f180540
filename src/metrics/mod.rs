//! Prometheus metrics, recorded only through [`Metrics`]' methods, one per thing that
//! happened (a reconcile deferred, a status refused, an Event published): the families are
//! private, so every label value comes from a fixed word here or from a caller's
//! `&'static str` (an operation, a failure category, an Event reason), and phases and task
//! types fold unknown values into `Other`, versions into `vMAJOR.MINOR` or `other`. The
//! per-watch series ([`watches`]) are a fixed few per existing watch, removed with the
//! watch. Build information and the standard process metrics ([`process`]) come with every
//! scrape. State, no I/O.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::cce::model::TaskType;

mod process;
mod watches;

use watches::{WatchBook, WatchCollector};

/// The source revision the binary was built from (build.rs).
pub const REVISION: &str = env!("CCE_UW_REVISION");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task_type: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// Every value of the `task_type` label.
const TASK_TYPES: [&str; 6] = [
    "Cluster",
    "PreCheck",
    "Rollback",
    "Snapshot",
    "PostCheck",
    "Other",
];

/// What a watch's status says of its upgrade, for the version and running-task series;
/// borrowed from the status, so the metrics need not know its type.
#[derive(Clone, Debug, Default)]
pub struct WatchUpgrade<'a> {
    /// The cluster's name in CCE.
    pub cluster_name: Option<&'a str>,
    pub from_version: Option<&'a str>,
    pub target_version: Option<&'a str>,
    pub tasks: Vec<TaskSeen<'a>>,
}

/// One task of a watch's status.
#[derive(Clone, Copy, Debug)]
pub struct TaskSeen<'a> {
    /// As CCE names it.
    pub task_type: &'a str,
    /// As CCE names it: only `Running` (in any case) counts as running.
    pub phase: Option<&'a str>,
    pub started: Option<SystemTime>,
}

/// All metrics of the operator, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Family<ResultLabels, Counter>,
    cce_requests: Family<RequestLabels, Counter>,
    cce_request_seconds: Family<RequestLabels, Histogram>,
    task_seconds: Family<TaskLabels, Histogram>,
    status_writes: Counter,
    status_rejections: Counter,
    events: Family<ReasonLabels, Counter>,
    leader: Gauge,
    insecure_endpoints: Gauge,
    book: Arc<Mutex<WatchBook>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::with_watch_series(true)
    }

    /// The metrics, with the per-watch series (labelled by namespace and name) only when
    /// `per_watch`: an operator shared by teams whose scrapers may not learn each other's
    /// watches exports the fleet's totals alone.
    pub fn with_watch_series(per_watch: bool) -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let mut metrics = Self {
            registry: Arc::default(),
            reconciles: Family::default(),
            cce_requests: Family::default(),
            cce_request_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.01, 2.0, 12))
            }),
            task_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(15.0, 2.0, 12))
            }),
            status_writes: Counter::default(),
            status_rejections: Counter::default(),
            events: Family::default(),
            leader: Gauge::default(),
            insecure_endpoints: Gauge::default(),
            book: Arc::default(),
        };
        // Every finished-task series from zero, so that the first task an instance sees end
        // is an increase: the overrun alert takes the usual duration from increase() over
        // weeks, across the series of every pod the operator ran as.
        for task_type in TASK_TYPES {
            for result in ["Success", "Failed"] {
                drop(
                    metrics
                        .task_seconds
                        .get_or_create(&TaskLabels { task_type, result }),
                );
            }
        }
        metrics.register(
            root.sub_registry_with_prefix("cce_upgrade_watch"),
            per_watch,
        );
        metrics.registry = Arc::new(root);
        metrics
    }

    /// Registers every family under its exported name (the registry adds the prefix and,
    /// for counters, `_total`).
    fn register(&self, registry: &mut Registry, per_watch: bool) {
        registry.register(
            "build",
            "The operator's version and source revision",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", REVISION),
            ]),
        );
        registry.register(
            "reconciles",
            "Reconciles by result",
            self.reconciles.clone(),
        );
        registry.register(
            "cce_requests",
            "CCE API requests by operation and outcome",
            self.cce_requests.clone(),
        );
        registry.register(
            "cce_request_duration_seconds",
            "CCE API request latency by operation and outcome",
            self.cce_request_seconds.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "Duration of finished upgrade tasks by task type and result",
            self.task_seconds.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches written to Kubernetes",
            self.status_writes.clone(),
        );
        registry.register(
            "status_rejections",
            "Status patches the API server refused; the watch keeps the last status written",
            self.status_rejections.clone(),
        );
        registry.register(
            "events",
            "Kubernetes Events published, by reason",
            self.events.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance holds the leader lease",
            self.leader.clone(),
        );
        registry.register(
            "insecure_endpoints_allowed",
            "1 when the endpoint allow-lists are lifted (--allow-insecure-endpoints): plain http and any host may receive credentials",
            self.insecure_endpoints.clone(),
        );
        registry.register_collector(Box::new(WatchCollector {
            book: self.book.clone(),
            per_watch,
        }));
    }

    /// Says whether this instance runs with the endpoint allow-lists lifted.
    pub fn set_insecure_endpoints(&self, allowed: bool) {
        self.insecure_endpoints.set(i64::from(allowed));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    fn reconciled(&self, result: &'static str) {
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// A reconcile that got a good answer from CCE (changed or not): `result="synced"`.
    pub fn reconcile_synced(&self) {
        self.reconciled("synced");
    }

    /// A reconcile of a suspended watch, which asks CCE nothing: `result="suspended"`.
    pub fn reconcile_suspended(&self) {
        self.reconciled("suspended");
    }

    /// A reconcile that got no good answer from CCE: `result="failed"`.
    pub fn reconcile_failed(&self) {
        self.reconciled("failed");
    }

    /// A reconcile put off before asking CCE, its endpoint having as many reads under way
    /// as it may: `result="deferred"`.
    pub fn reconcile_deferred(&self) {
        self.reconciled("deferred");
    }

    /// A reconcile that panicked, caught: `result="panic"`.
    pub fn reconcile_panicked(&self) {
        self.reconciled("panic");
    }

    /// A reconcile that failed on the Kubernetes API: `result="error"`.
    pub fn reconcile_errored(&self) {
        self.reconciled("error");
    }

    /// One CCE request (`operation`: the API read) and its `outcome`: `ok`, or the failure
    /// category's name.
    pub fn observe_request(&self, operation: &'static str, outcome: &'static str, took: Duration) {
        let labels = RequestLabels { operation, outcome };
        self.cce_requests.get_or_create(&labels).inc();
        self.cce_request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A finished task of watch `key`; a failed one also counts for the watch.
    pub fn observe_task(&self, key: &str, task_type: &str, result: &'static str, took: Duration) {
        if result == "Failed" {
            self.book.lock().task_failed(key);
        }
        let labels = TaskLabels {
            task_type: task_label(task_type),
            result,
        };
        self.task_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A status patch the API server accepted.
    pub fn status_written(&self) {
        self.status_writes.inc();
    }

    /// A status patch the API server refused for its content.
    pub fn status_rejected(&self) {
        self.status_rejections.inc();
    }

    /// An Event created (not one found already there), by its reason's name.
    pub fn event_published(&self, reason: &'static str) {
        self.events.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Whether this instance holds the leader lease, at start and on every change.
    pub fn record_leadership(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The cluster a watch follows, for the labels of its series.
    pub fn identify_watch(&self, key: &str, cluster_id: &str) {
        self.book.lock().identify(key, cluster_id);
    }

    /// Records what a watch shows now; `synced` marks a good answer from CCE, and
    /// `poll_interval` is how often it is polled while CCE answers.
    pub fn record_watch(
        &self,
        key: &str,
        phase: Option<&str>,
        synced: bool,
        poll_interval: Duration,
    ) {
        self.book.lock().record(key, phase, synced, poll_interval);
    }

    /// Records what the watch's status says of its upgrade (cluster name, versions, running
    /// tasks), whenever the reconcile knows the status; it stays until the next one.
    pub fn record_upgrade(&self, key: &str, upgrade: &WatchUpgrade<'_>) {
        self.book.lock().upgrade(key, upgrade);
    }

    /// Records a good answer that changed nothing: the phase stays as it was.
    pub fn record_unchanged(&self, key: &str, poll_interval: Duration) {
        self.book.lock().record_unchanged(key, poll_interval);
    }

    /// A suspended watch is not polled: it keeps its phase and versions but has no sync age
    /// or running task to alert on.
    pub fn suspend_watch(&self, key: &str, phase: Option<&str>) {
        self.book.lock().suspend(key, phase);
    }

    /// Keeps only the watches for which `keep` is true.
    pub fn retain_watches(&self, keep: impl Fn(&str) -> bool) {
        self.book.lock().retain(keep);
    }
}

/// The `task_type` label of a task type, one of [`TASK_TYPES`].
fn task_label(task_type: &str) -> &'static str {
    match TaskType::from(task_type).canonical() {
        TaskType::Cluster => "Cluster",
        TaskType::PreCheck => "PreCheck",
        TaskType::Rollback => "Rollback",
        TaskType::Snapshot => "Snapshot",
        TaskType::PostCheck => "PostCheck",
        TaskType::Unknown(_) => "Other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    const POLL: Duration = Duration::from_secs(30);

    /// Whether a line of `text` starts with `start` (a sample with its labels, say): a
    /// substring would also match inside a longer, wrongly prefixed name.
    fn has_line(text: &str, start: &str) -> bool {
        text.lines().any(|l| l.starts_with(start))
    }

    #[test]
    fn renders_watch_gauges_and_forgets_deleted_watches() {
        let m = Metrics::new();
        m.record_watch("ns/a", Some("Running"), true, POLL);
        m.record_watch("ns/b", Some("Weird"), false, Duration::from_secs(600));
        m.observe_request("show", "ok", Duration::from_millis(20));
        let text = m.render();
        assert!(
            has_line(&text, "cce_upgrade_watch_watches{phase=\"Running\"} 1"),
            "{text}"
        );
        assert!(
            has_line(&text, "cce_upgrade_watch_watches{phase=\"Other\"} 1"),
            "{text}"
        );
        assert!(
            has_line(
                &text,
                "cce_upgrade_watch_last_sync_age_seconds{namespace=\"ns\",name=\"a\"}"
            ),
            "{text}"
        );
        assert!(
            has_line(
                &text,
                "cce_upgrade_watch_poll_interval_seconds{namespace=\"ns\",name=\"b\"} 600"
            ),
            "{text}"
        );
        assert!(
            has_line(
                &text,
                "cce_upgrade_watch_cce_requests_total{operation=\"show\",outcome=\"ok\"} 1"
            ),
            "{text}"
        );
        m.retain_watches(|k| k != "ns/a");
        assert!(!m.render().contains("name=\"a\""));
    }

    #[test]
    fn without_watch_series_only_the_fleet_totals_name_no_watch() {
        let m = Metrics::with_watch_series(false);
        m.identify_watch("team-a/prod", "c-1");
        m.record_watch("team-a/prod", Some("Running"), true, POLL);
        let text = m.render();
        assert!(
            has_line(&text, "cce_upgrade_watch_watches{phase=\"Running\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("team-a") && !text.contains("prod") && !text.contains("c-1"),
            "{text}"
        );
    }

    /// The age of the sync series, in seconds, of watch `name` in namespace `ns`.
    fn age(m: &Metrics, name: &str) -> Option<f64> {
        let prefix =
            format!("cce_upgrade_watch_last_sync_age_seconds{{namespace=\"ns\",name=\"{name}\"}} ");
        m.render()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().expect("number")))
    }

    #[test]
    fn a_watch_that_never_synced_ages_from_when_it_was_first_served() {
        let m = Metrics::new();
        m.record_watch("ns/never", None, false, POLL);
        std::thread::sleep(Duration::from_millis(30));
        m.record_watch("ns/never", None, false, POLL);
        let first = age(&m, "never").expect("a never-synced watch has an age");
        assert!(first >= 0.03, "failures do not reset the age: {first}");
        m.record_watch("ns/never", Some("Init"), true, POLL);
        assert!(
            age(&m, "never").expect("age") < first,
            "a good sync resets it"
        );
    }

    #[test]
    fn a_suspended_watch_keeps_its_phase_but_has_no_age_or_interval() {
        let m = Metrics::new();
        m.record_watch("ns/s", Some("Running"), true, POLL);
        m.suspend_watch("ns/s", Some("Running"));
        let text = m.render();
        assert!(
            has_line(&text, "cce_upgrade_watch_watches{phase=\"Running\"} 1"),
            "{text}"
        );
        for series in ["last_sync_age_seconds", "poll_interval_seconds"] {
            assert!(
                !has_line(
                    &text,
                    &format!("cce_upgrade_watch_{series}{{namespace=\"ns\",name=\"s\"")
                ),
                "{text}"
            );
        }
    }

    /// The sample names of a rendering, each once, in order of appearance.
    fn sample_names(text: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line
                .split(['{', ' '])
                .next()
                .unwrap_or_default()
                .to_string();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    #[test]
    fn every_metric_is_exported_under_its_documented_name() {
        let m = Metrics::new();
        m.reconcile_synced();
        m.observe_request("show", "ok", Duration::from_millis(20));
        m.observe_task("ns/a", "Cluster", "Failed", Duration::from_secs(300));
        m.status_written();
        m.event_published("TaskFailed");
        m.record_watch("ns/a", Some("Pending"), true, POLL);
        m.record_upgrade(
            "ns/a",
            &upgrade(
                "v1.28.15-r10",
                "v1.29.13-r0",
                &[("Cluster", "Running", 100)],
            ),
        );
        let mut names = sample_names(&m.render());
        names.sort();
        assert_eq!(
            names,
            [
                "cce_upgrade_watch_build_info",
                "cce_upgrade_watch_cce_request_duration_seconds_bucket",
                "cce_upgrade_watch_cce_request_duration_seconds_count",
                "cce_upgrade_watch_cce_request_duration_seconds_sum",
                "cce_upgrade_watch_cce_requests_total",
                "cce_upgrade_watch_events_total",
                "cce_upgrade_watch_insecure_endpoints_allowed",
                "cce_upgrade_watch_last_sync_age_seconds",
                "cce_upgrade_watch_last_sync_timestamp_seconds",
                "cce_upgrade_watch_leader",
                "cce_upgrade_watch_poll_interval_seconds",
                "cce_upgrade_watch_reconciles_total",
                "cce_upgrade_watch_status_rejections_total",
                "cce_upgrade_watch_status_writes_total",
                "cce_upgrade_watch_task_duration_seconds_bucket",
                "cce_upgrade_watch_task_duration_seconds_count",
                "cce_upgrade_watch_task_duration_seconds_sum",
                "cce_upgrade_watch_task_started_timestamp_seconds",
                "cce_upgrade_watch_upgrades",
                "cce_upgrade_watch_watch_info",
                "cce_upgrade_watch_watch_phase",
                "cce_upgrade_watch_watch_task_failures_total",
                "cce_upgrade_watch_watches",
                "process_cpu_seconds_total",
                "process_max_fds",
                "process_open_fds",
                "process_resident_memory_bytes",
                "process_start_time_seconds",
                "process_virtual_memory_bytes",
            ]
        );
    }

    /// The value of the sample that starts with `start` (name and labels).
    fn value(text: &str, start: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(start)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn each_watch_has_one_phase_series_with_its_cluster_and_a_failure_count() {
        let m = Metrics::new();
        m.identify_watch("ns/a", "cluster-1");
        m.record_watch("ns/a", Some("Running"), true, POLL);
        let a = "{namespace=\"ns\",name=\"a\",cluster_id=\"cluster-1\"";
        let text = m.render();
        assert_eq!(
            value(
                &text,
                &format!("cce_upgrade_watch_watch_phase{a},phase=\"Running\"}}")
            ),
            Some(1.0),
            "{text}"
        );
        // Zero from the start, so that the first failure is an increase.
        assert_eq!(
            value(
                &text,
                &format!("cce_upgrade_watch_watch_task_failures_total{a}}}")
            ),
            Some(0.0),
            "{text}"
        );

        m.observe_task("ns/a", "Cluster", "Failed", Duration::from_secs(60));
        m.observe_task("ns/a", "PreCheck", "Success", Duration::from_secs(60));
        m.record_watch("ns/a", Some("Pending"), true, POLL);
        let text = m.render();
        assert_eq!(
            value(
                &text,
                &format!("cce_upgrade_watch_watch_task_failures_total{a}}}")
            ),
            Some(1.0),
            "{text}"
        );
        let phases: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("cce_upgrade_watch_watch_phase{"))
            .collect();
        assert_eq!(
            phases,
            [format!(
                "cce_upgrade_watch_watch_phase{a},phase=\"Pending\"}} 1"
            )],
            "one series per watch, for its current phase"
        );

        m.retain_watches(|_| false);
        let text = m.render();
        assert!(!text.contains("cluster-1"), "{text}");
    }

    /// A status's upgrade: versions as CCE sends them and tasks as (type, phase, Unix
    /// start), on a cluster named `prod`.
    fn upgrade<'a>(
        from: &'a str,
        target: &'a str,
        tasks: &[(&'a str, &'a str, u64)],
    ) -> WatchUpgrade<'a> {
        WatchUpgrade {
            cluster_name: Some("prod"),
            from_version: Some(from),
            target_version: Some(target),
            tasks: tasks
                .iter()
                .map(|&(task_type, phase, at)| TaskSeen {
                    task_type,
                    phase: Some(phase),
                    started: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(at)),
                })
                .collect(),
        }
    }

    /// The samples of `name`, as (labels, value) with the labels as written.
    fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
        text.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?.strip_prefix('{')?;
                let (labels, value) = rest.rsplit_once("} ")?;
                Some((labels, value.parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn versions_are_reduced_to_major_and_minor_and_anything_else_is_other() {
        for (version, label) in [
            (Some("v1.28.15-r30"), "v1.28"),
            (Some("v1.29"), "v1.29"),
            (Some("v1.31+build.7"), "v1.31"),
            (Some("1.30.2"), "v1.30"),
            (Some("V01.028.3"), "v1.28"),
            (Some("v1.28abc"), "other"),
            (Some("v1"), "other"),
            (Some("v1."), "other"),
            (Some("v1.x"), "other"),
            (Some("v12345.1"), "other"),
            (Some(" v1.28"), "other"),
            (Some("latest"), "other"),
            (Some(""), "other"),
            (Some("v1.28\n\"}"), "other"),
            (None, "other"),
        ] {
            assert_eq!(watches::version_label(version), label, "{version:?}");
        }
    }

    #[test]
    fn upgrades_count_watches_by_version_pair_and_phase_with_or_without_per_watch_series() {
        for per_watch in [true, false] {
            let m = Metrics::with_watch_series(per_watch);
            for (key, phase, from, target) in [
                ("ns/a", "Running", "v1.28.15-r10", "v1.29.13-r0"),
                ("ns/b", "Running", "v1.28.3-r0", "v1.29.1-r0"),
                ("ns/c", "Success", "v1.28.15-r10", "v1.29.13-r0"),
                ("ns/d", "Pending", "garbage", "v1.30.0"),
            ] {
                m.record_watch(key, Some(phase), true, POLL);
                m.record_upgrade(key, &upgrade(from, target, &[]));
            }
            // Served, but no workflow yet: not an upgrade.
            m.record_watch("ns/e", None, true, POLL);
            let text = m.render();
            assert_eq!(
                samples(&text, "cce_upgrade_watch_upgrades"),
                [
                    ("from=\"other\",target=\"v1.30\",phase=\"Pending\"", 1.0),
                    ("from=\"v1.28\",target=\"v1.29\",phase=\"Running\"", 2.0),
                    ("from=\"v1.28\",target=\"v1.29\",phase=\"Success\"", 1.0),
                ],
                "per_watch={per_watch}\n{text}"
            );
            m.retain_watches(|k| k != "ns/d");
            let text = m.render();
            assert!(!text.contains("v1.30"), "{text}");
        }
    }

    #[test]
    fn upgrades_name_at_most_32_version_pairs_keeping_those_of_the_most_watches() {
        let m = Metrics::with_watch_series(false);
        // 40 pairs of one watch each, and two pairs of three watches that sort last.
        let mut watches = 0;
        for minor in 0..40 {
            let key = format!("ns/w{minor}");
            m.record_watch(&key, Some("Running"), true, POLL);
            let (from, target) = (format!("v1.{minor}"), format!("v2.{minor}"));
            m.record_upgrade(&key, &upgrade(&from, &target, &[]));
            watches += 1;
        }
        for (pair, target) in [("x", "v9.8"), ("y", "v9.9")] {
            for i in 0..3 {
                let key = format!("ns/{pair}{i}");
                m.record_watch(&key, Some("Running"), true, POLL);
                m.record_upgrade(&key, &upgrade("v9.7", target, &[]));
                watches += 1;
            }
        }
        let text = m.render();
        let series = samples(&text, "cce_upgrade_watch_upgrades");
        assert_eq!(series.len(), 32, "{text}");
        assert_eq!(
            series.iter().map(|(_, v)| v).sum::<f64>(),
            f64::from(watches),
            "every watch is counted once: {text}"
        );
        for kept in [
            "from=\"v9.7\",target=\"v9.8\",phase=\"Running\"",
            "from=\"v9.7\",target=\"v9.9\",phase=\"Running\"",
        ] {
            assert!(series.contains(&(kept, 3.0)), "{kept}: {text}");
        }
        // 29 of the 40 single pairs are kept (in version order), 11 are folded.
        assert!(
            series.contains(&("from=\"other\",target=\"other\",phase=\"Running\"", 11.0)),
            "{text}"
        );
        assert!(text.contains("from=\"v1.0\",target=\"v2.0\""), "{text}");
    }

    #[test]
    fn each_watch_has_an_info_series_with_its_cluster_and_versions_bounded() {
        let m = Metrics::new();
        m.identify_watch("ns/a", "cluster-1");
        m.record_watch("ns/a", Some("Running"), true, POLL);
        m.record_upgrade("ns/a", &upgrade("v1.28.15-r10", "v1.29.13-r0", &[]));
        let long_name = format!("{}\u{7}{}", "n".repeat(100), "m".repeat(100));
        let long_version = format!("v1.30.{}", "9".repeat(60));
        m.record_watch("ns/b", Some("Init"), true, POLL);
        m.record_upgrade(
            "ns/b",
            &WatchUpgrade {
                cluster_name: Some(&long_name),
                from_version: Some("what\n\"ever"),
                target_version: Some(&long_version),
                tasks: Vec::new(),
            },
        );
        let text = m.render();
        let info = samples(&text, "cce_upgrade_watch_watch_info");
        assert!(
            info.contains(&(
                "namespace=\"ns\",name=\"a\",cluster_id=\"cluster-1\",cluster_name=\"prod\",\
                 from=\"v1.28\",target=\"v1.29\",from_version=\"v1.28.15-r10\",\
                 target_version=\"v1.29.13-r0\"",
                1.0
            )),
            "{text}"
        );
        let b = info
            .iter()
            .find(|(l, _)| l.starts_with("namespace=\"ns\",name=\"b\""))
            .unwrap_or_else(|| panic!("{text}"))
            .0;
        let cut_name = format!("{}{}", "n".repeat(100), "m".repeat(28));
        assert!(b.contains(&format!("cluster_name=\"{cut_name}\",")), "{b}");
        assert!(b.contains("from=\"other\",target=\"v1.30\""), "{b}");
        // The newline is left out and the quote escaped: one line, one label.
        assert!(b.contains("from_version=\"what\\\"ever\""), "{b}");
        let cut_version = &long_version[..32];
        assert!(
            b.contains(&format!("target_version=\"{cut_version}\"")),
            "{b}"
        );

        m.retain_watches(|k| k != "ns/a");
        let text = m.render();
        assert!(!text.contains("cluster-1"), "{text}");
        assert_eq!(
            samples(&text, "cce_upgrade_watch_watch_info").len(),
            1,
            "{text}"
        );
    }

    #[test]
    fn a_running_task_has_its_start_time_until_it_ends_the_watch_is_suspended_or_goes() {
        let m = Metrics::new();
        let started = "cce_upgrade_watch_task_started_timestamp_seconds";
        m.record_watch("ns/a", Some("Running"), true, POLL);
        m.record_upgrade(
            "ns/a",
            &upgrade(
                "v1.28",
                "v1.29",
                &[
                    ("PreCheck", "Success", 100),
                    ("Cluster", "running", 2_000),
                    ("Cluster", "Running", 1_500),
                    ("Snapshot", "Queuing", 50),
                    ("Surprise", "Running", 3_000),
                ],
            ),
        );
        // A running task whose start CCE did not send has no age.
        m.record_watch("ns/b", Some("Running"), true, POLL);
        m.record_upgrade(
            "ns/b",
            &WatchUpgrade {
                tasks: vec![TaskSeen {
                    task_type: "Cluster",
                    phase: Some("Running"),
                    started: None,
                }],
                ..WatchUpgrade::default()
            },
        );
        let text = m.render();
        assert_eq!(
            samples(&text, started),
            [
                ("namespace=\"ns\",name=\"a\",task_type=\"Cluster\"", 1_500.0),
                ("namespace=\"ns\",name=\"a\",task_type=\"Other\"", 3_000.0),
            ],
            "the earliest start per task type, unknown types as Other: {text}"
        );

        m.record_upgrade(
            "ns/a",
            &upgrade("v1.28", "v1.29", &[("Cluster", "Success", 1_500)]),
        );
        assert_eq!(samples(&m.render(), started), []);

        m.record_upgrade(
            "ns/a",
            &upgrade("v1.28", "v1.29", &[("Cluster", "Running", 1_500)]),
        );
        assert_eq!(samples(&m.render(), started).len(), 1);
        m.suspend_watch("ns/a", Some("Running"));
        let text = m.render();
        assert_eq!(samples(&text, started), [], "{text}");
        assert!(
            text.contains("from_version=\"v1.28\""),
            "a suspended watch keeps its versions: {text}"
        );

        m.record_upgrade(
            "ns/a",
            &upgrade("v1.28", "v1.29", &[("Cluster", "Running", 1_500)]),
        );
        m.retain_watches(|_| false);
        assert_eq!(samples(&m.render(), started), []);
    }

    #[test]
    fn without_watch_series_no_info_or_running_task_names_a_watch() {
        let m = Metrics::with_watch_series(false);
        m.identify_watch("team-a/prod", "c-1");
        m.record_watch("team-a/prod", Some("Running"), true, POLL);
        m.record_upgrade(
            "team-a/prod",
            &upgrade("v1.28", "v1.29", &[("Cluster", "Running", 1_500)]),
        );
        let text = m.render();
        for name in [
            "cce_upgrade_watch_watch_info",
            "cce_upgrade_watch_task_started_timestamp_seconds",
        ] {
            assert!(!text.contains(name), "{text}");
        }
        assert_eq!(
            samples(&text, "cce_upgrade_watch_upgrades"),
            [("from=\"v1.28\",target=\"v1.29\",phase=\"Running\"", 1.0)]
        );
    }

    #[test]
    fn every_task_duration_series_starts_at_zero_so_the_first_task_is_an_increase() {
        let text = Metrics::new().render();
        let counts = samples(&text, "cce_upgrade_watch_task_duration_seconds_count");
        assert_eq!(counts.len(), 12, "{text}");
        assert!(counts.iter().all(|(_, v)| *v == 0.0), "{text}");
        for task_type in TASK_TYPES {
            for result in ["Success", "Failed"] {
                let labels = format!("task_type=\"{task_type}\",result=\"{result}\"");
                assert!(counts.contains(&(labels.as_str(), 0.0)), "{labels}: {text}");
            }
        }
        let m = Metrics::new();
        m.observe_task("ns/a", "cluster", "Success", Duration::from_secs(300));
        let text = m.render();
        let counts = samples(&text, "cce_upgrade_watch_task_duration_seconds_count");
        assert!(
            counts.contains(&("task_type=\"Cluster\",result=\"Success\"", 1.0)),
            "{text}"
        );
    }

    #[test]
    fn the_last_sync_timestamp_is_wall_clock_time_of_the_last_good_answer_only() {
        let m = Metrics::new();
        let series = "cce_upgrade_watch_last_sync_timestamp_seconds{namespace=\"ns\",name=\"t\"}";
        m.record_watch("ns/t", None, false, POLL);
        assert_eq!(value(&m.render(), series), None, "no good answer yet");
        let before = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        m.record_unchanged("ns/t", POLL);
        let at = value(&m.render(), series).expect("a timestamp after a good answer");
        assert!(
            at >= before.floor() && at < before + 60.0,
            "{at} vs {before}"
        );
        m.record_watch("ns/t", Some("Running"), false, POLL);
        assert_eq!(value(&m.render(), series), Some(at), "a failure keeps it");
    }

    #[test]
    fn build_info_and_process_metrics_come_with_every_scrape() {
        let text = Metrics::new().render();
        let info = format!(
            "cce_upgrade_watch_build_info{{version=\"{}\",revision=\"{REVISION}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(has_line(&text, &info), "{text}");
        assert!(!REVISION.is_empty());
        let rss = value(&text, "process_resident_memory_bytes").expect("rss");
        assert!(rss > 1_000_000.0, "{rss}");
        let fds = value(&text, "process_open_fds").expect("open fds");
        assert!(fds >= 3.0, "{fds}");
        let max = value(&text, "process_max_fds").expect("max fds");
        assert!(max >= fds, "{max}");
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let start = value(&text, "process_start_time_seconds").expect("start time");
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "{start} vs {now}"
        );
        assert!(value(&text, "process_cpu_seconds_total").expect("cpu") >= 0.0);
        // Work a little: the CPU counter follows.
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let cpu = value(&Metrics::new().render(), "process_cpu_seconds_total").expect("cpu");
        assert!(cpu > 0.0, "{cpu}");
        assert!(
            text.contains("# TYPE process_cpu_seconds counter"),
            "{text}"
        );
    }
}

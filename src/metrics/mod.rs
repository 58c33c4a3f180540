//! Prometheus metrics, recorded only through [`Metrics`]' methods, one per thing that
//! happened (a reconcile deferred, a status refused, an Event published): the families are
//! private, so every label value comes from a fixed word here or from a caller's
//! `&'static str` (an operation, a failure category, an Event reason), and phases and task
//! types fold unknown values into `Other`. The per-watch series ([`watches`]) are a fixed few
//! per existing watch, removed with the watch. Build information and the standard process
//! metrics ([`process`]) come with every scrape. State, no I/O.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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

    /// Records a good answer that changed nothing: the phase stays as it was.
    pub fn record_unchanged(&self, key: &str, poll_interval: Duration) {
        self.book.lock().record_unchanged(key, poll_interval);
    }

    /// A suspended watch is not polled: it keeps its phase but has no sync age to alert on.
    pub fn suspend_watch(&self, key: &str, phase: Option<&str>) {
        self.book.lock().suspend(key, phase);
    }

    /// Keeps only the watches for which `keep` is true.
    pub fn retain_watches(&self, keep: impl Fn(&str) -> bool) {
        self.book.lock().retain(keep);
    }
}

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

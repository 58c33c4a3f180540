//! Prometheus metrics. Every label has a bounded set of values: results and error
//! categories are fixed words, phases and task types fold unknown values into `Other`, and
//! the per-watch series are a fixed few per existing watch, removed with the watch. Build
//! information and the standard process metrics ([`process`]) come with every scrape.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, text::encode};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::cce::model::{Phase, TaskType};

mod process;

/// The source revision the binary was built from (build.rs).
pub const REVISION: &str = env!("CCE_UW_REVISION");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub task_type: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// Per-watch facts kept for scrape-time gauges, keyed by `namespace/name`.
#[derive(Default, Debug)]
struct WatchBook {
    watches: HashMap<String, WatchFacts>,
}

#[derive(Debug)]
struct WatchFacts {
    phase: &'static str,
    /// spec.clusterID, a label of the per-watch series (at most 64 characters, as the CRD
    /// allows).
    cluster_id: String,
    /// Wall-clock time of the last good answer from CCE; `None` until there was one.
    last_answer_at: Option<SystemTime>,
    /// Upgrade tasks this instance saw fail for the watch.
    failed_tasks: u64,
    /// The last good answer from CCE, or when this instance began serving the watch if
    /// there was none yet: a watch that never syncs ages like one that stopped. `None`
    /// while suspended.
    last_good_sync: Option<Instant>,
    /// How often the watch is polled while CCE answers (pollInterval, or the terminal
    /// resync); `None` while suspended.
    poll_interval: Option<Duration>,
}

impl WatchBook {
    /// The facts of a watch, looked up without allocating a key when it is known.
    fn facts(&mut self, key: &str) -> &mut WatchFacts {
        if !self.watches.contains_key(key) {
            self.watches.insert(
                key.to_string(),
                WatchFacts {
                    phase: "None",
                    cluster_id: String::new(),
                    last_answer_at: None,
                    failed_tasks: 0,
                    last_good_sync: None,
                    poll_interval: None,
                },
            );
        }
        self.watches
            .get_mut(key)
            .expect("inserted above when missing")
    }
}

/// All metrics of the operator, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub reconciles: Family<ResultLabels, Counter>,
    pub cce_requests: Family<RequestLabels, Counter>,
    pub cce_request_seconds: Family<RequestLabels, Histogram>,
    pub task_seconds: Family<TaskLabels, Histogram>,
    pub status_writes: Counter,
    pub status_rejections: Counter,
    pub events: Family<ReasonLabels, Counter>,
    pub leader: Gauge,
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
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("cce_upgrade_watch");
        registry.register(
            "build",
            "The operator's version and source revision",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("revision", REVISION),
            ]),
        );
        let reconciles = Family::<ResultLabels, Counter>::default();
        let cce_requests = Family::<RequestLabels, Counter>::default();
        let cce_request_seconds = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 12))
        });
        let task_seconds = Family::<TaskLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(15.0, 2.0, 12))
        });
        let status_writes = Counter::default();
        let status_rejections = Counter::default();
        let events = Family::<ReasonLabels, Counter>::default();
        let leader = Gauge::default();
        let insecure_endpoints = Gauge::default();
        let book = Arc::new(Mutex::new(WatchBook::default()));

        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        registry.register(
            "cce_requests",
            "CCE API requests by operation and outcome",
            cce_requests.clone(),
        );
        registry.register(
            "cce_request_duration_seconds",
            "CCE API request latency by operation and outcome",
            cce_request_seconds.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "Duration of finished upgrade tasks by task type and result",
            task_seconds.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches written to Kubernetes",
            status_writes.clone(),
        );
        registry.register(
            "status_rejections",
            "Status patches the API server refused; the watch keeps the last status written",
            status_rejections.clone(),
        );
        registry.register(
            "events",
            "Kubernetes Events published, by reason",
            events.clone(),
        );
        registry.register(
            "leader",
            "1 while this instance holds the leader lease",
            leader.clone(),
        );
        registry.register(
            "insecure_endpoints_allowed",
            "1 when the endpoint allow-lists are lifted (--allow-insecure-endpoints): plain http and any host may receive credentials",
            insecure_endpoints.clone(),
        );
        registry.register_collector(Box::new(WatchCollector { book: book.clone() }));

        Self {
            registry: Arc::new(root),
            reconciles,
            cce_requests,
            cce_request_seconds,
            task_seconds,
            status_writes,
            status_rejections,
            events,
            leader,
            insecure_endpoints,
            book,
        }
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
            self.book.lock().facts(key).failed_tasks += 1;
        }
        let labels = TaskLabels {
            task_type: task_label(task_type),
            result,
        };
        self.task_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// The cluster a watch follows, for the labels of its series.
    pub fn identify_watch(&self, key: &str, cluster_id: &str) {
        let mut book = self.book.lock();
        let facts = book.facts(key);
        if facts.cluster_id != cluster_id {
            facts.cluster_id = cluster_id.chars().take(64).collect();
        }
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
        let mut book = self.book.lock();
        let facts = book.facts(key);
        facts.phase = phase_label(phase);
        if synced || facts.last_good_sync.is_none() {
            facts.last_good_sync = Some(Instant::now());
        }
        if synced {
            facts.last_answer_at = Some(SystemTime::now());
        }
        facts.poll_interval = Some(poll_interval);
    }

    /// Records a good answer that changed nothing: the phase stays as it was.
    pub fn record_unchanged(&self, key: &str, poll_interval: Duration) {
        let mut book = self.book.lock();
        let facts = book.facts(key);
        facts.last_good_sync = Some(Instant::now());
        facts.last_answer_at = Some(SystemTime::now());
        facts.poll_interval = Some(poll_interval);
    }

    /// A suspended watch is not polled: it keeps its phase but has no sync age to alert on.
    pub fn suspend_watch(&self, key: &str, phase: Option<&str>) {
        let mut book = self.book.lock();
        let facts = book.facts(key);
        facts.phase = phase_label(phase);
        facts.last_good_sync = None;
        facts.poll_interval = None;
    }

    /// Keeps only the watches for which `keep` is true.
    pub fn retain_watches(&self, keep: impl Fn(&str) -> bool) {
        let mut book = self.book.lock();
        book.watches.retain(|k, _| keep(k));
    }
}

fn phase_label(phase: Option<&str>) -> &'static str {
    match phase.map(Phase::from) {
        None => "None",
        Some(Phase::Init) => "Init",
        Some(Phase::Running) => "Running",
        Some(Phase::Pending) => "Pending",
        Some(Phase::Success) => "Success",
        Some(Phase::Cancel) => "Cancel",
        Some(Phase::Unknown(_)) => "Other",
    }
}

fn task_label(task_type: &str) -> &'static str {
    match TaskType::from(task_type) {
        TaskType::Cluster => "Cluster",
        TaskType::PreCheck => "PreCheck",
        TaskType::Rollback => "Rollback",
        TaskType::Snapshot => "Snapshot",
        TaskType::PostCheck => "PostCheck",
        TaskType::Unknown(_) => "Other",
    }
}

/// Computes watch gauges at scrape time, so ages are exact without a timer.
#[derive(Debug)]
struct WatchCollector {
    book: Arc<Mutex<WatchBook>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    namespace: String,
    name: String,
    cluster_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchPhaseLabels {
    namespace: String,
    name: String,
    cluster_id: String,
    phase: &'static str,
}

/// One watch's facts as a scrape reports them, copied out of the lock.
struct WatchSample {
    namespace: String,
    name: String,
    cluster_id: String,
    phase: &'static str,
    age: Option<f64>,
    interval: Option<f64>,
    answered_at: Option<f64>,
    failed_tasks: u64,
}

impl WatchSample {
    fn watch(&self) -> WatchLabels {
        WatchLabels {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    fn cluster(&self) -> ClusterLabels {
        ClusterLabels {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            cluster_id: self.cluster_id.clone(),
        }
    }
}

fn gauge_family<'a>(
    encoder: &'a mut DescriptorEncoder,
    name: &'a str,
    help: &str,
) -> Result<prometheus_client::encoding::MetricEncoder<'a>, fmt::Error> {
    encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )
}

impl Collector for WatchCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let samples: Vec<WatchSample> = {
            let book = self.book.lock();
            let now = Instant::now();
            book.watches
                .iter()
                .map(|(key, f)| {
                    let (namespace, name) = key.split_once('/').unwrap_or(("", key.as_str()));
                    WatchSample {
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                        cluster_id: f.cluster_id.clone(),
                        phase: f.phase,
                        age: f
                            .last_good_sync
                            .map(|at| now.duration_since(at).as_secs_f64()),
                        interval: f.poll_interval.map(|d| d.as_secs_f64()),
                        answered_at: f.last_answer_at.and_then(|at| {
                            at.duration_since(SystemTime::UNIX_EPOCH)
                                .ok()
                                .map(|d| d.as_secs_f64())
                        }),
                        failed_tasks: f.failed_tasks,
                    }
                })
                .collect()
        };
        // Names without the registry's prefix: the encoder adds it, as for registered metrics.
        let mut family = gauge_family(
            &mut encoder,
            "watches",
            "Watches by the phase of their workflow",
        )?;
        for phase in [
            "None", "Init", "Running", "Pending", "Success", "Cancel", "Other",
        ] {
            let count = samples.iter().filter(|w| w.phase == phase).count() as i64;
            ConstGauge::new(count).encode(family.encode_family(&PhaseLabels { phase })?)?;
        }
        let mut family = gauge_family(
            &mut encoder,
            "watch_phase",
            "1 for the phase each watch's workflow is in, with the watch's cluster; one series per watch",
        )?;
        for w in &samples {
            let labels = WatchPhaseLabels {
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                cluster_id: w.cluster_id.clone(),
                phase: w.phase,
            };
            ConstGauge::new(1).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "watch_task_failures",
            "Upgrade tasks this instance saw fail, per watch, with the watch's cluster",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for w in &samples {
            ConstCounter::new(w.failed_tasks).encode(family.encode_family(&w.cluster())?)?;
        }
        for (metric, help, value) in [
            (
                "last_sync_age_seconds",
                "Seconds since the last good answer from CCE (or since this instance began serving the watch, if none yet), per watch",
                (|w: &WatchSample| w.age) as fn(&WatchSample) -> Option<f64>,
            ),
            (
                "last_sync_timestamp_seconds",
                "Unix time of the last good answer from CCE, per watch that had one",
                |w| w.answered_at,
            ),
            (
                "poll_interval_seconds",
                "Seconds between polls of CCE while it answers (pollInterval, or the terminal resync once the upgrade ended), per watch",
                |w| w.interval,
            ),
        ] {
            let mut family = gauge_family(&mut encoder, metric, help)?;
            for w in &samples {
                if let Some(v) = value(w) {
                    ConstGauge::new(v).encode(family.encode_family(&w.watch())?)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        m.reconciles
            .get_or_create(&ResultLabels { result: "synced" })
            .inc();
        m.observe_request("show", "ok", Duration::from_millis(20));
        m.observe_task("ns/a", "Cluster", "Failed", Duration::from_secs(300));
        m.status_writes.inc();
        m.events
            .get_or_create(&ReasonLabels {
                reason: "TaskFailed",
            })
            .inc();
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

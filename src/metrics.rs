//! Prometheus metrics. Every label has a bounded set of values: results and error
//! categories are fixed words, phases and task types fold unknown values into `Other`, and
//! the per-watch sync age is one series per existing watch, removed with the watch.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::cce::model::{Phase, TaskType};

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
        let mut registry = Registry::with_prefix("cce_upgrade_watch");
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
        registry.register_collector(Box::new(WatchCollector { book: book.clone() }));

        Self {
            registry: Arc::new(registry),
            reconciles,
            cce_requests,
            cce_request_seconds,
            task_seconds,
            status_writes,
            status_rejections,
            events,
            leader,
            book,
        }
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

    pub fn observe_task(&self, task_type: &str, result: &'static str, took: Duration) {
        let labels = TaskLabels {
            task_type: task_label(task_type),
            result,
        };
        self.task_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
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
        facts.poll_interval = Some(poll_interval);
    }

    /// Records a good answer that changed nothing: the phase stays as it was.
    pub fn record_unchanged(&self, key: &str, poll_interval: Duration) {
        let mut book = self.book.lock();
        let facts = book.facts(key);
        facts.last_good_sync = Some(Instant::now());
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

impl Collector for WatchCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let (phases, ages, intervals) = {
            let book = self.book.lock();
            let mut counts: HashMap<&'static str, i64> = HashMap::new();
            for facts in book.watches.values() {
                *counts.entry(facts.phase).or_default() += 1;
            }
            let now = Instant::now();
            let ages: Vec<(String, f64)> = book
                .watches
                .iter()
                .filter_map(|(k, f)| {
                    let at = f.last_good_sync?;
                    Some((k.clone(), now.duration_since(at).as_secs_f64()))
                })
                .collect();
            let intervals: Vec<(String, f64)> = book
                .watches
                .iter()
                .filter_map(|(k, f)| Some((k.clone(), f.poll_interval?.as_secs_f64())))
                .collect();
            (counts, ages, intervals)
        };
        // Names without the registry's prefix: the encoder adds it, as for registered metrics.
        let mut family = encoder.encode_descriptor(
            "watches",
            "Watches by the phase of their workflow",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for phase in [
            "None", "Init", "Running", "Pending", "Success", "Cancel", "Other",
        ] {
            let count = phases.get(phase).copied().unwrap_or(0);
            ConstGauge::new(count).encode(family.encode_family(&PhaseLabels { phase })?)?;
        }
        for (metric, help, values) in [
            (
                "last_sync_age_seconds",
                "Seconds since the last good answer from CCE (or since this instance began serving the watch, if none yet), per watch",
                ages,
            ),
            (
                "poll_interval_seconds",
                "Seconds between polls of CCE while it answers (pollInterval, or the terminal resync once the upgrade ended), per watch",
                intervals,
            ),
        ] {
            let mut family = encoder.encode_descriptor(
                metric,
                help,
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (key, value) in values {
                let (namespace, name) = key.split_once('/').unwrap_or(("", key.as_str()));
                let labels = WatchLabels {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                };
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
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
        assert!(!text.contains("name=\"s\""), "{text}");
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
        m.observe_task("Cluster", "Failed", Duration::from_secs(300));
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
                "cce_upgrade_watch_cce_request_duration_seconds_bucket",
                "cce_upgrade_watch_cce_request_duration_seconds_count",
                "cce_upgrade_watch_cce_request_duration_seconds_sum",
                "cce_upgrade_watch_cce_requests_total",
                "cce_upgrade_watch_events_total",
                "cce_upgrade_watch_last_sync_age_seconds",
                "cce_upgrade_watch_leader",
                "cce_upgrade_watch_poll_interval_seconds",
                "cce_upgrade_watch_reconciles_total",
                "cce_upgrade_watch_status_rejections_total",
                "cce_upgrade_watch_status_writes_total",
                "cce_upgrade_watch_task_duration_seconds_bucket",
                "cce_upgrade_watch_task_duration_seconds_count",
                "cce_upgrade_watch_task_duration_seconds_sum",
                "cce_upgrade_watch_watches",
            ]
        );
    }
}

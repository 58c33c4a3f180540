//! Prometheus metrics. Every label has a bounded set of values: results and error
//! categories are fixed words, phases and task types fold unknown values into `Other`, and
//! the per-watch sync age is one series per existing watch, removed with the watch.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Per-watch facts kept for scrape-time gauges.
#[derive(Default, Debug)]
struct WatchBook {
    phases: HashMap<String, &'static str>,
    last_good_sync: HashMap<String, Instant>,
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

    /// Records what a watch shows now; `synced` marks a good answer from CCE.
    pub fn record_watch(&self, key: &str, phase: Option<&str>, synced: bool) {
        if let Ok(mut book) = self.book.lock() {
            book.phases.insert(key.to_string(), phase_label(phase));
            if synced {
                book.last_good_sync.insert(key.to_string(), Instant::now());
            }
        }
    }

    /// Forgets a deleted watch.
    pub fn forget_watch(&self, key: &str) {
        if let Ok(mut book) = self.book.lock() {
            book.phases.remove(key);
            book.last_good_sync.remove(key);
        }
    }

    /// Keeps only the watches for which `keep` is true.
    pub fn retain_watches(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut book) = self.book.lock() {
            book.phases.retain(|k, _| keep(k));
            book.last_good_sync.retain(|k, _| keep(k));
        }
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
        let (phases, ages) = match self.book.lock() {
            Ok(book) => {
                let mut counts: HashMap<&'static str, i64> = HashMap::new();
                for phase in book.phases.values() {
                    *counts.entry(phase).or_default() += 1;
                }
                let now = Instant::now();
                let ages: Vec<(String, f64)> = book
                    .last_good_sync
                    .iter()
                    .map(|(k, t)| (k.clone(), now.duration_since(*t).as_secs_f64()))
                    .collect();
                (counts, ages)
            }
            Err(_) => return Ok(()),
        };
        let mut family = encoder.encode_descriptor(
            "cce_upgrade_watch_watches",
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
        let mut family = encoder.encode_descriptor(
            "cce_upgrade_watch_last_sync_age_seconds",
            "Seconds since the last good answer from CCE, per watch",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (key, age) in ages {
            let (namespace, name) = key.split_once('/').unwrap_or(("", key.as_str()));
            let labels = WatchLabels {
                namespace: namespace.to_string(),
                name: name.to_string(),
            };
            ConstGauge::new(age).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_watch_gauges_and_forgets_deleted_watches() {
        let m = Metrics::new();
        m.record_watch("ns/a", Some("Running"), true);
        m.record_watch("ns/b", Some("Weird"), false);
        m.observe_request("show", "ok", Duration::from_millis(20));
        let text = m.render();
        assert!(
            text.contains("cce_upgrade_watch_watches{phase=\"Running\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cce_upgrade_watch_watches{phase=\"Other\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cce_upgrade_watch_last_sync_age_seconds{namespace=\"ns\",name=\"a\"}"),
            "{text}"
        );
        assert!(!text.contains("name=\"b\""), "{text}");
        assert!(
            text.contains(
                "cce_upgrade_watch_cce_requests_total{operation=\"show\",outcome=\"ok\"} 1"
            ),
            "{text}"
        );
        m.forget_watch("ns/a");
        assert!(!m.render().contains("name=\"a\""));
    }
}

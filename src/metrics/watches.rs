//! The per-watch series: what each watch showed last (phase, cluster, last good answer,
//! failed tasks, poll interval), kept in a book that [`super::Metrics`] updates, and turned
//! into gauges at scrape time so ages are exact without a timer. A fixed few series per
//! existing watch, removed with the watch. State; it reads the clock when a watch is
//! recorded and when it is scraped.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::cce::model::Phase;

/// Every value of the `phase` label: the phases CCE documents, `None` before the first
/// answer and `Other` for any phase this version does not know.
const PHASES: [&str; 7] = [
    "None", "Init", "Running", "Pending", "Success", "Cancel", "Other",
];

/// Per-watch facts kept for scrape-time gauges, keyed by `namespace/name`.
#[derive(Default, Debug)]
pub(super) struct WatchBook {
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

    pub(super) fn task_failed(&mut self, key: &str) {
        self.facts(key).failed_tasks += 1;
    }

    pub(super) fn identify(&mut self, key: &str, cluster_id: &str) {
        let facts = self.facts(key);
        if facts.cluster_id != cluster_id {
            facts.cluster_id = cluster_id.chars().take(64).collect();
        }
    }

    pub(super) fn record(
        &mut self,
        key: &str,
        phase: Option<&str>,
        synced: bool,
        poll_interval: Duration,
    ) {
        let facts = self.facts(key);
        facts.phase = phase_label(phase);
        if synced || facts.last_good_sync.is_none() {
            facts.last_good_sync = Some(Instant::now());
        }
        if synced {
            facts.last_answer_at = Some(SystemTime::now());
        }
        facts.poll_interval = Some(poll_interval);
    }

    pub(super) fn record_unchanged(&mut self, key: &str, poll_interval: Duration) {
        let facts = self.facts(key);
        facts.last_good_sync = Some(Instant::now());
        facts.last_answer_at = Some(SystemTime::now());
        facts.poll_interval = Some(poll_interval);
    }

    pub(super) fn suspend(&mut self, key: &str, phase: Option<&str>) {
        let facts = self.facts(key);
        facts.phase = phase_label(phase);
        facts.last_good_sync = None;
        facts.poll_interval = None;
    }

    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.watches.retain(|k, _| keep(k));
    }

    /// Every watch's facts as a scrape reports them, copied so the lock is held briefly.
    fn samples(&self) -> Vec<WatchSample> {
        let now = Instant::now();
        self.watches
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
    }
}

/// The `phase` label of a workflow phase, one of [`PHASES`].
fn phase_label(phase: Option<&str>) -> &'static str {
    match phase.map(|p| Phase::from(p).canonical()) {
        None => "None",
        Some(Phase::Init) => "Init",
        Some(Phase::Running) => "Running",
        Some(Phase::Pending) => "Pending",
        Some(Phase::Success) => "Success",
        Some(Phase::Cancel) => "Cancel",
        Some(Phase::Unknown(_)) => "Other",
    }
}

/// Computes watch gauges at scrape time, so ages are exact without a timer.
#[derive(Debug)]
pub(super) struct WatchCollector {
    pub(super) book: Arc<Mutex<WatchBook>>,
    /// Whether the series of each watch (labelled by namespace and name) are exported, or
    /// only the counts by phase.
    pub(super) per_watch: bool,
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

    fn with_phase(&self) -> WatchPhaseLabels {
        WatchPhaseLabels {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            cluster_id: self.cluster_id.clone(),
            phase: self.phase,
        }
    }
}

/// The per-watch gauges with one value each, `None` for a watch that has none.
type WatchValue = fn(&WatchSample) -> Option<f64>;
const WATCH_GAUGES: [(&str, &str, WatchValue); 3] = [
    (
        "last_sync_age_seconds",
        "Seconds since the last good answer from CCE (or since this instance began serving the watch, if none yet), per watch",
        |w| w.age,
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
];

fn gauge_family<'a>(
    encoder: &'a mut DescriptorEncoder,
    name: &'a str,
    help: &str,
) -> Result<MetricEncoder<'a>, fmt::Error> {
    encoder.encode_descriptor(name, help, None, MetricType::Gauge)
}

// Names without the registry's prefix: the encoder adds it, as for registered metrics.
impl Collector for WatchCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let samples = self.book.lock().samples();
        encode_phase_counts(&mut encoder, &samples)?;
        if !self.per_watch {
            return Ok(());
        }
        encode_watch_phases(&mut encoder, &samples)?;
        encode_task_failures(&mut encoder, &samples)?;
        for (metric, help, value) in WATCH_GAUGES {
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

/// `watches`: how many watches are in each phase, zero included.
fn encode_phase_counts(
    encoder: &mut DescriptorEncoder,
    samples: &[WatchSample],
) -> Result<(), fmt::Error> {
    let mut family = gauge_family(encoder, "watches", "Watches by the phase of their workflow")?;
    for phase in PHASES {
        let count = samples.iter().filter(|w| w.phase == phase).count() as i64;
        ConstGauge::new(count).encode(family.encode_family(&PhaseLabels { phase })?)?;
    }
    Ok(())
}

/// `watch_phase`: one series per watch, for the phase it is in now.
fn encode_watch_phases(
    encoder: &mut DescriptorEncoder,
    samples: &[WatchSample],
) -> Result<(), fmt::Error> {
    let mut family = gauge_family(
        encoder,
        "watch_phase",
        "1 for the phase each watch's workflow is in, with the watch's cluster; one series per watch",
    )?;
    for w in samples {
        ConstGauge::new(1).encode(family.encode_family(&w.with_phase())?)?;
    }
    Ok(())
}

/// `watch_task_failures_total`, zero from the start so the first failure is an increase.
fn encode_task_failures(
    encoder: &mut DescriptorEncoder,
    samples: &[WatchSample],
) -> Result<(), fmt::Error> {
    let mut family = encoder.encode_descriptor(
        "watch_task_failures",
        "Upgrade tasks this instance saw fail, per watch, with the watch's cluster",
        None,
        MetricType::Counter,
    )?;
    for w in samples {
        ConstCounter::new(w.failed_tasks).encode(family.encode_family(&w.cluster())?)?;
    }
    Ok(())
}

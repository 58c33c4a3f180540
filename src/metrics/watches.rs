//! The per-watch series: what each watch showed last (phase, cluster, versions, running
//! tasks, last good answer, failed tasks, poll interval), kept in a book that
//! [`super::Metrics`] updates, and turned into gauges at scrape time so ages are exact
//! without a timer. A fixed few series per existing watch, removed with the watch; the
//! fleet's counts by phase and by version pair come from the same book whether or not the
//! per-watch series are exported. State; it reads the clock when a watch is recorded and
//! when it is scraped.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::cce::model::{Phase, TaskState};

use super::{WatchUpgrade, task_label};

/// Every value of the `phase` label: the phases CCE documents, `None` before the first
/// answer and `Other` for any phase this version does not know.
const PHASES: [&str; 7] = [
    "None", "Init", "Running", "Pending", "Success", "Cancel", "Other",
];

/// The most (from, target) version pairs `upgrades` reports; the watches of the pairs
/// followed by fewer watches count under `other`/`other`. Pairs are few in a real fleet
/// (one or two upgrades under way at a time), so a larger number means garbage versions.
pub(super) const MAX_VERSION_PAIRS: usize = 32;

/// The `from`/`target` label of a version that is not `vMAJOR.MINOR[...]`, or of none.
const OTHER_VERSION: &str = "other";

/// Bounds on the label values taken from a watch's status (CCE's words, already cut at 256
/// bytes there): CCE's cluster names have at most 128 characters, and its versions
/// (`v1.28.15-r30`) a dozen.
const MAX_CLUSTER_NAME: usize = 128;
const MAX_VERSION: usize = 32;

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
    /// What the status says of the upgrade, as label values.
    upgrade: UpgradeFacts,
}

/// A watch's upgrade as the series label it: each value bounded, the versions also reduced
/// to `vMAJOR.MINOR` for the fleet's counts.
#[derive(Debug, Default, Clone)]
struct UpgradeFacts {
    cluster_name: String,
    from_version: String,
    target_version: String,
    /// `vMAJOR.MINOR` of `from_version`, or `other`.
    from: String,
    target: String,
    /// The running tasks' `task_type` labels and Unix start times, one per label (the
    /// earliest start when CCE runs two of a kind), in label order.
    running: Vec<(&'static str, f64)>,
}

impl UpgradeFacts {
    fn of(upgrade: &WatchUpgrade<'_>) -> Self {
        let mut running: BTreeMap<&'static str, f64> = BTreeMap::new();
        for task in &upgrade.tasks {
            let is_running = task
                .phase
                .is_some_and(|p| TaskState::from(p).means(&TaskState::Running));
            let since_epoch = task
                .started
                .and_then(|at| at.duration_since(SystemTime::UNIX_EPOCH).ok());
            let (true, Some(since_epoch)) = (is_running, since_epoch) else {
                continue;
            };
            let at = since_epoch.as_secs_f64();
            running
                .entry(task_label(task.task_type))
                .and_modify(|earliest| *earliest = earliest.min(at))
                .or_insert(at);
        }
        Self {
            cluster_name: bounded(upgrade.cluster_name, MAX_CLUSTER_NAME),
            from_version: bounded(upgrade.from_version, MAX_VERSION),
            target_version: bounded(upgrade.target_version, MAX_VERSION),
            from: version_label(upgrade.from_version),
            target: version_label(upgrade.target_version),
            running: running.into_iter().collect(),
        }
    }
}

/// At most `max` characters of `value`, control characters left out: a label value is
/// printed into dashboards and alert texts.
fn bounded(value: Option<&str>, max: usize) -> String {
    value
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// `vMAJOR.MINOR` of a version such as CCE's `v1.28.15-r30` (the `v` may be missing,
/// numbers lose leading zeros), or `other` for anything else: the fleet's counts must not
/// grow with every patch release or with whatever a status holds.
pub(super) fn version_label(version: Option<&str>) -> String {
    version
        .and_then(minor_version)
        .unwrap_or_else(|| OTHER_VERSION.to_string())
}

fn minor_version(version: &str) -> Option<String> {
    let rest = version.strip_prefix(['v', 'V']).unwrap_or(version);
    let number = |s: &str| -> Option<(u16, usize)> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 4 {
            return None;
        }
        Some((s[..digits].parse().ok()?, digits))
    };
    let (major, used) = number(rest)?;
    let rest = rest[used..].strip_prefix('.')?;
    let (minor, used) = number(rest)?;
    match rest[used..].chars().next() {
        None | Some('.' | '-' | '+') => Some(format!("v{major}.{minor}")),
        Some(_) => None,
    }
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
                    upgrade: UpgradeFacts::default(),
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

    /// A suspended watch is not read, so what it last showed running may long have ended:
    /// it keeps its versions but has no running task to age.
    pub(super) fn suspend(&mut self, key: &str, phase: Option<&str>) {
        let facts = self.facts(key);
        facts.phase = phase_label(phase);
        facts.last_good_sync = None;
        facts.poll_interval = None;
        facts.upgrade.running.clear();
    }

    pub(super) fn upgrade(&mut self, key: &str, upgrade: &WatchUpgrade<'_>) {
        self.facts(key).upgrade = UpgradeFacts::of(upgrade);
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
                    upgrade: f.upgrade.clone(),
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
struct UpgradeLabels {
    from: String,
    target: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchInfoLabels {
    namespace: String,
    name: String,
    cluster_id: String,
    cluster_name: String,
    from: String,
    target: String,
    from_version: String,
    target_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchTaskLabels {
    namespace: String,
    name: String,
    task_type: &'static str,
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
    upgrade: UpgradeFacts,
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

    fn info(&self) -> WatchInfoLabels {
        let u = &self.upgrade;
        WatchInfoLabels {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            cluster_id: self.cluster_id.clone(),
            cluster_name: u.cluster_name.clone(),
            from: u.from.clone(),
            target: u.target.clone(),
            from_version: u.from_version.clone(),
            target_version: u.target_version.clone(),
        }
    }

    fn task(&self, task_type: &'static str) -> WatchTaskLabels {
        WatchTaskLabels {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            task_type,
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
        encode_upgrades(&mut encoder, &samples)?;
        if !self.per_watch {
            return Ok(());
        }
        encode_watch_phases(&mut encoder, &samples)?;
        encode_watch_info(&mut encoder, &samples)?;
        encode_running_tasks(&mut encoder, &samples)?;
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

/// `upgrades`: how many watches follow a workflow from each version to each other, by
/// phase; only pairs and phases some watch is in. A watch that follows no workflow yet
/// (phase `None`) is not an upgrade.
fn encode_upgrades(
    encoder: &mut DescriptorEncoder,
    samples: &[WatchSample],
) -> Result<(), fmt::Error> {
    let mut family = gauge_family(
        encoder,
        "upgrades",
        "Watches by the versions their upgrade goes from and to (vMAJOR.MINOR, else other) and its phase; at most 32 version pairs, the rest counted as other to other",
    )?;
    let upgrading: Vec<&WatchSample> = samples.iter().filter(|w| w.phase != "None").collect();
    let kept = kept_pairs(
        upgrading
            .iter()
            .map(|w| (&w.upgrade.from, &w.upgrade.target)),
    );
    let mut counts: BTreeMap<(&str, &str, &'static str), i64> = BTreeMap::new();
    for w in upgrading {
        let pair = (w.upgrade.from.as_str(), w.upgrade.target.as_str());
        let (from, target) = if kept.contains(&pair) {
            pair
        } else {
            (OTHER_VERSION, OTHER_VERSION)
        };
        *counts.entry((from, target, w.phase)).or_default() += 1;
    }
    for ((from, target, phase), count) in counts {
        let labels = UpgradeLabels {
            from: from.to_string(),
            target: target.to_string(),
            phase,
        };
        ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The version pairs `upgrades` names: all of them when there are at most
/// [`MAX_VERSION_PAIRS`], else those of the most watches (ties in version order) and room
/// for `other`/`other`.
fn kept_pairs<'a>(
    pairs: impl Iterator<Item = (&'a String, &'a String)>,
) -> Vec<(&'a str, &'a str)> {
    let mut watches: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (from, target) in pairs {
        *watches.entry((from.as_str(), target.as_str())).or_default() += 1;
    }
    if watches.len() <= MAX_VERSION_PAIRS {
        return watches.into_keys().collect();
    }
    let mut ranked: Vec<((&str, &str), usize)> = watches
        .into_iter()
        .filter(|(pair, _)| *pair != (OTHER_VERSION, OTHER_VERSION))
        .collect();
    // Stable: pairs with as many watches stay in version order.
    ranked.sort_by_key(|(_, watches)| std::cmp::Reverse(*watches));
    ranked
        .into_iter()
        .take(MAX_VERSION_PAIRS - 1)
        .map(|(pair, _)| pair)
        .collect()
}

/// `watch_info`: one series per watch naming its cluster and versions, for tables and for
/// alerts to join on.
fn encode_watch_info(
    encoder: &mut DescriptorEncoder,
    samples: &[WatchSample],
) -> Result<(), fmt::Error> {
    let mut family = gauge_family(
        encoder,
        "watch_info",
        "1 for each watch, with its cluster (id and name) and the versions its upgrade goes from and to, as vMAJOR.MINOR (from, target) and as shown (from_version, target_version)",
    )?;
    for w in samples {
        ConstGauge::new(1).encode(family.encode_family(&w.info())?)?;
    }
    Ok(())
}

/// `task_started_timestamp_seconds`: when each task running now started, per watch; its
/// age is `time() - ...`.
fn encode_running_tasks(
    encoder: &mut DescriptorEncoder,
    samples: &[WatchSample],
) -> Result<(), fmt::Error> {
    let mut family = gauge_family(
        encoder,
        "task_started_timestamp_seconds",
        "Unix time at which each running task of a watch's upgrade started, by task type; none when no task runs",
    )?;
    for w in samples {
        for &(task_type, started) in &w.upgrade.running {
            ConstGauge::new(started).encode(family.encode_family(&w.task(task_type))?)?;
        }
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

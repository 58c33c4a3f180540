//! An UpgradeWatchSet's decisions, pure: which of the clusters CCE listed the set picks (its
//! selector, the account's cluster list, maxWatches), the watch each one gets (name, labels,
//! owner, spec), which watches to create, change and delete, the Events a cluster joining
//! or leaving deserves, and the next status. The shell (`reconciler::sets`) lists, reads the
//! watches the set keeps and writes; nothing here does I/O or reads a clock.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    Condition, LabelSelector, MicroTime, ObjectMeta, OwnerReference, Time,
};
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::cce::ApiFamily;
use crate::cce::diagnostics::cluster::{Cluster, ClusterPhase};
use crate::cce::version::ClusterVersion;
use crate::crd::set::{
    CLUSTER_ID_LABEL, ClusterSelector, DEFAULT_MAX_WATCHES, MAX_STATUS_VERSIONS, SET_LABEL,
    VersionCount,
};
use crate::crd::{
    UpgradeWatchSet, UpgradeWatchSetStatus, UpgradeWorkflowWatch, UpgradeWorkflowWatchSpec,
};
use crate::failure::{Category, Failure};
use crate::limits::{EVENT_LABEL_BYTES, EVENT_NOTE_BYTES, clean};
use crate::reconciler::core::conditions::Conditions;

/// The annotation holding the digest of what the set put into a watch: a watch whose digest
/// differs from the set's is written again.
pub const TEMPLATE_HASH_ANNOTATION: &str = "cce.upgradewatch.io/template-hash";
/// The annotation naming the CCE cluster a generated watch follows, for Events and people.
pub const CLUSTER_NAME_ANNOTATION: &str = "cce.upgradewatch.io/cluster-name";
/// A generated watch's name is a DNS label: at most this long.
const MAX_WATCH_NAME: usize = 63;
/// Hex digits of the digest that ends a shortened watch name.
const NAME_HASH_HEX: usize = 8;
/// Bytes of a cluster name or version a status, an annotation or an Event carries.
const MAX_CLUSTER_TEXT: usize = 128;

/// What one listing of CCE found, both families together.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Each cluster with the family it was listed in.
    pub clusters: Vec<(ApiFamily, Cluster)>,
    /// Items of the answers that were no cluster, or a cluster without a usable id.
    pub unreadable: usize,
    /// Items beyond what one answer is read for.
    pub beyond_cap: usize,
}

/// A watch this set generated and still keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub name: String,
    pub uid: String,
    pub cluster_id: String,
    pub cluster_name: Option<String>,
    pub hash: Option<String>,
    pub created: Option<Timestamp>,
}

/// The watches among `watches` that this set generated: labelled with its name and owned
/// by it as their controller. A person's own watch, or one copied with the label, is never
/// the set's.
pub fn kept(set: &UpgradeWatchSet, watches: &[ObjectMeta]) -> Vec<Kept> {
    let (Some(set_uid), set_name) = (set.uid(), set.name_any()) else {
        return Vec::new();
    };
    watches
        .iter()
        .filter(|m| label(m, SET_LABEL) == Some(set_name.as_str()))
        .filter(|m| {
            m.owner_references.iter().flatten().any(|o| {
                o.uid == set_uid && o.controller == Some(true) && o.kind == "UpgradeWatchSet"
            })
        })
        .filter_map(|m| {
            Some(Kept {
                name: m.name.clone()?,
                uid: m.uid.clone()?,
                cluster_id: label(m, CLUSTER_ID_LABEL)?.to_string(),
                cluster_name: annotation(m, CLUSTER_NAME_ANNOTATION).map(str::to_string),
                hash: annotation(m, TEMPLATE_HASH_ANNOTATION).map(str::to_string),
                created: m.creation_timestamp.as_ref().map(|t| t.0),
            })
        })
        .collect()
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Whether the selector picks `cluster` (listed in `family`); `Err` says why the selector
/// cannot be read.
pub fn picks(
    selector: Option<&ClusterSelector>,
    family: ApiFamily,
    cluster: &Cluster,
) -> Result<bool, String> {
    let Some(selector) = selector else {
        return Ok(true);
    };
    let meta = cluster.metadata.as_ref();
    let name = cluster.name().unwrap_or_default();
    let by_name = selector.names.is_empty() || selector.names.iter().any(|n| n == name);
    let labels = meta.map(|m| m.labels.clone()).unwrap_or_default();
    let by_labels = label_selector(selector)?.is_none_or(|s| s.matches(&labels));
    let category = category_of(family, cluster);
    let by_category = selector.categories.is_empty()
        || selector
            .categories
            .iter()
            .any(|c| c.as_str().eq_ignore_ascii_case(&category));
    let by_version = selector.versions.is_empty() || {
        let version = cluster.version();
        selector
            .versions
            .iter()
            .any(|prefix| match (ClusterVersion::parse(prefix), version) {
                (Some(prefix), Some(version)) => version.has_prefix(&prefix),
                _ => false,
            })
    };
    Ok(by_name && by_labels && by_category && by_version)
}

fn label_selector(selector: &ClusterSelector) -> Result<Option<Selector>, String> {
    if selector.match_labels.is_empty() && selector.match_expressions.is_empty() {
        return Ok(None);
    }
    let labels = LabelSelector {
        match_labels: Some(selector.match_labels.clone()),
        match_expressions: Some(selector.match_expressions.clone()),
    };
    Selector::try_from(labels)
        .map(Some)
        .map_err(|e| format!("clusterSelector cannot be read: {e}"))
}

/// `CCE` or `Turbo` as the cluster says; an Autopilot cluster that says nothing is Turbo.
fn category_of(family: ApiFamily, cluster: &Cluster) -> String {
    let said = cluster.spec.as_ref().and_then(|s| s.category.clone());
    said.unwrap_or_else(|| match family {
        ApiFamily::Autopilot => "Turbo".into(),
        ApiFamily::Standard => "CCE".into(),
    })
}

/// The name of the watch a set generates for a cluster: `<set>-<cluster name>` when that is
/// a DNS label of at most 63 characters, else shortened and ended by a digest of the set and
/// the cluster's id, so two clusters never share one.
pub fn watch_name(set: &str, cluster_name: &str, cluster_id: &str) -> String {
    let plain = format!("{set}-{cluster_name}");
    if is_dns_label(&plain) {
        return plain;
    }
    let mut base: String = plain
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(MAX_WATCH_NAME - NAME_HASH_HEX - 1)
        .collect();
    base.truncate(base.trim_end_matches('-').len());
    let digest = digest(&[set, cluster_id]);
    let hash = &digest[..NAME_HASH_HEX];
    if base.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        format!("{base}-{hash}")
    } else {
        format!("w-{hash}")
    }
}

/// The name a cluster's watch takes when its usual one is taken (by a person's watch, or
/// another set's): the usual one shortened and ended by the digest.
fn clash_name(set: &str, cluster_name: &str, cluster_id: &str) -> String {
    watch_name(set, &format!("{cluster_name}."), cluster_id)
}

/// `desired` under the name for a clash, when its usual name is taken.
pub fn renamed(set: &UpgradeWatchSet, desired: &Desired) -> Desired {
    let mut other = desired.clone();
    let name = clash_name(&set.name_any(), &desired.cluster_name, &desired.cluster_id);
    other.watch.metadata.name = Some(name);
    other
}

fn is_dns_label(name: &str) -> bool {
    (1..=MAX_WATCH_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether `id` can be a label value (CCE's ids are UUIDs; anything else is refused).
fn is_label_value(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn digest(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

/// A watch the set wants, with what its Events say about it.
#[derive(Debug, Clone)]
pub struct Desired {
    pub watch: UpgradeWorkflowWatch,
    pub cluster_id: String,
    pub cluster_name: String,
}

/// Why a generated watch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// CCE no longer lists the cluster.
    Gone,
    /// The selector or the account's clusterIDs no longer pick it.
    Unpicked,
    /// It is beyond maxWatches.
    OverMax,
}

/// What a pass decided.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub create: Vec<Desired>,
    /// Generated watches whose content differs from what the set wants now.
    pub update: Vec<Desired>,
    pub delete: Vec<(Kept, Leave)>,
    /// Generated watches that stay (the updated ones included).
    pub staying: Vec<Kept>,
    pub counts: Counts,
}

/// What the status counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub clusters: u32,
    pub upgrading: u32,
    pub failed: u32,
    pub over_max: u32,
    /// Picked, but not among the account's clusterIDs.
    pub not_served: u32,
    pub unreadable: u32,
    pub versions: Vec<VersionCount>,
    pub more_versions: u32,
}

impl Counts {
    pub fn skipped(&self) -> u32 {
        self.over_max + self.not_served + self.unreadable
    }
}

/// Everything a pass decides from: the set, what CCE listed, the watches the set keeps and
/// the account's cluster list (empty: every cluster).
pub struct Inputs<'a> {
    pub set: &'a UpgradeWatchSet,
    pub listing: &'a Listing,
    pub kept: &'a [Kept],
    pub cluster_ids: &'a [String],
}

/// The watches to create, change and delete, and the counts of the status; `Err` when the
/// selector cannot be read (nothing is touched then).
pub fn plan(inputs: &Inputs<'_>) -> Result<Plan, String> {
    let spec = &inputs.set.spec;
    let selector = spec.cluster_selector.as_ref();
    let mut counts = Counts {
        unreadable: saturate(inputs.listing.unreadable + inputs.listing.beyond_cap),
        ..Counts::default()
    };
    let mut picked: Vec<(ApiFamily, &Cluster, &str)> = Vec::new();
    let mut seen = BTreeSet::new();
    for (family, cluster) in &inputs.listing.clusters {
        let Some(id) = cluster.uid().filter(|id| is_label_value(id)) else {
            counts.unreadable += 1;
            continue;
        };
        // A cluster both lists return is kept once, as the first list (Autopilot's,
        // where its workflows are) said it.
        if !seen.insert(id) || !picks(selector, *family, cluster)? {
            continue;
        }
        if !inputs.cluster_ids.is_empty() && !inputs.cluster_ids.iter().any(|c| c == id) {
            counts.not_served += 1;
            continue;
        }
        picked.push((*family, cluster, id));
    }
    count_phases(&picked, &mut counts);
    picked.sort_by(|a, b| (a.1.name(), a.2).cmp(&(b.1.name(), b.2)));
    let max = spec.max_watches.unwrap_or(DEFAULT_MAX_WATCHES) as usize;
    counts.over_max = saturate(picked.len().saturating_sub(max));
    let watched = &picked[..picked.len().min(max)];
    let over: BTreeSet<&str> = picked[watched.len()..].iter().map(|p| p.2).collect();
    let listed: BTreeSet<&str> = seen.into_iter().collect();
    Ok(assign(inputs, watched, &over, &listed, counts))
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Picked clusters by phase and version.
fn count_phases(picked: &[(ApiFamily, &Cluster, &str)], counts: &mut Counts) {
    let mut versions: BTreeMap<String, u32> = BTreeMap::new();
    for (_, cluster, _) in picked {
        counts.clusters += 1;
        match cluster.phase().map(ClusterPhase::canonical) {
            Some(ClusterPhase::Upgrading | ClusterPhase::RollingBack) => counts.upgrading += 1,
            Some(
                ClusterPhase::Error | ClusterPhase::Unavailable | ClusterPhase::RollbackFailed,
            ) => counts.failed += 1,
            _ => {}
        }
        *versions.entry(release_of(cluster)).or_default() += 1;
    }
    let mut by_count: Vec<(String, u32)> = versions.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    counts.more_versions = saturate(by_count.len().saturating_sub(MAX_STATUS_VERSIONS));
    counts.versions = by_count
        .into_iter()
        .take(MAX_STATUS_VERSIONS)
        .map(|(version, clusters)| VersionCount { version, clusters })
        .collect();
}

/// `vA.B`, or what the cluster wrote (cleaned), or `unknown`.
fn release_of(cluster: &Cluster) -> String {
    match cluster.version() {
        Some(v) => v.release(),
        None => cluster
            .spec
            .as_ref()
            .and_then(|s| s.version.as_deref())
            .map(|v| clean(v, MAX_CLUSTER_TEXT).into_owned())
            .unwrap_or_else(|| "unknown".into()),
    }
}

/// Which watched cluster keeps which watch, and what becomes of the others.
fn assign(
    inputs: &Inputs<'_>,
    watched: &[(ApiFamily, &Cluster, &str)],
    over: &BTreeSet<&str>,
    listed: &BTreeSet<&str>,
    counts: Counts,
) -> Plan {
    let mut plan = Plan {
        counts,
        ..Plan::default()
    };
    let mut by_cluster: BTreeMap<&str, &Kept> = BTreeMap::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for kept in inputs.kept {
        // Two watches of one cluster (a crash between two writes, say): the first stays.
        if by_cluster.contains_key(kept.cluster_id.as_str()) {
            plan.delete.push((kept.clone(), Leave::Unpicked));
        } else {
            by_cluster.insert(&kept.cluster_id, kept);
            taken.insert(kept.name.clone());
        }
    }
    let wanted: BTreeSet<&str> = watched.iter().map(|w| w.2).collect();
    for (id, kept) in &by_cluster {
        if !wanted.contains(id) {
            let leave = match (listed.contains(id), over.contains(id)) {
                (false, _) => Leave::Gone,
                (true, true) => Leave::OverMax,
                (true, false) => Leave::Unpicked,
            };
            plan.delete.push(((*kept).clone(), leave));
        }
    }
    for (family, cluster, id) in watched {
        let cluster_name = clean(cluster.name().unwrap_or(id), MAX_CLUSTER_TEXT).into_owned();
        match by_cluster.get(id) {
            Some(kept) => {
                let desired = desired(inputs.set, &kept.name, *family, id, &cluster_name);
                plan.staying.push((*kept).clone());
                if kept.hash.as_deref() != hash_carried(&desired) {
                    plan.update.push(desired);
                }
            }
            None => {
                let mut name = watch_name(&inputs.set.name_any(), &cluster_name, id);
                if taken.contains(&name) {
                    name = clash_name(&inputs.set.name_any(), &cluster_name, id);
                }
                taken.insert(name.clone());
                plan.create
                    .push(desired(inputs.set, &name, *family, id, &cluster_name));
            }
        }
    }
    plan
}

/// The watch `name` the set wants for cluster `id`.
fn desired(
    set: &UpgradeWatchSet,
    name: &str,
    family: ApiFamily,
    id: &str,
    cluster_name: &str,
) -> Desired {
    let template = set.spec.template.clone().unwrap_or_default();
    let template_meta = template.metadata.unwrap_or_default();
    let template_spec = template.spec.unwrap_or_default();
    let mut labels = template_meta.labels;
    labels.insert(SET_LABEL.into(), set.name_any());
    labels.insert(CLUSTER_ID_LABEL.into(), id.into());
    let mut annotations = template_meta.annotations;
    annotations.insert(CLUSTER_NAME_ANNOTATION.into(), cluster_name.into());
    let spec = UpgradeWorkflowWatchSpec {
        account_ref: Some(set.spec.account_ref.clone()),
        cluster_id: id.into(),
        cluster_type: Some(family),
        upgrade_workflow_id: None,
        poll_interval: template_spec.poll_interval,
        suspend: template_spec.suspend,
        region: None,
        endpoint: None,
        project_id: None,
        credentials_secret_ref: None,
        workload_identity: None,
    };
    let mut watch = UpgradeWorkflowWatch::new(name, spec);
    watch.metadata.namespace = set.namespace();
    watch.metadata.labels = Some(labels);
    watch.metadata.owner_references = owner(set).map(|o| vec![o]);
    watch.metadata.annotations = Some(annotations);
    let hash = hash_of(&watch);
    watch
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(TEMPLATE_HASH_ANNOTATION.into(), hash);
    Desired {
        watch,
        cluster_id: id.into(),
        cluster_name: cluster_name.into(),
    }
}

/// The set as the controller of its watches: Kubernetes' garbage collector deletes them
/// with it.
fn owner(set: &UpgradeWatchSet) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: UpgradeWatchSet::api_version(&()).into_owned(),
        kind: UpgradeWatchSet::kind(&()).into_owned(),
        name: set.name_any(),
        uid: set.uid()?,
        controller: Some(true),
        block_owner_deletion: None,
    })
}

/// The digest of what the set writes into a watch (spec, labels, the cluster name and the
/// template's annotations), before the digest annotation itself is added.
fn hash_of(watch: &UpgradeWorkflowWatch) -> String {
    let mut annotations = watch.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(TEMPLATE_HASH_ANNOTATION);
    let content = serde_json::json!({
        "spec": watch.spec,
        "labels": watch.metadata.labels,
        "annotations": annotations,
    });
    digest(&[&content.to_string()])[..16].to_string()
}

/// The hash a desired watch carries.
pub fn hash_carried(desired: &Desired) -> Option<&str> {
    annotation(&desired.watch.metadata, TEMPLATE_HASH_ANNOTATION)
}

// ---------------------------------------------------------------------------- status

/// Why a set's condition is what it is; the failures are `Category`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetReason {
    /// The clusters were listed.
    Listed,
    /// Every cluster picked has its watch.
    AllWatched,
    /// More clusters are picked than maxWatches allows.
    AtMaxWatches,
    /// Some watches could not be created, changed or deleted.
    WatchesNotWritten,
    /// The clusters have not been listed yet.
    NotListed,
    /// The clusterSelector cannot be read.
    InvalidSelector,
    Failure(Category),
}

impl SetReason {
    pub const STATES: [SetReason; 6] = [
        Self::Listed,
        Self::AllWatched,
        Self::AtMaxWatches,
        Self::WatchesNotWritten,
        Self::NotListed,
        Self::InvalidSelector,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Listed => "Listed",
            Self::AllWatched => "AllWatched",
            Self::AtMaxWatches => "AtMaxWatches",
            Self::WatchesNotWritten => "WatchesNotWritten",
            Self::NotListed => "NotListed",
            Self::InvalidSelector => "InvalidSelector",
            Self::Failure(category) => category.as_str(),
        }
    }

    /// What the reason means, for the docs.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Listed => "Synced: the account's clusters were listed",
            Self::AllWatched => "Ready: every cluster the selector picks has its watch",
            Self::AtMaxWatches => "Ready False: more clusters are picked than maxWatches allows",
            Self::WatchesNotWritten => {
                "Ready False: some generated watches could not be created, changed or deleted"
            }
            Self::NotListed => "the clusters have not been listed yet",
            Self::InvalidSelector => "the clusterSelector cannot be read",
            Self::Failure(category) => category.meaning(),
        }
    }
}

/// How a pass ended, as the status tells it.
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    /// Listed and applied: the plan's counts, the watches kept now, the writes that failed
    /// (with the first one's reason) and what was listed (for the message).
    Listed {
        /// Of the watches kept, those whose upgrade succeeded (their kept status).
        succeeded: u32,
        counts: &'a Counts,
        watches: u32,
        failed_writes: Vec<String>,
        listed: String,
    },
    /// The account refused the set, or nothing could be listed: the watches were left as
    /// they were.
    Failed(&'a Failure),
    /// The selector cannot be read.
    InvalidSelector(&'a str),
}

/// The status after a pass at `now` (whole seconds, as Kubernetes stores them).
pub fn next_status(
    old: &UpgradeWatchSetStatus,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: Timestamp,
) -> UpgradeWatchSetStatus {
    let mut next = UpgradeWatchSetStatus {
        observed_generation: generation,
        ..old.clone()
    };
    let mut conditions = SetConditions::new(old.conditions.clone(), generation, now);
    match outcome {
        Outcome::Listed {
            counts,
            succeeded,
            watches,
            failed_writes,
            listed,
        } => {
            next.clusters = Some(counts.clusters);
            next.succeeded = Some(*succeeded);
            next.upgrading = Some(counts.upgrading);
            next.failed = Some(counts.failed);
            next.watches = Some(*watches);
            next.skipped = Some(counts.skipped());
            next.versions = counts.versions.clone();
            next.more_versions = Some(counts.more_versions).filter(|n| *n > 0);
            next.last_list_time = Some(Time(now));
            conditions.set(SYNCED, true, SetReason::Listed, listed);
            let (ready, reason, message) = readiness(counts, failed_writes);
            conditions.set(READY, ready, reason, &message);
        }
        Outcome::Failed(failure) => {
            let reason = SetReason::Failure(failure.category);
            conditions.set(SYNCED, false, reason, &failure.message);
            let account = matches!(
                failure.category,
                Category::AccountMissing | Category::AccountNotAllowed
            );
            if account || old.last_list_time.is_none() {
                let (reason, message) = match account {
                    true => (reason, failure.message.clone()),
                    false => (
                        SetReason::NotListed,
                        "the clusters have not been listed yet: see Synced".to_string(),
                    ),
                };
                conditions.set(READY, false, reason, &message);
            }
        }
        Outcome::InvalidSelector(why) => {
            conditions.set(SYNCED, false, SetReason::InvalidSelector, why);
            conditions.set(READY, false, SetReason::InvalidSelector, why);
        }
    }
    next.conditions = conditions.into_list();
    next
}

/// Ready from the counts and the writes: every picked cluster watched, or why not.
fn readiness(counts: &Counts, failed_writes: &[String]) -> (bool, SetReason, String) {
    if let Some(first) = failed_writes.first() {
        let message = format!(
            "{} watch(es) could not be written, the first: {first}",
            failed_writes.len()
        );
        return (false, SetReason::WatchesNotWritten, message);
    }
    if counts.over_max > 0 {
        let message = format!(
            "{} clusters are picked and maxWatches keeps the first {} by name: {} have no watch",
            counts.clusters,
            counts.clusters - counts.over_max,
            counts.over_max
        );
        return (false, SetReason::AtMaxWatches, message);
    }
    let mut message = format!(
        "each of the {} clusters picked has its watch",
        counts.clusters
    );
    if counts.not_served > 0 {
        message.push_str(&format!(
            "; {} more are not among the account's clusterIDs",
            counts.not_served
        ));
    }
    if counts.unreadable > 0 {
        message.push_str(&format!(
            "; {} items of CCE's answer were unreadable or beyond the clusters one answer is read for",
            counts.unreadable
        ));
    }
    (true, SetReason::AllWatched, message)
}

const READY: &str = "Ready";
const SYNCED: &str = "Synced";

/// A set's conditions, edited as a watch's are (`lastTransitionTime` kept while a
/// condition's status holds), with the set's reasons.
struct SetConditions(Conditions);

impl SetConditions {
    fn new(list: Vec<Condition>, generation: Option<i64>, now: Timestamp) -> Self {
        Self(Conditions::new(list, generation, now))
    }

    fn set(&mut self, type_: &str, status: bool, reason: SetReason, message: &str) {
        self.0.set_named(type_, status, reason.as_str(), message);
    }

    fn into_list(self) -> Vec<Condition> {
        self.0.into_list()
    }
}

// ---------------------------------------------------------------------------- events

/// An Event about the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetEventReason {
    /// A cluster got its watch.
    ClusterJoined,
    /// A cluster's watch was deleted.
    ClusterLeft,
}

impl SetEventReason {
    pub const ALL: [SetEventReason; 2] = [Self::ClusterJoined, Self::ClusterLeft];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClusterJoined => "ClusterJoined",
            Self::ClusterLeft => "ClusterLeft",
        }
    }

    /// The Event's type and when it is published, for the docs.
    pub const fn when(self) -> &'static str {
        match self {
            Self::ClusterJoined => "Normal: a cluster the set picks got its generated watch",
            Self::ClusterLeft => {
                "Normal: a cluster left the set (gone from CCE, no longer picked, or over \
                 maxWatches) and its generated watch was deleted"
            }
        }
    }
}

/// A cluster joining or leaving, named by the watch it concerns: each watch of a cluster
/// (it gets a new one when it joins again) has one Event of each kind, whoever computes it
/// and however often.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub reason: SetEventReason,
    pub watch_name: String,
    pub watch_uid: String,
    pub cluster_id: String,
    pub cluster_name: String,
    pub leave: Option<Leave>,
}

impl Membership {
    fn note(&self, namespace: &str) -> String {
        let cluster = format!("cluster {} ({})", self.cluster_name, self.cluster_id);
        let watch = format!("{namespace}/{}", self.watch_name);
        match (self.reason, self.leave) {
            (SetEventReason::ClusterJoined, _) => {
                format!("{cluster} joined the set: UpgradeWorkflowWatch {watch} follows it")
            }
            (SetEventReason::ClusterLeft, leave) => {
                let why = match leave {
                    Some(Leave::Gone) => "CCE no longer lists it",
                    Some(Leave::OverMax) => "the set is at maxWatches",
                    _ => "the set no longer picks it",
                };
                format!("{cluster} left the set ({why}): UpgradeWorkflowWatch {watch} is deleted")
            }
        }
    }

    fn action(&self) -> &'static str {
        match self.reason {
            SetEventReason::ClusterJoined => "CreateWatch",
            SetEventReason::ClusterLeft => "DeleteWatch",
        }
    }
}

/// The kept watches whose ClusterJoined Event may not have been published: created since
/// the last status this set wrote (a minute earlier, for clocks that differ), or all of them
/// before the first. Publishing again what was published is a no-op (the same name).
pub fn unannounced<'a>(old: &UpgradeWatchSetStatus, kept: &'a [Kept]) -> Vec<&'a Kept> {
    let since = old
        .last_list_time
        .as_ref()
        .map(|t| t.0 - jiff::SignedDuration::from_secs(60));
    kept.iter()
        .filter(|k| match (since, k.created) {
            (Some(since), Some(created)) => created >= since,
            _ => true,
        })
        .collect()
}

/// The Event object of `membership` about `set`.
pub fn event_for(
    set: &UpgradeWatchSet,
    membership: &Membership,
    now: Timestamp,
    controller: &str,
    instance: &str,
) -> KubeEvent {
    let namespace = set.namespace().unwrap_or_default();
    let uid = set.uid().unwrap_or_default();
    let digest = digest(&[&uid, membership.reason.as_str(), &membership.watch_uid]);
    let prefix = set.name_any();
    KubeEvent {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}.{}", &digest[..16])),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        action: Some(clean(membership.action(), EVENT_LABEL_BYTES).into_owned()),
        reason: Some(membership.reason.as_str().to_string()),
        note: Some(clean(&membership.note(&namespace), EVENT_NOTE_BYTES).into_owned()),
        type_: Some("Normal".into()),
        event_time: Some(MicroTime(now)),
        regarding: Some(set.object_ref(&())),
        reporting_controller: Some(clean(controller, EVENT_LABEL_BYTES).into_owned()),
        reporting_instance: Some(clean(instance, EVENT_LABEL_BYTES).into_owned()),
        ..KubeEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::set::{ClusterCategory, MAX_WATCHES_LIMIT, TemplateSpec, WatchTemplate};
    use crate::limits::MAX_CLUSTERS;

    fn t(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).expect("time")
    }

    fn set(spec: serde_json::Value) -> UpgradeWatchSet {
        let mut spec = spec;
        spec["accountRef"] = serde_json::json!({"name": "cce"});
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "UpgradeWatchSet",
            "metadata": {"name": "fleet", "namespace": "team-a", "uid": "set-uid", "generation": 2},
            "spec": spec,
        }))
        .expect("set")
    }

    /// A cluster as ListClusters lists it.
    fn cluster(
        id: &str,
        name: &str,
        phase: &str,
        version: &str,
        labels: &[(&str, &str)],
    ) -> Cluster {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"uid": id, "name": name, "labels": labels},
            "spec": {"category": "CCE", "version": version},
            "status": {"phase": phase},
        }))
        .expect("cluster")
    }

    fn listing(clusters: Vec<Cluster>) -> Listing {
        Listing {
            clusters: clusters
                .into_iter()
                .map(|c| (ApiFamily::Standard, c))
                .collect(),
            ..Listing::default()
        }
    }

    fn fleet() -> Listing {
        listing(vec![
            cluster("c-1", "web", "Available", "v1.28", &[("env", "prod")]),
            cluster("c-2", "db", "Upgrading", "v1.28", &[("env", "prod")]),
            cluster("c-3", "batch", "Error", "v1.29", &[("env", "staging")]),
        ])
    }

    fn plan_of(set: &UpgradeWatchSet, listing: &Listing, kept: &[Kept]) -> Plan {
        plan(&Inputs {
            set,
            listing,
            kept,
            cluster_ids: &[],
        })
        .expect("plan")
    }

    /// What the set keeps once it applied `plan`, as the next pass reads it.
    fn kept_after(plan: &Plan) -> Vec<Kept> {
        let created = plan.create.iter().chain(&plan.update).map(|d| Kept {
            name: d.watch.name_any(),
            uid: format!("uid-{}", d.watch.name_any()),
            cluster_id: d.cluster_id.clone(),
            cluster_name: Some(d.cluster_name.clone()),
            hash: hash_carried(d).map(str::to_string),
            created: Some(t(0)),
        });
        let mut all: Vec<Kept> = created.collect();
        for k in &plan.staying {
            if !all.iter().any(|a| a.cluster_id == k.cluster_id) {
                all.push(k.clone());
            }
        }
        all
    }

    fn names(desired: &[Desired]) -> Vec<String> {
        desired.iter().map(|d| d.watch.name_any()).collect()
    }

    #[test]
    fn the_limit_on_watches_is_the_limit_on_clusters_read() {
        assert_eq!(MAX_WATCHES_LIMIT as usize, MAX_CLUSTERS);
    }

    #[test]
    fn every_cluster_gets_one_watch_of_the_sets_account_owned_by_the_set() {
        let s = set(serde_json::json!({
            "template": {"metadata": {"labels": {"team": "a"}}, "spec": {"pollInterval": "1m"}}
        }));
        let plan = plan_of(&s, &fleet(), &[]);
        assert_eq!(
            names(&plan.create),
            ["fleet-batch", "fleet-db", "fleet-web"]
        );
        let web = &plan.create[2].watch;
        assert_eq!(web.spec.cluster_id, "c-1");
        assert_eq!(web.spec.cluster_type, Some(ApiFamily::Standard));
        assert_eq!(web.spec.account_ref, Some(s.spec.account_ref.clone()));
        assert_eq!(
            web.spec.upgrade_workflow_id, None,
            "it follows the newest workflow"
        );
        assert_eq!(web.spec.poll_interval.as_deref(), Some("1m"));
        let labels = web.metadata.labels.clone().expect("labels");
        assert_eq!(labels[SET_LABEL], "fleet");
        assert_eq!(labels[CLUSTER_ID_LABEL], "c-1");
        assert_eq!(labels["team"], "a");
        assert_eq!(web.metadata.namespace.as_deref(), Some("team-a"));
        let owner = &web.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            ("set-uid", Some(true))
        );
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("UpgradeWatchSet", "fleet")
        );
        assert_eq!(
            (
                plan.counts.clusters,
                plan.counts.upgrading,
                plan.counts.failed
            ),
            (3, 1, 1)
        );
        assert_eq!(
            plan.counts.versions,
            [
                VersionCount {
                    version: "v1.28".into(),
                    clusters: 2
                },
                VersionCount {
                    version: "v1.29".into(),
                    clusters: 1
                },
            ]
        );
    }

    #[test]
    fn a_second_pass_changes_nothing_and_a_new_template_rewrites_every_watch() {
        let s = set(serde_json::json!({}));
        let first = plan_of(&s, &fleet(), &[]);
        let kept = kept_after(&first);
        let again = plan_of(&s, &fleet(), &kept);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
        assert_eq!(again.staying.len(), 3);
        let mut changed = s.clone();
        changed.spec.template = Some(WatchTemplate {
            spec: Some(TemplateSpec {
                suspend: Some(true),
                ..TemplateSpec::default()
            }),
            ..WatchTemplate::default()
        });
        let rewrite = plan_of(&changed, &fleet(), &kept);
        assert_eq!(rewrite.update.len(), 3);
        assert!(
            rewrite
                .update
                .iter()
                .all(|d| d.watch.spec.suspend == Some(true))
        );
        assert_eq!(
            names(&rewrite.update),
            ["fleet-batch", "fleet-db", "fleet-web"],
            "a watch keeps its name"
        );
    }

    #[test]
    fn a_cluster_that_goes_or_stops_matching_loses_its_watch_and_says_why() {
        let s = set(serde_json::json!({"clusterSelector": {"matchLabels": {"env": "prod"}}}));
        let first = plan_of(&s, &fleet(), &[]);
        assert_eq!(names(&first.create), ["fleet-db", "fleet-web"]);
        let kept = kept_after(&first);
        let later = listing(vec![cluster(
            "c-2",
            "db",
            "Available",
            "v1.29",
            &[("env", "staging")],
        )]);
        let plan = plan_of(&s, &later, &kept);
        let leaving: Vec<(&str, Leave)> = plan
            .delete
            .iter()
            .map(|(k, l)| (k.cluster_id.as_str(), *l))
            .collect();
        assert_eq!(leaving, [("c-1", Leave::Gone), ("c-2", Leave::Unpicked)]);
        assert_eq!(plan.counts.clusters, 0);
    }

    #[test]
    fn only_the_watches_the_set_owns_are_its_own() {
        let s = set(serde_json::json!({}));
        let meta = |name: &str, set_label: bool, owner_uid: Option<&str>| {
            let mut labels = BTreeMap::from([(CLUSTER_ID_LABEL.to_string(), "c-1".to_string())]);
            if set_label {
                labels.insert(SET_LABEL.into(), "fleet".into());
            }
            ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(labels),
                owner_references: owner_uid.map(|uid| {
                    vec![OwnerReference {
                        api_version: "cce.upgradewatch.io/v1alpha1".into(),
                        kind: "UpgradeWatchSet".into(),
                        name: "fleet".into(),
                        uid: uid.into(),
                        controller: Some(true),
                        block_owner_deletion: None,
                    }]
                }),
                ..ObjectMeta::default()
            }
        };
        let watches = [
            meta("fleet-web", true, Some("set-uid")),
            meta("persons-own", false, None),
            meta("copied-label", true, None),
            meta("other-owner", true, Some("another-set")),
        ];
        let kept = kept(&s, &watches);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "fleet-web");
        // The person's watch of c-1 is no reason not to watch c-1.
        let plan = plan_of(&s, &fleet(), &kept);
        assert!(plan.delete.is_empty());
        assert_eq!(names(&plan.create), ["fleet-batch", "fleet-db"]);
        assert_eq!(plan.update.len(), 1, "no digest yet: written once");
    }

    #[test]
    fn the_selector_ands_names_labels_categories_and_versions() {
        let web = cluster(
            "c-1",
            "web",
            "Available",
            "v1.28",
            &[("env", "prod"), ("tier", "web")],
        );
        let check = |selector: serde_json::Value| {
            let selector: ClusterSelector = serde_json::from_value(selector).expect("selector");
            picks(Some(&selector), ApiFamily::Standard, &web).expect("readable")
        };
        assert!(check(serde_json::json!({})));
        assert!(check(
            serde_json::json!({"names": ["web", "db"], "versions": ["v1.28"]})
        ));
        assert!(!check(serde_json::json!({"names": ["db"]})));
        assert!(check(
            serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]})
        ));
        assert!(!check(
            serde_json::json!({"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})
        ));
        assert!(check(serde_json::json!({"categories": ["CCE"]})));
        assert!(!check(serde_json::json!({"categories": ["Turbo"]})));
        assert!(!check(serde_json::json!({"versions": ["v1.2", "v1.29"]})));
        let mut unnamed = web.clone();
        unnamed.spec = None;
        let turbo: ClusterSelector =
            serde_json::from_value(serde_json::json!({"categories": ["Turbo"]})).expect("selector");
        assert!(picks(Some(&turbo), ApiFamily::Autopilot, &unnamed).expect("readable"));
        assert_eq!(turbo.categories, [ClusterCategory::Turbo]);
        let odd: ClusterSelector = serde_json::from_value(
            serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "Sometimes"}]}),
        )
        .expect("selector");
        assert!(picks(Some(&odd), ApiFamily::Standard, &web).is_err());
        let s = set(
            serde_json::json!({"clusterSelector": {"matchExpressions": [{"key": "tier", "operator": "Sometimes"}]}}),
        );
        assert!(
            plan(&Inputs {
                set: &s,
                listing: &fleet(),
                kept: &[],
                cluster_ids: &[]
            })
            .is_err()
        );
    }

    #[test]
    fn the_accounts_cluster_list_and_max_watches_leave_clusters_out_and_are_counted() {
        let s = set(serde_json::json!({"maxWatches": 1}));
        let served = ["c-2".to_string(), "c-3".to_string()];
        let first = plan(&Inputs {
            set: &s,
            listing: &fleet(),
            kept: &[],
            cluster_ids: &served,
        })
        .expect("plan");
        // By name: batch (c-3) before db (c-2).
        assert_eq!(names(&first.create), ["fleet-batch"]);
        assert_eq!((first.counts.not_served, first.counts.over_max), (1, 1));
        assert_eq!(first.counts.clusters, 2);
        let kept = kept_after(&first);
        let now_db_first =
            set(serde_json::json!({"maxWatches": 1, "clusterSelector": {"names": ["db"]}}));
        let next = plan_of(&now_db_first, &fleet(), &kept);
        assert_eq!(next.delete[0].1, Leave::Unpicked);
        let over = plan(&Inputs {
            set: &set(serde_json::json!({"maxWatches": 0})),
            listing: &fleet(),
            kept: &kept,
            cluster_ids: &served,
        })
        .expect("plan");
        assert_eq!(over.delete[0].1, Leave::OverMax);
    }

    #[test]
    fn odd_items_duplicates_and_many_versions_are_bounded_and_counted() {
        let mut clusters: Vec<Cluster> = (0..25)
            .map(|i| {
                cluster(
                    &format!("c-{i}"),
                    &format!("n-{i:02}"),
                    "Available",
                    &format!("v1.{i}"),
                    &[],
                )
            })
            .collect();
        clusters.push(cluster(
            "bad id with spaces",
            "odd",
            "Available",
            "v1.28",
            &[],
        ));
        clusters.push(cluster("c-0", "n-00", "Available", "v1.0", &[]));
        let mut listing = listing(clusters);
        listing.unreadable = 2;
        listing.beyond_cap = 1;
        let plan = plan_of(&set(serde_json::json!({})), &listing, &[]);
        assert_eq!(plan.create.len(), 25, "the second c-0 is the same cluster");
        assert_eq!(plan.counts.unreadable, 4);
        assert_eq!(plan.counts.versions.len(), MAX_STATUS_VERSIONS);
        assert_eq!(plan.counts.more_versions, 5);
    }

    #[test]
    fn names_are_dns_labels_and_differ_for_different_clusters() {
        assert_eq!(watch_name("fleet", "web-01", "c-1"), "fleet-web-01");
        let long = "a".repeat(100);
        let one = watch_name("fleet", &long, "c-1");
        let two = watch_name("fleet", &long, "c-2");
        assert!(one.len() <= 63 && is_dns_label(&one), "{one}");
        assert_ne!(one, two);
        assert_eq!(one, watch_name("fleet", &long, "c-1"), "stable");
        let odd = watch_name("fleet", "Web_01", "c-1");
        assert!(
            is_dns_label(&odd) && odd.starts_with("fleet-web-01-"),
            "{odd}"
        );
        let dotted = watch_name("a.b", "web", "c-1");
        assert!(is_dns_label(&dotted), "{dotted}");
        assert!(is_dns_label(&watch_name("-", "", "c-1")));
    }

    #[test]
    fn a_taken_name_gives_way_to_a_digest_of_the_cluster() {
        let s = set(serde_json::json!({}));
        let plan = plan_of(&s, &fleet(), &[]);
        let other = renamed(&s, &plan.create[2]);
        let name = other.watch.name_any();
        assert!(
            name.starts_with("fleet-web-") && name != "fleet-web",
            "{name}"
        );
        assert!(is_dns_label(&name));
        assert_eq!(
            hash_carried(&other),
            hash_carried(&plan.create[2]),
            "same content"
        );
    }

    #[test]
    fn two_clusters_of_one_name_get_two_watches() {
        let listing = Listing {
            clusters: vec![
                (
                    ApiFamily::Autopilot,
                    cluster("ap-1", "web", "Available", "v1.28", &[]),
                ),
                (
                    ApiFamily::Standard,
                    cluster("c-1", "web", "Available", "v1.28", &[]),
                ),
            ],
            ..Listing::default()
        };
        let plan = plan_of(&set(serde_json::json!({})), &listing, &[]);
        let names = names(&plan.create);
        assert_eq!(names.len(), 2);
        assert_ne!(names[0], names[1]);
        assert_eq!(
            plan.create[0].watch.spec.cluster_type,
            Some(ApiFamily::Autopilot)
        );
    }

    fn condition<'a>(status: &'a UpgradeWatchSetStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect(type_);
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn the_status_counts_and_says_whether_every_cluster_is_watched() {
        let plan = plan_of(&set(serde_json::json!({})), &fleet(), &[]);
        let listed = Outcome::Listed {
            counts: &plan.counts,
            succeeded: 1,
            watches: 3,
            failed_writes: Vec::new(),
            listed: "listed 3 clusters".into(),
        };
        let first = next_status(&UpgradeWatchSetStatus::default(), Some(2), &listed, t(10));
        assert_eq!(
            (
                first.clusters,
                first.upgrading,
                first.failed,
                first.watches,
                first.skipped
            ),
            (Some(3), Some(1), Some(1), Some(3), Some(0))
        );
        assert_eq!(first.succeeded, Some(1));
        assert_eq!(condition(&first, "Ready"), ("True", "AllWatched"));
        assert_eq!(condition(&first, "Synced"), ("True", "Listed"));
        assert_eq!(first.last_list_time, Some(Time(t(10))));
        let outage = Failure::transient(Category::Forbidden, "ListClusters: 403");
        let during = next_status(&first, Some(2), &Outcome::Failed(&outage), t(20));
        assert_eq!(condition(&during, "Synced"), ("False", "Forbidden"));
        assert_eq!(
            condition(&during, "Ready"),
            ("True", "AllWatched"),
            "the watches stand"
        );
        assert_eq!(during.watches, Some(3));
        let ready = during
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("ready");
        assert_eq!(ready.last_transition_time, Time(t(10)));
        let never = next_status(
            &UpgradeWatchSetStatus::default(),
            Some(2),
            &Outcome::Failed(&outage),
            t(5),
        );
        assert_eq!(condition(&never, "Ready"), ("False", "NotListed"));
        let refused = Failure::permanent(Category::AccountNotAllowed, "not listed");
        let denied = next_status(&first, Some(2), &Outcome::Failed(&refused), t(30));
        assert_eq!(condition(&denied, "Ready"), ("False", "AccountNotAllowed"));
    }

    #[test]
    fn ready_says_what_is_missing() {
        let s = set(serde_json::json!({"maxWatches": 2}));
        let plan = plan_of(&s, &fleet(), &[]);
        let outcome = |failed_writes: Vec<String>| Outcome::Listed {
            succeeded: 0,
            counts: &plan.counts,
            watches: 2,
            failed_writes,
            listed: "listed".into(),
        };
        let at_max = next_status(
            &UpgradeWatchSetStatus::default(),
            None,
            &outcome(Vec::new()),
            t(0),
        );
        assert_eq!(condition(&at_max, "Ready"), ("False", "AtMaxWatches"));
        assert_eq!(at_max.skipped, Some(1));
        let failed = next_status(&at_max, None, &outcome(vec!["fleet-web: 409".into()]), t(1));
        assert_eq!(condition(&failed, "Ready"), ("False", "WatchesNotWritten"));
        let why = "clusterSelector cannot be read";
        let invalid = next_status(&failed, None, &Outcome::InvalidSelector(why), t(2));
        assert_eq!(condition(&invalid, "Synced"), ("False", "InvalidSelector"));
    }

    #[test]
    fn one_event_per_membership_with_a_valid_name() {
        let s = set(serde_json::json!({}));
        let joined = Membership {
            reason: SetEventReason::ClusterJoined,
            watch_name: "fleet-web".into(),
            watch_uid: "w-1".into(),
            cluster_id: "c-1".into(),
            cluster_name: "web".into(),
            leave: None,
        };
        let e = event_for(&s, &joined, t(0), "cce-upgrade-watch", "pod-1");
        let again = event_for(&s, &joined, t(99), "cce-upgrade-watch", "pod-2");
        assert_eq!(e.metadata.name, again.metadata.name);
        let rejoined = Membership {
            watch_uid: "w-2".into(),
            ..joined.clone()
        };
        assert_ne!(
            e.metadata.name,
            event_for(&s, &rejoined, t(0), "c", "i").metadata.name
        );
        let left = Membership {
            reason: SetEventReason::ClusterLeft,
            leave: Some(Leave::Gone),
            ..joined
        };
        let l = event_for(&s, &left, t(0), "c", "i");
        assert_ne!(e.metadata.name, l.metadata.name);
        assert_eq!(e.reason.as_deref(), Some("ClusterJoined"));
        assert_eq!(e.type_.as_deref(), Some("Normal"));
        assert!(
            e.note
                .as_deref()
                .is_some_and(|n| n.contains("cluster web (c-1) joined"))
        );
        assert!(
            l.note
                .as_deref()
                .is_some_and(|n| n.contains("CCE no longer lists it"))
        );
        let regarding = e.regarding.expect("regarding");
        assert_eq!(regarding.kind.as_deref(), Some("UpgradeWatchSet"));
        assert_eq!(regarding.uid.as_deref(), Some("set-uid"));
        let name = e.metadata.name.expect("name");
        assert!(name.len() <= 253 && name.starts_with("fleet."), "{name}");
    }

    #[test]
    fn watches_created_since_the_last_status_are_announced_again() {
        let kept = |name: &str, created: i64| Kept {
            name: name.into(),
            uid: name.into(),
            cluster_id: name.into(),
            cluster_name: None,
            hash: None,
            created: Some(t(created)),
        };
        let all = [kept("old", 0), kept("new", 300)];
        let first = unannounced(&UpgradeWatchSetStatus::default(), &all);
        assert_eq!(first.len(), 2);
        let old = UpgradeWatchSetStatus {
            last_list_time: Some(Time(t(200))),
            ..UpgradeWatchSetStatus::default()
        };
        let since: Vec<&str> = unannounced(&old, &all)
            .iter()
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(since, ["new"]);
    }
}

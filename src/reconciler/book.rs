//! The last known status of every watch, one compact copy each.
//!
//! The watch cache would otherwise hold each status as a tree of small allocations (about
//! 3 KiB for a four-task workflow), and the reconciler needs a second copy of what it wrote
//! until the cache shows it: diffing against a cache that lags behind our own write would
//! publish the same transitions twice. Instead the watch stream hands every status to this
//! book as it arrives, the cached object keeps none, and the book keeps the newest status per
//! watch, whether it came from the API server or from our own write, as LZ4-compressed JSON.
//! LZ4 finds little to repeat within one small status, so every status is compressed against
//! one shared dictionary: the status the operator computes for CCE's documented example
//! workflow, which holds the field names, task types, condition types, reasons and messages
//! that every status repeats. Deflate would cost many times as long to decode on every
//! reconcile, and allocates its tables each time.
//!
//! "Newest" compares resourceVersions, which Kubernetes defines as comparable integers for
//! objects of one resource since v1.35 (KEP-5504). A version that is not such an integer
//! (an older or unusual API server) cannot be ordered, and the most recent arrival wins.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use kube::runtime::watcher;
use parking_lot::Mutex;
use tracing::error;

use crate::cce::model::SEED_EXAMPLE;
use crate::crd::{UpgradeWorkflowWatch, UpgradeWorkflowWatchStatus};
use crate::reconciler::core::settled::Settled;
use crate::reconciler::core::status::{Observation, next_status};
use jiff::Timestamp;

#[derive(Debug)]
struct Entry {
    resource_version: Option<String>,
    /// The status as compressed JSON; `None` while the watch has none.
    status: Option<Box<[u8]>>,
    /// Missing from the cache at the last sweep.
    unseen: bool,
    /// What the last reconcile settled for the status kept here.
    settled: Option<Settled>,
}

#[derive(Debug, Default)]
pub struct StatusBook {
    by_uid: Mutex<HashMap<String, Entry>>,
}

impl StatusBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Follows the watch stream: takes the status out of every object it delivers and
    /// forgets deleted watches.
    pub fn follow(&self, event: &mut watcher::Event<UpgradeWorkflowWatch>) {
        match event {
            watcher::Event::Apply(watch) | watcher::Event::InitApply(watch) => self.absorb(watch),
            watcher::Event::Delete(watch) => {
                watch.status = None;
                if let Some(uid) = watch.metadata.uid.as_deref() {
                    self.by_uid.lock().remove(uid);
                }
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    /// Takes the status out of an object, keeping it if it is at least as new as what the
    /// book holds.
    pub fn absorb(&self, watch: &mut UpgradeWorkflowWatch) {
        let status = watch.status.take();
        let Some(uid) = watch.metadata.uid.as_deref() else {
            return;
        };
        self.offer(
            uid,
            watch.metadata.resource_version.as_deref(),
            status.as_deref(),
        );
    }

    /// Records a status this instance wrote; `resource_version` is the one the write produced.
    pub fn wrote(
        &self,
        uid: &str,
        resource_version: Option<&str>,
        status: &UpgradeWorkflowWatchStatus,
    ) {
        self.offer(uid, resource_version, Some(status));
    }

    /// The newest known status of the watch (empty when it has none yet).
    pub fn status_of(&self, uid: &str) -> UpgradeWorkflowWatchStatus {
        let packed = {
            let by_uid = self.by_uid.lock();
            match by_uid.get(uid).and_then(|e| e.status.as_deref()) {
                Some(packed) => packed.to_vec(),
                None => return UpgradeWorkflowWatchStatus::default(),
            }
        };
        unpack(&packed).unwrap_or_else(|e| {
            // The book only holds what `pack` made of a status.
            error!(%uid, error = %e, "a kept status does not unpack; starting from an empty one");
            UpgradeWorkflowWatchStatus::default()
        })
    }

    /// The resourceVersion of the object the kept status came with.
    pub fn resource_version(&self, uid: &str) -> Option<String> {
        self.by_uid.lock().get(uid)?.resource_version.clone()
    }

    /// Records that the kept status is current for an answer (see [`Settled`]).
    pub fn settle(&self, uid: &str, settled: Settled) {
        if let Some(entry) = self.by_uid.lock().get_mut(uid) {
            entry.settled = Some(settled);
        }
    }

    pub fn settled(&self, uid: &str) -> Option<Settled> {
        self.by_uid.lock().get(uid).and_then(|e| e.settled)
    }

    /// Forgets every [`Settled`], so each watch's next reconcile computes its status again.
    pub fn unsettle_all(&self) {
        for entry in self.by_uid.lock().values_mut() {
            entry.settled = None;
        }
    }

    /// Drops the entries of watches that `in_cache` has not known for two sweeps in a row.
    /// Deletions normally arrive as events; this catches those a re-list skipped, and the
    /// second chance spares a watch whose status arrived just before the cache listed it.
    pub fn sweep(&self, in_cache: impl Fn(&str) -> bool) {
        self.by_uid.lock().retain(|uid, entry| {
            if in_cache(uid) {
                entry.unseen = false;
                return true;
            }
            let keep = !entry.unseen;
            entry.unseen = true;
            keep
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_uid.lock().len()
    }

    fn offer(
        &self,
        uid: &str,
        resource_version: Option<&str>,
        status: Option<&UpgradeWorkflowWatchStatus>,
    ) {
        let status = status.and_then(pack);
        let mut by_uid = self.by_uid.lock();
        let settled = match by_uid.get(uid) {
            Some(kept)
                if compare(resource_version, kept.resource_version.as_deref())
                    == Some(Ordering::Less) =>
            {
                return;
            }
            Some(kept) => kept.settled.and_then(|s| s.outlives(kept.status == status)),
            None => None,
        };
        by_uid.insert(
            uid.to_owned(),
            Entry {
                resource_version: resource_version.map(str::to_owned),
                status,
                unseen: false,
                settled,
            },
        );
    }
}

/// What every kept status is compressed against (see the module's introduction).
static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let example = serde_json::from_str(SEED_EXAMPLE).unwrap_or_default();
    let status = next_status(
        &UpgradeWorkflowWatchStatus::default(),
        &Observation::Workflow(&example),
        Some(1),
        Timestamp::UNIX_EPOCH,
        Duration::from_secs(300),
    )
    .status;
    serde_json::to_vec(&status).unwrap_or_default()
});

fn pack(status: &UpgradeWorkflowWatchStatus) -> Option<Box<[u8]>> {
    let json = serde_json::to_vec(status).ok()?;
    Some(lz4_flex::block::compress_prepend_size_with_dict(&json, &DICTIONARY).into_boxed_slice())
}

fn unpack(packed: &[u8]) -> Result<UpgradeWorkflowWatchStatus, String> {
    let json = lz4_flex::block::decompress_size_prepended_with_dict(packed, &DICTIONARY)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

/// Orders two resourceVersions of one resource, if both are well-formed: positive decimal
/// integers of any length without leading zeros.
fn compare(a: Option<&str>, b: Option<&str>) -> Option<Ordering> {
    let (a, b) = (a?, b?);
    let well_formed =
        |v: &str| !v.is_empty() && !v.starts_with('0') && v.bytes().all(|c| c.is_ascii_digit());
    if !well_formed(a) || !well_formed(b) {
        return None;
    }
    Some(a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn watch(uid: &str, rv: &str, phase: Option<&str>) -> UpgradeWorkflowWatch {
        let mut w = UpgradeWorkflowWatch::new(
            "w",
            serde_json::from_value(serde_json::json!({
                "region": "ap-southeast-1", "projectID": "p", "clusterID": "c"
            }))
            .expect("spec"),
        );
        w.metadata.uid = Some(uid.into());
        w.metadata.resource_version = Some(rv.into());
        w.status = phase.map(|p| {
            Box::new(UpgradeWorkflowWatchStatus {
                phase: Some(p.into()),
                ..Default::default()
            })
        });
        w
    }

    fn phase(book: &StatusBook, uid: &str) -> Option<String> {
        book.status_of(uid).phase
    }

    #[test]
    fn the_cached_object_keeps_no_status_and_the_book_returns_it() {
        let book = StatusBook::new();
        let mut w = watch("u1", "10", Some("Running"));
        book.absorb(&mut w);
        assert!(w.status.is_none());
        assert_eq!(phase(&book, "u1").as_deref(), Some("Running"));
        assert_eq!(
            book.status_of("unknown"),
            UpgradeWorkflowWatchStatus::default()
        );
    }

    #[test]
    fn a_cache_lagging_behind_our_write_does_not_replace_it() {
        let book = StatusBook::new();
        book.absorb(&mut watch("u1", "10", Some("Init")));
        let mine = UpgradeWorkflowWatchStatus {
            phase: Some("Running".into()),
            ..Default::default()
        };
        book.wrote("u1", Some("12"), &mine);
        // A spec change made before our write reaches the stream after it.
        book.absorb(&mut watch("u1", "11", Some("Init")));
        assert_eq!(phase(&book, "u1").as_deref(), Some("Running"));
        // Our own write comes back, then somebody else's later one.
        book.absorb(&mut watch("u1", "12", Some("Running")));
        book.absorb(&mut watch("u1", "13", Some("Success")));
        assert_eq!(phase(&book, "u1").as_deref(), Some("Success"));
    }

    /// A status of another run than the dictionary's: other ids, times and generation.
    fn another_runs_status() -> UpgradeWorkflowWatchStatus {
        let example = SEED_EXAMPLE
            .replace("2023-11-25", "2026-12-01")
            .replace("08:", "19:")
            .replace('1', "7")
            .replace('4', "9");
        let wf: crate::cce::model::Workflow =
            serde_json::from_str(&example).expect("the example with other ids and times");
        next_status(
            &UpgradeWorkflowWatchStatus::default(),
            &Observation::Workflow(&wf),
            Some(4),
            "2026-12-01T19:42:17Z".parse().expect("timestamp"),
            Duration::from_secs(300),
        )
        .status
    }

    #[test]
    fn a_kept_status_unpacks_to_what_was_packed_in_a_third_of_its_json_and_less_than_lz4_alone() {
        let status = another_runs_status();
        let packed = pack(&status).expect("packs");
        let json = serde_json::to_vec(&status).expect("serialises");
        let without_dictionary = lz4_flex::compress_prepend_size(&json).len();
        assert!(
            packed.len() * 3 < json.len() && packed.len() * 5 < without_dictionary * 3,
            "{} bytes packed, {} without the dictionary, {} as JSON",
            packed.len(),
            without_dictionary,
            json.len()
        );
        assert_eq!(unpack(&packed).expect("unpacks"), status);

        let book = StatusBook::new();
        book.wrote("u1", Some("7"), &status);
        assert_eq!(book.status_of("u1"), status);
    }

    #[test]
    fn settled_survives_our_write_coming_back_and_nothing_else() {
        let book = StatusBook::new();
        let status = |phase: &str| UpgradeWorkflowWatchStatus {
            phase: Some(phase.into()),
            ..Default::default()
        };
        let synced = UpgradeWorkflowWatchStatus {
            last_sync_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2030-01-01T00:00:00Z".parse().expect("timestamp"),
            )),
            ..Default::default()
        };
        let answer = crate::reconciler::core::settled::AnswerId::following(None, false);
        let settled =
            Settled::after(answer, Some(1), &synced, Duration::from_secs(300)).expect("settles");
        book.settle("u1", settled);
        assert_eq!(book.settled("u1"), None, "no entry, nothing to settle");

        book.wrote("u1", Some("5"), &status("Running"));
        book.settle("u1", settled);
        book.absorb(&mut watch("u1", "4", Some("Init")));
        book.absorb(&mut watch("u1", "5", Some("Running")));
        assert_eq!(book.settled("u1"), Some(settled));

        book.absorb(&mut watch("u1", "6", Some("Success")));
        assert_eq!(book.settled("u1"), None, "somebody else changed the status");

        book.wrote("u1", Some("7"), &status("Success"));
        book.settle("u1", settled);
        book.unsettle_all();
        assert_eq!(book.settled("u1"), None);
    }

    #[test]
    fn versions_compare_as_integers_of_any_length() {
        assert_eq!(compare(Some("9"), Some("10")), Some(Ordering::Less));
        assert_eq!(compare(Some("100"), Some("99")), Some(Ordering::Greater));
        assert_eq!(compare(Some("42"), Some("42")), Some(Ordering::Equal));
        assert_eq!(
            compare(Some("123456789012345678901234567890"), Some("99")),
            Some(Ordering::Greater)
        );
        for odd in ["", "0", "012", "1a", "-1"] {
            assert_eq!(compare(Some(odd), Some("5")), None, "{odd:?}");
        }
        assert_eq!(compare(None, Some("5")), None);
    }

    #[test]
    fn unorderable_versions_let_the_latest_arrival_win() {
        let book = StatusBook::new();
        book.absorb(&mut watch("u1", "b", Some("Init")));
        book.absorb(&mut watch("u1", "a", Some("Running")));
        assert_eq!(phase(&book, "u1").as_deref(), Some("Running"));
    }

    #[test]
    fn deleted_watches_are_forgotten_at_once_or_after_two_sweeps() {
        let book = StatusBook::new();
        for uid in ["u1", "u2", "u3"] {
            book.follow(&mut watcher::Event::Apply(watch(uid, "1", Some("Init"))));
        }
        let mut deleted = watcher::Event::Delete(watch("u1", "2", Some("Init")));
        book.follow(&mut deleted);
        assert_eq!(book.len(), 2);
        assert!(matches!(deleted, watcher::Event::Delete(w) if w.status.is_none()));

        // u3 went while the stream was re-listing: no Delete event for it.
        book.sweep(|uid| uid == "u2");
        assert_eq!(book.len(), 2, "one sweep is not enough");
        book.sweep(|uid| uid == "u2");
        assert_eq!(book.len(), 1);
        assert_eq!(phase(&book, "u3"), None);
        assert_eq!(phase(&book, "u2").as_deref(), Some("Init"));
    }

    #[test]
    fn a_watch_seen_again_before_the_second_sweep_is_kept() {
        let book = StatusBook::new();
        book.absorb(&mut watch("u1", "1", Some("Init")));
        book.sweep(|_| false);
        book.sweep(|_| true);
        book.sweep(|_| false);
        assert_eq!(book.len(), 1);
    }
}

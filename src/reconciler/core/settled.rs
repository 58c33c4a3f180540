//! The "nothing changed" fast path. Most reconciles find the workflow as CCE last reported
//! it; computing, diffing and compressing its status again would give what is already kept.
//! A reconcile that computed a status from an answer records it as [`Settled`]; the next
//! one skips all of that while the answer, the generation and the kept status stay the
//! same and the clock has not reached an instant that changes the status by itself (the
//! `lastSyncTime` heartbeat, a pre-check result expiring).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;

use crate::crd::UpgradeWorkflowWatchStatus;
use crate::reconciler::core::mirror::next_precheck_expiry;

/// Names a CCE answer, so reconciles compare ids instead of workflows. Successive equal
/// answers for one fetch key share an id; every other answer gets a new one. Ids are
/// unique in the process, so answers read under other credentials (another fetch key:
/// the Secret was rotated) never match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerId(u64);

static NEXT_ANSWER: AtomicU64 = AtomicU64::new(1);

impl AnswerId {
    /// The id of an answer after `previous`, the last one for the same key.
    pub fn following(previous: Option<AnswerId>, same_as_previous: bool) -> AnswerId {
        match previous {
            Some(id) if same_as_previous => id,
            _ => AnswerId(NEXT_ANSWER.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

/// For this answer and generation, the kept status is already what the reconciler makes
/// of them, until the clock reaches `until`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settled {
    answer: AnswerId,
    generation: Option<i64>,
    until: Timestamp,
}

impl Settled {
    /// What a reconcile establishes that left `status` as the status of `answer` at
    /// `generation`. `None` when it cannot tell when the clock moves it (no `lastSyncTime`
    /// yet).
    pub fn after(
        answer: AnswerId,
        generation: Option<i64>,
        status: &UpgradeWorkflowWatchStatus,
        heartbeat: Duration,
    ) -> Option<Settled> {
        let heartbeat_due = status
            .last_sync_time
            .as_ref()?
            .0
            .checked_add(heartbeat)
            .ok()?;
        let until = match next_precheck_expiry(&status.tasks) {
            Some(expiry) => expiry.min(heartbeat_due),
            None => heartbeat_due,
        };
        Some(Settled {
            answer,
            generation,
            until,
        })
    }

    /// Whether it may hold for a watch at `generation`: a spec change needs a new status.
    pub fn holds_for(&self, generation: Option<i64>) -> bool {
        self.generation == generation
    }

    /// Whether a reconcile that read `answer` at `now` has nothing to do.
    pub fn covers(&self, answer: AnswerId, now: Timestamp) -> bool {
        self.answer == answer && now < self.until
    }

    /// What is left of it when a status arrives for the watch: only the status it settled
    /// on (our own write coming back through the watch) keeps it; anybody else's write
    /// must be read and, if need be, overwritten.
    pub fn outlives(self, same_status: bool) -> Option<Settled> {
        same_status.then_some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::model::{SEED_EXAMPLE, Workflow};
    use crate::reconciler::core::status::{Observation, next_status};

    const HEARTBEAT: Duration = Duration::from_secs(300);

    fn at(s: &str) -> Timestamp {
        s.parse().expect("valid")
    }

    fn later(t: Timestamp, secs: u64) -> Timestamp {
        t.checked_add(Duration::from_secs(secs)).expect("in range")
    }

    fn compute(
        old: &UpgradeWorkflowWatchStatus,
        wf: &Workflow,
        now: Timestamp,
    ) -> UpgradeWorkflowWatchStatus {
        next_status(old, &Observation::Workflow(wf), Some(1), now, HEARTBEAT).status
    }

    /// Pre-check done (its result expires at 08:21:05), Cluster not started.
    fn waiting_after_precheck() -> Workflow {
        serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "w1"},
            "status": {"phase": "Pending", "pointStatuses": [
                {"taskType": "PreCheck", "taskID": "p1", "status": "Success",
                 "startTimeStamp": "2023-11-25 07:20:04.5 +0000 UTC",
                 "endTimeStamp": "2023-11-25 07:21:05.5 +0000 UTC",
                 "expireTimeStamp": "2023-11-25 08:21:05.5 +0000 UTC"},
                {"taskType": "Cluster"}
            ]}
        }))
        .expect("parse")
    }

    fn seed() -> Workflow {
        serde_json::from_str(SEED_EXAMPLE).expect("seed example")
    }

    /// A status computed at `t0` from a first answer, and what it settles.
    fn settle(wf: &Workflow, t0: Timestamp) -> (UpgradeWorkflowWatchStatus, AnswerId, Settled) {
        let status = compute(&UpgradeWorkflowWatchStatus::default(), wf, t0);
        let answer = AnswerId::following(None, false);
        let settled =
            Settled::after(answer, Some(1), &status, HEARTBEAT).expect("has lastSyncTime");
        (status, answer, settled)
    }

    #[test]
    fn a_settled_watch_skips_the_status_computation_that_would_give_the_same_status() {
        let wf = seed();
        let t0 = at("2023-11-25T08:00:00Z");
        let (status, answer, settled) = settle(&wf, t0);
        for secs in [0, 1, 60, 299] {
            let now = later(t0, secs);
            assert!(settled.covers(answer, now), "not skipped {secs}s later");
            assert_eq!(
                compute(&status, &wf, now),
                status,
                "skipping {secs}s later lost a change"
            );
        }
    }

    #[test]
    fn the_heartbeat_ends_the_settled_period() {
        let wf = seed();
        let t0 = at("2023-11-25T08:00:00Z");
        let (status, answer, settled) = settle(&wf, t0);
        let due = at("2023-11-25T08:05:00Z");
        assert!(settled.covers(answer, later(t0, 299)));
        assert!(!settled.covers(answer, due));
        assert_ne!(
            compute(&status, &wf, due),
            status,
            "the heartbeat is written then"
        );
    }

    #[test]
    fn a_precheck_expiring_before_the_heartbeat_ends_it_sooner() {
        let wf = waiting_after_precheck();
        let t0 = at("2023-11-25T08:20:00Z");
        let (status, answer, settled) = settle(&wf, t0);
        // Kubernetes keeps whole seconds, and so does the status.
        let expiry = at("2023-11-25T08:21:05Z");
        assert!(settled.covers(answer, later(t0, 64)));
        assert_eq!(compute(&status, &wf, later(t0, 64)), status);
        assert!(!settled.covers(answer, expiry));
        assert_ne!(
            compute(&status, &wf, expiry),
            status,
            "the expiry is seen then"
        );
    }

    #[test]
    fn another_answer_unsettles_and_an_equal_one_does_not() {
        let (_, answer, settled) = settle(&seed(), at("2023-11-25T08:00:00Z"));
        let now = at("2023-11-25T08:01:00Z");
        assert!(settled.covers(AnswerId::following(Some(answer), true), now));
        assert!(!settled.covers(AnswerId::following(Some(answer), false), now));
    }

    #[test]
    fn a_rotated_secret_unsettles() {
        // Other credentials make another fetch key, whose first answer has no previous
        // one: even an equal workflow gets a new id.
        let (_, _, settled) = settle(&seed(), at("2023-11-25T08:00:00Z"));
        let under_new_credentials = AnswerId::following(None, false);
        assert!(!settled.covers(under_new_credentials, at("2023-11-25T08:01:00Z")));
    }

    #[test]
    fn a_generation_bump_unsettles() {
        let (_, _, settled) = settle(&seed(), at("2023-11-25T08:00:00Z"));
        assert!(settled.holds_for(Some(1)));
        assert!(!settled.holds_for(Some(2)));
        assert!(!settled.holds_for(None));
    }

    #[test]
    fn someone_elses_status_write_unsettles() {
        let (_, _, settled) = settle(&seed(), at("2023-11-25T08:00:00Z"));
        assert_eq!(
            settled.outlives(true),
            Some(settled),
            "our own write came back"
        );
        assert_eq!(settled.outlives(false), None);
    }

    #[test]
    fn without_a_sync_time_nothing_settles() {
        let answer = AnswerId::following(None, false);
        let status = UpgradeWorkflowWatchStatus::default();
        assert_eq!(Settled::after(answer, Some(1), &status, HEARTBEAT), None);
    }
}

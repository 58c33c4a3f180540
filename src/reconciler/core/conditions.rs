//! The conditions of a watch's status and their reasons. The types follow kstatus (Ready,
//! Reconciling, Stalled) plus Synced for the health of the CCE conversation. Their names
//! and reasons are API: the docs (docs/reference.md), the design notes, alerting rules, Argo CD and Flux
//! health checks read them, so each is spelled here once.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::cce::model::Phase;
use crate::crd::UpgradeWorkflowWatchStatus;
use crate::failure::Category;
use crate::limits::{CONDITION_MESSAGE_BYTES, clean};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    /// The upgrade succeeded.
    Ready,
    /// The upgrade is in progress, or the operator is still finding out.
    Reconciling,
    /// It needs a person: a task failed, it was cancelled, or access is denied.
    Stalled,
    /// The last CCE call succeeded and status is current.
    Synced,
}

impl ConditionType {
    pub const ALL: [ConditionType; 4] =
        [Self::Ready, Self::Reconciling, Self::Stalled, Self::Synced];

    /// What the condition says when True, for the docs.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Ready => {
                "the upgrade succeeded; it stays True once it did, whatever syncing does afterwards"
            }
            Self::Reconciling => {
                "the upgrade is in progress, or the operator waits for CCE's first answer"
            }
            Self::Stalled => {
                "it needs a person: a task failed, the upgrade was cancelled, or a permanent \
                 failure (access denied, no account, ids that do not match)"
            }
            Self::Synced => {
                "the last read of CCE succeeded; False with a failure category while it does not, \
                 or Suspended"
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Reconciling => "Reconciling",
            Self::Stalled => "Stalled",
            Self::Synced => "Synced",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// CCE has not answered yet.
    NotObserved,
    /// Reconciling while waiting for the first answer.
    FirstSync,
    /// The followed cluster has no upgrade workflow yet.
    NoWorkflow,
    /// Phase Init: the workflow exists and no task has started.
    NotStarted,
    /// Phase Running.
    Upgrading,
    /// Phase Success.
    UpgradeSucceeded,
    /// Phase Pending: a task failed and CCE waits for a retry or a decision.
    TaskFailed,
    /// Phase Cancel.
    Cancelled,
    /// A phase this build does not know.
    UnknownPhase,
    Synced,
    /// Synced, but some timestamps are kept raw.
    UnparsedTimestamp,
    /// Synced, but the answer exceeded a bound of what a status holds.
    Truncated,
    /// Synced, but CCE would not say why a task failed or how far it is.
    DiagnosticsUnavailable,
    /// `spec.suspend` is true; not an outage.
    Suspended,
    /// An account's credentials were obtained.
    CredentialsReady,
    /// A failed read, named by its category (`Forbidden`, `CceUnavailable`,
    /// `WorkflowNotFound`, `CredentialsMissing`, ...).
    Failure(Category),
}

impl Reason {
    /// Every reason that is not a failure; with [`Category::ALL`], every reason a condition
    /// can carry.
    pub const STATES: [Reason; 15] = [
        Self::NotObserved,
        Self::FirstSync,
        Self::NoWorkflow,
        Self::NotStarted,
        Self::Upgrading,
        Self::UpgradeSucceeded,
        Self::TaskFailed,
        Self::Cancelled,
        Self::UnknownPhase,
        Self::Synced,
        Self::UnparsedTimestamp,
        Self::Truncated,
        Self::DiagnosticsUnavailable,
        Self::Suspended,
        Self::CredentialsReady,
    ];

    /// Every reason a condition can carry.
    pub fn all() -> impl Iterator<Item = Reason> {
        Self::STATES
            .into_iter()
            .chain(Category::ALL.into_iter().map(Self::Failure))
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotObserved => "NotObserved",
            Self::FirstSync => "FirstSync",
            Self::NoWorkflow => "NoWorkflow",
            Self::NotStarted => "NotStarted",
            Self::Upgrading => "Upgrading",
            Self::UpgradeSucceeded => "UpgradeSucceeded",
            Self::TaskFailed => "TaskFailed",
            Self::Cancelled => "Cancelled",
            Self::UnknownPhase => "UnknownPhase",
            Self::Synced => "Synced",
            Self::UnparsedTimestamp => "UnparsedTimestamp",
            Self::Truncated => "Truncated",
            Self::DiagnosticsUnavailable => "DiagnosticsUnavailable",
            Self::Suspended => "Suspended",
            Self::CredentialsReady => "CredentialsReady",
            Self::Failure(category) => category.as_str(),
        }
    }

    /// What the reason means, for the printed list of reasons.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::NotObserved => "CCE has not answered yet",
            Self::FirstSync => "Reconciling while waiting for CCE's first answer",
            Self::NoWorkflow => "the cluster has no upgrade workflow yet: an idle, healthy watch",
            Self::NotStarted => "phase Init: the workflow exists and no task has started",
            Self::Upgrading => "phase Running: a task of the upgrade is running or queued",
            Self::UpgradeSucceeded => {
                "phase Success: the upgrade succeeded (Ready stays True whatever syncing does)"
            }
            Self::TaskFailed => {
                "phase Pending: a task failed and CCE waits for a retry or a decision"
            }
            Self::Cancelled => "phase Cancel: the workflow was cancelled",
            Self::UnknownPhase => "CCE sent a phase this version does not know",
            Self::Synced => "the last read of CCE succeeded",
            Self::UnparsedTimestamp => "synced, but some timestamps are kept as CCE sent them",
            Self::Truncated => "synced, but CCE's answer exceeded a bound of the status",
            Self::DiagnosticsUnavailable => "synced, but CCE would not say why a task failed",
            Self::Suspended => "spec.suspend is true: CCE is not asked",
            Self::CredentialsReady => "an account's credentials were obtained",
            Self::Failure(category) => category.meaning(),
        }
    }

    /// Ready's reason for a workflow in `phase`.
    pub fn of_phase(phase: &Phase) -> Self {
        match phase {
            Phase::Init => Self::NotStarted,
            Phase::Running => Self::Upgrading,
            Phase::Pending => Self::TaskFailed,
            Phase::Cancel => Self::Cancelled,
            Phase::Success => Self::UpgradeSucceeded,
            Phase::Unknown(_) => Self::UnknownPhase,
        }
    }
}

/// The condition of this type, if set.
pub fn condition(status: &UpgradeWorkflowWatchStatus, type_: ConditionType) -> Option<&Condition> {
    status.conditions.iter().find(|c| c.type_ == type_.as_str())
}

pub fn is_true(status: &UpgradeWorkflowWatchStatus, type_: ConditionType) -> bool {
    condition(status, type_).is_some_and(|c| c.status == TRUE)
}

/// Synced when it is False because CCE could not be read (a suspended watch is not failing).
pub fn sync_failure(status: &UpgradeWorkflowWatchStatus) -> Option<&Condition> {
    condition(status, ConditionType::Synced)
        .filter(|c| c.status == FALSE && c.reason != Reason::Suspended.as_str())
}

const TRUE: &str = "True";
const FALSE: &str = "False";

/// Edits a condition list, keeping `lastTransitionTime` while a condition's status holds.
pub struct Conditions {
    list: Vec<Condition>,
    generation: Option<i64>,
    now: Timestamp,
}

impl Conditions {
    /// Edits `list`; what is set carries `generation` and, on a transition, `now`.
    pub fn new(list: Vec<Condition>, generation: Option<i64>, now: Timestamp) -> Self {
        Self {
            list,
            generation,
            now,
        }
    }

    pub fn set(&mut self, type_: ConditionType, status: bool, reason: Reason, message: &str) {
        self.set_named(type_.as_str(), status, reason.as_str(), message);
    }

    /// As `set`, for the conditions of another kind (an UpgradeWatchSet's), named as that
    /// kind names them.
    pub fn set_named(&mut self, type_: &str, status: bool, reason: &str, message: &str) {
        let status = if status { TRUE } else { FALSE }.to_string();
        let previous = self.list.iter().position(|c| c.type_ == type_);
        let last_transition_time = match previous.map(|i| &self.list[i]) {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => Time(self.now),
        };
        let condition = Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: clean(message, CONDITION_MESSAGE_BYTES).into_owned(),
            observed_generation: self.generation,
            last_transition_time,
        };
        match previous {
            Some(i) => self.list[i] = condition,
            None => self.list.push(condition),
        }
    }

    /// Ready, Reconciling and Stalled, in that order, with one message.
    pub fn set_progress(
        &mut self,
        [ready, reconciling, stalled]: [(bool, Reason); 3],
        message: &str,
    ) {
        self.set(ConditionType::Ready, ready.0, ready.1, message);
        self.set(
            ConditionType::Reconciling,
            reconciling.0,
            reconciling.1,
            message,
        );
        self.set(ConditionType::Stalled, stalled.0, stalled.1, message);
    }

    pub fn into_list(self) -> Vec<Condition> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_spelled_as_documented() {
        let all = [
            (Reason::NotObserved, "NotObserved"),
            (Reason::FirstSync, "FirstSync"),
            (Reason::NoWorkflow, "NoWorkflow"),
            (Reason::NotStarted, "NotStarted"),
            (Reason::Upgrading, "Upgrading"),
            (Reason::UpgradeSucceeded, "UpgradeSucceeded"),
            (Reason::TaskFailed, "TaskFailed"),
            (Reason::Cancelled, "Cancelled"),
            (Reason::UnknownPhase, "UnknownPhase"),
            (Reason::Synced, "Synced"),
            (Reason::UnparsedTimestamp, "UnparsedTimestamp"),
            (Reason::Truncated, "Truncated"),
            (Reason::DiagnosticsUnavailable, "DiagnosticsUnavailable"),
            (Reason::Suspended, "Suspended"),
            (Reason::CredentialsReady, "CredentialsReady"),
            (
                Reason::Failure(Category::WorkflowNotFound),
                "WorkflowNotFound",
            ),
            (
                Reason::Failure(Category::CredentialsMissing),
                "CredentialsMissing",
            ),
            (Reason::Failure(Category::StatusRejected), "StatusRejected"),
            (
                Reason::Failure(Category::ServiceAccountMissing),
                "ServiceAccountMissing",
            ),
            (
                Reason::Failure(Category::TokenRequestFailed),
                "TokenRequestFailed",
            ),
            (
                Reason::Failure(Category::CredentialsExpired),
                "CredentialsExpired",
            ),
            (Reason::Failure(Category::Forbidden), "Forbidden"),
        ];
        for (reason, text) in all {
            assert_eq!(reason.as_str(), text);
        }
        let types = [
            ConditionType::Ready,
            ConditionType::Reconciling,
            ConditionType::Stalled,
            ConditionType::Synced,
        ];
        assert_eq!(
            types.map(ConditionType::as_str),
            ["Ready", "Reconciling", "Stalled", "Synced"]
        );
    }

    /// What the credential exchanges name their failures, as docs/troubleshooting.md's table lists them.
    #[test]
    fn exchange_failures_are_spelled_as_documented() {
        use crate::cce::error::ApiFailure;
        use crate::cce::iam::{ExchangeError, Service};
        let service = Service::Iam;
        let failure = ApiFailure::default();
        let all = [
            (
                ExchangeError::Refused {
                    service,
                    failure: failure.clone(),
                },
                "Unauthorized",
            ),
            (
                ExchangeError::Unavailable { service, failure },
                "IamUnavailable",
            ),
            (
                ExchangeError::Unreachable {
                    service,
                    detail: String::new(),
                },
                "IamUnavailable",
            ),
            (
                ExchangeError::InvalidResponse {
                    service,
                    status: 200,
                    reason: String::new(),
                },
                "InvalidIamResponse",
            ),
            (
                ExchangeError::Endpoint {
                    service,
                    reason: String::new(),
                },
                "IamEndpointNotAllowed",
            ),
        ];
        for (e, reason) in all {
            assert_eq!(e.category(), reason);
        }
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_does() {
        let t = |s: &str| -> Timestamp { s.parse().expect("valid") };
        let mut c = Conditions::new(Vec::new(), Some(1), t("2024-01-01T00:00:00Z"));
        c.set(ConditionType::Synced, true, Reason::Synced, "ok");
        let mut c = Conditions::new(c.into_list(), Some(2), t("2024-01-01T00:01:00Z"));
        c.set(
            ConditionType::Synced,
            true,
            Reason::UnparsedTimestamp,
            "still ok",
        );
        c.set(ConditionType::Ready, false, Reason::Upgrading, "new");
        let list = c.into_list();
        assert_eq!(
            list[0].last_transition_time,
            Time(t("2024-01-01T00:00:00Z"))
        );
        assert_eq!(list[0].reason, "UnparsedTimestamp");
        assert_eq!(list[0].observed_generation, Some(2));
        assert_eq!(
            list[1].last_transition_time,
            Time(t("2024-01-01T00:01:00Z"))
        );

        let mut c = Conditions::new(list, Some(2), t("2024-01-01T00:02:00Z"));
        c.set(
            ConditionType::Synced,
            false,
            Reason::Failure(Category::Timeout),
            "no answer",
        );
        let status = UpgradeWorkflowWatchStatus {
            conditions: c.into_list(),
            ..Default::default()
        };
        let synced = condition(&status, ConditionType::Synced).expect("set");
        assert_eq!(synced.last_transition_time, Time(t("2024-01-01T00:02:00Z")));
        assert!(sync_failure(&status).is_some());
        assert!(!is_true(&status, ConditionType::Synced));
    }

    #[test]
    fn a_suspended_watch_is_not_failing() {
        let mut c = Conditions::new(Vec::new(), None, Timestamp::UNIX_EPOCH);
        c.set(ConditionType::Synced, false, Reason::Suspended, "suspended");
        let status = UpgradeWorkflowWatchStatus {
            conditions: c.into_list(),
            ..Default::default()
        };
        assert_eq!(sync_failure(&status), None);
    }
}

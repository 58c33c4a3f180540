//! What every reconcile shares (clients, caches, rules, metrics, leadership) and the one
//! error a reconcile returns. State, no I/O of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use parking_lot::Mutex;

use crate::credentials::accounts::Accounts;
use crate::credentials::secrets::CredentialSources;
use crate::metrics::Metrics;
use crate::reconciler::book::StatusBook;
use crate::reconciler::core::decide::Rules;
use crate::reconciler::core::schedule::PollPolicy;
use crate::reconciler::fetch::Fetcher;
use crate::reconciler::publisher::EventPublisher;
use crate::runtime::leader::Leadership;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing status failed: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("publishing an event failed: {0}")]
    PublishEvent(#[source] kube::Error),
    #[error("the watch's status kept changing while the operator tried to write its first one")]
    Contended,
    #[error("the reconcile panicked: {0}")]
    Panicked(String),
    #[error("the watch has no namespace")]
    NoNamespace,
}

/// Everything a reconcile needs, shared by all of them.
pub struct Context {
    pub kube: kube::Client,
    pub recorder: EventPublisher,
    pub fetcher: Fetcher,
    pub accounts: Accounts,
    pub credentials: CredentialSources,
    pub rules: Rules,
    pub metrics: Metrics,
    pub leadership: Leadership,
    /// The newest status of every watch: the cached objects carry none.
    pub statuses: Arc<StatusBook>,
    /// Consecutive failures per watch uid, for backoff.
    pub(crate) failures: Mutex<HashMap<String, u32>>,
    /// Per watch uid, the digest of the last status the API server refused, so the same
    /// patch is not sent again.
    pub(crate) rejected: Mutex<HashMap<String, u64>>,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kube: kube::Client,
        recorder: EventPublisher,
        fetcher: Fetcher,
        accounts: Accounts,
        credentials: CredentialSources,
        policy: PollPolicy,
        heartbeat: Duration,
        metrics: Metrics,
        leadership: Leadership,
    ) -> Self {
        Self {
            kube,
            recorder,
            fetcher,
            accounts,
            credentials,
            rules: Rules { policy, heartbeat },
            metrics,
            leadership,
            statuses: Arc::new(StatusBook::new()),
            failures: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets failure counts and settled statuses, e.g. after losing and regaining
    /// leadership. The statuses stay: the book follows the API server whoever writes.
    pub fn forget_all(&self) {
        self.failures.lock().clear();
        self.statuses.unsettle_all();
    }

    /// Drops memory of watches for which `keep` is false.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.statuses.sweep(&keep);
        self.failures.lock().retain(|uid, _| keep(uid));
        self.rejected.lock().retain(|uid, _| keep(uid));
    }

    pub fn policy(&self) -> &PollPolicy {
        &self.rules.policy
    }
}

/// The clock at the precision Kubernetes stores (metav1.Time has whole seconds), so a
/// status read back from the API server equals the one written.
pub(crate) fn now_whole_seconds() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

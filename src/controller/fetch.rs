//! Reading workflows from CCE on behalf of many watches: one request in flight per
//! workflow however many watches name it, answers shared while fresh, and a token bucket
//! per endpoint and project so a fleet of watches cannot flood CCE.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::cce::ApiFamily;
use crate::cce::client::{CceClient, Target};
use crate::cce::error::CceError;
use crate::cce::model::Workflow;
use crate::metrics::Metrics;

/// What to read: one workflow, or the cluster's newest.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct FetchKey {
    pub endpoint: String,
    pub project_id: String,
    pub family: ApiFamily,
    pub cluster_id: String,
    /// `None` follows the cluster's newest workflow.
    pub workflow_id: Option<String>,
    /// Digest of the credentials: watches share an answer only when they hold the same
    /// credentials, so no watch reads through another's access.
    pub credentials: [u8; 32],
}

/// The outcome of a read: the workflow (`None` when a followed cluster has none yet).
pub type Fetched = Result<Option<Arc<Workflow>>, CceError>;

#[derive(Default)]
struct Slot {
    last: Option<Answer>,
}

/// One read: when it completed, what it gave, and its number.
#[derive(Clone)]
pub struct Answer {
    pub at: Instant,
    pub fetched: Fetched,
    /// Numbers successive reads of a key so that an answer equal to the previous one keeps
    /// its number: reconciles compare numbers instead of workflows. Unique per process.
    pub number: u64,
}

static ANSWERS: AtomicU64 = AtomicU64::new(1);

/// How long a failed read is reused: long enough for the watches waiting on the request.
const FAILURE_SHARED_FOR: Duration = Duration::from_secs(1);

/// Shared by all reconciles.
pub struct Fetcher {
    client: CceClient,
    slots: Mutex<HashMap<FetchKey, Arc<tokio::sync::Mutex<Slot>>>>,
    limiter: DefaultKeyedRateLimiter<(String, String)>,
    metrics: Metrics,
}

impl Fetcher {
    /// `rate` requests per second per endpoint+project, with bursts of `burst`.
    pub fn new(client: CceClient, rate: NonZeroU32, burst: NonZeroU32, metrics: Metrics) -> Self {
        Self {
            client,
            slots: Mutex::new(HashMap::new()),
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            metrics,
        }
    }

    pub fn client(&self) -> &CceClient {
        &self.client
    }

    /// Reads the workflow, reusing an answer younger than `fresh_for`. Callers for the
    /// same key wait for the request in flight instead of sending their own.
    pub async fn fetch(&self, key: &FetchKey, target: &Target, fresh_for: Duration) -> Answer {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(key.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(last) = &slot.last {
            // A failure is shared only with the callers that queued behind its request:
            // each watch's retry backoff asks CCE again, so recovery shows at once.
            let fresh_for = match last.fetched {
                Ok(_) => fresh_for,
                Err(_) => fresh_for.min(FAILURE_SHARED_FOR),
            };
            if last.at.elapsed() < fresh_for {
                return last.clone();
            }
        }
        self.limiter
            .until_key_ready(&(key.endpoint.clone(), key.project_id.clone()))
            .await;
        let fetched = self.request(key, target).await;
        let number = match (&slot.last, &fetched) {
            (Some(last), Ok(Some(now))) if matches!(&last.fetched, Ok(Some(before)) if before == now) => {
                last.number
            }
            _ => ANSWERS.fetch_add(1, AtomicOrdering::Relaxed),
        };
        let answer = Answer {
            at: Instant::now(),
            fetched,
            number,
        };
        slot.last = Some(answer.clone());
        answer
    }

    async fn request(&self, key: &FetchKey, target: &Target) -> Fetched {
        let started = Instant::now();
        let (operation, result) = match &key.workflow_id {
            Some(id) => (
                "show",
                self.client
                    .show_workflow(target, id)
                    .await
                    .map(|r| Some(Arc::new(r.body))),
            ),
            None => (
                "list",
                self.client
                    .list_workflows(target)
                    .await
                    .map(|r| r.body.newest().cloned().map(Arc::new)),
            ),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.category(),
        };
        self.metrics
            .observe_request(operation, outcome, started.elapsed());
        result
    }

    /// Drops cached answers nobody asked for in `idle`.
    pub fn sweep(&self, idle: Duration) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|_, slot| match slot.try_lock() {
            Ok(slot) => slot
                .last
                .as_ref()
                .is_some_and(|last| last.at.elapsed() < idle),
            Err(_) => true,
        });
        self.limiter.retain_recent();
    }
}

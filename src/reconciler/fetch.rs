//! Reading workflows from CCE on behalf of many watches: one request in flight per
//! workflow however many watches name it, answers shared while fresh, a token bucket per
//! endpoint and project so a fleet of watches cannot flood CCE, and a limit on the requests
//! one endpoint may have in flight, so a slow or hanging endpoint holds only part of the
//! reconcilers and watches of other endpoints keep their poll interval. The diagnostic
//! reads (`findings::Ask`) go through the same sharing, bucket and limit.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::diagnosis::findings::{self, Ask, Told};
use crate::diagnosis::read;
use crate::reconciler::core::settled::AnswerId;

use crate::cce::ApiFamily;
use crate::cce::client::{CceClient, Target};
use crate::cce::credentials::Credentials;
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
    /// [`fingerprint`] of the credentials: watches share an answer only when they hold the
    /// same credentials, so no watch reads through another's access.
    pub credentials: [u8; 32],
}

/// Identifies credentials without keeping them.
pub fn fingerprint(credentials: &Credentials) -> [u8; 32] {
    use secrecy::ExposeSecret;
    let mut hash = Sha256::new();
    match credentials {
        Credentials::AkSk {
            access_key,
            secret_key,
            security_token,
        } => {
            hash.update(b"aksk\0");
            hash.update(access_key.as_bytes());
            hash.update(b"\0");
            hash.update(secret_key.expose_secret().as_bytes());
            hash.update(b"\0");
            if let Some(token) = security_token {
                hash.update(token.expose_secret().as_bytes());
            }
        }
        Credentials::Token(token) => {
            hash.update(b"token\0");
            hash.update(token.expose_secret().as_bytes());
        }
    }
    hash.finalize().into()
}

/// The outcome of a read: the workflow (`None` when a followed cluster has none yet).
pub type Fetched = Result<Option<Arc<Workflow>>, CceError>;

#[derive(Default)]
struct Slot {
    last: Option<Answer>,
}

/// One read: when it completed, what it gave, and its id.
#[derive(Clone)]
pub struct Answer {
    pub at: Instant,
    pub fetched: Fetched,
    pub id: AnswerId,
}

/// How long a failed read is reused: long enough for the watches waiting on the request.
const FAILURE_SHARED_FOR: Duration = Duration::from_secs(1);

/// A diagnostic read's last answer: `None` for a failure worth trying again.
type Diagnosis = Option<(Instant, Option<Told>)>;
type DiagnosisSlot = Arc<tokio::sync::Mutex<Diagnosis>>;

/// Shared by all reconciles.
pub struct Fetcher {
    client: CceClient,
    slots: Mutex<HashMap<FetchKey, Arc<tokio::sync::Mutex<Slot>>>>,
    diagnoses: Mutex<HashMap<(FetchKey, Ask), DiagnosisSlot>>,
    limiter: DefaultKeyedRateLimiter<(String, String)>,
    /// Requests in flight per endpoint.
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_endpoint: usize,
    metrics: Metrics,
}

/// The part of `concurrency` reconciles one endpoint's requests may hold. A healthy
/// endpoint has far fewer in flight (each takes milliseconds), so this only binds when
/// one answers slowly.
pub fn per_endpoint_share(concurrency: usize) -> usize {
    (concurrency / 2).max(1)
}

impl Fetcher {
    /// `rate` requests per second per endpoint+project, with bursts of `burst`; at most
    /// `per_endpoint` requests to one endpoint in flight.
    pub fn new(
        client: CceClient,
        rate: NonZeroU32,
        burst: NonZeroU32,
        per_endpoint: usize,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            slots: Mutex::new(HashMap::new()),
            diagnoses: Mutex::new(HashMap::new()),
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            in_flight: Mutex::new(HashMap::new()),
            per_endpoint: per_endpoint.max(1),
            metrics,
        }
    }

    pub fn client(&self) -> &CceClient {
        &self.client
    }

    /// Reads the workflow, reusing an answer younger than `fresh_for`. Callers for the
    /// same key wait for the request in flight instead of sending their own. `None` when
    /// a request is due but the endpoint already has as many in flight as it may: the
    /// caller comes back later instead of holding a reconciler while it waits.
    pub async fn fetch(
        &self,
        key: &FetchKey,
        target: &Target,
        fresh_for: Duration,
    ) -> Option<Answer> {
        let slot = {
            let mut slots = self.slots.lock();
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
                return Some(last.clone());
            }
        }
        let _permit = self.admit(key).await?;
        let fetched = self.request(key, target).await;
        let previous = slot.last.as_ref();
        let same = matches!(
            (previous.map(|last| &last.fetched), &fetched),
            (Some(Ok(Some(before))), Ok(Some(now))) if before == now
        );
        let answer = Answer {
            at: Instant::now(),
            id: AnswerId::following(previous.map(|last| last.id), same),
            fetched,
        };
        slot.last = Some(answer.clone());
        Some(answer)
    }

    /// Waits for the endpoint's token bucket; `None` when the endpoint has as many
    /// requests in flight as it may.
    async fn admit(&self, key: &FetchKey) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let endpoint = {
            let mut in_flight = self.in_flight.lock();
            in_flight
                .entry(key.endpoint.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_endpoint)))
                .clone()
        };
        let permit = endpoint.try_acquire_owned().ok()?;
        self.limiter
            .until_key_ready(&(key.endpoint.clone(), key.project_id.clone()))
            .await;
        Some(permit)
    }

    /// Reads what `ask` names about the workflow `key` reads, sharing the answer among
    /// every watch of it while younger than `fresh_for` (a finished task's diagnosis does
    /// not change: the caller passes a long time). `None` when there is nothing to tell
    /// yet: the endpoint is busy, or CCE failed in a way worth trying again.
    pub async fn diagnose(
        &self,
        key: &FetchKey,
        ask: &Ask,
        target: &Target,
        fresh_for: Duration,
    ) -> Option<Told> {
        let shared = FetchKey {
            workflow_id: None,
            ..key.clone()
        };
        let slot = self
            .diagnoses
            .lock()
            .entry((shared.clone(), ask.clone()))
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some((at, told)) = &*slot {
            let fresh_for = match told {
                Some(_) => fresh_for,
                None => fresh_for.min(FAILURE_SHARED_FOR),
            };
            if at.elapsed() < fresh_for {
                return told.clone();
            }
        }
        let _permit = self.admit(&shared).await?;
        let started = Instant::now();
        let answer = read::read(&self.client, target, ask).await;
        let outcome = match &answer {
            Ok(_) => "ok",
            Err(e) => e.category().as_str(),
        };
        self.metrics
            .observe_request(ask.api(), outcome, started.elapsed());
        let told = match answer {
            Ok(told) => Some(told),
            Err(e) => findings::unavailable(ask, &e),
        };
        *slot = Some((Instant::now(), told));
        slot.as_ref().and_then(|(_, told)| told.clone())
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
            Err(e) => e.category().as_str(),
        };
        self.metrics
            .observe_request(operation, outcome, started.elapsed());
        result
    }

    /// Drops cached answers nobody asked for in `idle`.
    pub fn sweep(&self, idle: Duration) {
        let mut slots = self.slots.lock();
        slots.retain(|_, slot| match slot.try_lock() {
            Ok(slot) => slot
                .last
                .as_ref()
                .is_some_and(|last| last.at.elapsed() < idle),
            Err(_) => true,
        });
        self.diagnoses
            .lock()
            .retain(|_, slot| match slot.try_lock() {
                Ok(slot) => slot.as_ref().is_some_and(|(at, _)| at.elapsed() < idle),
                Err(_) => true,
            });
        self.limiter.retain_recent();
        let per_endpoint = self.per_endpoint;
        self.in_flight
            .lock()
            .retain(|_, requests| requests.available_permits() < per_endpoint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cce::client::ClientConfig;
    use crate::cce::endpoint::EndpointPolicy;

    /// An endpoint that accepts connections and never answers.
    async fn hanging_endpoint() -> (url::Url, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = url::Url::parse(&format!("http://{}/", listener.local_addr().expect("addr")))
            .expect("url");
        let accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        (url, accepting)
    }

    fn key_and_target(endpoint: &url::Url, workflow: &str) -> (FetchKey, Target) {
        let credentials = aksk("sk");
        let key = FetchKey {
            endpoint: endpoint.to_string(),
            project_id: "p".into(),
            family: ApiFamily::Standard,
            cluster_id: "c".into(),
            workflow_id: Some(workflow.into()),
            credentials: fingerprint(&credentials),
        };
        let target = Target {
            endpoint: endpoint.clone(),
            project_id: "p".into(),
            cluster_id: "c".into(),
            family: ApiFamily::Standard,
            credentials,
        };
        (key, target)
    }

    #[tokio::test]
    async fn a_hanging_endpoint_holds_only_its_share_of_the_reads() {
        let client = CceClient::new(ClientConfig {
            request_timeout: Duration::from_secs(5),
            policy: EndpointPolicy {
                allow_insecure: true,
                ..EndpointPolicy::default()
            },
            ..ClientConfig::default()
        })
        .expect("client");
        let rate = NonZeroU32::new(1000).expect("non-zero");
        let fetcher = Arc::new(Fetcher::new(client, rate, rate, 2, Metrics::new()));
        let (slow, _slow) = hanging_endpoint().await;
        let (other, _other) = hanging_endpoint().await;
        let mut waiting = Vec::new();
        for workflow in ["w1", "w2"] {
            let (fetcher, (key, target)) = (fetcher.clone(), key_and_target(&slow, workflow));
            waiting.push(tokio::spawn(async move {
                fetcher.fetch(&key, &target, Duration::ZERO).await.is_some()
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (key, target) = key_and_target(&slow, "w3");
        let started = Instant::now();
        assert!(fetcher.fetch(&key, &target, Duration::ZERO).await.is_none());
        assert!(started.elapsed() < Duration::from_millis(100));
        // Another endpoint still gets its read under way (it hangs too, so it times out).
        let (key, target) = key_and_target(&other, "w1");
        let read = tokio::time::timeout(
            Duration::from_millis(300),
            fetcher.fetch(&key, &target, Duration::ZERO),
        )
        .await;
        assert!(read.is_err(), "the other endpoint's read was not started");
        for w in waiting {
            w.abort();
        }
    }

    fn aksk(secret: &str) -> Credentials {
        Credentials::AkSk {
            access_key: "AK".into(),
            secret_key: secret.into(),
            security_token: None,
        }
    }

    #[test]
    fn rotated_credentials_read_under_another_key() {
        assert_eq!(fingerprint(&aksk("one")), fingerprint(&aksk("one")));
        assert_ne!(fingerprint(&aksk("one")), fingerprint(&aksk("two")));
        assert_ne!(
            fingerprint(&aksk("t")),
            fingerprint(&Credentials::Token("t".into()))
        );
    }
}

//! Reading workflows from CCE on behalf of many watches: one request in flight per
//! workflow however many watches name it, answers shared while fresh, a token bucket per
//! endpoint and project so a fleet of watches cannot flood CCE, and a limit on the requests
//! one endpoint may have in flight, so a slow or hanging endpoint holds only part of the
//! reconcilers and watches of other endpoints keep their poll interval. While several
//! namespaces use an endpoint, one namespace's watches may hold only a share of its rate and
//! in-flight requests, so a tenant with many watches cannot starve the others. The diagnostic reads
//! (`findings::Ask`) go through the same sharing, buckets and limits.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// One read: when it completed, what it gave, and its id.
#[derive(Clone)]
pub struct Answer {
    pub at: Instant,
    pub fetched: Fetched,
    pub id: AnswerId,
}

/// How long a failed read is reused: long enough for the watches waiting on the request.
const FAILURE_SHARED_FOR: Duration = Duration::from_secs(1);

/// A diagnostic read's last answer: `told` is `None` for a failure worth trying again.
#[derive(Clone)]
struct Diagnosis {
    at: Instant,
    told: Option<Told>,
}

/// An answer kept for the callers that come after it.
trait Kept: Clone {
    fn at(&self) -> Instant;
    fn failed(&self) -> bool;
}

impl Kept for Answer {
    fn at(&self) -> Instant {
        self.at
    }
    fn failed(&self) -> bool {
        self.fetched.is_err()
    }
}

impl Kept for Diagnosis {
    fn at(&self) -> Instant {
        self.at
    }
    fn failed(&self) -> bool {
        self.told.is_none()
    }
}

/// The newest answer per key. Callers for the same key wait for the request in flight
/// instead of sending their own, then share its answer while it is fresh.
struct Shared<K, A> {
    slots: Mutex<HashMap<K, Arc<tokio::sync::Mutex<Option<A>>>>>,
}

impl<K: std::hash::Hash + Eq + Clone, A: Kept> Shared<K, A> {
    fn new() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The slot of `key`, held until the caller has asked and stored an answer.
    async fn slot(&self, key: &K) -> tokio::sync::OwnedMutexGuard<Option<A>> {
        let slot = self.slots.lock().entry(key.clone()).or_default().clone();
        slot.lock_owned().await
    }

    /// Drops answers nobody asked for in `idle`.
    fn sweep(&self, idle: Duration) {
        self.slots.lock().retain(|_, slot| match slot.try_lock() {
            Ok(kept) => kept.as_ref().is_some_and(|k| k.at().elapsed() < idle),
            Err(_) => true,
        });
    }
}

/// The kept answer if younger than `fresh_for`. A failure is shared only with the
/// callers that queued behind its request: each watch's retry backoff asks CCE again,
/// so recovery shows at once.
fn fresh<A: Kept>(kept: &Option<A>, fresh_for: Duration) -> Option<A> {
    let kept = kept.as_ref()?;
    let fresh_for = if kept.failed() {
        fresh_for.min(FAILURE_SHARED_FOR)
    } else {
        fresh_for
    };
    (kept.at().elapsed() < fresh_for).then(|| kept.clone())
}

/// Shared by all reconciles.
pub struct Fetcher {
    client: CceClient,
    workflows: Shared<FetchKey, Answer>,
    diagnoses: Shared<(FetchKey, Ask), Diagnosis>,
    limiter: DefaultKeyedRateLimiter<(String, String)>,
    /// Requests in flight per endpoint.
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_endpoint: usize,
    /// What one namespace may hold of an endpoint's rate and in-flight requests.
    tenants: TenantShare,
    metrics: Metrics,
}

/// One namespace's share of each endpoint: a bucket of its own per endpoint and project,
/// taken before the shared one, and a cap on its requests in flight. It applies only while
/// other namespaces use the endpoint too: alone, a namespace has all of it.
struct TenantShare {
    limiter: Option<DefaultKeyedRateLimiter<(String, String, String)>>,
    in_flight: Mutex<HashMap<(String, String), Arc<Semaphore>>>,
    per_endpoint: usize,
    /// When each namespace last asked each endpoint.
    seen: Mutex<HashMap<String, HashMap<String, Instant>>>,
}

/// How long a namespace counts as using an endpoint after its last request: longer than
/// the longest poll interval of an active upgrade is not needed, since the share only
/// matters while several namespaces ask at once.
const SHARING_WINDOW: Duration = Duration::from_secs(120);

/// A share of `whole`, at least one.
fn part(whole: u32, share: f64) -> NonZeroU32 {
    let scaled = (f64::from(whole) * share).floor() as u32;
    NonZeroU32::new(scaled.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl TenantShare {
    fn new(rate: NonZeroU32, burst: NonZeroU32, per_endpoint: usize, share: f64) -> Self {
        let limiter = (share < 1.0).then(|| {
            RateLimiter::keyed(
                Quota::per_second(part(rate.get(), share)).allow_burst(part(burst.get(), share)),
            )
        });
        let per_endpoint_share = u32::try_from(per_endpoint).unwrap_or(u32::MAX);
        Self {
            limiter,
            in_flight: Mutex::new(HashMap::new()),
            per_endpoint: part(per_endpoint_share, share.min(1.0)).get() as usize,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Notes that `namespace` asks `endpoint` now; whether another namespace asked it
    /// within the sharing window, so the share applies.
    fn shared(&self, endpoint: &str, namespace: &str) -> bool {
        if self.limiter.is_none() {
            return false;
        }
        let now = Instant::now();
        let mut seen = self.seen.lock();
        let users = seen.entry(endpoint.to_string()).or_default();
        users.insert(namespace.to_string(), now);
        users.retain(|_, at| now.duration_since(*at) < SHARING_WINDOW);
        users.len() > 1
    }
}

/// The part of `concurrency` reconciles one endpoint's requests may hold. A healthy
/// endpoint has far fewer in flight (each takes milliseconds), so this only binds when
/// one answers slowly.
pub fn per_endpoint_share(concurrency: usize) -> usize {
    (concurrency / 2).max(1)
}

impl Fetcher {
    /// `rate` requests per second per endpoint+project, with bursts of `burst`; at most
    /// `per_endpoint` requests to one endpoint in flight; one namespace may use
    /// `namespace_share` (0 to 1; 1 for no limit) of each.
    pub fn new(
        client: CceClient,
        rate: NonZeroU32,
        burst: NonZeroU32,
        per_endpoint: usize,
        namespace_share: f64,
        metrics: Metrics,
    ) -> Self {
        let per_endpoint = per_endpoint.max(1);
        Self {
            client,
            workflows: Shared::new(),
            diagnoses: Shared::new(),
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            in_flight: Mutex::new(HashMap::new()),
            per_endpoint,
            tenants: TenantShare::new(rate, burst, per_endpoint, namespace_share),
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
        namespace: &str,
    ) -> Option<Answer> {
        let mut slot = self.workflows.slot(key).await;
        if let Some(answer) = fresh(&slot, fresh_for) {
            return Some(answer);
        }
        let _permit = self.admit(key, namespace).await?;
        let fetched = self.request(key, target).await;
        let previous = slot.as_ref();
        let same = matches!(
            (previous.map(|last| &last.fetched), &fetched),
            (Some(Ok(Some(before))), Ok(Some(now))) if before == now
        );
        let answer = Answer {
            at: Instant::now(),
            id: AnswerId::following(previous.map(|last| last.id), same),
            fetched,
        };
        *slot = Some(answer.clone());
        Some(answer)
    }

    /// Waits for the namespace's bucket (while it shares the endpoint), then the
    /// endpoint's; `None` when the endpoint, or the namespace at this endpoint, has as many
    /// requests in flight as it may.
    async fn admit(
        &self,
        key: &FetchKey,
        namespace: &str,
    ) -> Option<(OwnedSemaphorePermit, Option<OwnedSemaphorePermit>)> {
        let endpoint = {
            let mut in_flight = self.in_flight.lock();
            in_flight
                .entry(key.endpoint.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_endpoint)))
                .clone()
        };
        let tenant = {
            let mut in_flight = self.tenants.in_flight.lock();
            in_flight
                .entry((key.endpoint.clone(), namespace.to_string()))
                .or_insert_with(|| Arc::new(Semaphore::new(self.tenants.per_endpoint)))
                .clone()
        };
        let shared = self.tenants.shared(&key.endpoint, namespace);
        let own = if shared {
            Some(tenant.try_acquire_owned().ok()?)
        } else {
            None
        };
        let permits = (endpoint.try_acquire_owned().ok()?, own);
        if let (true, Some(limiter)) = (shared, &self.tenants.limiter) {
            limiter
                .until_key_ready(&(
                    key.endpoint.clone(),
                    key.project_id.clone(),
                    namespace.to_string(),
                ))
                .await;
        }
        self.limiter
            .until_key_ready(&(key.endpoint.clone(), key.project_id.clone()))
            .await;
        Some(permits)
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
        namespace: &str,
    ) -> Option<Told> {
        let shared = FetchKey {
            workflow_id: None,
            ..key.clone()
        };
        let mut slot = self.diagnoses.slot(&(shared.clone(), ask.clone())).await;
        if let Some(kept) = fresh(&slot, fresh_for) {
            return kept.told;
        }
        let _permit = self.admit(&shared, namespace).await?;
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
        *slot = Some(Diagnosis {
            at: Instant::now(),
            told: told.clone(),
        });
        told
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
        self.workflows.sweep(idle);
        self.diagnoses.sweep(idle);
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

    /// A fetcher for the plain-http test endpoints, with a rate that never binds, `per_endpoint`
    /// reads in flight per endpoint and `share` of them per namespace.
    fn plain_http_fetcher(per_endpoint: usize, share: f64) -> Arc<Fetcher> {
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
        Arc::new(Fetcher::new(
            client,
            rate,
            rate,
            per_endpoint,
            share,
            Metrics::new(),
        ))
    }

    #[tokio::test]
    async fn a_hanging_endpoint_holds_only_its_share_of_the_reads() {
        let fetcher = plain_http_fetcher(2, 1.0);
        let (slow, _slow) = hanging_endpoint().await;
        let (other, _other) = hanging_endpoint().await;
        let mut waiting = Vec::new();
        for workflow in ["w1", "w2"] {
            let (fetcher, (key, target)) = (fetcher.clone(), key_and_target(&slow, workflow));
            waiting.push(tokio::spawn(async move {
                fetcher
                    .fetch(&key, &target, Duration::ZERO, "ns")
                    .await
                    .is_some()
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (key, target) = key_and_target(&slow, "w3");
        let started = Instant::now();
        assert!(
            fetcher
                .fetch(&key, &target, Duration::ZERO, "ns")
                .await
                .is_none()
        );
        assert!(started.elapsed() < Duration::from_millis(100));
        // Another endpoint still gets its read under way (it hangs too, so it times out).
        let (key, target) = key_and_target(&other, "w1");
        let read = tokio::time::timeout(
            Duration::from_millis(300),
            fetcher.fetch(&key, &target, Duration::ZERO, "ns"),
        )
        .await;
        assert!(read.is_err(), "the other endpoint's read was not started");
        for w in waiting {
            w.abort();
        }
    }

    /// Alone at an endpoint, a namespace may use all of it; once another namespace asks it
    /// too, with half an endpoint each, a namespace whose reads hang holds two of the four,
    /// and the other namespace's read still starts at once.
    #[tokio::test]
    async fn one_namespace_holds_only_its_share_of_an_endpoint_it_shares() {
        let fetcher = plain_http_fetcher(4, 0.5);
        let (slow, _slow) = hanging_endpoint().await;
        assert!(!fetcher.tenants.shared(slow.as_str(), "busy"), "alone");
        assert!(fetcher.tenants.shared(slow.as_str(), "quiet"), "shared");
        let mut waiting = Vec::new();
        for workflow in ["w1", "w2"] {
            let (fetcher, (key, target)) = (fetcher.clone(), key_and_target(&slow, workflow));
            waiting.push(tokio::spawn(async move {
                fetcher.fetch(&key, &target, Duration::ZERO, "busy").await
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (key, target) = key_and_target(&slow, "w3");
        assert!(
            fetcher
                .fetch(&key, &target, Duration::ZERO, "busy")
                .await
                .is_none(),
            "the busy namespace went past its share"
        );
        let (key, target) = key_and_target(&slow, "w4");
        let read = tokio::time::timeout(
            Duration::from_millis(300),
            fetcher.fetch(&key, &target, Duration::ZERO, "quiet"),
        )
        .await;
        assert!(read.is_err(), "the quiet namespace's read was not started");
        for w in waiting {
            w.abort();
        }
    }

    #[test]
    fn a_share_is_at_least_one_of_everything() {
        assert_eq!(part(10, 0.5).get(), 5);
        assert_eq!(part(1, 0.5).get(), 1);
        assert_eq!(part(3, 0.01).get(), 1);
        let share = TenantShare::new(
            NonZeroU32::new(10).expect("10"),
            NonZeroU32::new(20).expect("20"),
            32,
            1.0,
        );
        assert!(share.limiter.is_none());
        assert_eq!(share.per_endpoint, 32);
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

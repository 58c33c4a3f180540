//! A scripted Kubernetes API server for tests of the reconciler's I/O shell (tests only):
//! a `kube::Client` over `tower_test`'s mock service, and a task that takes the requests in
//! the order the script names them, checks each (method, path, query, body) and answers it.
//! A request out of order, or one more than the script holds, fails the test.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use kube::Resource;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::cce::client::{CceClient, ClientConfig};
use crate::cce::iam::Exchanger;
use crate::crd::{UpgradeWorkflowWatch, UpgradeWorkflowWatchStatus};
use crate::credentials::accounts::Accounts;
use crate::credentials::defaults::Defaults;
use crate::credentials::identity::{ExchangeSettings, WorkloadIdentities};
use crate::credentials::renewal::Clock;
use crate::credentials::secrets::CredentialSources;
use crate::duration::Backoff;
use crate::metrics::Metrics;
use crate::reconciler::apply::FIELD_MANAGER;
use crate::reconciler::context::Context;
use crate::reconciler::core::schedule::PollPolicy;
use crate::reconciler::fetch::Fetcher;
use crate::reconciler::publisher::EventPublisher;
use crate::runtime::leader::Leadership;

pub const NAMESPACE: &str = "ns";
pub const NAME: &str = "w";
pub const UID: &str = "uid-1";

type Check = Box<dyn FnOnce(&Value) + Send>;

/// One request the shell must send next, and the answer it gets.
pub struct Exchange {
    method: Method,
    path: String,
    /// `key=value` pairs the query must hold.
    query: Vec<String>,
    content_type: Option<&'static str>,
    check: Check,
    status: StatusCode,
    answer: Value,
}

impl Exchange {
    fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            content_type: None,
            check: Box::new(|_| {}),
            status: StatusCode::OK,
            answer: json!({}),
        }
    }

    /// The creation of an Event in the watch's namespace.
    pub fn post_event() -> Self {
        Self::new(
            Method::POST,
            format!("/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events"),
        )
    }

    /// The creation of the Event named `name`.
    pub fn post_event_named(name: &str) -> Self {
        let name = name.to_string();
        Self::post_event().checking(move |event| {
            assert_eq!(event["metadata"]["name"], name.as_str(), "the Event's name");
        })
    }

    /// A server-side apply of the watch's status as the operator's field manager, forced.
    pub fn apply_status() -> Self {
        let mut exchange = Self::new(Method::PATCH, format!("{}/status", watch_path()));
        exchange.query = vec![format!("fieldManager={FIELD_MANAGER}"), "force=true".into()];
        exchange.content_type = Some("application/apply-patch+yaml");
        exchange.checking(|patch| {
            assert_eq!(
                patch["kind"], "UpgradeWorkflowWatch",
                "an apply patch names its kind"
            );
            assert!(patch["status"].is_object(), "the patch carries a status");
        })
    }

    /// A read of the watch's status subresource.
    pub fn get_status() -> Self {
        Self::new(Method::GET, format!("{}/status", watch_path()))
    }

    /// Adds a check of the request's JSON body (run after the checks already set).
    pub fn checking(mut self, check: impl FnOnce(&Value) + Send + 'static) -> Self {
        let before = std::mem::replace(&mut self.check, Box::new(|_| {}));
        self.check = Box::new(move |body| {
            before(body);
            check(body);
        });
        self
    }

    pub fn answer(mut self, status: u16, answer: Value) -> Self {
        self.status = StatusCode::from_u16(status).expect("a status code");
        self.answer = answer;
        self
    }

    /// Answers with a Kubernetes `Status` saying why the request failed.
    pub fn refuse(self, code: u16, reason: &str, message: &str) -> Self {
        self.answer(
            code,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "reason": reason, "message": message, "code": code,
            }),
        )
    }

    fn play(self, index: usize, request: &Parts, body: &[u8]) -> Response<Body> {
        let (method, uri) = (&request.method, &request.uri);
        let seen = format!("{method} {uri}");
        // Shown only when the test fails: the requests up to the one that broke the script.
        eprintln!("request {index}: {seen}");
        assert_eq!(
            (method, uri.path()),
            (&self.method, self.path.as_str()),
            "request {index} of the script: got {seen}"
        );
        let query: Vec<&str> = uri.query().unwrap_or_default().split('&').collect();
        for pair in &self.query {
            assert!(query.contains(&pair.as_str()), "{seen} lacks {pair}");
        }
        if let Some(expected) = self.content_type {
            let sent = request.headers.get(http::header::CONTENT_TYPE);
            assert_eq!(sent.and_then(|v| v.to_str().ok()), Some(expected), "{seen}");
        }
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body).expect("a JSON body")
        };
        (self.check)(&body);
        Response::builder()
            .status(self.status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&self.answer).expect("JSON")))
            .expect("a response")
    }
}

/// The server side of a mock client, playing its script in a task of its own.
pub struct ApiServer {
    task: JoinHandle<()>,
}

/// A client whose requests `script` must name in order.
pub fn serve(script: Vec<Exchange>) -> (kube::Client, ApiServer) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        for (index, exchange) in script.into_iter().enumerate() {
            let expected = format!("{} {}", exchange.method, exchange.path);
            let Some((request, reply)) = handle.next_request().await else {
                panic!("request {index} of the script never came: {expected}");
            };
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await.expect("the request's body");
            let response = exchange.play(index, &parts, &body);
            reply.send_response(response);
        }
        if let Some((request, _)) = handle.next_request().await {
            panic!(
                "a request the script does not hold: {} {}",
                request.method(),
                request.uri()
            );
        }
    });
    (kube::Client::new(service, "default"), ApiServer { task })
}

impl ApiServer {
    /// Fails unless the whole script was played and nothing more was asked. `clients` is
    /// everything still holding the client: only once it is gone can the server tell that
    /// no further request will come.
    pub async fn finish(self, clients: impl Sized) {
        drop(clients);
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(failed)) => std::panic::resume_unwind(failed.into_panic()),
            Err(_) => panic!("the script did not end: is a client still held?"),
        }
    }
}

/// A Context over `client` with nothing configured: no default credentials, no endpoint
/// allowed beyond the public ones, always the leader.
pub fn context(client: kube::Client) -> Context {
    let config = ClientConfig::default();
    let exchanger = Exchanger::new(config.clone()).expect("an IAM client");
    let clock: Clock = Arc::new(jiff::Timestamp::now);
    let backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(60),
    };
    let defaults = Defaults::new(None, exchanger.clone(), 900, clock.clone(), backoff);
    let identities = WorkloadIdentities::new(
        client.clone(),
        exchanger,
        config.policy.clone(),
        ExchangeSettings {
            iam_endpoint: None,
            audiences: Vec::new(),
            operator: ("operator".into(), "cce-upgrade-watch".into()),
            api_server: kube::Config::new("https://127.0.0.1:1".parse().expect("a URL")),
            duration_seconds: 900,
            backoff,
        },
        clock,
    );
    let (_, synced) = tokio::sync::watch::channel(true);
    let credentials = CredentialSources::new(
        client.clone(),
        Vec::new(),
        defaults,
        identities,
        synced.clone(),
    );
    let accounts = Accounts {
        namespaced: Vec::new(),
        cluster: kube::runtime::reflector::store().0,
        namespaces: kube::runtime::reflector::store().0,
        operator_namespace: "operator".into(),
        cluster_accounts: true,
        synced,
    };
    let metrics = Metrics::default();
    let rate = NonZeroU32::new(10).expect("non-zero");
    let fetcher = Fetcher::new(
        CceClient::new(config).expect("a CCE client"),
        rate,
        rate,
        4,
        1.0,
        metrics.clone(),
    );
    Context::new(
        client.clone(),
        EventPublisher::new(client, "cce-upgrade-watch", "test-instance"),
        fetcher,
        accounts,
        credentials,
        PollPolicy::default(),
        Duration::from_secs(300),
        metrics,
        Leadership::always(),
    )
}

/// The watch the scripts are about, at resourceVersion `version`, without a status.
pub fn watch(version: &str) -> UpgradeWorkflowWatch {
    let mut watch = UpgradeWorkflowWatch::new(
        NAME,
        serde_json::from_value(json!({
            "accountRef": {"name": "a"}, "clusterID": "c"
        }))
        .expect("a spec"),
    );
    watch.metadata.namespace = Some(NAMESPACE.into());
    watch.metadata.uid = Some(UID.into());
    watch.metadata.resource_version = Some(version.into());
    watch.metadata.generation = Some(1);
    watch
}

/// The API server's answer to a status write or read: the watch with `status`, at
/// `version`.
pub fn stored(status: &UpgradeWorkflowWatchStatus, version: &str) -> Value {
    let mut object = watch(version);
    object.status = Some(Box::new(status.clone()));
    serde_json::to_value(&object).expect("JSON")
}

fn watch_path() -> String {
    let url = UpgradeWorkflowWatch::url_path(&(), Some(NAMESPACE));
    format!("{url}/{NAME}")
}

/// The resourceVersion precondition an apply patch carries, if any.
pub fn precondition(patch: &Value) -> Option<&str> {
    patch["metadata"]["resourceVersion"].as_str()
}

//! The simulator's IAM wired to the test control plane: an identity provider whose keys
//! are the API server's own (`/openid/v1/jwks`, read with the plane's CA and a
//! ServiceAccount token, as any ServiceAccount may), conversion rules for the
//! ServiceAccounts a test makes, and real ServiceAccount tokens from the TokenRequest API.
//!
//! ```ignore
//! let iam = PlaneIam::new(&client).await;
//! let sim = Sim::https().iam(&iam).start();          // keep `iam` alive as long as `sim`
//! service_account(&client, &ns, "watcher").await;
//! sim.add_iam_rule(&rule_for(&ns, "watcher")).await;
//! let jwt = sa_token(&client, &ns, "watcher", AUDIENCE, 600).await;
//! // POST {sim.url}/v3.0/OS-AUTH/id-token/tokens with X-Idp-Id: PROVIDER …
//! ```

use std::path::PathBuf;

use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use cce_upgrade_watch::cce::Credentials;
use cce_upgrade_watch::sim::builtin;
use secrecy::SecretString;

use super::namespace::create_namespace;
use super::sim::{Launch, Sim};

/// The identity provider id (`X-Idp-Id`, `HUAWEICLOUD_SDK_IDP_ID`).
pub const PROVIDER: &str = "cce-plane";
/// The plane's ServiceAccount issuer (hack/control-plane.sh).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The client id the provider accepts: the audience tokens are requested for.
pub const AUDIENCE: &str = "cce-upgrade-watch";
/// The user a rule made by [`rule_for`] converts to.
pub const USER: &str = "cce-watchers";
/// Where the JWKS reader lives (shared by every test; created when missing).
const READER_NAMESPACE: &str = "cce-sim-iam";
const READER: &str = "jwks-reader";

/// A ServiceAccount's `sub`.
pub fn subject(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A conversion rule of [`PROVIDER`] for one ServiceAccount, to [`USER`] in the built-in
/// project.
pub fn rule_for(namespace: &str, name: &str) -> Value {
    json!({"provider": PROVIDER, "sub": subject(namespace, name), "user": USER,
        "projectIDs": [builtin::PROJECT_ID]})
}

/// Creates the ServiceAccount `name` in `namespace` (nothing if it exists).
pub async fn service_account(client: &Client, namespace: &str, name: &str) {
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("service account");
    match Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &sa)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create ServiceAccount {namespace}/{name}: {e}"),
    }
}

/// A token the API server issues for the ServiceAccount through the TokenRequest API, for
/// `audience`, valid `seconds` (the API server's minimum is 600).
pub async fn sa_token(
    client: &Client,
    namespace: &str,
    name: &str,
    audience: &str,
    seconds: i64,
) -> String {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![audience.to_string()]),
            expiration_seconds: Some(seconds),
            bound_object_ref: None,
        }),
        ..TokenRequest::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"))
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("TokenRequest for {namespace}/{name} returned no token"))
}

/// The shared plane's API server URL and CA (PEM), from KUBECONFIG.
fn plane_server() -> (String, Vec<u8>) {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let kc: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).expect("kubeconfig"))
        .expect("parse kubeconfig");
    let cluster = &kc["clusters"][0]["cluster"];
    let server = cluster["server"].as_str().expect("server").to_string();
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            cluster["certificate-authority-data"]
                .as_str()
                .expect("CA data"),
        )
        .expect("CA base64");
    (server, ca)
}

/// The files that wire the simulator's IAM to the plane; keep it alive while the
/// simulator runs (it re-reads the token file whenever it reads the keys).
pub struct PlaneIam {
    pub config: PathBuf,
    /// The JWKS URL of the plane's API server, the CA that makes it trusted and the token
    /// file it is read with.
    pub jwks_url: String,
    pub ca_file: PathBuf,
    pub token_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl PlaneIam {
    /// [`PROVIDER`] for the plane's issuer and [`AUDIENCE`], reading the API server's keys;
    /// no rule yet (add them with [`Sim::add_iam_rule`] or [`PlaneIam::with`]).
    pub async fn new(client: &Client) -> PlaneIam {
        PlaneIam::with(client, json!({})).await
    }

    /// As [`PlaneIam::new`], with `extra` merged into the configuration (`rules`,
    /// `lifetimes`).
    pub async fn with(client: &Client, extra: Value) -> PlaneIam {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, ca) = plane_server();
        let ca_file = dir.path().join("plane-ca.pem");
        std::fs::write(&ca_file, ca).expect("write CA");
        create_namespace(client, READER_NAMESPACE).await;
        service_account(client, READER_NAMESPACE, READER).await;
        let token_file = dir.path().join("jwks-reader.token");
        // The API server accepts tokens for its own issuer (its default API audience).
        let token = sa_token(client, READER_NAMESPACE, READER, ISSUER, 86_400).await;
        std::fs::write(&token_file, token).expect("write token");
        let jwks_url = format!("{}/openid/v1/jwks", server.trim_end_matches('/'));
        let mut config = json!({
            "providers": [{
                "id": PROVIDER,
                "issuer": ISSUER,
                "clientIds": [AUDIENCE],
                "jwks": {"url": jwks_url, "caFile": ca_file, "tokenFile": token_file},
            }],
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        let path = dir.path().join("iam.json");
        std::fs::write(&path, config.to_string()).expect("write IAM config");
        PlaneIam {
            config: path,
            jwks_url,
            ca_file,
            token_file,
            _dir: dir,
        }
    }
}

/// What most IAM tests start from: the plane's client, a fresh namespace with the
/// ServiceAccount [`WATCHER`] and a rule for it, and an HTTPS simulator playing the
/// `success` scenario with IAM wired to the plane.
pub struct IamSetup {
    pub client: Client,
    pub ns: String,
    pub sim: Sim,
    /// Kept for the simulator's sake (it reads the keys with these files).
    pub iam: PlaneIam,
}

/// The ServiceAccount [`IamSetup`] makes and maps.
pub const WATCHER: &str = "watcher";

impl IamSetup {
    /// Starts it for `test`; `launch` adds to the simulator's command line.
    pub async fn start(test: &str, launch: impl FnOnce(Launch) -> Launch) -> IamSetup {
        let client = super::client().await;
        let ns = super::namespace(&client, test).await;
        let iam = PlaneIam::new(&client).await;
        let sim = launch(Sim::https().scenario(builtin::Builtin::Success).iam(&iam)).start();
        service_account(&client, &ns, WATCHER).await;
        sim.add_iam_rule(&rule_for(&ns, WATCHER)).await;
        IamSetup {
            client,
            ns,
            sim,
            iam,
        }
    }
}

impl Launch {
    /// Serves IAM as `iam` configures it (`--iam-config`).
    pub fn iam(self, iam: &PlaneIam) -> Launch {
        let path = iam.config.to_string_lossy().into_owned();
        self.args(&["--iam-config", &path])
    }
}

impl Sim {
    /// The IAM (and STS) endpoint: the simulator's CCE URL (`HUAWEICLOUD_SDK_IAM_ENDPOINT`).
    pub fn iam_endpoint(&self) -> &str {
        &self.url
    }

    /// The pod-identity agent's URL (`HC_CONTAINER_CREDENTIALS_FULL_URI`).
    pub fn pod_identity_uri(&self) -> String {
        format!("{}/v1/pod-identity/credentials", self.url)
    }

    /// Adds a conversion rule (or a list of them).
    pub async fn add_iam_rule(&self, rule: &Value) {
        self.post("/_sim/iam/rules", rule.clone()).await;
    }

    /// What IAM issued: `{"credentials": [...], "tokens": [...]}`, without secrets.
    pub async fn iam_issued(&self) -> Value {
        self.admin_get("/_sim/iam/issued").await
    }

    /// Moves IAM's clock `seconds` scenario seconds ahead.
    pub async fn iam_advance(&self, seconds: f64) {
        self.post("/_sim/iam/advance", json!({"seconds": seconds}))
            .await;
    }

    /// Expires one issued access key now, or everything IAM issued.
    pub async fn iam_expire(&self, access_key: Option<&str>) {
        let body = match access_key {
            Some(ak) => json!({"accessKey": ak}),
            None => json!({}),
        };
        self.post("/_sim/iam/expire", body).await;
    }

    /// Replaces IAM's lifetimes (`{token?, credentialCap?, podIdentity?}`).
    pub async fn iam_lifetimes(&self, lifetimes: Value) {
        self.put("/_sim/iam/lifetimes", lifetimes).await;
    }
}

/// An answer of the simulator's IAM.
#[derive(Debug)]
pub struct IamAnswer {
    pub status: u16,
    /// `X-Subject-Token` (the unscoped token of `id-token/tokens`).
    pub subject_token: Option<String>,
    pub body: Value,
}

impl Sim {
    /// POSTs `body` (raw bytes) to the IAM path `path` with `headers`, over TLS when the
    /// simulator serves it.
    pub async fn iam_post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> IamAnswer {
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).expect("read the simulator's CA");
            builder =
                builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA PEM"));
        }
        let mut req = builder
            .build()
            .expect("client")
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json;charset=UTF-8")
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("IAM request");
        let status = resp.status().as_u16();
        let subject_token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await.expect("IAM body");
        IamAnswer {
            status,
            subject_token,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    pub async fn iam_post(&self, path: &str, headers: &[(&str, &str)], body: Value) -> IamAnswer {
        self.iam_post_raw(path, headers, body.to_string().into_bytes())
            .await
    }

    /// `id-token/tokens` with `jwt` for the identity provider `idp`, as the SDK calls it.
    pub async fn federate_with(&self, idp: &str, jwt: &str) -> IamAnswer {
        self.iam_post(
            "/v3.0/OS-AUTH/id-token/tokens",
            &[("X-Idp-Id", idp)],
            json!({"auth": {"id_token": {"id": jwt}}}),
        )
        .await
    }

    /// `securitytokens` for the unscoped `token`, as the SDK calls it.
    pub async fn security_token(&self, token: &str, duration_seconds: u64) -> IamAnswer {
        self.iam_post(
            "/v3.0/OS-CREDENTIAL/securitytokens",
            &[],
            json!({"auth": {"identity": {"methods": ["token"],
                "token": {"id": token, "duration_seconds": duration_seconds}}}}),
        )
        .await
    }

    /// The SDK's whole federation for `jwt` with [`PROVIDER`]: temporary keys for CCE, and
    /// their access key. Panics when IAM refuses.
    pub async fn federated_keys(&self, jwt: &str, duration_seconds: u64) -> (Credentials, String) {
        let unscoped = self.federate_with(PROVIDER, jwt).await;
        assert_eq!(unscoped.status, 201, "id-token/tokens: {:?}", unscoped.body);
        let token = unscoped.subject_token.expect("X-Subject-Token");
        let keys = self.security_token(&token, duration_seconds).await;
        assert_eq!(keys.status, 201, "securitytokens: {:?}", keys.body);
        keys.temporary_keys()
    }
}

impl IamAnswer {
    /// The temporary keys of an answer and their access key: IAM's `credential` object
    /// (`securitytokens`) or STS's `credentials` (STS, the pod-identity agent).
    pub fn temporary_keys(&self) -> (Credentials, String) {
        let (object, names) = match self.body.get("credential") {
            Some(c) => (c, ["access", "secret", "securitytoken"]),
            None => (
                &self.body["credentials"],
                ["access_key_id", "secret_access_key", "security_token"],
            ),
        };
        let [access, secret, token] = names.map(|k| {
            object[k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k} in {:?}", self.body))
                .to_string()
        });
        (
            Credentials::AkSk {
                access_key: access.clone(),
                secret_key: SecretString::from(secret),
                security_token: Some(SecretString::from(token)),
            },
            access,
        )
    }
}

//! Who may spend which identity, end to end, acting as the people involved: tenants who may
//! create watches and nothing else (impersonated users with a Role of their namespace), and
//! the administrator's cluster-scoped accounts. The operator holds default credentials in
//! every test here, so a watch that is refused was refused by the account rules, not for a
//! lack of credentials.

use crate::common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use cce_upgrade_watch::crd::{CceAccount, ClusterCceAccount, UpgradeWorkflowWatch};
use cce_upgrade_watch::sim::builtin::{self, Builtin};
use common::iam::{AUDIENCE, ISSUER, PlaneIam, rule_for, service_account};
use common::operator::Operator;
use common::plane::PrivatePlane;
use common::sim::{Sim, copy};
use common::watch::{account_watch, apply_account, defaults_account, identity_account};
use common::{cond, synced_message, wait_watch};

/// The operator's default credentials: the simulator's built-in keys, from its environment.
const DEFAULT_KEYS: [(&str, &str); 2] = [
    ("CLOUD_SDK_AK", builtin::ACCESS_KEY),
    ("CLOUD_SDK_SK", builtin::SECRET_KEY),
];

/// A client acting as `user`, who may only create, read and delete watches in `ns` (no
/// Secrets, no ServiceAccount tokens, no accounts): the watch author of the trust model. On
/// the plane of `kubeconfig`, else the shared one.
async fn watch_author(
    admin: &Client,
    kubeconfig: Option<&std::path::Path>,
    ns: &str,
    user: &str,
) -> Client {
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "watch-author", "namespace": ns},
        "rules": [{"apiGroups": ["cce.upgradewatch.io"], "resources": ["upgradeworkflowwatches"],
                   "verbs": ["create", "get", "list", "watch", "delete"]}]
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": format!("watch-author-{user}"), "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "watch-author"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
    });
    for (kind, object) in [("roles", role), ("rolebindings", binding)] {
        let resource = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", ""),
            kind,
        );
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(admin.clone(), ns, &resource);
        let name = object["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        api.patch(
            &name,
            &PatchParams::apply("e2e-tests").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {kind} {name}: {e}"));
    }
    let mut config = match kubeconfig {
        Some(path) => kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(path).expect("read kubeconfig"),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("kubeconfig"),
        None => kube::Config::infer().await.expect("kubeconfig"),
    };
    config.auth_info.impersonate = Some(user.to_string());
    Client::try_from(config).expect("impersonating client")
}

fn synced(w: &UpgradeWorkflowWatch) -> Option<(String, String)> {
    cond(w, "Synced")
}

/// The requests the simulator saw for `workflow`, as (access key, status).
async fn calls_for(sim: &Sim, workflow: &str) -> Vec<(String, i64)> {
    sim.requests_for(workflow)
        .await
        .iter()
        .map(|r| {
            (
                r["credential"].as_str().unwrap_or_default().to_string(),
                r["status"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

/// Team A and team B each have an account with keys of their own. As A's watch author, a
/// watch may name only A's accounts: B's account name, the administrator's account that
/// does not list A, and no account at all serve nothing, although the operator holds
/// default credentials; B's watch is served with B's keys only. Each status speaks of its
/// own namespace only.
#[tokio::test]
async fn two_teams_with_their_own_accounts_never_spend_each_others_identity() {
    let (first, second) = (copy(Builtin::Success, 0), copy(Builtin::Success, 1));
    let admin = common::client().await;
    common::install_crd(&admin).await;
    let ns_a = common::namespace(&admin, "team-a").await;
    let ns_b = common::namespace(&admin, "team-b").await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .args(&["--workflows", "2"])
        .frozen()
        .start();
    let keys = [
        (
            "TEAMAAK0000000000001",
            "teamASecretKey00000000000000000000000001",
        ),
        (
            "TEAMBAK0000000000001",
            "teamBSecretKey00000000000000000000000001",
        ),
    ];
    sim.post(
        "/_sim/credentials",
        json!(keys
            .iter()
            .map(|(ak, sk)| json!({"accessKey": ak, "secretKey": sk, "projectID": builtin::PROJECT_ID}))
            .collect::<Vec<_>>()),
    )
    .await;
    common::sim_secret(&admin, &ns_a, "keys-a", keys[0].0, keys[0].1).await;
    common::sim_secret(&admin, &ns_b, "keys-b", keys[1].0, keys[1].1).await;
    let account_a = common::sim_account(&admin, &ns_a, &sim, "keys-a").await;
    let account_b = common::sim_account(&admin, &ns_b, &sim, "keys-b").await;
    let shared = format!("only-b-{}", &ns_b[ns_b.len() - 8..]);
    defaults_account(&admin, &sim, &shared, &[&ns_b]).await;
    let namespaces = format!("{ns_a},{ns_b}");
    let _op = Operator::start_with_env(&namespaces, &sim, &[], &DEFAULT_KEYS);

    let alice = watch_author(&admin, None, &ns_a, "alice").await;
    let as_alice = |name: &'static str, account: Value| {
        let alice = alice.clone();
        let ns = ns_a.clone();
        let cluster = second.cluster.clone();
        let workflow = second.workflow.clone();
        async move {
            account_watch(&alice, &ns, name, &cluster, Some(&workflow), account).await;
        }
    };
    // Alice aims at team B's upgrade every way she can name an identity.
    as_alice("b-account", json!({"name": account_b})).await;
    as_alice(
        "b-cluster-account",
        json!({"kind": "ClusterCCEAccount", "name": shared}),
    )
    .await;
    // Her own account, B's cluster: A's keys, which is A's business with IAM.
    as_alice("own", json!({"name": account_a})).await;
    account_watch(
        &admin,
        &ns_b,
        "b",
        &second.cluster,
        Some(&second.workflow),
        json!({"name": account_b}),
    )
    .await;

    let missing = wait_watch(&alice, &ns_a, "b-account", 30, "AccountMissing", |w| {
        synced(w).is_some_and(|c| c.1 == "AccountMissing")
    })
    .await;
    assert_eq!(
        synced_message(&missing),
        format!("CCEAccount {ns_a}/{account_b} does not exist")
    );
    let not_listed = wait_watch(
        &alice,
        &ns_a,
        "b-cluster-account",
        30,
        "AccountNotAllowed",
        |w| synced(w).is_some_and(|c| c.1 == "AccountNotAllowed"),
    )
    .await;
    let message = synced_message(&not_listed);
    assert!(
        message.contains(&format!("does not list namespace {ns_a}")),
        "{message}"
    );
    assert!(
        !message.contains(&ns_b),
        "B's namespace named to A: {message}"
    );
    wait_watch(&admin, &ns_b, "b", 30, "B synced", |w| {
        synced(w).is_some_and(|c| c.0 == "True")
    })
    .await;
    wait_watch(&alice, &ns_a, "own", 30, "A's own account synced", |w| {
        synced(w).is_some_and(|c| c.0 == "True")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let calls = calls_for(&sim, &second.workflow).await;
    assert!(!calls.is_empty());
    for (key, status) in &calls {
        assert!(
            key == keys[0].0 || key == keys[1].0,
            "a request for B's workflow was signed with {key}, not a team's own keys"
        );
        assert_eq!(*status, 200);
    }
    assert!(
        !calls.iter().any(|(k, _)| k == builtin::ACCESS_KEY),
        "the operator's default credentials were spent on a tenant's watch"
    );
    // B's account counts B's one watch; A's watches that named it are not B's users.
    let b = wait_account(
        Api::<CceAccount>::namespaced(admin.clone(), &ns_b),
        &account_b,
        |a| watches(a) == Some(1),
    )
    .await;
    assert_eq!(ready(&b), Some(("True".into(), "CredentialsReady".into())));
    assert!(calls_for(&sim, &first.workflow).await.is_empty());
}

/// The administrator's account with the operator's defaults serves the namespaces it lists,
/// by name or by label, and the clusters it lists; a namespace labelled later is served from
/// then on; one it does not list is refused without a single CCE request. On a private
/// plane, with an operator serving every namespace: only such an operator writes a
/// ClusterCCEAccount's status (its count of watches is the whole cluster's).
#[tokio::test]
async fn a_cluster_account_serves_only_the_namespaces_and_clusters_it_lists() {
    let (first, second) = (copy(Builtin::Success, 0), copy(Builtin::Success, 1));
    let plane = PrivatePlane::up("cce-uw-cluster-account-plane-");
    let admin = plane.client().await;
    common::install_crd(&admin).await;
    let named = common::namespace(&admin, "listed").await;
    let labelled = common::namespace(&admin, "labelled").await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .args(&["--workflows", "2"])
        .frozen()
        .start();
    let account = format!("shared-{}", &named[named.len() - 8..]);
    let selector_value = format!("shared-{}", &labelled[labelled.len() - 8..]);
    apply_account(
        &admin,
        json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "ClusterCCEAccount",
            "metadata": {"name": account},
            "spec": {
                "endpoint": sim.url, "projectID": builtin::PROJECT_ID,
                "credentials": {"operatorDefaults": {}},
                "conditions": [
                    {"namespaces": [named]},
                    {"namespaceSelector": {"matchLabels": {"cce-access": selector_value}}}
                ],
                "clusterIDs": [first.cluster],
            }
        }),
    )
    .await;
    let kubeconfig = plane.kubeconfig();
    let mut env = DEFAULT_KEYS.to_vec();
    env.push(("KUBECONFIG", kubeconfig.to_str().expect("utf-8")));
    let op = Operator::start_with_env("", &sim, &[], &env);
    let reference = json!({"kind": "ClusterCCEAccount", "name": account});
    for ns in [&named, &labelled] {
        let author = watch_author(&admin, Some(&kubeconfig), ns, "author").await;
        account_watch(
            &author,
            ns,
            "w",
            &first.cluster,
            Some(&first.workflow),
            reference.clone(),
        )
        .await;
    }
    account_watch(
        &admin,
        &named,
        "other-cluster",
        &second.cluster,
        Some(&second.workflow),
        reference.clone(),
    )
    .await;
    wait_watch(&admin, &named, "w", 30, "named namespace served", |w| {
        synced(w).is_some_and(|c| c.0 == "True")
    })
    .await;
    let refused = wait_watch(&admin, &labelled, "w", 30, "AccountNotAllowed", |w| {
        synced(w).is_some_and(|c| c.1 == "AccountNotAllowed")
    })
    .await;
    assert_eq!(cond(&refused, "Stalled").map(|c| c.0), Some("True".into()));
    let cluster = wait_watch(
        &admin,
        &named,
        "other-cluster",
        30,
        "cluster refused",
        |w| synced(w).is_some_and(|c| c.1 == "AccountNotAllowed"),
    )
    .await;
    assert!(
        synced_message(&cluster).contains(&format!("does not serve cluster {}", second.cluster)),
        "{}",
        synced_message(&cluster)
    );
    assert!(calls_for(&sim, &second.workflow).await.is_empty());
    let before = calls_for(&sim, &first.workflow).await.len();

    // The administrator labels the second namespace: its watch is served, without waiting
    // for a retry.
    Api::<Namespace>::all(admin.clone())
        .patch(
            &labelled,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"cce-access": selector_value}}})),
        )
        .await
        .expect("label namespace");
    wait_watch(&admin, &labelled, "w", 4, "served once labelled", |w| {
        synced(w).is_some_and(|c| c.0 == "True")
    })
    .await;
    assert!(calls_for(&sim, &first.workflow).await.len() >= before);
    let status = wait_account(
        Api::<ClusterCceAccount>::all(admin.clone()),
        &account,
        |a| watches(a) == Some(3),
    )
    .await;
    assert_eq!(
        ready(&status),
        Some(("True".into(), "CredentialsReady".into()))
    );
    drop(op);
    plane.down();
}

/// A Secret that is not labelled as credentials (an application's, with a `token` key) and a
/// ServiceAccount-token Secret that is labelled are both refused, without a request to the
/// endpoint the account names and without a word about the keys they hold; the account's
/// status says the same to its namespace's owner.
#[tokio::test]
async fn unmarked_and_service_account_token_secrets_are_never_credentials() {
    let success = copy(Builtin::Success, 0);
    let (admin, ns) = common::setup("unmarked-secrets").await;
    let sim = Sim::https().scenario(Builtin::Success).frozen().start();
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    let app: Secret = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "stringData": {"token": builtin::TOKEN, "database-password": "hunter2-database"}
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &app)
        .await
        .expect("create");
    common::secrets::forbid_in_logs("hunter2-database");
    service_account(&admin, &ns, "robot").await;
    let sa_token: Secret = serde_json::from_value(json!({
        "metadata": {"name": "robot-token",
                     "labels": {"cce.upgradewatch.io/credentials": "true"},
                     "annotations": {"kubernetes.io/service-account.name": "robot"}},
        "type": "kubernetes.io/service-account-token"
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &sa_token)
        .await
        .expect("create");
    let _op = Operator::start(&ns, &sim, &[]);
    for secret in ["app", "robot-token"] {
        apply_account(
            &admin,
            json!({
                "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "CCEAccount",
                "metadata": {"name": secret, "namespace": ns},
                "spec": {"endpoint": sim.url, "projectID": builtin::PROJECT_ID,
                         "credentials": {"secretRef": {"name": secret}}}
            }),
        )
        .await;
        account_watch(
            &admin,
            &ns,
            secret,
            &success.cluster,
            Some(&success.workflow),
            json!({"name": secret}),
        )
        .await;
    }
    for (secret, why) in [
        (
            "app",
            "no Secret of that name is labelled cce.upgradewatch.io/credentials=true",
        ),
        ("robot-token", "a ServiceAccount token Secret never is"),
    ] {
        let refused = wait_watch(&admin, &ns, secret, 30, "CredentialsMissing", |w| {
            synced(w).is_some_and(|c| c.1 == "CredentialsMissing")
        })
        .await;
        let message = synced_message(&refused);
        assert_eq!(
            message,
            format!(
                "CCEAccount {ns}/{secret}: Secret {ns}/{secret} is not usable as CCE credentials: {why}"
            )
        );
        let account = wait_account(
            Api::<CceAccount>::namespaced(admin.clone(), &ns),
            secret,
            |a| ready(a).is_some(),
        )
        .await;
        assert_eq!(
            ready(&account).map(|r| r.1),
            Some("CredentialsMissing".into())
        );
        let said = serde_json::to_string(&account.status).expect("json");
        assert!(!said.contains("database-password") && !said.contains("hunter2"));
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stats = sim.admin_get("/_sim/stats").await;
    assert_eq!(stats["total"], 0, "the simulator was called: {stats}");
}

/// The administrator's audience is the only one a token is minted for, and a token the API
/// server accepts is dropped before it reaches IAM: with the plane's own issuer as the
/// operator's audience, no federation is ever attempted; an account asking for another
/// audience is refused as well.
#[tokio::test]
async fn a_token_the_api_server_accepts_never_leaves_the_operator() {
    let success = copy(Builtin::Success, 0);
    let (admin, ns) = common::setup("api-audience").await;
    let iam = PlaneIam::new(&admin).await;
    let sim = Sim::https()
        .scenario(Builtin::Success)
        .frozen()
        .iam(&iam)
        .start();
    service_account(&admin, &ns, "watcher").await;
    sim.add_iam_rule(&rule_for(&ns, "watcher")).await;
    let _op = Operator::start(
        &ns,
        &sim,
        &[
            "--iam-endpoint",
            sim.iam_endpoint(),
            "--token-audience",
            ISSUER,
        ],
    );
    identity_account(&admin, &ns, &sim, "kube-audience", "watcher").await;
    account_watch(
        &admin,
        &ns,
        "kube-audience",
        &success.cluster,
        Some(&success.workflow),
        json!({"name": "kube-audience"}),
    )
    .await;
    let refused = wait_watch(
        &admin,
        &ns,
        "kube-audience",
        30,
        "AudienceNotAllowed",
        |w| synced(w).is_some_and(|c| c.1 == "AudienceNotAllowed"),
    )
    .await;
    assert!(
        synced_message(&refused).contains("the Kubernetes API server accepts tokens with audience"),
        "{}",
        synced_message(&refused)
    );
    apply_account(
        &admin,
        json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "CCEAccount",
            "metadata": {"name": "own-audience", "namespace": ns},
            "spec": {"endpoint": sim.url, "projectID": builtin::PROJECT_ID,
                     "credentials": {"workloadIdentity": {
                        "serviceAccountName": "watcher",
                        "identityProviderID": common::iam::PROVIDER,
                        "audience": AUDIENCE}}}
        }),
    )
    .await;
    account_watch(
        &admin,
        &ns,
        "own-audience",
        &success.cluster,
        Some(&success.workflow),
        json!({"name": "own-audience"}),
    )
    .await;
    let chosen = wait_watch(&admin, &ns, "own-audience", 30, "AudienceNotAllowed", |w| {
        synced(w).is_some_and(|c| c.1 == "AudienceNotAllowed")
    })
    .await;
    assert!(
        synced_message(&chosen).contains("is not one the operator's administrator allowed"),
        "{}",
        synced_message(&chosen)
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let exchanges = sim.requests("route=iam-id-token&limit=1000").await;
    assert!(exchanges.is_empty(), "IAM was sent a token: {exchanges:#?}");
    // The ServiceAccount itself is untouched: nothing was created for it.
    let sa = Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
        .get("watcher")
        .await
        .expect("ServiceAccount");
    assert!(sa.secrets.is_none());
}

fn watches<K: AccountStatusOf>(account: &K) -> Option<u32> {
    account.status_of().and_then(|s| s.watches)
}

fn ready<K: AccountStatusOf>(account: &K) -> Option<(String, String)> {
    account
        .status_of()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// The status of either account kind.
trait AccountStatusOf {
    fn status_of(&self) -> Option<&cce_upgrade_watch::crd::AccountStatus>;
}

impl AccountStatusOf for CceAccount {
    fn status_of(&self) -> Option<&cce_upgrade_watch::crd::AccountStatus> {
        self.status.as_ref()
    }
}

impl AccountStatusOf for ClusterCceAccount {
    fn status_of(&self) -> Option<&cce_upgrade_watch::crd::AccountStatus> {
        self.status.as_ref()
    }
}

/// Reads an account through `api` until `done` holds, for up to 90 s (accounts are checked
/// and counted every minute).
async fn wait_account<K>(api: Api<K>, name: &str, done: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + AccountStatusOf,
{
    common::eventually::eventually(
        &format!("account {name}"),
        Duration::from_secs(90),
        common::eventually::KUBE_POLL,
        || async {
            let account = api.get(name).await.expect("get account");
            if done(&account) {
                Ok(account)
            } else {
                Err(format!("{:?}", account.status_of()))
            }
        },
    )
    .await
}

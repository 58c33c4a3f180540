//! UpgradeWatchSets end to end: the simulator's `fleet` scenario (clusters that appear,
//! upgrade with and without a workflow, fail and go), the operator listing it every second
//! (`--set-list-interval`, which the schema's minute would not allow a set), and the watches
//! it generates in the real API server. The plane has no garbage collector, so deleting a
//! set is tested in the node suite, where Kubernetes' own deletes the set's watches.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use cce_upgrade_watch::cce::ApiFamily;
use cce_upgrade_watch::crd::UpgradeWorkflowWatch;
use cce_upgrade_watch::crd::set::{CLUSTER_ID_LABEL, SET_LABEL};
use cce_upgrade_watch::sim::builtin::{self, FLEET, FleetMember};
use common::eventually::{KUBE_POLL, eventually};
use common::operator::Operator;
use common::set::{apply_set, set_cond, set_watches, wait_set};
use common::sim::Sim;
use common::watch::apply_account;
use common::{count, events, sim_account};

const SET: &str = "fleet";
/// The operator lists every set this often.
const LIST_EVERY: [&str; 2] = ["--set-list-interval", "1s"];

fn member(name: &str) -> FleetMember {
    *FLEET
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no fleet member {name}"))
}

/// `(cluster id, watch name)` of every watch the set keeps.
async fn watched(client: &Client, ns: &str) -> BTreeMap<String, String> {
    set_watches(client, ns, SET)
        .await
        .into_iter()
        .map(|w| (w.spec.cluster_id.clone(), w.name_any()))
        .collect()
}

/// The set's watches once they are exactly those of `members` (copy 0).
async fn wait_watched(client: &Client, ns: &str, members: &[&str]) -> Vec<UpgradeWorkflowWatch> {
    let want: Vec<String> = members.iter().map(|m| member(m).cluster_id(0)).collect();
    let what = format!("the set's watches follow {members:?}");
    eventually(&what, Duration::from_secs(40), KUBE_POLL, || async {
        let watches = set_watches(client, ns, SET).await;
        let mut ids: Vec<String> = watches.iter().map(|w| w.spec.cluster_id.clone()).collect();
        ids.sort();
        let mut wanted = want.clone();
        wanted.sort();
        if ids == wanted {
            Ok(watches)
        } else {
            Err(format!("{ids:?}"))
        }
    })
    .await
}

fn counts(set: &cce_upgrade_watch::crd::UpgradeWatchSet) -> (u32, u32, u32, u32) {
    let s = set.status.clone().unwrap_or_default();
    (
        s.clusters.unwrap_or_default(),
        s.upgrading.unwrap_or_default(),
        s.failed.unwrap_or_default(),
        s.watches.unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_set_follows_a_fleet_as_clusters_appear_upgrade_fail_and_go() {
    // Eight scenario seconds a second: both upgrades without a workflow run together from
    // 7.5 s to 15 s, fleet-late appears at 11 s, fleet-retired is gone at 22.5 s.
    let sim = Sim::https()
        .scenario(builtin::Builtin::Fleet)
        .args(&["--speed", "8"])
        .start();
    let (client, ns) = common::setup("set-fleet").await;
    let account = sim_account(&client, &ns, &sim, "cce").await;
    let _op = Operator::start(&ns, &sim, &LIST_EVERY);
    apply_set(
        &client,
        &ns,
        SET,
        json!({
            "accountRef": {"name": account},
            "clusterTypes": ["Standard", "Autopilot"],
            "template": {"metadata": {"labels": {"team": "a"}}, "spec": {"pollInterval": "5s"}},
        }),
    )
    .await;
    let first = [
        "fleet-rolling",
        "fleet-steady",
        "fleet-direct",
        "fleet-broken",
        "fleet-retired",
        "fleet-autopilot",
    ];
    let watches = wait_watched(&client, &ns, &first).await;
    let autopilot = member("fleet-autopilot").cluster_id(0);
    for w in &watches {
        let labels = w.labels();
        assert_eq!(labels[SET_LABEL], SET);
        assert_eq!(labels[CLUSTER_ID_LABEL], w.spec.cluster_id);
        assert_eq!(labels["team"], "a");
        assert_eq!(w.spec.poll_interval.as_deref(), Some("5s"));
        assert_eq!(w.spec.upgrade_workflow_id, None);
        assert_eq!(
            w.spec.account_ref.as_ref().map(|a| a.name.as_str()),
            Some(account.as_str())
        );
        let family = if w.spec.cluster_id == autopilot {
            ApiFamily::Autopilot
        } else {
            ApiFamily::Standard
        };
        assert_eq!(w.spec.cluster_type, Some(family), "{}", w.name_any());
        let owner = &w.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("UpgradeWatchSet", SET)
        );
        assert_eq!(owner.controller, Some(true));
    }
    assert_eq!(
        watched(&client, &ns).await[&member("fleet-steady").cluster_id(0)],
        "fleet-fleet-steady-00"
    );
    let during = wait_set(&client, &ns, SET, 40, "two clusters upgrading", |s| {
        counts(s).1 >= 2
    })
    .await;
    assert_eq!(
        set_cond(&during, "Synced").map(|c| c.1),
        Some("Listed".into())
    );
    let late = [&first[..], &["fleet-late"]].concat();
    wait_watched(&client, &ns, &late).await;
    let after = wait_set(
        &client,
        &ns,
        SET,
        40,
        "one failed, the retired one gone",
        |s| counts(s) == (6, counts(s).1, 1, 6),
    )
    .await;
    let gone = [
        "fleet-rolling",
        "fleet-steady",
        "fleet-direct",
        "fleet-broken",
        "fleet-late",
        "fleet-autopilot",
    ];
    wait_watched(&client, &ns, &gone).await;
    assert_eq!(
        set_cond(&after, "Ready").map(|c| (c.0, c.1)),
        Some(("True".into(), "AllWatched".into()))
    );
    let versions = &after.status.as_ref().expect("status").versions;
    assert!(
        versions
            .iter()
            .all(|v| v.version == "v1.28" || v.version == "v1.29"),
        "{versions:?}"
    );
    assert_eq!(versions.iter().map(|v| v.clusters).sum::<u32>(), 6);
    // Each cluster joined once and the retired one left once, however many passes saw it.
    let said = events(&client, &ns, SET).await;
    assert_eq!(count(&said, "ClusterJoined"), 7, "{said:#?}");
    assert_eq!(count(&said, "ClusterLeft"), 1, "{said:#?}");
    let left = said.iter().find(|(r, _)| r == "ClusterLeft").expect("left");
    assert!(
        left.1.contains("fleet-retired-00") && left.1.contains("CCE no longer lists it"),
        "{left:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        events(&client, &ns, SET).await,
        said,
        "later passes publish nothing again"
    );
}

/// A watch object of a person's, for `cluster`, named `name`.
async fn persons_watch(client: &Client, ns: &str, name: &str, cluster: &str, account: &str) {
    let watch: UpgradeWorkflowWatch = serde_json::from_value(json!({
        "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "UpgradeWorkflowWatch",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterID": cluster, "accountRef": {"name": account}},
    }))
    .expect("watch");
    Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &watch)
        .await
        .expect("create a person's watch");
}

/// What a set must never change of a person's watch.
async fn untouched(client: &Client, ns: &str, name: &str) -> Value {
    let w = Api::<UpgradeWorkflowWatch>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .expect("the person's watch is still there");
    json!({"uid": w.uid(), "labels": w.metadata.labels, "owners": w.metadata.owner_references,
           "spec": w.spec})
}

#[tokio::test]
async fn a_persons_own_watches_of_the_fleet_are_left_alone() {
    let sim = Sim::https()
        .scenario(builtin::Builtin::Fleet)
        .frozen()
        .start();
    let (client, ns) = common::setup("set-persons").await;
    let account = sim_account(&client, &ns, &sim, "cce").await;
    let steady = member("fleet-steady").cluster_id(0);
    let direct = member("fleet-direct").cluster_id(0);
    // One of a cluster the set will watch too, one with the very name the set would give
    // its own watch of another (that cluster's watch takes another name).
    persons_watch(&client, &ns, "mine", &steady, &account).await;
    persons_watch(&client, &ns, "fleet-fleet-direct-00", &direct, &account).await;
    let before = [
        untouched(&client, &ns, "mine").await,
        untouched(&client, &ns, "fleet-fleet-direct-00").await,
    ];
    let _op = Operator::start(&ns, &sim, &LIST_EVERY);
    apply_set(&client, &ns, SET, json!({"accountRef": {"name": account}})).await;
    let watches = wait_watched(
        &client,
        &ns,
        &[
            "fleet-rolling",
            "fleet-steady",
            "fleet-direct",
            "fleet-broken",
            "fleet-retired",
        ],
    )
    .await;
    // The set's own watch of fleet-direct took another name than the person's.
    let of_direct: Vec<String> = watches
        .iter()
        .filter(|w| w.spec.cluster_id == direct)
        .map(|w| w.name_any())
        .collect();
    assert_eq!(of_direct.len(), 1);
    assert!(
        of_direct[0].starts_with("fleet-fleet-direct-00-"),
        "{of_direct:?}"
    );
    let all_watched = wait_set(&client, &ns, SET, 40, "every picked cluster watched", |s| {
        set_cond(s, "Ready").is_some_and(|c| c.1 == "AllWatched")
    })
    .await;
    assert_eq!(counts(&all_watched), (5, 0, 0, 5));
    // Narrowed to one cluster: the set deletes its other watches, none of the person's.
    apply_set(
        &client,
        &ns,
        SET,
        json!({"accountRef": {"name": account}, "clusterSelector": {"names": ["fleet-rolling-00"]}}),
    )
    .await;
    wait_watched(&client, &ns, &["fleet-rolling"]).await;
    wait_set(
        &client,
        &ns,
        SET,
        40,
        "the one cluster picked, watched",
        |s| counts(s) == (1, 0, 0, 1) && set_cond(s, "Ready").is_some_and(|c| c.1 == "AllWatched"),
    )
    .await;
    let after = [
        untouched(&client, &ns, "mine").await,
        untouched(&client, &ns, "fleet-fleet-direct-00").await,
    ];
    assert_eq!(before, after);
    let said = events(&client, &ns, SET).await;
    assert_eq!(count(&said, "ClusterLeft"), 4, "{said:#?}");
}

#[tokio::test]
async fn a_refused_listing_keeps_the_watches_and_says_why_until_it_recovers() {
    let sim = Sim::https()
        .scenario(builtin::Builtin::Fleet)
        .frozen()
        .start();
    let (client, ns) = common::setup("set-refused").await;
    let account = sim_account(&client, &ns, &sim, "cce").await;
    let _op = Operator::start(&ns, &sim, &LIST_EVERY);
    apply_set(&client, &ns, SET, json!({"accountRef": {"name": account}})).await;
    let standard = [
        "fleet-rolling",
        "fleet-steady",
        "fleet-direct",
        "fleet-broken",
        "fleet-retired",
    ];
    wait_watched(&client, &ns, &standard).await;
    let uids = |watches: Vec<UpgradeWorkflowWatch>| -> Vec<String> {
        watches.iter().filter_map(|w| w.uid()).collect()
    };
    let before = uids(set_watches(&client, &ns, SET).await);
    let (status, body) = sim
        .admin_post(
            "/_sim/faults",
            json!({"kind": "forbidden", "route": "list-clusters"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let refused = wait_set(&client, &ns, SET, 30, "Synced says Forbidden", |s| {
        set_cond(s, "Synced").is_some_and(|c| c.0 == "False" && c.1 == "Forbidden")
    })
    .await;
    let (_, _, message) = set_cond(&refused, "Synced").expect("synced");
    assert!(message.starts_with("ListClusters: "), "{message}");
    // Several refused passes later, nothing was deleted or replaced.
    eventually(
        "three refused listings",
        Duration::from_secs(30),
        KUBE_POLL,
        || async {
            let refusals = sim.requests("route=list-clusters&status=403").await.len();
            if refusals >= 3 { Ok(()) } else { Err(refusals) }
        },
    )
    .await;
    assert_eq!(uids(set_watches(&client, &ns, SET).await), before);
    assert_eq!(counts(&refused).3, 5, "the status keeps the last count");
    assert_eq!(
        set_cond(&refused, "Ready").map(|c| c.0),
        Some("True".into())
    );
    sim.delete("/_sim/faults").await;
    wait_set(&client, &ns, SET, 30, "Synced again", |s| {
        set_cond(s, "Synced").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(uids(set_watches(&client, &ns, SET).await), before);
}

#[tokio::test]
async fn a_cluster_account_holds_a_set_to_its_namespaces_and_clusters_as_a_watch() {
    let sim = Sim::https()
        .scenario(builtin::Builtin::Fleet)
        .frozen()
        .start();
    let (client, ns) = common::setup("set-tenancy").await;
    let account = format!("{ns}-shared");
    let shared = |namespaces: Value, clusters: Value| {
        json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1", "kind": "ClusterCCEAccount",
            "metadata": {"name": account},
            "spec": {"endpoint": sim.url, "projectID": builtin::PROJECT_ID,
                     "credentials": {"operatorDefaults": {}},
                     "conditions": [{"namespaces": namespaces}], "clusterIDs": clusters},
        })
    };
    apply_account(&client, shared(json!(["somebody-else"]), json!([]))).await;
    let _op = Operator::start_with_env(
        &ns,
        &sim,
        &LIST_EVERY,
        &[
            ("CLOUD_SDK_AK", builtin::ACCESS_KEY),
            ("CLOUD_SDK_SK", builtin::SECRET_KEY),
        ],
    );
    apply_set(
        &client,
        &ns,
        SET,
        json!({"accountRef": {"kind": "ClusterCCEAccount", "name": account}}),
    )
    .await;
    let refused = wait_set(&client, &ns, SET, 30, "AccountNotAllowed", |s| {
        set_cond(s, "Ready").is_some_and(|c| c.1 == "AccountNotAllowed")
    })
    .await;
    let (_, _, message) = set_cond(&refused, "Synced").expect("synced");
    assert!(
        message.contains(&format!("does not list namespace {ns}")),
        "{message}"
    );
    assert!(set_watches(&client, &ns, SET).await.is_empty());
    assert!(
        sim.requests("route=list-clusters").await.is_empty(),
        "CCE was not asked"
    );
    let (steady, broken) = (
        member("fleet-steady").cluster_id(0),
        member("fleet-broken").cluster_id(0),
    );
    apply_account(&client, shared(json!([ns]), json!([steady, broken]))).await;
    wait_watched(&client, &ns, &["fleet-steady", "fleet-broken"]).await;
    let served = wait_set(
        &client,
        &ns,
        SET,
        30,
        "Ready with the account's clusters",
        |s| set_cond(s, "Ready").is_some_and(|c| c.1 == "AllWatched"),
    )
    .await;
    let status = served.status.clone().expect("status");
    assert_eq!((status.clusters, status.skipped), (Some(2), Some(3)));
    let (_, _, ready) = set_cond(&served, "Ready").expect("ready");
    assert!(
        ready.contains("3 more are not among the account's clusterIDs"),
        "{ready}"
    );
}

/// The schema's rules, as the API server applies them: each bad set is refused with words
/// that name what is wrong, a good one is accepted, and `kubectl explain` tells the fields.
#[tokio::test]
async fn the_api_server_refuses_bad_sets_and_explains_the_good_one() {
    let client = common::client().await;
    common::install_crd(&client).await;
    let ns = common::namespace(&client, "set-schema").await;
    let yaml = |name: &str, spec: &str| {
        format!(
            "apiVersion: cce.upgradewatch.io/v1alpha1\nkind: UpgradeWatchSet\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  accountRef: {{name: cce}}\n{spec}"
        )
    };
    let long = "s".repeat(64);
    for (name, spec, says) in [
        (
            "fast",
            "  listInterval: 30s\n",
            "listInterval must be at least 1m",
        ),
        (
            "slow",
            "  listInterval: 25h\n",
            "listInterval must be at most 24h",
        ),
        ("many", "  maxWatches: 2001\n", "spec.maxWatches"),
        (long.as_str(), "", "at most 63 characters"),
        (
            "ours",
            "  template: {metadata: {labels: {cce.upgradewatch.io/set: x}}}\n",
            "labels under cce.upgradewatch.io/ are set by the operator",
        ),
        (
            "odd-operator",
            "  clusterSelector: {matchExpressions: [{key: tier, operator: Sometimes}]}\n",
            "operators are In, NotIn, Exists or DoesNotExist",
        ),
        (
            "odd-version",
            "  clusterSelector: {versions: [\"1.2.x\"]}\n",
            "spec.clusterSelector.versions[0]",
        ),
        (
            "odd-category",
            "  clusterSelector: {categories: [Autopilot]}\n",
            "spec.clusterSelector.categories[0]",
        ),
        (
            "twice",
            "  clusterTypes: [Standard, Standard]\n",
            "clusterTypes names each type once",
        ),
        (
            "poll",
            "  template: {spec: {pollInterval: 1s}}\n",
            "pollInterval must be at least 5s",
        ),
        ("extra", "  template: {spec: {clusterID: c}}\n", "clusterID"),
    ] {
        let out = common::kubectl_stdin(
            &["create", "--validate=strict", "-f", "-"],
            &yaml(name, spec),
        );
        let stderr = common::text(&out.stderr);
        assert!(!out.status.success(), "set {name} was accepted");
        assert!(
            stderr.contains(says),
            "set {name}: the error does not say {says:?}: {stderr}"
        );
    }
    let good = "  clusterTypes: [Autopilot, Standard]\n  clusterSelector: {names: [web-01], matchLabels: {env: prod}, categories: [CCE, Turbo], versions: [v1.28, v1.29.13-r0]}\n  template: {metadata: {labels: {team: a}}, spec: {pollInterval: 1m, suspend: true}}\n  listInterval: 1m\n  maxWatches: 2000\n";
    let out = common::kubectl_stdin(
        &["create", "--validate=strict", "-f", "-"],
        &yaml("good", good),
    );
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let out =
        common::kubectl_until_success(&["explain", "upgradewatchset.spec.clusterSelector"]).await;
    let doc = common::text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "every condition set must hold",
        "versions",
        "part by part",
        "matchExpressions",
    ] {
        assert!(doc.contains(needle), "{needle} missing in: {doc}");
    }
    let out = common::kubectl(&["get", "uwset", "-n", &ns]);
    let header = common::text(&out.stdout);
    for column in [
        "ACCOUNT",
        "CLUSTERS",
        "UPGRADING",
        "FAILED",
        "WATCHES",
        "READY",
        "AGE",
    ] {
        assert!(header.contains(column), "{column} missing in: {header}");
    }
}

#[tokio::test]
async fn a_cluster_upgraded_without_a_workflow_is_followed_through_its_upgrade_task() {
    // Eight scenario seconds a second: fleet-direct upgrades from 5 s to 17.5 s and succeeds,
    // fleet-broken from 7.5 s and fails at 15 s; neither has a workflow.
    let sim = Sim::https()
        .scenario(builtin::Builtin::Fleet)
        .args(&["--speed", "8"])
        .start();
    let (client, ns) = common::setup("direct").await;
    let account = sim_account(&client, &ns, &sim, "cce").await;
    // Both upgrades are under way before anyone looks (an idle cluster's task list is read
    // every five minutes; a running task's every poll).
    tokio::time::sleep(Duration::from_secs(9)).await;
    let _op = Operator::start(&ns, &sim, &[]);
    for (name, cluster) in [("direct", "fleet-direct"), ("broken", "fleet-broken")] {
        common::watch::account_watch(
            &client,
            &ns,
            name,
            &member(cluster).cluster_id(0),
            None,
            json!({"name": account}),
        )
        .await;
    }
    let running = common::wait_watch(&client, &ns, "direct", 30, "the upgrade task", |w| {
        w.status
            .as_ref()
            .is_some_and(|s| s.upgrade_task_id.is_some())
    })
    .await;
    let status = running.status.as_ref().expect("status");
    assert_eq!(status.workflow_id, None);
    assert_eq!(status.tasks.len(), 1);
    assert_eq!(status.tasks[0].task_type, "Cluster");
    assert_eq!(status.target_version.as_deref(), Some("v1.29.13-r0"));
    let synced = common::synced_message(&running);
    assert!(synced.contains("without a workflow"), "{synced}");

    let done = common::wait_watch(&client, &ns, "direct", 30, "UpgradeSucceeded", |w| {
        common::cond(w, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        common::cond(&done, "Ready"),
        Some(("True".into(), "UpgradeSucceeded".into()))
    );
    let got = events(&client, &ns, "direct").await;
    assert_eq!(count(&got, "WorkflowObserved"), 1, "{got:#?}");
    assert_eq!(count(&got, "UpgradeSucceeded"), 1, "{got:#?}");
    assert!(
        got.iter()
            .any(|(r, n)| r == "WorkflowObserved" && n.contains("(no workflow)")),
        "{got:#?}"
    );

    let failed = common::wait_watch(&client, &ns, "broken", 30, "Stalled", |w| {
        common::cond(w, "Stalled").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        common::cond(&failed, "Ready"),
        Some(("False".into(), "TaskFailed".into()))
    );
    let got = events(&client, &ns, "broken").await;
    assert_eq!(count(&got, "TaskFailed"), 1, "{got:#?}");
}

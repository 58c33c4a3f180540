//! The Kubernetes Events the operator published about a watch.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::Client;
use kube::api::{Api, ListParams};

use super::eventually::{KUBE_POLL, eventually};

/// The events of a watch that saw the success scenario from its start.
pub const SUCCESS_EVENTS: &[&str] = &[
    "WorkflowObserved",
    "TaskStarted",
    "PhaseChanged",
    "TaskSucceeded",
    "TaskStarted",
    "TaskSucceeded",
    "TaskStarted",
    "TaskSucceeded",
    "TaskStarted",
    "TaskSucceeded",
    "UpgradeSucceeded",
];

/// Events about one watch, oldest first, as the API server stores them.
pub async fn raw_events(client: &Client, ns: &str, name: &str) -> Vec<KubeEvent> {
    let api = Api::<KubeEvent>::namespaced(client.clone(), ns);
    let mut list: Vec<KubeEvent> = api
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect();
    list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    list
}

/// How many times an Event happened: a series counts each occurrence.
pub fn occurrences(e: &KubeEvent) -> usize {
    e.series.as_ref().map_or(1, |s| s.count.max(1) as usize)
}

/// Events about one watch, oldest first, as (reason, note), each series counted once per
/// occurrence.
pub async fn events(client: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in raw_events(client, ns, name).await {
        for _ in 0..occurrences(&e) {
            out.push((
                e.reason.clone().unwrap_or_default(),
                e.note.clone().unwrap_or_default(),
            ));
        }
    }
    out
}

pub fn reasons(events: &[(String, String)]) -> Vec<&str> {
    events.iter().map(|(r, _)| r.as_str()).collect()
}

pub fn count(events: &[(String, String)], reason: &str) -> usize {
    events.iter().filter(|(r, _)| r == reason).count()
}

/// Events about a watch once `done` holds for them (they are published just after the
/// status write that a test usually waits for); fails after `secs` showing what was there.
pub async fn wait_events(
    client: &Client,
    ns: &str,
    name: &str,
    secs: u64,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let what = format!("events of {name} as expected");
    eventually(&what, Duration::from_secs(secs), KUBE_POLL, || async {
        let got = events(client, ns, name).await;
        if done(&got) {
            Ok(got)
        } else {
            Err(format!("{got:#?}"))
        }
    })
    .await
}

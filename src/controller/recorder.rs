//! The Kubernetes Event (events.k8s.io/v1) for a transition, and publishing it. An Event's
//! name is derived from the watch and the transition's occurrence, so a transition
//! published twice (the operator stopped between publishing and writing status, or a
//! second operator computed it too) is one Event: the API server answers the second create
//! with AlreadyExists, which counts as done.
//!
//! Every transition is its own Event, so unlike kube's `Recorder` nothing is cached to fold
//! repeats into series (that cache held every event of the last minutes and was scanned on
//! each publish, under one lock for all reconciles).

use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::events::Transition;
use super::limits::{EVENT_LABEL_BYTES, EVENT_NOTE_BYTES, clean};
use crate::crd::UpgradeWorkflowWatch;

/// The longest name the API server accepts (a DNS subdomain).
const MAX_NAME_BYTES: usize = 253;
/// Hex digits of the digest that ends every Event name.
const DIGEST_HEX: usize = 16;

/// How a publish ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    Created,
    /// Published before, by this operator before a restart or by another one.
    AlreadyThere,
}

pub struct EventPublisher {
    client: kube::Client,
    controller: String,
    instance: String,
}

impl EventPublisher {
    pub fn new(client: kube::Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: clean(controller, EVENT_LABEL_BYTES).into_owned(),
            instance: clean(instance, EVENT_LABEL_BYTES).into_owned(),
        }
    }

    pub async fn publish(
        &self,
        watch: &UpgradeWorkflowWatch,
        transition: &Transition,
    ) -> Result<Published, kube::Error> {
        let event = event_for(
            watch,
            transition,
            Timestamp::now(),
            &self.controller,
            &self.instance,
        );
        let namespace = watch.namespace().unwrap_or_default();
        match Api::<KubeEvent>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
        {
            Ok(_) => Ok(Published::Created),
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                Ok(Published::AlreadyThere)
            }
            Err(e) => Err(e),
        }
    }
}

/// Whether a failed publish may succeed when tried again soon: then the status write waits
/// for it, so the transition is published again rather than lost. Anything else (a
/// forbidden create, an Event the API server finds invalid) would fail forever and must not
/// hold the status back.
pub fn worth_retrying(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        _ => true,
    }
}

/// The Event for `transition` about `watch`, every field within what the API server
/// accepts.
pub fn event_for(
    watch: &UpgradeWorkflowWatch,
    transition: &Transition,
    now: Timestamp,
    controller: &str,
    instance: &str,
) -> KubeEvent {
    KubeEvent {
        metadata: ObjectMeta {
            name: Some(event_name(
                &watch.name_any(),
                watch.uid().as_deref().unwrap_or_default(),
                transition,
            )),
            namespace: watch.namespace(),
            ..ObjectMeta::default()
        },
        action: Some(clean(&transition.action, EVENT_LABEL_BYTES).into_owned()),
        reason: Some(transition.reason.to_string()),
        note: Some(clean(&transition.note, EVENT_NOTE_BYTES).into_owned()),
        type_: Some(
            if transition.warning {
                "Warning"
            } else {
                "Normal"
            }
            .to_string(),
        ),
        event_time: Some(MicroTime(now)),
        regarding: Some(watch.object_ref(&())),
        reporting_controller: Some(controller.to_string()),
        reporting_instance: Some(instance.to_string()),
        ..KubeEvent::default()
    }
}

/// `<watch name>.<digest of uid, reason and occurrence>`: the same for the same transition
/// of the same watch, a valid name for a watch name of any length.
pub fn event_name(watch_name: &str, uid: &str, transition: &Transition) -> String {
    let mut hash = Sha256::new();
    for part in [uid, transition.reason, &transition.occurrence] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hex::encode(hash.finalize());
    let room = MAX_NAME_BYTES - DIGEST_HEX - 1;
    let mut prefix = &watch_name[..watch_name.len().min(room)];
    // A name ends in an alphanumeric character; the watch's name is already a DNS subdomain.
    prefix = prefix.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() {
        return digest[..DIGEST_HEX].to_string();
    }
    format!("{prefix}.{}", &digest[..DIGEST_HEX])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::events::Subject;

    fn transition(reason: &'static str, occurrence: &str) -> Transition {
        Transition {
            warning: false,
            reason,
            note: "n".into(),
            action: "a".into(),
            occurrence: occurrence.into(),
            subject: Subject::Task,
            finished_task: None,
        }
    }

    fn watch(name: &str) -> UpgradeWorkflowWatch {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cce.upgradewatch.io/v1alpha1",
            "kind": "UpgradeWorkflowWatch",
            "metadata": {"name": name, "namespace": "ns", "uid": "u-1"},
            "spec": {"region": "r", "projectID": "p", "clusterID": "c"}
        }))
        .expect("watch")
    }

    fn is_dns_subdomain(name: &str) -> bool {
        name.len() <= MAX_NAME_BYTES
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    }

    #[test]
    fn the_same_transition_has_the_same_name_and_another_one_another() {
        let a = transition("TaskStarted", "Cluster/1 Running");
        assert_eq!(event_name("w", "u", &a), event_name("w", "u", &a.clone()));
        assert_ne!(
            event_name("w", "u", &a),
            event_name("w", "u", &transition("TaskStarted", "Cluster/2 Running"))
        );
        assert_ne!(
            event_name("w", "u", &a),
            event_name("w", "u", &transition("TaskFailed", "Cluster/1 Running"))
        );
        assert_ne!(event_name("w", "u", &a), event_name("w", "other-uid", &a));
    }

    #[test]
    fn names_are_valid_for_any_watch_name() {
        let t = transition("PhaseChanged", "x");
        let long = format!("{}-{}", "a".repeat(200), "b.c".repeat(20));
        for name in [
            "w",
            "a.b",
            long.as_str(),
            &"x".repeat(253),
            &format!("{}-z", "y".repeat(235)),
        ] {
            let event = event_name(name, "u", &t);
            assert!(is_dns_subdomain(&event), "{event} ({} bytes)", event.len());
        }
    }

    #[test]
    fn every_field_fits_what_the_api_server_accepts() {
        let mut t = transition("TasksChanged", "x");
        t.note = "é".repeat(5000);
        t.action = "\u{1b}[2J".repeat(100);
        let event = event_for(&watch("w"), &t, Timestamp::UNIX_EPOCH, "c", "i");
        assert!(
            event
                .note
                .as_deref()
                .is_some_and(|n| n.len() <= EVENT_NOTE_BYTES)
        );
        let action = event.action.unwrap_or_default();
        assert!(action.len() <= EVENT_LABEL_BYTES && !action.contains('\u{1b}'));
        assert_eq!(event.metadata.namespace.as_deref(), Some("ns"));
        assert!(event.metadata.name.is_some_and(|n| n.starts_with("w.")));
    }
}

//! Publishing one Event per transition as this operator instance (I/O). The name of each
//! Event comes from its transition, so the API server's AlreadyExists tells a transition
//! already published from a new one.

use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use crate::crd::UpgradeWorkflowWatch;
use crate::limits::{EVENT_LABEL_BYTES, clean};
use crate::reconciler::core::events::{Transition, event_for};

/// How a publish ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    Created,
    /// Published before, by this operator before a restart or by another one.
    AlreadyThere,
}

/// Creates Events as this operator instance. Every transition is its own Event, so unlike
/// kube's `Recorder` nothing is cached to fold repeats into series (that cache held every
/// event of the last minutes and was scanned on each publish, under one lock for all
/// reconciles).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconciler::core::events::{EventReason, Subject, event_name};
    use crate::reconciler::mock::{self, Exchange};

    fn failed_task() -> Transition {
        Transition {
            warning: true,
            reason: EventReason::TaskFailed,
            note: "the Cluster task failed".into(),
            action: "Cluster".into(),
            occurrence: "task-1".into(),
            subject: Subject::Task,
            finished_task: None,
        }
    }

    #[tokio::test]
    async fn each_transition_is_posted_as_an_event_about_the_watch_under_its_own_name() {
        let transition = failed_task();
        let name = event_name(mock::NAME, mock::UID, &transition);
        let shape = |event: &serde_json::Value| {
            assert_eq!(event["apiVersion"], "events.k8s.io/v1");
            assert_eq!(event["metadata"]["namespace"], mock::NAMESPACE);
            assert_eq!(event["reason"], "TaskFailed");
            assert_eq!(event["type"], "Warning");
            assert_eq!(event["action"], "Cluster");
            assert_eq!(event["note"], "the Cluster task failed");
            assert_eq!(event["reportingController"], "cce-upgrade-watch");
            assert_eq!(event["reportingInstance"], "test-instance");
            assert!(event["eventTime"].is_string(), "{event}");
            let regarding = &event["regarding"];
            assert_eq!(regarding["kind"], "UpgradeWorkflowWatch");
            assert_eq!(regarding["name"], mock::NAME);
            assert_eq!(regarding["uid"], mock::UID);
        };
        let (client, server) = mock::serve(vec![
            Exchange::post_event_named(&name)
                .checking(shape)
                .answer(201, serde_json::json!({})),
            Exchange::post_event_named(&name).refuse(409, "AlreadyExists", "already exists"),
            Exchange::post_event_named(&name).refuse(409, "Conflict", "not the same"),
        ]);
        let publisher = EventPublisher::new(client, "cce-upgrade-watch", "test-instance");
        let watch = mock::watch("7");
        let first = publisher.publish(&watch, &transition).await;
        assert_eq!(first.ok(), Some(Published::Created));
        let again = publisher.publish(&watch, &transition).await;
        assert_eq!(again.ok(), Some(Published::AlreadyThere));
        // Only AlreadyExists says the Event is there; another 409 is a failure to publish.
        let other = publisher.publish(&watch, &transition).await;
        assert!(
            matches!(&other, Err(kube::Error::Api(s)) if s.code == 409),
            "{other:?}"
        );
        server.finish(publisher).await;
    }
}

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

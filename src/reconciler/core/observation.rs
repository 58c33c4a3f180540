//! What the I/O shell hands the pure core: what CCE answered (or why it could not be
//! asked), and what its diagnostic reads said. Pure data.

use std::sync::Arc;
use std::time::Duration;

use crate::cce::model::Workflow;
use crate::diagnosis::findings::{Ask, Told};
use crate::failure::Failure;
use crate::reconciler::core::settled::AnswerId;

/// What the CCE side of a reconcile produced.
#[derive(Clone, Debug)]
pub struct Observed {
    pub seen: Seen,
    /// Floor for the next poll (a 429's Retry-After).
    pub not_before: Duration,
    /// Age of a shared answer: the next poll is due that much sooner, so every watch of a
    /// workflow wakes just after the next fetch and shares it.
    pub age: Duration,
}

/// What CCE's diagnostic APIs told one reconcile.
#[derive(Clone, Debug, Default)]
pub struct Diagnosed {
    pub told: Vec<(Ask, Told)>,
    /// Every read the workflow called for was answered: nothing is left to ask at the next
    /// poll unless CCE's answer changes.
    pub complete: bool,
}

#[derive(Clone, Debug)]
pub enum Seen {
    /// CCE answered with this workflow; the id names the answer.
    Workflow(Arc<Workflow>, AnswerId),
    /// Following a cluster that has no upgrade workflow yet.
    NoWorkflowYet,
    /// CCE (or the way to it) failed.
    Failed {
        failure: Failure,
        /// CCE's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// `spec.suspend` is true: CCE was not asked.
    Suspended,
}

impl Observed {
    pub fn now(seen: Seen) -> Self {
        Self {
            seen,
            not_before: Duration::ZERO,
            age: Duration::ZERO,
        }
    }
}

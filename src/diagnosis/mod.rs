//! Why a task failed and how far a running one is, shared by the reconciler and `get`:
//! `findings` decides which of CCE's diagnostic reads a workflow calls for and turns the
//! answers into bounded task status and summaries (pure); `read` makes one such read.

pub mod findings;
pub mod read;

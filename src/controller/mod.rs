//! The reconciler: reads each watched workflow from CCE and mirrors it into status.
//!
//! `limits`, `mirror`, `conditions`, `status`, `settled`, `events` and `schedule` are pure;
//! `book` keeps the statuses; `fetch`, `secrets` and `reconcile` talk to CCE and Kubernetes;
//! `run` wires the process together.

pub mod book;
pub mod conditions;
pub mod events;
pub mod fetch;
pub mod limits;
pub mod mirror;
pub mod reconcile;
pub mod recorder;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod settled;
pub mod status;

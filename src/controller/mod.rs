//! The reconciler: reads each watched workflow from CCE and mirrors it into status.
//!
//! A reconcile observes (`observe`, through `fetch` and `secrets`), decides (`decide`, pure)
//! and applies (`apply`: Events, then status); `reconcile` runs the three.
//! `limits`, `mirror`, `findings`, `conditions`, `status`, `settled`, `events`, `decide` and
//! `schedule` are pure; `book` keeps the statuses; `run` wires the process together.

pub mod apply;
pub mod book;
pub mod conditions;
pub mod decide;
pub mod defaults;
pub mod events;
pub mod fetch;
pub mod findings;
pub mod identity;
pub mod limits;
pub mod mirror;
pub mod observe;
pub mod reconcile;
pub mod relist;
pub mod renewal;
pub mod run;
pub mod schedule;
pub mod secrets;
pub mod settled;
pub mod status;

//! The reconciler's pure core: from the kept status, what CCE answered and the clock it is
//! handed, the next status, its Events and the next poll. Nothing here does I/O, reads the
//! clock, draws a random number or touches the async runtime; the layer test in `layers`
//! keeps it so.
//!
//! `observation` is what the shell hands in; `mirror`, `conditions`, `status`, `settled`,
//! `events`, `schedule` and `decide` compute the rest; `direct` reads an upgrade started
//! without a workflow as a workflow of one task; `set` decides for an UpgradeWatchSet.

pub mod account;
pub mod conditions;
pub mod decide;
pub mod direct;
pub mod events;
pub mod mirror;
pub mod observation;
pub mod schedule;
pub mod set;
pub mod settled;
pub mod status;

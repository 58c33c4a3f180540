//! The reconciler: reads each watched workflow from CCE and mirrors it into status.

pub mod events;
pub mod mirror;
pub mod schedule;
pub mod status;

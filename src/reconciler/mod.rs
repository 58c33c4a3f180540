//! The reconciler: reads each watched workflow from CCE and mirrors it into status.
//!
//! `core` decides (pure: no client, clock, RNG or runtime); this folder is the I/O shell
//! around it. A reconcile observes (`observe`, through `fetch` and the `credentials`
//! library), decides (`core::decide`) and applies (`apply`: Events, then status);
//! `reconcile` runs the three with the shared `context`; `book` keeps the statuses; `sets`
//! keeps an UpgradeWatchSet's generated watches (deciding in `core::set`).

pub mod accounts;
pub mod apply;
pub mod book;
pub mod context;
pub mod core;
pub mod fetch;
#[cfg(test)]
mod mock;
pub mod observe;
pub mod publisher;
pub mod reconcile;
pub mod sets;

//! Every test that needs what `make test` starts or installs: the local control plane
//! (`hack/control-plane.sh`), and for `sim_sdk` and `iam_sdk` the Python SDK virtualenv of
//! `hack/python-sdk.sh`. One binary with a module per suite, so the suites run side by side
//! in one process (`make test-all` gives it more test threads than cores: the tests mostly
//! wait on servers). Each test still works in a namespace of its own on the shared plane, or
//! on a private plane of its own when it would disturb the others (restarts, no CRD).
//!
//! Nothing in here may depend on running alone: no process-wide environment changes, no
//! fixed ports or paths (`common::sockets::free_port` for an address a server comes back
//! to), nothing counted across every operator on the machine. The two Event-burst tests of
//! `events` run in a serial pass of their own after the others (the Makefile's
//! `E2E_SERIAL`).

#[path = "../common/mod.rs"]
mod common;

mod chart;
mod controller;
mod crd;
mod day2;
mod diagnostics;
mod docs;
mod events;
mod faults;
mod fleet;
mod iam;
mod iam_sdk;
mod identity;
mod kube_client;
mod migration;
mod runtime;
mod security;
mod sim_sdk;
mod tenancy;

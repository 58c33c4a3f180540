//! Whose identity a watch's CCE requests are signed with, shared by the reconciler and `get`:
//! the account the watch names and whether it may use it (`accounts`; the rules alone in
//! `admission`, pure), and the account's source: a marked Secret (`secrets`), a workload
//! identity (`identity`: a ServiceAccount token exchanged at IAM), the operator's defaults
//! through the SDK's chain (`defaults`; its `select` is pure), with the temporary keys they
//! yield renewed before they expire (`renewal`: state, no I/O). Nothing here knows about
//! statuses or Events.

pub mod accounts;
pub mod admission;
pub mod defaults;
pub mod identity;
pub mod renewal;
pub mod secrets;

/// A Kubernetes API error without any payload: status code and reason only.
pub(crate) fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} {}", status.code, status.reason),
        _ => "Kubernetes API unreachable".to_string(),
    }
}

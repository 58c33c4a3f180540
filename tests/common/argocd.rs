//! Runs the Argo CD health check on objects with Argo CD's own Lua engine
//! (tests/argocd-health: github.com/argoproj/argo-cd/v3/util/lua), as an argocd-cm
//! customization and as a built-in check, which must agree.

use serde::Deserialize;
use serde_json::Value;

use super::gotool::{go_tool, run_go_tool};

/// The check in the layout of Argo CD's resource_customizations/<group>/<kind>.
pub const CHECK_DIR: &str = "docs/argocd/cce.upgradewatch.io/UpgradeWorkflowWatch";
pub const SCRIPT: &str = "docs/argocd/cce.upgradewatch.io/UpgradeWorkflowWatch/health.lua";

#[derive(Deserialize)]
struct Health {
    status: String,
    message: String,
}

/// The binary of tests/argocd-health.
pub fn engine() -> std::path::PathBuf {
    go_tool("argocd-health")
}

/// Runs the health check `script` (a path) on `obj`; the engine's stderr on failure.
pub fn try_health_with(script: &std::path::Path, obj: &Value) -> Result<(String, String), String> {
    let out = run_go_tool(
        "argocd-health",
        &["judge".as_ref(), script.as_os_str()],
        &Value::Array(vec![obj.clone()]),
    );
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let health: Health = serde_json::from_slice(&out.stdout).expect("a health line");
    Ok((health.status, health.message))
}

/// The (status, message) Argo CD gives `obj` with the project's health check.
pub fn health(obj: &Value) -> (String, String) {
    try_health_with(&super::repo_path(SCRIPT), obj)
        .unwrap_or_else(|e| panic!("Argo CD's Lua engine failed: {e}"))
}

//! Runs the Argo CD health check on objects with Argo CD's own Lua engine
//! (tests/argocd-health: github.com/argoproj/argo-cd/v3/util/lua), as an argocd-cm
//! customization and as a built-in check, which must agree.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value;

use super::gotool::go_tool;

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
    let mut child = Command::new(engine())
        .arg("judge")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run argocd-health");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(Value::Array(vec![obj.clone()]).to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("argocd-health output");
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

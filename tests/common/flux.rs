//! What Flux's kustomize-controller makes of an object, judged by Flux's own Go packages
//! (tests/flux-health): kstatus, its default health check, and the `healthCheckExprs`
//! recipe docs/gitops.md recommends.

use serde::Deserialize;
use serde_json::{Value, json};

use super::gotool::run_go_tool;
use super::repo_path;

/// Flux's two verdicts on one object: kstatus statuses such as Current, InProgress,
/// Failed or Unknown (an expression that could not be evaluated; `message` says why).
#[derive(Debug, Deserialize)]
pub struct Flux {
    pub kstatus: String,
    pub exprs: String,
    pub message: String,
}

/// The YAML blocks of docs/gitops.md.
pub fn guide_yaml_blocks() -> Vec<String> {
    let guide = std::fs::read_to_string(repo_path("docs/gitops.md")).expect("read docs/gitops.md");
    guide
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default().to_string())
        .collect()
}

/// The `healthCheckExprs` of the Kustomization docs/gitops.md recommends.
pub fn recipe() -> Value {
    let block = guide_yaml_blocks()
        .into_iter()
        .find(|b| b.contains("healthCheckExprs:"))
        .expect("a yaml block with healthCheckExprs in docs/gitops.md");
    let doc: Value = serde_yaml::from_str(&block).expect("parse the healthCheckExprs block");
    assert_eq!(
        doc["kind"], "Kustomization",
        "the recipe is a whole Kustomization"
    );
    let exprs = doc["spec"]["healthCheckExprs"].clone();
    assert_eq!(exprs[0]["kind"], "UpgradeWorkflowWatch");
    assert_eq!(exprs[0]["apiVersion"], "cce.upgradewatch.io/v1alpha1");
    exprs
}

/// Flux's verdicts on each of `objects`, in order.
pub fn flux_all(objects: &[Value]) -> Vec<Flux> {
    let input = json!({"healthCheckExprs": recipe(), "objects": objects});
    let out = run_go_tool("flux-health", &[], &input);
    assert!(
        out.status.success(),
        "flux-health: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<Flux> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a verdict"))
        .collect();
    assert_eq!(verdicts.len(), objects.len());
    verdicts
}

/// Flux's verdicts on `obj`.
pub fn flux(obj: &Value) -> Flux {
    flux_all(std::slice::from_ref(obj))
        .pop()
        .expect("one verdict")
}

//! The commands the chart and node suites run: helm (the plane's, `CCE_UW_HELM`), the
//! project's hack/ scripts, and the loopback OCI registry they push the chart to.

use std::process::{Command, Output};

use super::{repo_path, text};

/// Stdout of a command that must succeed.
pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// helm, as the plane's environment names it.
pub fn helm(args: &[&str]) -> Output {
    let bin = std::env::var("CCE_UW_HELM").unwrap_or_else(|_| "helm".into());
    Command::new(&bin).args(args).output().unwrap_or_else(|e| {
        panic!("run {bin}: {e} (`eval \"$(hack/control-plane.sh env)\"` sets CCE_UW_HELM)")
    })
}

/// A script of hack/ that must succeed; its stdout. A chart it packages goes to a directory
/// of this call's own, not the shared target/chart.
pub fn hack(script: &str, args: &[&str]) -> String {
    let path = repo_path("hack").join(script);
    let chart_out = tempfile::tempdir().expect("chart output dir");
    let out = Command::new(&path)
        .args(args)
        .env("CCE_UW_CHART_OUT", chart_out.path())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    ok(out, script)
}

/// go-containerregistry's registry on loopback (hack/loopback-registry.sh), as the image
/// test runs it; stopped on drop.
pub struct LoopbackRegistry {
    dir: tempfile::TempDir,
    pub addr: String,
}

impl LoopbackRegistry {
    pub fn start() -> LoopbackRegistry {
        let dir = tempfile::tempdir().expect("registry dir");
        let addr = hack(
            "loopback-registry.sh",
            &["start", &dir.path().display().to_string()],
        )
        .trim()
        .to_string();
        LoopbackRegistry { dir, addr }
    }
}

impl Drop for LoopbackRegistry {
    fn drop(&mut self) {
        let _ = Command::new(repo_path("hack/loopback-registry.sh"))
            .args(["stop", &self.dir.path().display().to_string()])
            .status();
    }
}

//! kubectl, as a user runs it against the plane.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::eventually::within;
use super::text;

fn bin() -> String {
    std::env::var("CCE_UW_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// kubectl from the control plane's cache (CCE_UW_KUBECTL), else from PATH.
pub fn kubectl(args: &[&str]) -> Output {
    let bin = bin();
    Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"))
}

/// kubectl with `stdin` piped in.
pub fn kubectl_stdin(args: &[&str], stdin: &str) -> Output {
    let bin = bin();
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("kubectl output")
}

/// Runs kubectl until it succeeds, for up to 30 s (discovery and OpenAPI lag behind a new
/// CRD); the last run when it never does.
pub async fn kubectl_until_success(args: &[&str]) -> Output {
    let mut last = None;
    let _ = within(
        &format!("kubectl {}", args.join(" ")),
        Duration::from_secs(30),
        Duration::from_millis(500),
        || {
            let out = kubectl(args);
            let outcome = if out.status.success() {
                Ok(())
            } else {
                Err(text(&out.stderr))
            };
            last = Some(out);
            async move { outcome }
        },
    )
    .await;
    last.expect("kubectl ran")
}

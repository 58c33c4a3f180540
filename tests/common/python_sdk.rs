//! Huawei's official Python SDK (huaweicloudsdkcce and huaweicloudsdkcore, pinned), unchanged,
//! run on a job by `tests/sdk/cce_conformance.py` from the virtualenv `hack/python-sdk.sh`
//! creates. Without the venv a test using it fails (it never skips).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

const SDK_VERSION: &str = "3.1.219";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/cce_conformance.py");

/// Where `hack/python-sdk.sh` puts the venv (same defaults as the script).
fn venv() -> PathBuf {
    if let Some(path) = std::env::var_os("CCE_UW_PY_SDK_VENV") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("CCE_UW_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("cce-upgrade-watch"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cce-upgrade-watch"))
        })
        .expect("HOME, XDG_CACHE_HOME or CCE_UW_CACHE must be set");
    cache.join(format!("py-sdk-{SDK_VERSION}"))
}

fn python() -> PathBuf {
    let venv = venv();
    let complete = std::fs::read_to_string(venv.join(".complete")).unwrap_or_default();
    if complete.trim() != SDK_VERSION {
        panic!(
            "the Python SDK virtualenv is missing or incomplete at {}: run hack/python-sdk.sh \
             (it installs huaweicloudsdkcce=={SDK_VERSION} from PyPI into that venv)",
            venv.display()
        );
    }
    venv.join("bin/python")
}

/// Runs the SDK script on a job; returns its `calls` results.
pub fn run_sdk(job: &Value) -> Vec<Value> {
    // Importing the SDK writes ~/.huaweicloud/application_id: keep it out of the real HOME.
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(python())
        .arg(SCRIPT)
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the SDK script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(job.to_string().as_bytes())
        .expect("write job");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "SDK script failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("SDK script output is JSON");
    parsed["calls"].as_array().cloned().expect("calls")
}

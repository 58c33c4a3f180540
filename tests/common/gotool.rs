//! The Go programs under tests/ that run another project's own code (Flux's health
//! packages, Argo CD's Lua engine), each built once per test binary.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use super::repo_path;

/// The binary of the Go module in `tests/<dir>`, built into Cargo's temp dir on first use.
pub fn go_tool(dir: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(bin) = built.get(dir) {
        return bin.clone();
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(repo_path(&format!("tests/{dir}")))
        .env("GOTOOLCHAIN", "local")
        .status()
        .unwrap_or_else(|e| panic!("cannot run go ({e}): tests/{dir} needs Go"));
    assert!(status.success(), "go build tests/{dir} failed");
    built.insert(dir.to_string(), out.clone());
    out
}

/// Runs the tool of `tests/<dir>` with `args` and `input` (JSON) on its stdin.
pub fn run_go_tool(dir: &str, args: &[&std::ffi::OsStr], input: &serde_json::Value) -> Output {
    let mut child = Command::new(go_tool(dir))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {dir}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{dir} output: {e}"))
}

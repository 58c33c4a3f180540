//! Sets CCE_UW_REVISION, the source revision of the build-info metric: the variable of that
//! name when the build sets it (an image build without the git history), else the commit
//! git reports for the source tree, else "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CCE_UW_REVISION");
    let revision = std::env::var("CCE_UW_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            // A new commit changes the branch's ref (or HEAD itself when detached).
            let branch = git(&["symbolic-ref", "-q", "HEAD"]);
            for path in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
                // A path that does not exist would rerun this script on every build.
                if let Some(p) = git(&["rev-parse", "--git-path", path])
                    && std::path::Path::new(&p).exists()
                {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CCE_UW_REVISION={revision}");
}

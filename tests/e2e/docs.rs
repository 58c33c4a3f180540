//! Every command in the docs runs as written (CONTRIBUTING.md, "Commands in the docs").
//!
//! The shell blocks of README.md, CONTRIBUTING.md and docs/*.md run in document order, in
//! bash, against a private control plane into which README's install puts the chart from a
//! registry on loopback. A block whose info string carries a `norun:<why>` mark is checked
//! instead: each program it calls exists and accepts the arguments given (`--help` after
//! them exits 0: kubectl, helm, crane, cce-upgrade-watch and cce-sim all refuse an unknown
//! flag even then), each `make` target is in the Makefile and each `hack/` script is there.
//! In `console` blocks (captures), the `$ ` lines are checked the same way, and a captured
//! `kubectl get` is run on the plane: the columns it prints must be the capture's.
//!
//! What the test adapts, and only this: `$REGISTRY` is the loopback registry, so a `helm`
//! wrapper adds `--plain-http` to commands naming `oci://`; the simulator's built-in keys
//! stand in for `CLOUD_SDK_AK`/`CLOUD_SDK_SK`; the working directory is a scratch directory
//! holding links to the checkout's files; after each block the test waits until the CRDs
//! that exist are Established (a person typing the next command gives the API server that
//! second); and between README and the other pages it applies examples/watch-region.yaml in
//! team-a, whose watch `prod-upgrade` the other pages' commands name. install.md runs last:
//! it uninstalls the release the others use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common;
use common::commands::{LoopbackRegistry, hack};
use common::plane::PrivatePlane;
use common::{repo_path, text};

/// Why a block may not run here; the only marks there are.
const MARKS: &[(&str, &str)] = &[
    (
        "cce",
        "Huawei Cloud: real credentials and a real CCE cluster",
    ),
    ("registry", "a registry to log in and push to"),
    ("cluster", "a cluster whose Pods run"),
    ("slow", "minutes or more"),
    ("server", "a server that runs until stopped"),
    ("upgrade", "an upgrade to wait for"),
    ("destructive", "to delete what the other blocks use"),
];

const SHELLS: &[&str] = &["sh", "bash", "shell"];

/// The pages, in the order their blocks run.
fn pages() -> Vec<String> {
    let mut docs: Vec<String> = std::fs::read_dir(repo_path("docs"))
        .expect("docs/")
        .map(|e| {
            e.expect("docs/ entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .filter(|n| n.ends_with(".md") && n != "install.md")
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    let mut all = vec!["README.md".to_string(), "CONTRIBUTING.md".to_string()];
    all.extend(docs);
    all.push("docs/install.md".to_string());
    all
}

/// A fenced block: its info string's first word, its mark, its text (the fence's
/// indentation taken off) and the line of its opening fence.
#[derive(Debug, Clone)]
struct Block {
    page: String,
    line: usize,
    lang: String,
    mark: Option<String>,
    body: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.page, self.line)
    }
}

fn blocks(page: &str, doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String)> = None;
    let mut body = String::new();
    for (i, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((i + 1, indent, info.trim().to_string()));
                    body.clear();
                }
            }
            Some((start, ind, info)) => {
                if trimmed == "```" {
                    let mut words = info.split_whitespace();
                    let lang = words.next().unwrap_or("").to_string();
                    let mark = words
                        .next()
                        .map(|w| w.strip_prefix("norun:").unwrap_or(w).to_string());
                    out.push(Block {
                        page: page.to_string(),
                        line: *start,
                        lang,
                        mark,
                        body: body.clone(),
                    });
                    open = None;
                } else {
                    let cut = line.len().min(*ind);
                    let keep = if line[..cut].trim().is_empty() {
                        &line[cut..]
                    } else {
                        line.trim_start()
                    };
                    body.push_str(keep);
                    body.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{page}: a fenced block is never closed");
    out
}

/// One shell word: its text without quotes, or an operator (`|`, `&&`, `;`, ...).
#[derive(Debug, Clone, PartialEq)]
enum Word {
    Text(String),
    Op(String),
}

/// Splits one logical command line into words, as far as these docs need: quotes,
/// backslashes, `$(...)` and `<(...)` kept whole, comments dropped.
fn words(line: &str) -> Vec<Word> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    let flush = |cur: &mut String, in_word: &mut bool, out: &mut Vec<Word>| {
        if *in_word {
            out.push(Word::Text(std::mem::take(cur)));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => flush(&mut cur, &mut in_word, &mut out),
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    cur.push(chars[i]);
                    i += 1;
                }
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    cur.push(chars[i]);
                    i += 1;
                }
            }
            '\\' if i + 1 < chars.len() => {
                in_word = true;
                cur.push(chars[i + 1]);
                i += 1;
            }
            '$' | '<' if i + 1 < chars.len() && chars[i + 1] == '(' => {
                in_word = true;
                let mut depth = 0;
                while i < chars.len() {
                    cur.push(chars[i]);
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            '|' | '&' | ';' => {
                flush(&mut cur, &mut in_word, &mut out);
                let mut op = c.to_string();
                if i + 1 < chars.len() && (chars[i + 1] == '|' || chars[i + 1] == '&') {
                    op.push(chars[i + 1]);
                    i += 1;
                }
                out.push(Word::Op(op));
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
        i += 1;
    }
    flush(&mut cur, &mut in_word, &mut out);
    out
}

/// The simple commands of a shell text: continuation lines joined, here-documents and
/// comments left out, pipelines and lists split; each as its words.
fn commands(body: &str) -> Vec<Vec<String>> {
    let mut logical = Vec::new();
    let mut lines = body.lines();
    let mut pending = String::new();
    while let Some(line) = lines.next() {
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        if let Some(pos) = full.find("<<") {
            let delim = full[pos + 2..]
                .trim_start_matches('-')
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(|c| c == '\'' || c == '"')
                .to_string();
            for rest in lines.by_ref() {
                if rest.trim() == delim {
                    break;
                }
            }
            logical.push(full[..pos].to_string());
        } else {
            logical.push(full);
        }
    }
    let mut out = Vec::new();
    for line in logical {
        let mut cmd = Vec::new();
        for w in words(&line) {
            match w {
                Word::Text(t) => cmd.push(t),
                Word::Op(_) => {
                    if !cmd.is_empty() {
                        out.push(std::mem::take(&mut cmd));
                    }
                }
            }
        }
        if !cmd.is_empty() {
            out.push(cmd);
        }
    }
    out
}

/// A command without its leading assignments and its redirections.
fn simple(cmd: &[String]) -> Vec<String> {
    let is_assignment = |w: &str| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        })
    };
    let mut out = Vec::new();
    let mut words = cmd.iter().skip_while(|w| is_assignment(w)).peekable();
    while let Some(w) = words.next() {
        if matches!(w.as_str(), ">" | ">>" | "<" | "2>" | "2>>") {
            words.next();
        } else if (w.starts_with('>') || w.starts_with("2>")) && !w.starts_with(">(") {
        } else {
            out.push(w.clone());
        }
    }
    out
}

/// The environment the blocks run in.
struct Env {
    plane: PrivatePlane,
    _registry: LoopbackRegistry,
    registry: String,
    work: tempfile::TempDir,
    _bin: tempfile::TempDir,
    kubecache: tempfile::TempDir,
    path: String,
    help: HashMap<Vec<String>, Result<(), String>>,
}

impl Env {
    fn new() -> Env {
        let plane = PrivatePlane::up("cce-uw-docs-");
        let registry = LoopbackRegistry::start();
        hack("chart.sh", &["push", &registry.addr, "--plain-http"]);
        let addr = registry.addr.clone();

        // The checkout's files, linked into a scratch directory commands may write in.
        let work = tempfile::tempdir().expect("work dir");
        for entry in std::fs::read_dir(repo_path(".")).expect("checkout") {
            let entry = entry.expect("entry");
            let name = entry.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), work.path().join(&name)).expect("link");
        }

        // helm with --plain-http for the loopback registry; the plane's kubectl; the test
        // build's cce-upgrade-watch and cce-sim.
        let helm = std::env::var("CCE_UW_HELM").expect("CCE_UW_HELM (hack/control-plane.sh env)");
        let kubectl =
            std::env::var("CCE_UW_KUBECTL").expect("CCE_UW_KUBECTL (hack/control-plane.sh env)");
        let bin = tempfile::tempdir().expect("bin dir");
        let wrapper = bin.path().join("helm");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n# The docs' registry is on loopback, over plain HTTP.\ncase \"$*\" in *oci://*) exec '{helm}' \"$@\" --plain-http ;; esac\nexec '{helm}' \"$@\"\n"
            ),
        )
        .expect("write helm wrapper");
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        for (name, target) in [
            ("kubectl", kubectl.as_str()),
            ("cce-upgrade-watch", env!("CARGO_BIN_EXE_cce-upgrade-watch")),
            ("cce-sim", env!("CARGO_BIN_EXE_cce-sim")),
        ] {
            std::os::unix::fs::symlink(target, bin.path().join(name)).expect("link binary");
        }
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Env {
            plane,
            _registry: registry,
            registry: addr,
            work,
            _bin: bin,
            kubecache: tempfile::tempdir().expect("kubectl cache"),
            path,
            help: HashMap::new(),
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.work.path())
            .env("PATH", &self.path)
            .env("KUBECONFIG", self.plane.kubeconfig())
            .env("KUBECACHEDIR", self.kubecache.path())
            .env("REGISTRY", &self.registry)
            .env("CLOUD_SDK_AK", cce_upgrade_watch::sim::builtin::ACCESS_KEY)
            .env("CLOUD_SDK_SK", cce_upgrade_watch::sim::builtin::SECRET_KEY)
            .env_remove("CCE_UW_KUBECTL")
            .env_remove("CCE_UW_HELM");
        c
    }

    fn bash(&self, script: &str) -> Output {
        self.command("bash")
            .args(["-euo", "pipefail", "-c", script])
            .output()
            .expect("run bash")
    }

    /// Waits until every CRD there is has been Established.
    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.bash(
                "kubectl get crd -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Established\")].status}{\"\\n\"}{end}'",
            );
            let listed = text(&out.stdout);
            if out.status.success() && listed.lines().all(|l| l.ends_with("=True")) {
                return;
            }
            assert!(Instant::now() < deadline, "CRDs not Established: {listed}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Checks that the program of `cmd` exists and takes its arguments.
    fn check(&mut self, cmd: &[String]) -> Result<(), String> {
        let cmd = simple(cmd);
        let Some(program) = cmd.first() else {
            return Ok(());
        };
        let args = &cmd[1..];
        match program.as_str() {
            "export" | "eval" | "cd" | "for" | "do" | "done" | "echo" | "printf" | "true" => Ok(()),
            "make" => {
                let makefile = std::fs::read_to_string(repo_path("Makefile")).expect("Makefile");
                for target in args
                    .iter()
                    .filter(|a| !a.starts_with('-') && !a.contains('='))
                {
                    if !makefile
                        .lines()
                        .any(|l| l.starts_with(&format!("{target}:")))
                    {
                        return Err(format!("`make {target}`: no such target in the Makefile"));
                    }
                }
                Ok(())
            }
            "cargo" if args.first().is_some_and(|a| a == "run") => {
                let bin = args
                    .iter()
                    .position(|a| a == "--bin")
                    .and_then(|i| args.get(i + 1))
                    .map_or("cce-upgrade-watch", String::as_str);
                let rest: Vec<String> = args
                    .iter()
                    .skip_while(|a| *a != "--")
                    .skip(1)
                    .cloned()
                    .collect();
                let mut as_bin = vec![bin.to_string()];
                as_bin.extend(rest);
                self.check(&as_bin)
            }
            p if p.starts_with("hack/") => {
                let path = repo_path(p);
                let executable = std::fs::metadata(&path).is_ok_and(|m| {
                    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
                });
                if executable {
                    Ok(())
                } else {
                    Err(format!("{p}: no such executable script"))
                }
            }
            "kubectl" | "helm" | "cce-upgrade-watch" | "cce-sim" | "crane" | "$CRANE" => {
                let tool = if program == "$CRANE" || program == "crane" {
                    let out = Command::new(repo_path("hack/image-tools.sh"))
                        .args(["path", "crane"])
                        .output()
                        .expect("hack/image-tools.sh path crane");
                    let path = text(&out.stdout).trim().to_string();
                    if !Path::new(&path).exists() {
                        // Not built on this machine: image-tools builds it on demand, as the
                        // docs say; its flags are then checked where it is built.
                        return Ok(());
                    }
                    path
                } else {
                    program.clone()
                };
                let mut key = vec![tool.clone()];
                key.extend(args.iter().cloned());
                if let Some(known) = self.help.get(&key) {
                    return known.clone();
                }
                let out = self
                    .command(&tool)
                    .args(args)
                    .arg("--help")
                    .output()
                    .map_err(|e| format!("{tool}: {e}"))?;
                let verdict = if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "`{} {} --help` refused the arguments: {}",
                        program,
                        args.join(" "),
                        text(&out.stderr).trim()
                    ))
                };
                self.help.insert(key, verdict.clone());
                verdict
            }
            p => {
                let out = self.bash(&format!("command -v {p}"));
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!("`{p}`: no such program"))
                }
            }
        }
    }
}

/// The captured header's columns against those kubectl prints now.
fn same_columns(captured: &str, now: &str) -> bool {
    let cols = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    cols(captured) == cols(now)
}

/// What a run of the docs did.
struct Tally {
    failures: Vec<String>,
    ran: usize,
    checked: usize,
    captures: usize,
}

/// Runs or checks every block of every page, then the captures (their objects exist by
/// then); the failures, each with its page and line.
fn run_docs(env: &mut Env, pages: &[(String, String)]) -> Tally {
    let mut t = Tally {
        failures: Vec::new(),
        ran: 0,
        checked: 0,
        captures: 0,
    };
    let mut captures = Vec::new();
    for (page, doc) in pages {
        for block in blocks(page, doc) {
            if block.lang == "console" {
                captures.push(block);
                continue;
            }
            if !SHELLS.contains(&block.lang.as_str()) {
                continue;
            }
            match block.mark.as_deref() {
                None => {
                    t.ran += 1;
                    let out = env.bash(&block.body);
                    if !out.status.success() {
                        t.failures.push(format!(
                            "{}: the block failed ({}):\n{}--- stdout\n{}--- stderr\n{}",
                            block.at(),
                            out.status,
                            block.body,
                            text(&out.stdout),
                            text(&out.stderr)
                        ));
                    }
                    env.settle();
                }
                Some(mark) if MARKS.iter().any(|(m, _)| *m == mark) => {
                    t.checked += 1;
                    for cmd in commands(&block.body) {
                        if let Err(e) = env.check(&cmd) {
                            t.failures.push(format!("{}: {e}", block.at()));
                        }
                    }
                }
                Some(other) => t.failures.push(format!(
                    "{}: unknown mark `{other}` (the marks: {})",
                    block.at(),
                    MARKS
                        .iter()
                        .map(|(m, why)| format!("norun:{m} ({why})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        if page == "README.md" {
            // The watch the other pages' commands name.
            let out = env.bash("kubectl -n team-a apply -f examples/watch-region.yaml");
            if !out.status.success() {
                t.failures.push(format!(
                    "after README.md: examples/watch-region.yaml: {}",
                    text(&out.stderr)
                ));
            }
        }
    }
    for block in captures {
        t.captures += 1;
        let lines: Vec<&str> = block.body.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(command) = line.strip_prefix("$ ") else {
                continue;
            };
            for cmd in commands(command) {
                if let Err(e) = env.check(&cmd) {
                    t.failures
                        .push(format!("{}: capture `{command}`: {e}", block.at()));
                }
            }
            let words = simple(&commands(command).concat());
            let is_get =
                words.first().is_some_and(|p| p == "kubectl") && words.iter().any(|w| w == "get");
            let header = lines.get(i + 1).copied().unwrap_or("");
            if is_get && header.starts_with("NAME ") {
                let out = env.bash(command);
                let now = text(&out.stdout);
                let now_header = now.lines().next().unwrap_or("");
                if !out.status.success() || !same_columns(header, now_header) {
                    t.failures.push(format!(
                        "{}: the capture of `{command}` has columns\n  {header}\nbut kubectl prints\n  {now_header}\n{}",
                        block.at(),
                        text(&out.stderr)
                    ));
                }
            }
        }
    }
    t
}

fn read_pages() -> Vec<(String, String)> {
    pages()
        .into_iter()
        .map(|p| {
            let doc = std::fs::read_to_string(repo_path(&p)).unwrap_or_else(|e| panic!("{p}: {e}"));
            (p, doc)
        })
        .collect()
}

#[test]
fn every_command_in_the_docs_runs_as_written_or_is_marked_and_checked() {
    let mut env = Env::new();
    let t = run_docs(&mut env, &read_pages());
    println!(
        "docs: {} blocks run, {} checked, {} captures",
        t.ran, t.checked, t.captures
    );
    assert!(t.failures.is_empty(), "{}", t.failures.join("\n\n"));
    // Something to do at all: a parser that finds no block would pass anything.
    assert!(
        t.ran >= 15 && t.checked >= 10 && t.captures >= 5,
        "the docs test found too little: {} blocks run, {} checked, {} captures",
        t.ran,
        t.checked,
        t.captures
    );
}

#[test]
fn commands_are_split_as_bash_would_for_the_checks() {
    let cmds = commands(
        "kubectl -n team-a create secret generic x \\\n  --from-env-file=<(printf 'a=%s\\n' \"$A\")\nkubectl apply -f - <<'EOF'\nkind: X\nEOF\nmake demo   # SCENARIO=x\nCRANE=$(hack/image-tools.sh build crane | tail -n1)\n\"$CRANE\" auth login h -u \"$U\" > out.txt\n",
    );
    assert_eq!(
        cmds,
        vec![
            vec![
                "kubectl",
                "-n",
                "team-a",
                "create",
                "secret",
                "generic",
                "x",
                "--from-env-file=<(printf 'a=%s\\n' \"$A\")"
            ],
            vec!["kubectl", "apply", "-f", "-"],
            vec!["make", "demo"],
            vec!["CRANE=$(hack/image-tools.sh build crane | tail -n1)"],
            vec!["$CRANE", "auth", "login", "h", "-u", "$U", ">", "out.txt"],
        ]
    );
    assert_eq!(
        simple(&cmds[4]),
        vec!["$CRANE", "auth", "login", "h", "-u", "$U"]
    );
    let doc = "x\n```sh norun:cce\nfoo\n```\n\n  ```sh\n  a \\\n    b\n  EOF\n  ```\n";
    let b = blocks("p.md", doc);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].mark.as_deref(), Some("cce"));
    assert_eq!(
        (b[1].mark.as_deref(), b[1].body.as_str()),
        (None, "a \\\n  b\nEOF\n")
    );
}

/// The test above can fail: a page whose command no longer works, whose mark is unknown,
/// whose checked command names a flag that does not exist, or whose capture shows other
/// columns, fails it, each with its page and line.
#[test]
fn a_broken_command_a_wrong_flag_an_unknown_mark_and_a_stale_capture_fail() {
    let mut env = Env::new();
    let mut pages = read_pages();
    pages.truncate(1); // README: the install and the first account and watch.
    let readme = pages[0].1.clone();
    assert!(readme.contains("--set crds.enabled=true"));
    pages[0].1 = readme.replace("--set crds.enabled=true", "--set crds.enable=true");
    let broken = "broken.md".to_string();
    pages.push((
        broken.clone(),
        [
            "```sh norun:cce",
            "cce-upgrade-watch get --region ap-southeast-1 --project-id p --cluster-id c --no-such-flag",
            "```",
            "```sh norun:someday",
            "true",
            "```",
            "```console",
            "$ kubectl -n team-a get uww",
            "NAME   CLUSTER   PHASE   AGE",
            "```",
            "```sh",
            "kubectl -n team-a get uww no-such-watch",
            "```",
        ]
        .join("\n"),
    ));
    let joined = run_docs(&mut env, &pages).failures.join("\n\n");
    for expected in [
        "README.md:",
        "crds.enable",
        &format!("{broken}:1: `cce-upgrade-watch get"),
        &format!("{broken}:4: unknown mark `someday`"),
        &format!("{broken}:7: the capture of `kubectl -n team-a get uww` has columns"),
        &format!("{broken}:11: the block failed"),
    ] {
        assert!(
            joined.contains(expected),
            "expected a failure with {expected:?} in:\n{joined}"
        );
    }
}

/// GitHub's anchor for a heading: lower case, punctuation dropped but `-` and `_`, spaces
/// turned into `-`.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(doc: &str) -> Vec<String> {
    let mut fenced = false;
    doc.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            !fenced
        })
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#').trim()))
        .collect()
}

/// Every relative link of the docs leads to a file of the checkout, and every `#anchor` to
/// a heading of its page: moving a section (as README's move to docs/ did) cannot leave a
/// link behind.
#[test]
fn every_link_between_the_docs_leads_somewhere() {
    let mut pages = pages();
    pages.push("SECURITY.md".to_string());
    let mut broken = Vec::new();
    for page in &pages {
        let doc = std::fs::read_to_string(repo_path(page)).expect("page");
        let dir = Path::new(page).parent().unwrap_or(Path::new(""));
        let mut fenced = false;
        for (n, line) in doc.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            if fenced {
                continue;
            }
            // Inline code (a regular expression in the API reference, say) holds no link.
            let prose: String = line
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(_, text)| text)
                .collect::<Vec<_>>()
                .join(" ");
            for part in prose.split("](").skip(1) {
                let Some(target) = part.split(')').next() else {
                    continue;
                };
                if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                    continue;
                }
                let (path, frag) = target.split_once('#').unwrap_or((target, ""));
                let file = if path.is_empty() {
                    PathBuf::from(page)
                } else {
                    normalize(&dir.join(path))
                };
                let name = file.display().to_string();
                let at = format!("{page}:{}: ({target})", n + 1);
                if !repo_path(&name).exists() {
                    broken.push(format!("{at}: no file {name}"));
                } else if !frag.is_empty() && name.ends_with(".md") {
                    let linked = std::fs::read_to_string(repo_path(&name)).expect("linked page");
                    if !anchors(&linked).iter().any(|a| a == frag) {
                        broken.push(format!("{at}: no heading #{frag} in {name}"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// `a/../b` as `b`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

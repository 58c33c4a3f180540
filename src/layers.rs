//! The dependency direction between the operator's layers, kept by a test rather than by
//! review: every `crate::` path (and every `super::` path, resolved) in every file under
//! `src/` but the simulator's (`sim::layers` checks those) is compared with the table below, the pure layers are searched for clients,
//! clocks, randomness and the async runtime, and the files' import graph must have no
//! cycle. docs/architecture.md draws the same table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module prefix → layer; the longest prefix wins.
const LAYER_OF: &[(&str, &str)] = &[
    ("duration", "duration"),
    ("failure", "failure"),
    ("limits", "limits"),
    ("cce", "cce"),
    ("crd", "crd"),
    ("diagnosis::findings", "findings"),
    ("diagnosis", "diagnosis"),
    ("reconciler::core", "core"),
    ("reconciler", "reconciler"),
    ("credentials::admission", "admission"),
    ("credentials", "credentials"),
    ("metrics", "metrics"),
    ("runtime", "runtime"),
    ("get::render", "render"),
    ("get", "get"),
    ("run", "run"),
    ("reference", "reference"),
    ("cli", "cli"),
    ("layers", "layers"),
    ("sim", "sim"),
];

/// Layer → the layers it may use besides itself. Nothing may use `run`, `cli` or `sim`
/// except as listed.
const MAY_USE: &[(&str, &[&str])] = &[
    ("duration", &[]),
    ("failure", &[]),
    ("limits", &[]),
    ("cce", &["failure", "limits"]),
    ("crd", &["cce", "duration"]),
    ("findings", &["cce", "crd", "limits", "duration", "failure"]),
    (
        "core",
        &["cce", "crd", "limits", "duration", "failure", "findings"],
    ),
    ("admission", &["crd", "failure"]),
    (
        "credentials",
        &["admission", "cce", "crd", "duration", "failure"],
    ),
    ("diagnosis", &["cce", "crd", "findings", "failure"]),
    ("metrics", &["cce"]),
    ("runtime", &["metrics"]),
    (
        "reconciler",
        &[
            "core",
            "credentials",
            "diagnosis",
            "findings",
            "metrics",
            "runtime",
            "cce",
            "crd",
            "limits",
            "duration",
            "failure",
        ],
    ),
    (
        "render",
        &[
            "cce",
            "diagnosis",
            "findings",
            "crd",
            "duration",
            "failure",
            "limits",
        ],
    ),
    (
        "get",
        &[
            "render",
            "cce",
            "credentials",
            "diagnosis",
            "findings",
            "crd",
            "limits",
            "duration",
            "failure",
        ],
    ),
    (
        "run",
        &[
            "reconciler",
            "core",
            "credentials",
            "diagnosis",
            "findings",
            "metrics",
            "runtime",
            "cce",
            "crd",
            "limits",
            "duration",
            "failure",
        ],
    ),
    ("reference", &["crd", "core", "failure"]),
    (
        "cli",
        &["run", "get", "crd", "core", "failure", "reference"],
    ),
    ("sim", &["cce", "duration"]),
    // The test in this file names paths as data; its own imports are std only.
    ("layers", &["cce", "reconciler"]),
];

/// Layers that must stay pure, and what they may not name outside their tests.
const PURE: &[&str] = &[
    "core",
    "findings",
    "render",
    "failure",
    "limits",
    "duration",
    "admission",
    "reference",
];
const IMPURE_NAMES: &[&str] = &[
    "tokio::",
    "reqwest::",
    "hyper::",
    "rand::",
    "kube::Client",
    "kube::Api",
    "kube::api::",
    "::now(",
    "std::fs",
    "std::net",
    "std::thread",
    "std::process",
    "std::env",
];

struct Source {
    module: String,
    layer: &'static str,
    /// Every `crate::` path the file names, with `super::` resolved, outside comments.
    uses: BTreeSet<String>,
    /// The file's text before its `#[cfg(test)]` module.
    production: String,
}

fn layer_of(module: &str) -> Option<&'static str> {
    LAYER_OF
        .iter()
        .filter(|(prefix, _)| module == *prefix || module.starts_with(&format!("{prefix}::")))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, layer)| *layer)
}

/// `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`; the crate roots and binaries belong to `cli`
/// and `sim`.
fn module_of(relative: &Path) -> String {
    let text = relative.to_string_lossy().replace('\\', "/");
    match text.as_str() {
        "lib.rs" | "main.rs" => return "cli".into(),
        t if t.starts_with("bin/") => return "sim".into(),
        _ => {}
    }
    let text = text.trim_end_matches(".rs").trim_end_matches("/mod");
    text.replace('/', "::")
}

fn is_mod_rs(relative: &Path) -> bool {
    relative.file_name().is_some_and(|n| n == "mod.rs")
}

/// The `crate::…` paths in `line`, and its `super::…` paths made absolute.
fn paths_in(line: &str, module: &str, mod_rs: bool, out: &mut BTreeSet<String>) {
    let parent: Vec<&str> = {
        let mut parts: Vec<&str> = module.split("::").collect();
        if !mod_rs {
            parts.pop();
        }
        parts
    };
    for (marker, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = line;
        while let Some(at) = rest.find(marker) {
            let before = rest[..at].chars().last();
            rest = &rest[at + marker.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let path = path.trim_end_matches(':');
            if path.is_empty() || path == "super" || path.starts_with("super::") {
                continue;
            }
            let mut full = base.clone();
            full.extend(path.split("::"));
            out.insert(full.join("::"));
        }
    }
}

fn read_sources() -> Vec<Source> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        // The simulator keeps its own graph acyclic and within cce and duration
        // (sim::layers); here it counts only as a layer nothing else may use.
        .filter(|path| !path.starts_with(root.join("sim")))
        .map(|path| {
            let relative = path.strip_prefix(&root).expect("under src").to_path_buf();
            let module = module_of(&relative);
            let layer = layer_of(&module).unwrap_or_else(|| {
                panic!("{} is in no layer: add it to LAYER_OF", relative.display())
            });
            let text = std::fs::read_to_string(&path).expect("read file");
            // Tests may reach across layers (a `get` test parses the whole command line).
            let production = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default()
                .to_string();
            let mut uses = BTreeSet::new();
            for line in production.lines() {
                let code = line.split("//").next().unwrap_or_default();
                paths_in(code, &module, is_mod_rs(&relative), &mut uses);
            }
            Source {
                module,
                layer,
                uses,
                production,
            }
        })
        .collect()
}

/// Every use that crosses into a layer its own may not use, as `module -> path`.
fn crossings(sources: &[Source]) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = MAY_USE.iter().copied().collect();
    let mut found = Vec::new();
    for source in sources {
        let may = allowed
            .get(source.layer)
            .unwrap_or_else(|| panic!("layer {} has no row in MAY_USE", source.layer));
        for path in &source.uses {
            let Some(target) = layer_of(path) else {
                continue;
            };
            if target != source.layer && !may.contains(&target) {
                found.push(format!(
                    "{} ({}) -> {path} ({target})",
                    source.module, source.layer
                ));
            }
        }
    }
    found
}

/// The module a path lands in: its longest prefix that is a file.
fn file_of<'a>(path: &str, modules: &'a BTreeSet<&str>) -> Option<&'a str> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find_map(|candidate| modules.get(candidate.as_str()).copied())
}

/// One cycle in the files' import graph, if any.
fn a_cycle(sources: &[Source]) -> Option<Vec<String>> {
    let modules: BTreeSet<&str> = sources.iter().map(|s| s.module.as_str()).collect();
    let edges: BTreeMap<&str, BTreeSet<&str>> = sources
        .iter()
        .map(|s| {
            let targets = s
                .uses
                .iter()
                .filter_map(|p| file_of(p, &modules))
                .filter(|t| *t != s.module && !s.module.starts_with(&format!("{t}::")))
                .collect();
            (s.module.as_str(), targets)
        })
        .collect();
    // Depth-first search with the path on a stack; a node on the path seen again closes a
    // cycle.
    let mut done = BTreeSet::new();
    for start in edges.keys() {
        let mut path: Vec<&str> = Vec::new();
        if let Some(cycle) = visit(start, &edges, &mut path, &mut done) {
            return Some(cycle);
        }
    }
    None
}

fn visit<'a>(
    node: &'a str,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    path: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| *n == node) {
        let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node);
    for next in edges.get(node).into_iter().flatten() {
        if let Some(cycle) = visit(next, edges, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node);
    None
}

#[test]
fn every_file_uses_only_the_layers_its_own_may_use() {
    let found = crossings(&read_sources());
    assert!(
        found.is_empty(),
        "uses that cross the layer table in src/layers.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_pure_layers_name_no_client_clock_randomness_or_runtime() {
    let mut found = Vec::new();
    for source in read_sources().iter().filter(|s| PURE.contains(&s.layer)) {
        for name in IMPURE_NAMES {
            if source.production.contains(name) {
                found.push(format!("{} names {name}", source.module));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_files_import_no_cycle() {
    let sources = read_sources();
    if let Some(cycle) = a_cycle(&sources) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn a_new_crossing_or_cycle_is_caught() {
    let mut sources = read_sources();
    let core = sources
        .iter_mut()
        .find(|s| s.module == "reconciler::core::decide")
        .expect("decide");
    core.uses.insert("reconciler::fetch::Fetcher".into());
    assert_eq!(
        crossings(&sources),
        ["reconciler::core::decide (core) -> reconciler::fetch::Fetcher (reconciler)"]
    );
    let limits = sources
        .iter_mut()
        .find(|s| s.module == "limits")
        .expect("limits");
    limits
        .uses
        .insert("reconciler::core::decide::decide".into());
    let cycle = a_cycle(&sources).expect("a cycle through limits");
    assert!(cycle.contains(&"limits".to_string()), "{cycle:?}");
}

#[test]
fn super_paths_resolve_from_the_files_module() {
    let mut out = BTreeSet::new();
    paths_in(
        "use super::apply::X; use crate::cce::model::Workflow;",
        "reconciler::observe",
        false,
        &mut out,
    );
    paths_in("use super::fetch;", "reconciler", true, &mut out);
    assert_eq!(
        out.into_iter().collect::<Vec<_>>(),
        [
            "cce::model::Workflow",
            "reconciler::apply::X",
            "reconciler::fetch"
        ]
    );
}

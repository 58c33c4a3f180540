//! The simulator's module graph as its source says it: for every file under `src/sim/`,
//! which other files it uses — through `use` declarations and through paths in code
//! (`crate::sim::…`, `super::…`, `self::…`, a child module, a name a `use` bound, a path in
//! a string such as serde's `serialize_with`) — and which of the operator's modules it
//! reaches (`crate::…`). The tests fail on a cycle between files, printing it, and on any
//! operator module but `crate::cce` and `crate::duration`. Test-only code (`#[cfg(test)]`
//! items and files) is left out: tests may use any part of the simulator. Built only for
//! tests; pure but for reading the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The operator's modules the simulator may use.
const OPERATOR_ALLOWED: [&str; 2] = ["cce", "duration"];

/// A module as a path from the crate root, such as `["sim", "iam", "server"]`.
type ModPath = Vec<String>;

/// What the source of the simulator says about its modules.
#[derive(Debug, Default)]
struct Graph {
    /// Each file's module, with the files it uses.
    uses: BTreeMap<String, BTreeSet<String>>,
    /// Each file's module, with the operator modules it uses.
    operator: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
    Str(String),
}

/// Rust source as the tokens that matter here: comments, numbers, character literals and
/// lifetimes dropped, strings kept apart so that what they say is not read as code.
fn lex(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let ident_start = |ch: char| ch.is_alphabetic() || ch == '_';
    let ident_char = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some((text, next)) = raw_string(&c, i) {
            out.push(Tok::Str(text));
            i = next;
        } else if ch == '"' || (ch == 'b' && at(i + 1) == '"') {
            i += if ch == 'b' { 2 } else { 1 };
            let mut text = String::new();
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                text.push(at(i));
                i += 1;
            }
            out.push(Tok::Str(text));
            i += 1;
        } else if ch == '\'' {
            i = skip_quote(&c, i);
        } else if ch == 'r' && at(i + 1) == '#' && ident_start(at(i + 2)) {
            let start = i + 2;
            i = start;
            while ident_char(at(i)) {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else if ident_start(ch) {
            let start = i;
            while ident_char(at(i)) {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else if ch.is_ascii_digit() {
            while ident_char(at(i)) || (at(i) == '.' && at(i + 1).is_ascii_digit()) {
                i += 1;
            }
        } else if ch == ':' && at(i + 1) == ':' {
            out.push(Tok::Sep);
            i += 2;
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

/// A raw string (`r"…"`, `r#"…"#`, `br"…"`) starting at `i`: its text and where it ends.
fn raw_string(c: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&h| h == '#').count();
    j += hashes;
    if c.get(j) != Some(&'"') {
        return None;
    }
    let start = j + 1;
    let mut k = start;
    while k < c.len() {
        if c[k] == '"'
            && c[k + 1..]
                .iter()
                .take(hashes)
                .filter(|&&h| h == '#')
                .count()
                == hashes
        {
            return Some((c[start..k].iter().collect(), k + 1 + hashes));
        }
        k += 1;
    }
    Some((c[start..].iter().collect(), c.len()))
}

/// Past a character literal or a lifetime starting at the quote `i`.
fn skip_quote(c: &[char], i: usize) -> usize {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    if at(i + 1) == '\\' {
        let mut k = i + 3;
        while k < c.len() && c[k] != '\'' {
            k += 1;
        }
        k + 1
    } else if at(i + 2) == '\'' {
        i + 3
    } else {
        let mut k = i + 1;
        while at(k).is_alphanumeric() || at(k) == '_' {
            k += 1;
        }
        k
    }
}

/// A `use` tree from `toks[*i]` on: its paths, each with the name it binds (`None` for a
/// glob).
fn use_tree(toks: &[Tok], i: &mut usize, prefix: &[String]) -> Vec<(Vec<String>, Option<String>)> {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(*i) {
            Some(Tok::Ident(name)) => {
                path.push(name.clone());
                *i += 1;
                if toks.get(*i) == Some(&Tok::Sep) {
                    *i += 1;
                    continue;
                }
                let mut bound = name.clone();
                if let (Some(Tok::Ident(kw)), Some(Tok::Ident(alias))) =
                    (toks.get(*i), toks.get(*i + 1))
                    && kw == "as"
                {
                    bound = alias.clone();
                    *i += 2;
                }
                if name == "self" {
                    path.pop();
                    if bound == "self" {
                        bound = path.last().cloned().unwrap_or_default();
                    }
                }
                return vec![(path, Some(bound))];
            }
            Some(Tok::Punct('*')) => {
                *i += 1;
                return vec![(path, None)];
            }
            Some(Tok::Punct('{')) => {
                *i += 1;
                let mut all = Vec::new();
                while !matches!(toks.get(*i), Some(Tok::Punct('}')) | None) {
                    all.extend(use_tree(toks, i, &path));
                    if toks.get(*i) == Some(&Tok::Punct(',')) {
                        *i += 1;
                    }
                }
                *i += 1;
                return all;
            }
            _ => return vec![(path, None)],
        }
    }
}

/// Whether `toks[i..]` opens `#[cfg(test)]`.
fn is_cfg_test(toks: &[Tok], i: usize) -> bool {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    toks.len() >= i + want.len() && toks[i..i + want.len()] == want
}

/// Past the item at `i` (its attributes, then up to its `;` or its closing brace); the name
/// of a module it declares without a body.
fn skip_item(toks: &[Tok], mut i: usize) -> (usize, Option<String>) {
    while toks.get(i) == Some(&Tok::Punct('#')) {
        let mut depth = 0;
        while i < toks.len() {
            match toks[i] {
                Tok::Punct('[') => depth += 1,
                Tok::Punct(']') => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    let declared = match (toks.get(i), toks.get(i + 1), toks.get(i + 2)) {
        (Some(Tok::Ident(m)), Some(Tok::Ident(name)), Some(Tok::Punct(';'))) if m == "mod" => {
            Some(name.clone())
        }
        _ => None,
    };
    let mut depth = 0;
    while i < toks.len() {
        match toks[i] {
            Tok::Punct(';') if depth == 0 => return (i + 1, declared),
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return (i + 1, declared);
                }
            }
            _ => {}
        }
        i += 1;
    }
    (i, declared)
}

/// One file's paths, resolved from the crate root, and the modules it declares for tests
/// only.
#[derive(Debug, Default)]
struct Scan {
    paths: Vec<ModPath>,
    test_only: Vec<ModPath>,
}

/// Reads one file of module `module`; `modules` are every file's module.
fn scan(module: &[String], src: &str, modules: &BTreeSet<ModPath>) -> Scan {
    let toks = lex(src);
    let mut out = Scan::default();
    let mut names: BTreeMap<String, ModPath> = BTreeMap::new();
    // Inline modules open here: their path, and the brace depth they close at.
    let mut inline: Vec<(ModPath, usize)> = vec![(module.to_vec(), usize::MAX)];
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        let here = inline.last().map(|(m, _)| m.clone()).unwrap_or_default();
        if is_cfg_test(&toks, i) {
            let (next, declared) = skip_item(&toks, i);
            if let Some(name) = declared {
                out.test_only.push([here.clone(), vec![name]].concat());
            }
            i = next;
            continue;
        }
        match &toks[i] {
            Tok::Ident(kw) if kw == "use" => {
                i += 1;
                for (path, bound) in use_tree(&toks, &mut i, &[]) {
                    if let Some(full) = resolve(&here, &path, &names, modules) {
                        if let Some(name) = bound {
                            names.insert(name, full.clone());
                        }
                        out.paths.push(full);
                    }
                }
            }
            Tok::Ident(kw)
                if kw == "mod"
                    && matches!(toks.get(i + 1), Some(Tok::Ident(_)))
                    && toks.get(i + 2) == Some(&Tok::Punct('{')) =>
            {
                if let Some(Tok::Ident(name)) = toks.get(i + 1) {
                    inline.push(([here, vec![name.clone()]].concat(), depth));
                }
                i += 2;
            }
            Tok::Ident(_) => {
                let (path, next) = path_at(&toks, i);
                if path.len() > 1
                    && let Some(full) = resolve(&here, &path, &names, modules)
                {
                    out.paths.push(full);
                }
                i = next;
            }
            Tok::Str(text) if is_path(text) => {
                let path: Vec<String> = text.split("::").map(String::from).collect();
                if let Some(full) = resolve(&here, &path, &names, modules) {
                    out.paths.push(full);
                }
                i += 1;
            }
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, at)| *at == depth) {
                    inline.pop();
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The path in code that starts at `toks[i]` (`a::b::c`), and where it ends.
fn path_at(toks: &[Tok], i: usize) -> (Vec<String>, usize) {
    let mut path = Vec::new();
    if let Some(Tok::Ident(first)) = toks.get(i) {
        path.push(first.clone());
    }
    let mut k = i + 1;
    while toks.get(k) == Some(&Tok::Sep) {
        match toks.get(k + 1) {
            Some(Tok::Ident(next)) => path.push(next.clone()),
            _ => break,
        }
        k += 2;
    }
    (path, k)
}

/// Whether a string is a Rust path with at least two segments.
fn is_path(text: &str) -> bool {
    let segments: Vec<&str> = text.split("::").collect();
    segments.len() > 1
        && segments.iter().all(|s| {
            s.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// `path`, written in module `here`, from the crate root; `None` for a path that does not
/// start in this crate (another crate, a local name).
fn resolve(
    here: &[String],
    path: &[String],
    names: &BTreeMap<String, ModPath>,
    modules: &BTreeSet<ModPath>,
) -> Option<ModPath> {
    let first = path.first()?;
    let rest = |n: usize| path[n..].to_vec();
    match first.as_str() {
        "crate" => Some(rest(1)),
        "self" => Some([here.to_vec(), rest(1)].concat()),
        "super" => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            let base = here.get(..here.len().checked_sub(ups)?)?;
            Some([base.to_vec(), rest(ups)].concat())
        }
        _ => {
            if let Some(bound) = names.get(first) {
                return Some([bound.clone(), rest(1)].concat());
            }
            let child = [here.to_vec(), vec![first.clone()]].concat();
            modules
                .contains(&child)
                .then(|| [here.to_vec(), path.to_vec()].concat())
        }
    }
}

/// The file whose module holds `path`: the longest prefix that is a file's module.
fn file_of<'a>(path: &[String], modules: &'a BTreeSet<ModPath>) -> Option<&'a ModPath> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n].to_vec()))
}

/// The graph of `files`: each file's module and its source.
fn graph(files: &[(ModPath, String)]) -> Graph {
    let modules: BTreeSet<ModPath> = files.iter().map(|(m, _)| m.clone()).collect();
    let scans: Vec<(ModPath, Scan)> = files
        .iter()
        .map(|(m, src)| (m.clone(), scan(m, src, &modules)))
        .collect();
    let test_only: BTreeSet<ModPath> = scans
        .iter()
        .flat_map(|(_, s)| s.test_only.iter().cloned())
        .collect();
    let mut g = Graph::default();
    for (module, scan) in &scans {
        if test_only.contains(module) {
            continue;
        }
        let me = module.join("::");
        g.uses.entry(me.clone()).or_default();
        for path in &scan.paths {
            if path.first().map(String::as_str) != Some("sim") {
                if let Some(top) = path.first() {
                    g.operator
                        .entry(me.clone())
                        .or_default()
                        .insert(top.clone());
                }
                continue;
            }
            if let Some(file) = file_of(path, &modules)
                && file != module
                && !test_only.contains(file)
            {
                g.uses
                    .entry(me.clone())
                    .or_default()
                    .insert(file.join("::"));
            }
        }
    }
    g
}

/// Every cycle of the graph, one per strongly connected component, as the files on it
/// with the first repeated at the end.
fn cycles(uses: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reaches = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for next in uses.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> = uses.keys().map(|n| (n, reaches(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for (n, from_n) in &reach {
        if done.contains(*n) || !from_n.contains(*n) {
            continue;
        }
        let component: BTreeSet<String> = from_n
            .iter()
            .filter(|m| reach.get(m).is_some_and(|r| r.contains(*n)))
            .cloned()
            .collect();
        done.extend(component.iter().cloned());
        out.push(path_back(uses, n, &component));
    }
    out
}

/// A shortest way from `start` back to itself inside `component`.
fn path_back(
    uses: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    component: &BTreeSet<String>,
) -> Vec<String> {
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.to_string()]);
    while let Some(n) = queue.pop_front() {
        for next in uses.get(&n).into_iter().flatten() {
            if !component.contains(next) {
                continue;
            }
            if next == start {
                let mut way = vec![start.to_string(), n.clone()];
                let mut at = n.clone();
                while let Some(prev) = came_from.get(&at) {
                    way.push(prev.clone());
                    at = prev.clone();
                }
                way.reverse();
                return way;
            }
            if !came_from.contains_key(next) && next != start {
                came_from.insert(next.clone(), n.clone());
                queue.push_back(next.clone());
            }
        }
    }
    vec![start.to_string()]
}

/// Every `.rs` file under `dir`, with its module (`sim` for `dir` itself).
fn read_tree(dir: &Path, module: &[String], out: &mut Vec<(ModPath, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("the simulator's sources are readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            read_tree(&path, &[module.to_vec(), vec![stem]].concat(), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source file");
            let m = if stem == "mod" {
                module.to_vec()
            } else {
                [module.to_vec(), vec![stem]].concat()
            };
            out.push((m, text));
        }
    }
}

fn simulator() -> Graph {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sim");
    let mut files = Vec::new();
    read_tree(&dir, &["sim".to_string()], &mut files);
    graph(&files)
}

fn show(g: &Graph) -> String {
    g.uses
        .iter()
        .map(|(from, to)| {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            format!("  {from} -> {}\n", to.join(", "))
        })
        .collect()
}

#[test]
fn the_simulators_files_use_each_other_without_a_cycle() {
    let g = simulator();
    assert!(g.uses.contains_key("sim::flow") && g.uses.contains_key("sim::iam::server"));
    let found = cycles(&g.uses);
    let text: Vec<String> = found.iter().map(|c| c.join(" -> ")).collect();
    assert!(
        found.is_empty(),
        "import cycles between the simulator's files:\n  {}\nthe whole graph:\n{}",
        text.join("\n  "),
        show(&g)
    );
}

#[test]
fn the_simulator_uses_no_operator_module_but_cce_and_duration() {
    let g = simulator();
    let wrong: Vec<String> = g
        .operator
        .iter()
        .flat_map(|(file, used)| {
            used.iter()
                .filter(|m| !OPERATOR_ALLOWED.contains(&m.as_str()))
                .map(move |m| format!("{file} uses crate::{m}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(g.operator.values().any(|used| used.contains("cce")));
}

fn files(list: &[(&str, &str)]) -> Vec<(ModPath, String)> {
    list.iter()
        .map(|(m, src)| (m.split("::").map(String::from).collect(), src.to_string()))
        .collect()
}

#[test]
fn a_crossing_is_found_through_any_kind_of_path() {
    let g = graph(&files(&[
        (
            "sim",
            "pub mod a;\npub mod b;\npub mod c;\n#[cfg(test)]\nmod t;",
        ),
        ("sim::a", "use super::b::{X, Y as Z};"),
        ("sim::b", "fn f() { crate::sim::c::g() }"),
        ("sim::c", "use super::{self as up};\nfn h() { up::a::k(); }"),
        ("sim::t", "use crate::sim::a;"),
    ]));
    assert_eq!(cycles(&g.uses), [["sim::a", "sim::b", "sim::c", "sim::a"]]);
    assert!(!g.uses.contains_key("sim::t"), "a test-only file counts");
}

#[test]
fn what_is_not_code_or_only_for_tests_makes_no_edge() {
    let g = graph(&files(&[
        ("sim::a", "use super::b::X;"),
        (
            "sim::b",
            r###"
            // use super::a::X;
            /* crate::sim::a::y() */
            const S: &str = "super::a::X is a string";
            const R: &str = r#"see crate::sim::a::z"#;
            fn f<'a>(x: &'a str) -> char { 'a' }
            mod inner {
                use super::helper;
                #[serde(with = "super::other")]
                struct W;
            }
            #[cfg(test)]
            mod tests {
                use crate::sim::a::X;
            }
            "###,
        ),
    ]));
    assert!(cycles(&g.uses).is_empty(), "{}", show(&g));
    assert_eq!(g.uses["sim::b"], BTreeSet::new());
}

#[test]
fn a_path_in_a_serde_attribute_and_an_operator_module_are_seen() {
    let g = graph(&files(&[
        (
            "sim::a",
            "use crate::controller::Context;\nuse crate::cce::model;",
        ),
        (
            "sim::b",
            r#"#[serde(serialize_with = "crate::sim::a::ser")] struct S;"#,
        ),
    ]));
    assert_eq!(
        g.operator["sim::a"],
        BTreeSet::from(["cce".to_string(), "controller".to_string()])
    );
    assert!(g.uses["sim::b"].contains("sim::a"));
}

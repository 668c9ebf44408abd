//! The code map's import rules, checked on the source: no import loop among the modules of
//! `shared/src/app` nor among the top-level modules of `shared/src`, entry points that never
//! import each other, and a core crate whose dependency tree holds nothing that does I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `prefix::name` reference in the files of `dir` (a module per file or folder), as a
/// graph module → modules it names.
fn graph(dir: &Path, prefixes: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "mod" || name == "lib" || name == "main" {
            continue;
        }
        let mut files = Vec::new();
        if path.is_dir() {
            let mut stack = vec![path.clone()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "rs") {
                        files.push(p);
                    }
                }
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            files.push(path.clone());
        }
        let deps = g.entry(name.clone()).or_default();
        for f in files {
            // Test modules may reach anywhere.
            let inside = f.strip_prefix(dir).unwrap_or(&f);
            if inside
                .components()
                .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "tests.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for prefix in prefixes {
                for (i, _) in code.match_indices(prefix) {
                    let rest = &code[i + prefix.len()..];
                    let dep: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !dep.is_empty() && dep != name {
                        deps.insert(dep);
                    }
                }
                // `use crate::{a, b::c}` groups.
                for (i, _) in code.match_indices(&format!("{prefix}{{")) {
                    let group = &code[i + prefix.len() + 1..];
                    let group = &group[..group.find('}').unwrap_or(0)];
                    for part in group.split(',') {
                        let dep: String = part
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !dep.is_empty() && dep != name {
                            deps.insert(dep);
                        }
                    }
                }
            }
        }
    }
    let known: BTreeSet<String> = g.keys().cloned().collect();
    for deps in g.values_mut() {
        deps.retain(|d| known.contains(d));
    }
    g
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn loops(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        for w in &t.g[v] {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = BTreeSet::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn src(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src").join(rel)
}

#[test]
fn the_modules_of_app_have_no_import_loop() {
    let g = graph(&src("app"), &["super::", "crate::app::"]);
    assert!(
        g.contains_key("engine") && g["engine"].contains("outbox"),
        "the graph is read: {g:?}"
    );
    assert_eq!(loops(&g), Vec::<BTreeSet<String>>::new(), "{g:#?}");
}

#[test]
fn entry_points_do_not_import_each_other() {
    let g = graph(&src("app"), &["super::", "crate::app::"]);
    let entries = ["bot_webhook", "provider_callback", "evaluator"];
    for (module, deps) in &g {
        for e in entries {
            assert!(
                !(deps.contains(e) && module != e),
                "{module} imports the entry point {e}: shared helpers belong below the entry points"
            );
        }
    }
}

#[test]
fn the_top_level_modules_have_no_import_loop() {
    let g = graph(&src(""), &["crate::"]);
    assert!(
        g.contains_key("app") && g["app"].contains("store") && g.contains_key("config"),
        "the graph is read: {g:?}"
    );
    assert_eq!(loops(&g), Vec::<BTreeSet<String>>::new(), "{g:#?}");
}

#[test]
fn a_loop_is_found_where_there_is_one() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("config", &["providers"][..]),
        ("providers", &["bot", "config"][..]),
        ("bot", &[][..]),
    ]
    .into_iter()
    .map(|(m, deps)| (m.to_owned(), deps.iter().map(|d| (*d).to_owned()).collect()))
    .collect();
    let expected: BTreeSet<String> = ["config", "providers"].map(str::to_owned).into();
    assert_eq!(loops(&g), vec![expected]);
}

/// Crates that would let the core do I/O: an async runtime, an HTTP stack, the AWS SDK, a web
/// framework.
fn io_crate(name: &str) -> bool {
    ["tokio", "reqwest", "hyper", "axum", "lambda_runtime", "lambda_http"].contains(&name)
        || name.starts_with("tokio-")
        || name.starts_with("hyper-")
        || name.starts_with("aws-")
        || name.starts_with("aws_")
}

/// The names of the crates in `package`'s normal (non-dev, non-build) dependency tree, as
/// `cargo tree` reports them from the committed lock file.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args([
            "tree", "-p", package, "-e", "normal", "--locked", "--prefix", "none", "--format", "{p}",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_core_crate_depends_on_nothing_that_does_io() {
    let core = normal_dependencies("handover-core");
    assert!(
        core.contains("chrono") && core.contains("opening-hours"),
        "the tree is read: {core:?}"
    );
    let io: Vec<&String> = core.iter().filter(|c| io_crate(c)).collect();
    assert!(io.is_empty(), "handover-core depends on crates that do I/O: {io:?}");
    // The same check on the shell finds them: the check can fail.
    let shell = normal_dependencies("handover");
    assert!(shell.iter().any(|c| c == "tokio") && shell.iter().any(|c| c.starts_with("aws-")));
}

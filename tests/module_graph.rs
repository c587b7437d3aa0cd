//! The library's top-level modules form a graph without cycles: data flows
//! one way (inventory → rules → stack → render → desired state → facts →
//! plan → apply), and a module never reaches back up, directly or through
//! another module. Read from the sources' own
//! `crate::` paths; test code (files named `tests.rs` and what follows a
//! `#[cfg(test)]`) is left out, as it may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(directory: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a source file belongs to.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let module = first.strip_suffix(".rs").unwrap_or(first);
    (module != "lib" && module != "main").then(|| module.to_string())
}

/// The modules a file's non-test code names as `crate::module`.
fn imports(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = BTreeSet::new();
    for (index, _) in code.match_indices("crate::") {
        let rest = &code[index + "crate::".len()..];
        let name: String =
            rest.chars().take_while(|character| character.is_ascii_alphanumeric() || *character == '_').collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    // `use crate::{a, b::c}` names several at once.
    for (index, _) in code.match_indices("crate::{") {
        let group = &code[index + "crate::{".len()..];
        let group = &group[..group.find('}').unwrap_or(group.len())];
        for item in group.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|character| character.is_ascii_alphanumeric() || *character == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|file| file.file_name().is_some_and(|name| name != "tests.rs")) {
        let Some(module) = module_of(&src, file) else { continue };
        let text = std::fs::read_to_string(file).expect("source is readable");
        let targets = graph.entry(module.clone()).or_default();
        targets.extend(imports(&text).into_iter().filter(|target| *target != module));
    }
    graph
}

/// A cycle through `node`, if the graph has one reachable from it.
fn cycle_from(
    node: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(start) = path.iter().position(|seen| seen == node) {
        let mut cycle = path[start..].to_vec();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(cycle) = cycle_from(next, graph, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let graph = graph();
    assert!(graph.len() > 20, "the source tree was not read: {graph:?}");
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

/// Every module `from` reaches through imports, itself left out.
fn reachable(from: &str, graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut pending = vec![from.to_string()];
    while let Some(module) = pending.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next != from && seen.insert(next.clone()) {
                pending.push(next.clone());
            }
        }
    }
    seen
}

/// The edges named in docs/ARCHITECTURE.md: after render, nothing reads
/// the inventory or the stack, not even through another module; plan,
/// apply and the subsystems are below the commands.
#[test]
fn the_core_never_reaches_the_inventory_or_the_commands() {
    let graph = graph();
    for module in ["transport", "facts", "plan", "apply", "desired", "catalog", "report", "backup", "releases"] {
        assert!(graph.contains_key(module), "no module `{module}`");
        let reached = reachable(module, &graph);
        for forbidden in ["inventory", "rules", "stack", "topology", "commands", "cli"] {
            assert!(
                !reached.contains(forbidden),
                "`{module}` reaches `{forbidden}` (through {})",
                path(module, forbidden, &graph).join(" → ")
            );
        }
    }
}

/// One import path from `from` to `to`, for the failure message.
fn path(from: &str, to: &str, graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    let mut pending = std::collections::VecDeque::from([from.to_string()]);
    while let Some(module) = pending.pop_front() {
        if module == to {
            let mut path = vec![to.to_string()];
            while let Some(before) = previous.get(path.last().expect("non-empty")) {
                path.push(before.clone());
            }
            path.reverse();
            return path;
        }
        for next in graph.get(&module).into_iter().flatten() {
            if next != from && !previous.contains_key(next) {
                previous.insert(next.clone(), module.clone());
                pending.push_back(next.clone());
            }
        }
    }
    Vec::new()
}

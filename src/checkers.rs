//! Runs each service's own configuration parser on rendered files, locally.
//!
//! Our templates can only be as right as the services' own parsers say they
//! are, so `validate` feeds the rendered files to `haproxy -c`, `nginx -t`
//! (on a complete tree: a lone site file cannot be checked), `keepalived
//! --config-test` and the rest when they are installed here, and says which
//! ran and which were skipped. Identical files are checked once.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Command;

use serde::Serialize;

use crate::catalog::{self, CheckPlan, Part};
use crate::desired::{Checker, DesiredState, HostState};
use crate::secret::Secret;

/// The outcome of one checker on one host's files.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed { output: String },
    Skipped { reason: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckerRun {
    pub checker: Checker,
    pub host: String,
    pub files: Vec<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot prepare `{}` for checking", path.display())]
pub struct PrepareError {
    path: PathBuf,
    #[source]
    error: std::io::Error,
}

/// Checks every host's files; one run per checker and distinct content.
pub fn run_all(state: &DesiredState) -> Result<Vec<CheckerRun>, PrepareError> {
    let mut runs = Vec::new();
    let mut seen: HashSet<(Checker, Vec<u8>)> = HashSet::new();
    let mut skipped: HashSet<Checker> = HashSet::new();
    for host in &state.hosts {
        for (checker, files) in files_by_checker(host) {
            let key: Vec<u8> =
                files.iter().flat_map(|path| host.file(path).map(|f| f.content.to_vec()).unwrap_or_default()).collect();
            if !seen.insert((checker, key)) {
                continue;
            }
            let plan = catalog::check_plan(checker, host);
            let outcome = match missing_program(&plan) {
                Some(reason) if skipped.insert(checker) => Outcome::Skipped { reason },
                Some(_) => continue,
                None => check(&plan, host)?,
            };
            runs.push(CheckerRun { checker, host: host.name.clone(), files, outcome });
        }
    }
    Ok(runs)
}

fn files_by_checker(host: &HostState) -> BTreeMap<Checker, Vec<String>> {
    let mut groups: BTreeMap<Checker, Vec<String>> = BTreeMap::new();
    for file in &host.files {
        if let Some(checker) = file.checker {
            groups.entry(checker).or_default().push(file.path.clone());
        }
    }
    groups
}

/// The programs a check needs; `None` when all are installed.
fn missing_program(plan: &CheckPlan) -> Option<String> {
    let needed = plan.programs().chain(plan.local_wrapper.first().copied());
    let missing: Vec<&str> = needed.filter(|program| find_program(program).is_none()).collect();
    not_installed(&missing)
}

/// "`gunicorn` is not installed", "`gunicorn`, `nft` are not installed".
fn not_installed(missing: &[&str]) -> Option<String> {
    let verb = if missing.len() == 1 { "is" } else { "are" };
    (!missing.is_empty()).then(|| format!("`{}` {verb} not installed", missing.join("`, `")))
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs one check plan here: its files laid out in a temporary directory
/// with the rendered content, borrowed files from this machine, paths
/// rewritten, then the command.
fn check(plan: &CheckPlan, host: &HostState) -> Result<Outcome, PrepareError> {
    // HAProxy refuses a placeholder key, which is all validate has offline.
    let placeholder = Secret::placeholder();
    if plan.files.iter().any(|(_, path)| {
        host.file(path).is_some_and(|file| file.content.trim_ascii() == placeholder.expose().as_bytes())
    }) {
        return Ok(Outcome::Skipped { reason: "a secret it reads is not available here".into() });
    }
    let directory = tempfile::tempdir().map_err(|error| PrepareError { path: std::env::temp_dir(), error })?;
    let root = directory.path();
    let write = |name: &str, content: &[u8]| -> Result<(), PrepareError> {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| PrepareError { path: parent.to_path_buf(), error })?;
        }
        std::fs::write(&path, content).map_err(|error| PrepareError { path, error })
    };
    for (name, path) in &plan.files {
        write(name, host.file(path).map(|file| &file.content[..]).unwrap_or_default())?;
    }
    for borrowed in &plan.borrowed {
        let content = std::fs::read(borrowed.path).unwrap_or_else(|_| borrowed.default.as_bytes().to_vec());
        write(&borrowed.name, &content)?;
    }
    for rewrite in &plan.rewrites {
        let path = root.join(&rewrite.file);
        let content = std::fs::read_to_string(&path).map_err(|error| PrepareError { path: path.clone(), error })?;
        write(&rewrite.file, content.replace(rewrite.from, &root.join(&rewrite.to).display().to_string()).as_bytes())?;
    }
    let arguments: Vec<String> = plan
        .local_wrapper
        .iter()
        .map(|word| word.to_string())
        .chain(plan.command.iter().map(|parts| {
            parts
                .iter()
                .map(|part| match part {
                    Part::Text(text) => text.clone(),
                    Part::Tree(name) => root.join(name).display().to_string(),
                })
                .collect()
        }))
        .collect();
    let output = Command::new(&arguments[0])
        .args(&arguments[1..])
        .output()
        .map_err(|error| PrepareError { path: PathBuf::from(&arguments[0]), error })?;
    if output.status.success() {
        return Ok(Outcome::Passed);
    }
    let stdout = if plan.quiet_stdout { String::new() } else { String::from_utf8_lossy(&output.stdout).into_owned() };
    let text = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    Ok(Outcome::Failed { output: text.replace(&format!("{}/", root.display()), "").trim().to_string() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn several_missing_programs_are_named_in_one_sentence() {
        assert_eq!(super::not_installed(&["gunicorn"]).as_deref(), Some("`gunicorn` is not installed"));
        assert_eq!(super::not_installed(&["gunicorn", "nft"]).as_deref(), Some("`gunicorn`, `nft` are not installed"));
        assert_eq!(super::not_installed(&[]), None);
    }
}

//! Runs each service's own configuration parser on rendered files, locally.
//!
//! Our templates can only be as right as the services' own parsers say they
//! are, so `validate` feeds the rendered files to `haproxy -c`, `nginx -t`
//! (on a complete tree: a lone site file cannot be checked), `keepalived
//! --config-test` and the rest when they are installed here, and says which
//! ran and which were skipped. Identical files are checked once.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::desired::{Checker, DesiredState, HostState};
use crate::firewall::RULESET_PATH;
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
            let outcome = match missing_program(checker) {
                Some(reason) if skipped.insert(checker) => Outcome::Skipped { reason },
                Some(_) => continue,
                None => check(checker, host)?,
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

/// The programs a checker needs; `None` when all are installed.
fn missing_program(checker: Checker) -> Option<String> {
    let needed: &[&str] = match checker {
        Checker::Haproxy => &["haproxy"],
        Checker::Nginx => &["nginx"],
        Checker::Keepalived => &["keepalived"],
        Checker::Mariadb => &["mariadbd"],
        Checker::Python => &["python3"],
        // A unit is verified against the programs it starts.
        Checker::SystemdUnit => &["systemd-analyze", "gunicorn", "nft"],
        // In a network namespace of its own, so no privilege is needed and
        // this machine's rules are never involved.
        Checker::Nft => &["nft", "unshare"],
    };
    let missing: Vec<&str> = needed.iter().copied().filter(|program| find_program(program).is_none()).collect();
    (!missing.is_empty()).then(|| format!("`{}` is not installed", missing.join("`, `")))
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|directory| directory.join(name))
        .find(|candidate| candidate.is_file())
}

fn check(checker: Checker, host: &HostState) -> Result<Outcome, PrepareError> {
    let directory = tempfile::tempdir().map_err(|error| PrepareError { path: std::env::temp_dir(), error })?;
    let root = directory.path();
    let write = |name: &str, target: &str| -> Result<PathBuf, PrepareError> {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| PrepareError { path: parent.to_path_buf(), error })?;
        }
        let content = host.file(target).map(|file| &file.content[..]).unwrap_or_default();
        std::fs::write(&path, content).map_err(|error| PrepareError { path: path.clone(), error })?;
        Ok(path)
    };
    let mut command = match checker {
        Checker::Haproxy => match haproxy_tree(root, host, write)? {
            Some(command) => command,
            None => return Ok(Outcome::Skipped { reason: "the TLS key is not available here".into() }),
        },
        Checker::Keepalived => {
            let path = write("keepalived.conf", "/etc/keepalived/keepalived.conf")?;
            command(&["keepalived", "--config-test", "--use-file"], &path)
        }
        Checker::Nginx => nginx_tree(root, write)?,
        Checker::Mariadb => {
            let path = write("infra.cnf", "/etc/mysql/mariadb.conf.d/60-infra.cnf")?;
            let mut command = Command::new("mariadbd");
            command.arg(format!("--defaults-file={}", path.display())).args(["--help", "--verbose"]);
            command
        }
        Checker::Python => {
            command(&["python3", "-m", "py_compile"], &write("gunicorn.conf.py", "/etc/infra/gunicorn.conf.py")?)
        }
        Checker::SystemdUnit => {
            let mut command = Command::new("systemd-analyze");
            command.args(["verify", "--man=no"]);
            for file in host.files.iter().filter(|file| file.checker == Some(Checker::SystemdUnit)) {
                let name = file.path.rsplit('/').next().unwrap_or(&file.path);
                command.arg(write(name, &file.path)?);
            }
            command
        }
        Checker::Nft => {
            command(&["unshare", "--map-root-user", "--net", "nft", "-c", "-f"], &write("firewall.nft", RULESET_PATH)?)
        }
    };
    let output = command.output().map_err(|error| PrepareError { path: PathBuf::from(checker.name()), error })?;
    if output.status.success() {
        return Ok(Outcome::Passed);
    }
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Ok(Outcome::Failed { output: text.replace(&format!("{}/", root.display()), "").trim().to_string() })
}

fn command(program_and_args: &[&str], path: &Path) -> Command {
    let mut command = Command::new(program_and_args[0]);
    command.args(&program_and_args[1..]).arg(path);
    command
}

/// haproxy.cfg with its certificates beside it, the paths rewritten to
/// them; `None` when the key is only a placeholder, which HAProxy would refuse.
fn haproxy_tree(
    root: &Path,
    host: &HostState,
    write: impl Fn(&str, &str) -> Result<PathBuf, PrepareError>,
) -> Result<Option<Command>, PrepareError> {
    const CERTS: &str = "/etc/haproxy/certs/";
    for file in host.files.iter().filter(|file| file.path.starts_with(CERTS)) {
        if file.content.trim_ascii() == Secret::placeholder().expose().as_bytes() {
            return Ok(None);
        }
        write(&format!("certs/{}", &file.path[CERTS.len()..]), &file.path)?;
    }
    let config = root.join("haproxy.cfg");
    let content = host.file("/etc/haproxy/haproxy.cfg").map(|file| &file.content[..]).unwrap_or_default();
    let rewritten = String::from_utf8_lossy(content).replace(CERTS, &format!("{}/certs/", root.display()));
    std::fs::write(&config, rewritten).map_err(|error| PrepareError { path: config.clone(), error })?;
    Ok(Some(command(&["haproxy", "-c", "-f"], &config)))
}

/// nginx.conf includes its site relative to its own directory, so the whole
/// tree can be laid out in a temporary prefix and tested as one.
fn nginx_tree(
    root: &Path,
    write: impl Fn(&str, &str) -> Result<PathBuf, PrepareError>,
) -> Result<Command, PrepareError> {
    let main = write("nginx.conf", "/etc/nginx/nginx.conf")?;
    write("sites-enabled/infra.conf", "/etc/nginx/sites-enabled/infra.conf")?;
    let mime = root.join("mime.types");
    let types = std::fs::read("/etc/nginx/mime.types").unwrap_or_else(|_| b"types { text/html html; }\n".to_vec());
    std::fs::write(&mime, types).map_err(|error| PrepareError { path: mime.clone(), error })?;
    let mut command = Command::new("nginx");
    command
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(root)
        .arg("-c")
        .arg(&main)
        .arg("-e")
        .arg(root.join("error.log"))
        .arg("-g")
        .arg(format!("pid {};", root.join("nginx.pid").display()));
    Ok(command)
}

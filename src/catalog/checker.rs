//! What each service's own configuration checker needs, as data.
//!
//! A [`CheckPlan`] says which of a host's files to lay out in a fresh
//! directory and under which names, which path prefixes to point into that
//! directory, and the command to run there. It is written once per checker
//! and read by two interpreters: `checkers` (on this machine, for
//! `validate`) and `apply::steps` (on the host, against the new files before
//! they are swapped in).

use super::{
    FIREWALL_RULESET, GUNICORN_CONFIG, HAPROXY_CERTS, HAPROXY_CONFIG, KEEPALIVED_CONFIG, MARIADB_CONFIG, NGINX_MAIN,
    NGINX_MIME_TYPES, NGINX_SITE,
};
use crate::desired::{Checker, HostState};

/// One part of a command-line argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// A path inside the check directory (empty: the directory itself).
    Tree(String),
}

/// A file of the check directory taken from the machine the check runs on
/// when it has it (the host's own `mime.types`), else this default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Borrowed {
    pub name: String,
    pub path: &'static str,
    pub default: &'static str,
}

/// A path prefix in one laid-out file replaced by a directory of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub file: String,
    pub from: &'static str,
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckPlan {
    pub checker: Checker,
    /// `(name in the check directory, path on the host)` of every file the
    /// checker reads; the interpreter takes the new content where it has it.
    pub files: Vec<(String, String)>,
    pub borrowed: Vec<Borrowed>,
    pub rewrites: Vec<Rewrite>,
    /// The command, each argument a concatenation of parts.
    pub command: Vec<Vec<Part>>,
    /// Prepended on this machine only: run there without privileges.
    pub local_wrapper: &'static [&'static str],
    /// Programs the check needs besides the command (a unit is verified
    /// against the programs it starts).
    pub also_needs: &'static [&'static str],
    /// Its standard output is not a diagnosis (mariadbd's help text).
    pub quiet_stdout: bool,
}

impl CheckPlan {
    /// The programs the check runs on the machine it runs on: the command's
    /// own and those it is verified against (not the local wrapper).
    pub fn programs(&self) -> impl Iterator<Item = &str> {
        let program = self.command.first().and_then(|argument| match argument.first() {
            Some(Part::Text(program)) => Some(program.as_str()),
            _ => None,
        });
        program.into_iter().chain(self.also_needs.iter().copied())
    }
}

fn text(value: &str) -> Vec<Part> {
    vec![Part::Text(value.to_string())]
}

fn tree(name: &str) -> Vec<Part> {
    vec![Part::Tree(name.to_string())]
}

fn files_of(host: &HostState, checker: Checker) -> impl Iterator<Item = &str> {
    host.files.iter().filter(move |file| file.checker == Some(checker)).map(|file| file.path.as_str())
}

fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// The check of `checker` for `host`'s desired files.
pub fn check_plan(checker: Checker, host: &HostState) -> CheckPlan {
    let mut plan = CheckPlan {
        checker,
        files: Vec::new(),
        borrowed: Vec::new(),
        rewrites: Vec::new(),
        command: Vec::new(),
        local_wrapper: &[],
        also_needs: &[],
        quiet_stdout: false,
    };
    match checker {
        Checker::Haproxy => {
            plan.files.push(("haproxy.cfg".into(), HAPROXY_CONFIG.path.into()));
            for path in files_of(host, checker).filter(|path| path.starts_with(HAPROXY_CERTS)) {
                plan.files.push((format!("certs/{}", &path[HAPROXY_CERTS.len()..]), path.into()));
            }
            plan.rewrites.push(Rewrite { file: "haproxy.cfg".into(), from: HAPROXY_CERTS, to: "certs/".into() });
            plan.command = vec![text("haproxy"), text("-c"), text("-f"), tree("haproxy.cfg")];
        }
        Checker::Keepalived => {
            plan.files.push(("keepalived.conf".into(), KEEPALIVED_CONFIG.path.into()));
            plan.command = vec![text("keepalived"), text("--config-test"), text("--use-file"), tree("keepalived.conf")];
        }
        Checker::Nginx => {
            // nginx.conf includes its site relative to its own directory,
            // so the whole tree is checked as nginx will read it.
            plan.files.push(("nginx.conf".into(), NGINX_MAIN.path.into()));
            plan.files.push(("sites-enabled/infra.conf".into(), NGINX_SITE.path.into()));
            plan.borrowed.push(Borrowed {
                name: "mime.types".into(),
                path: NGINX_MIME_TYPES,
                default: "types { text/html html; }\n",
            });
            let pid = vec![Part::Text("pid ".into()), Part::Tree("nginx.pid;".into())];
            plan.command = vec![
                text("nginx"),
                text("-t"),
                text("-q"),
                text("-p"),
                tree(""),
                text("-c"),
                tree("nginx.conf"),
                text("-e"),
                tree("error.log"),
                text("-g"),
                pid,
            ];
        }
        Checker::Mariadb => {
            plan.files.push(("infra.cnf".into(), MARIADB_CONFIG.path.into()));
            let defaults = vec![Part::Text("--defaults-file=".into()), Part::Tree("infra.cnf".into())];
            plan.command = vec![text("mariadbd"), defaults, text("--help"), text("--verbose")];
            plan.quiet_stdout = true;
        }
        Checker::Python => {
            plan.files.push(("gunicorn.conf.py".into(), GUNICORN_CONFIG.path.into()));
            plan.command = vec![text("python3"), text("-m"), text("py_compile"), tree("gunicorn.conf.py")];
        }
        Checker::SystemdUnit => {
            // systemd judges a unit by its file name.
            plan.files = files_of(host, checker).map(|path| (file_name(path), path.to_string())).collect();
            plan.command = vec![text("systemd-analyze"), text("verify"), text("--man=no")];
            plan.command.extend(plan.files.iter().map(|(name, _)| tree(name)));
            plan.also_needs = &["gunicorn", "nft"];
        }
        Checker::Shell => {
            plan.files = files_of(host, checker).map(|path| (file_name(path), path.to_string())).collect();
            plan.command = vec![text("bash"), text("-n")];
            plan.command.extend(plan.files.iter().map(|(name, _)| tree(name)));
        }
        Checker::Nft => {
            plan.files.push(("firewall.nft".into(), FIREWALL_RULESET.path.into()));
            plan.command = vec![text("nft"), text("-c"), text("-f"), tree("firewall.nft")];
            // Its own network namespace: no privilege needed, and this
            // machine's rules are never involved.
            plan.local_wrapper = &["unshare", "--map-root-user", "--net"];
        }
    }
    plan
}

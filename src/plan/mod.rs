//! The plan: what apply would change, as a pure function of the desired
//! state and the facts. No I/O here, so every decision is unit-tested
//! without hosts.
//!
//! Per host, in stage order: packages to install; files to create or change
//! (with a unified diff, or `(sensitive content changed)` when the file holds
//! a secret); services to reload or restart and the files that cause it;
//! services to enable or start; hooks to run. A plan serializes to the
//! versioned JSON schema that `--format json` prints and `--out` saves; it
//! never holds a secret value.

mod app_release;
mod display;
mod drift;
mod static_release;

pub use drift::{Drift, drift};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use app_release::plan_releases;
pub use app_release::{ChoicePlan, PackagesPlan, ReleaseChange, ReleasePlan, StaticPublish, kept_choice};
pub use display::{Palette, render_text};

use crate::debian::Debian;
use crate::desired::{DesiredState, HostState, ManagedFile};
use crate::facts::{FileFact, HostFacts};

/// The plan file and JSON schema version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    pub version: u32,
    /// The inventory the plan was made from, so `infra apply PLANFILE` can
    /// render the same desired state again.
    #[serde(default)]
    pub inventory: Option<String>,
    pub hosts: Vec<HostPlan>,
    /// Hosts that could not be planned, with why.
    pub unreachable: Vec<Unreachable>,
    /// What needs attention but changes nothing (an overdue backup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub use crate::facts::Unreachable;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostPlan {
    pub host: String,
    pub address: String,
    pub roles: Vec<String>,
    /// The stage apply converges this host in.
    #[serde(default)]
    pub stage: String,
    /// The supported Debian release the host runs (from its facts); `release`
    /// in the JSON, which predates the app's releases.
    #[serde(default, rename = "release")]
    pub debian: Option<Debian>,
    /// The facts this plan was made from; apply refuses if they changed.
    pub fingerprint: String,
    /// The desired state this plan was made for; apply refuses a saved plan
    /// when the inventory or templates now render something else.
    pub desired: String,
    pub install: Vec<String>,
    pub files: Vec<FileChange>,
    pub reload: Vec<ServiceChange>,
    pub restart: Vec<ServiceChange>,
    pub enable: Vec<String>,
    pub start: Vec<String>,
    /// Instances of app processes the host runs at boot that the inventory
    /// no longer has (a process removed, a count lowered): stopped and
    /// disabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retire: Vec<String>,
    pub hooks: Vec<ServiceChange>,
    /// The app's release: the switch of `current`, old releases removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases: Option<ReleasePlan>,
    /// Why this host must not be changed as planned (a firewall that would
    /// cut infra's own SSH connection); plan exits 1 and apply refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// The process holding dpkg's lock when packages are to be installed:
    /// apply waits for it (an unattended-upgrades run on a fresh host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpkg_busy: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    Create,
    Update,
    /// Only the mode or owner differs.
    Metadata,
    /// A directory or link is where the file should be: apply must stop.
    Replace,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub action: FileAction,
    pub mode: String,
    pub owner: String,
    pub sensitive: bool,
    /// What changes in mode or owner, e.g. `mode 0644 -> 0600`.
    pub metadata: Vec<String>,
    /// A unified diff; `None` for sensitive files and content we could not compare.
    pub diff: Option<String>,
}

/// A service (or hook) and the changed files that cause the action.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceChange {
    pub name: String,
    pub because: Vec<String>,
}

impl HostPlan {
    pub fn is_empty(&self) -> bool {
        self.install.is_empty()
            && self.files.is_empty()
            && self.reload.is_empty()
            && self.restart.is_empty()
            && self.enable.is_empty()
            && self.start.is_empty()
            && self.retire.is_empty()
            && self.hooks.is_empty()
            && self.releases.is_none()
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.hosts.iter().any(|host| !host.is_empty())
    }

    /// The hosts that must not be changed as planned, with why.
    pub fn refusals(&self) -> impl Iterator<Item = (&str, &str)> {
        self.hosts.iter().filter_map(|host| Some((host.host.as_str(), host.refusal.as_deref()?)))
    }
}

/// The whole plan: every desired host with facts is planned, in the desired
/// state's (stage) order; hosts without facts are listed as unreachable.
/// What concerns the fleet rather than one host comes last: which host
/// migrates a release, which publishes its static files to the web hosts,
/// and the app hosts that keep an operator's choice.
pub fn plan(desired: &DesiredState, facts: &BTreeMap<String, HostFacts>, unreachable: Vec<Unreachable>) -> Plan {
    let mut hosts: Vec<HostPlan> =
        desired.hosts.iter().filter_map(|host| facts.get(&host.name).map(|facts| plan_host(host, facts))).collect();
    app_release::reconcile_migrations(&mut hosts, facts);
    static_release::plan_static(&mut hosts, desired, facts);
    let warnings = app_release::kept_warnings(desired, facts);
    Plan { version: SCHEMA_VERSION, inventory: None, hosts, unreachable, warnings }
}

pub fn plan_host(host: &HostState, facts: &HostFacts) -> HostPlan {
    let install: Vec<String> = host
        .packages
        .iter()
        .filter(|package| facts.packages.get(*package).is_none_or(Option::is_none))
        .cloned()
        .collect();
    let files: Vec<FileChange> =
        host.files.iter().filter_map(|file| file_change(file, facts.files.get(&file.path))).collect();
    let (releases, release_refusal) = plan_releases(host, facts);
    let switches = |path: &String| {
        releases.as_ref().is_some_and(|releases| releases.switch_to.is_some() && releases.link == *path)
    };
    let changed = |path: &String| {
        switches(path) || files.iter().any(|change| change.path == *path && change.action != FileAction::Metadata)
    };
    let (mut reload, mut restart, mut enable, mut start) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for service in &host.services {
        let fact = facts.services.get(&service.name);
        let active = fact.is_some_and(|fact| fact.active);
        if service.enabled && !fact.is_some_and(|fact| fact.enabled) {
            enable.push(service.name.clone());
        }
        let mut restart_because: Vec<String> =
            service.restart_on.iter().filter(|path| changed(path)).cloned().collect();
        // A reload keeps the master's own code: another Gunicorn needs a restart.
        if let Some(server) = releases.as_ref().and_then(|releases| releases.server.as_ref())
            && service.name == crate::catalog::GUNICORN.unit
        {
            restart_because.push(server.to_string());
        }
        let reload_because: Vec<String> = service.reload_on.iter().filter(|path| changed(path)).cloned().collect();
        if !active {
            start.push(service.name.clone());
        } else if !restart_because.is_empty() {
            restart.push(ServiceChange { name: service.name.clone(), because: restart_because });
        } else if !reload_because.is_empty() {
            reload.push(ServiceChange { name: service.name.clone(), because: reload_because });
        }
    }
    let mut hooks: Vec<ServiceChange> = host
        .hooks
        .iter()
        .filter_map(|hook| {
            let because: Vec<String> = hook.triggered_by.iter().filter(|path| changed(path)).cloned().collect();
            (!because.is_empty()).then(|| ServiceChange { name: hook.name.clone(), because })
        })
        .collect();
    carry_over_pending(facts, &mut reload, &mut restart, &mut hooks, &start);
    let refusal = os_refusal(facts)
        .or_else(|| interface_refusal(host, facts))
        .or_else(|| port_refusal(host, facts))
        .or_else(|| ssh_refusal(host, facts, &files))
        .or(release_refusal);
    let dpkg_busy = facts.dpkg_busy.clone().filter(|_| !install.is_empty());
    let retire: Vec<String> = facts
        .process_instances
        .iter()
        .filter(|unit| !host.services.iter().any(|service| service.unit_name() == **unit))
        .cloned()
        .collect();
    HostPlan {
        host: host.name.clone(),
        address: host.address.to_string(),
        roles: host.roles.iter().map(|role| role.name().to_string()).collect(),
        stage: host.stage.name().to_string(),
        debian: facts.debian(),
        fingerprint: facts.fingerprint.clone(),
        desired: desired_fingerprint(host),
        install,
        files,
        reload,
        restart,
        enable,
        start,
        retire,
        hooks,
        releases,
        refusal,
        dpkg_busy,
    }
}

/// An interface the host's configuration names (keepalived's, which the
/// virtual IP moves on) that the host does not have: cloud hosts name
/// theirs `ens5` or `enp1s0`, not `eth0`.
pub(crate) fn interface_refusal(host: &HostState, facts: &HostFacts) -> Option<String> {
    let present = facts.interfaces.as_ref()?;
    let missing = host.interfaces.iter().find(|needed| !present.contains(&needed.name))?;
    let others: Vec<String> =
        present.iter().filter(|name| name.as_str() != "lo").map(|name| format!("`{name}`")).collect();
    Some(format!(
        "it has no network interface `{}` for {}; it has {}: set `{}` to the name this host gives it",
        missing.name,
        missing.purpose,
        if others.is_empty() { "none but `lo`".to_string() } else { others.join(", ") },
        missing.setting,
    ))
}

/// A port one of the host's services needs that a unit infra does not
/// manage already holds (apache2 on :80 of a reused host, a MariaDB
/// installed by hand): the service would fail to start, or worse, the
/// other one would go on answering.
pub(crate) fn port_refusal(host: &HostState, facts: &HostFacts) -> Option<String> {
    // Only systemd (pid 1, in `init.scope`) holds a socket whose service
    // is not running: one of infra's sockets, when one is active.
    let our_socket_listens = host.services.iter().any(|service| {
        service.name.ends_with(".socket") && facts.services.get(&service.name).is_some_and(|fact| fact.active)
    });
    let ours = |unit: &str| {
        host.services.iter().any(|service| service.unit_name() == unit) || (unit == "init.scope" && our_socket_listens)
    };
    let taken = facts.listeners.iter().find(|listening| !ours(&listening.unit))?;
    let service =
        host.ports.iter().find(|port| port.port == taken.port).map_or("infra's service", |port| &port.service);
    let (unit, process) = (&taken.unit, &taken.process);
    Some(if unit == "-" {
        format!(
            "port {} is already taken by the process `{process}`, which no systemd unit runs, so {service} could not listen there; stop it, then plan again",
            taken.port
        )
    } else {
        let package = unit.trim_end_matches(".service");
        format!(
            "port {} is already taken by `{unit}` (process `{process}`), which infra does not manage, so {service} could not listen there; stop and disable it on the host (`systemctl disable --now {unit}`, or `apt-get purge {package}` if nothing else needs it), then plan again",
            taken.port
        )
    })
}

/// infra knows the services of the supported Debian releases only: on any
/// other system a package or path could differ, so nothing is changed.
pub(crate) fn os_refusal(facts: &HostFacts) -> Option<String> {
    let (id, codename) = facts.os.as_ref()?;
    if facts.debian().is_some() {
        return None;
    }
    let supported: Vec<String> = Debian::ALL.iter().map(ToString::to_string).collect();
    Some(format!(
        "it runs `{id}` `{codename}`, which infra does not support; supported: {} (see the support matrix in README.md)",
        supported.join(", ")
    ))
}

/// A new ruleset must keep accepting the SSH connection infra reads the host
/// over: otherwise apply would lock itself (and likely everyone) out.
fn ssh_refusal(host: &HostState, facts: &HostFacts, files: &[FileChange]) -> Option<String> {
    let guard = host.ssh_guard.as_ref()?;
    let ruleset_changes = files.iter().any(|file| file.path == guard.ruleset && file.action != FileAction::Metadata);
    if !ruleset_changes {
        return None;
    }
    match facts.ssh_connection {
        Some((client, port)) => crate::firewall::ssh_lockout(guard, client, port).map(|why| {
            format!(
                "{why}; add the address infra connects from to `firewall.admin_cidrs` (the lab's is its gateway; behind a bastion, the bastion's), or run infra from an admin network"
            )
        }),
        None => Some(
            "the host did not say where infra's SSH connection comes from (no SSH_CONNECTION), so the new firewall cannot be checked against it".into(),
        ),
    }
}

/// A digest of everything a host is meant to have: file contents, modes and
/// owners, packages, services, hooks.
pub fn desired_fingerprint(host: &HostState) -> String {
    let mut text = String::new();
    for file in &host.files {
        let content = crate::facts::sha256_hex(&file.content);
        text.push_str(&format!("file {} {content} {:o} {}:{}\n", file.path, file.mode, file.owner, file.group));
    }
    for package in &host.packages {
        text.push_str(&format!("package {package}\n"));
    }
    for service in &host.services {
        text.push_str(&format!(
            "service {} {:?} {:?} {}\n",
            service.name, service.reload_on, service.restart_on, service.enabled
        ));
    }
    if let Some(releases) = &host.releases {
        text.push_str(&format!(
            "release {} {} {} keep {}\n",
            releases.directory, releases.link, releases.id, releases.keep
        ));
    }
    for hook in &host.hooks {
        text.push_str(&format!("hook {} {} {:?}\n", hook.name, hook.command, hook.triggered_by));
    }
    crate::facts::sha256_hex(text.as_bytes())
}

/// What an interrupted apply swapped in but never reloaded is still owed.
const INTERRUPTED: &str = "an interrupted apply";

fn carry_over_pending(
    facts: &HostFacts,
    reload: &mut Vec<ServiceChange>,
    restart: &mut Vec<ServiceChange>,
    hooks: &mut Vec<ServiceChange>,
    start: &[String],
) {
    for (kind, name) in &facts.pending {
        let list = match kind.as_str() {
            "restart" => &mut *restart,
            "reload" => &mut *reload,
            _ => &mut *hooks,
        };
        if start.contains(name) || list.iter().any(|change| change.name == *name) {
            continue;
        }
        list.push(ServiceChange { name: name.clone(), because: vec![INTERRUPTED.to_string()] });
    }
    // A restart covers a reload of the same service.
    reload.retain(|change| !restart.iter().any(|restarted| restarted.name == change.name));
}

fn file_change(file: &ManagedFile, fact: Option<&FileFact>) -> Option<FileChange> {
    let change = |action, metadata, diff| FileChange {
        path: file.path.clone(),
        action,
        mode: format!("{:04o}", file.mode),
        owner: format!("{}:{}", file.owner, file.group),
        sensitive: file.sensitive,
        metadata,
        diff,
    };
    match fact {
        None | Some(FileFact::Absent) => {
            let diff = (!file.sensitive).then(|| unified_diff(&file.path, b"", &file.content)).flatten();
            Some(change(FileAction::Create, Vec::new(), diff))
        }
        Some(FileFact::NotAFile { kind }) => {
            Some(change(FileAction::Replace, vec![format!("a {kind} is at this path")], None))
        }
        Some(FileFact::Present { sha256, mode, owner, group, content }) => {
            let mut metadata = Vec::new();
            if *mode != file.mode {
                metadata.push(format!("mode {mode:04o} -> {:04o}", file.mode));
            }
            if *owner != file.owner || *group != file.group {
                metadata.push(format!("owner {owner}:{group} -> {}:{}", file.owner, file.group));
            }
            if *sha256 != crate::facts::sha256_hex(&file.content) {
                let diff = if file.sensitive {
                    None
                } else {
                    content.as_deref().and_then(|old| unified_diff(&file.path, old, &file.content))
                };
                Some(change(FileAction::Update, metadata, diff))
            } else if !metadata.is_empty() {
                Some(change(FileAction::Metadata, metadata, None))
            } else {
                None
            }
        }
    }
}

/// A unified diff with three lines of context; `None` for binary content.
fn unified_diff(path: &str, old: &[u8], new: &[u8]) -> Option<String> {
    let (old, new) = (std::str::from_utf8(old).ok()?, std::str::from_utf8(new).ok()?);
    let diff = similar::TextDiff::from_lines(old, new);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("{path} (on host)"), &format!("{path} (planned)"))
            .to_string(),
    )
}

/// Totals for the summary line.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Summary {
    pub hosts: usize,
    pub hosts_changing: usize,
    pub create: usize,
    pub update: usize,
    pub install: usize,
    pub reload: usize,
    pub restart: usize,
    pub start: usize,
    pub unreachable: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut summary =
            // Every host tried counts, whether it answered or not.
            Summary { hosts: self.hosts.len() + self.unreachable.len(), unreachable: self.unreachable.len(), ..Summary::default() };
        for host in &self.hosts {
            summary.hosts_changing += usize::from(!host.is_empty());
            summary.create += host.files.iter().filter(|file| file.action == FileAction::Create).count();
            summary.update += host.files.iter().filter(|file| file.action != FileAction::Create).count();
            summary.install += host.install.len();
            summary.reload += host.reload.len();
            summary.restart += host.restart.len();
            summary.start += host.start.len();
        }
        summary
    }
}

/// Plan's warnings about backups: for each database host whose facts were
/// read, a missing or overdue backup or restore drill, named by host.
pub fn backup_warnings(
    desired: &DesiredState,
    facts: &BTreeMap<String, HostFacts>,
    now: time::OffsetDateTime,
) -> Vec<String> {
    let mut found = Vec::new();
    for host in &desired.hosts {
        let (Some(policy), Some((backup, drill))) =
            (&host.backups, facts.get(&host.name).and_then(|facts| facts.backups.as_ref()))
        else {
            continue;
        };
        for warning in crate::backup::warnings(backup.as_deref(), drill.as_deref(), now, &policy.on_calendar) {
            found.push(format!("{}: {warning}", host.name));
        }
    }
    found
}

#[cfg(test)]
mod tests;

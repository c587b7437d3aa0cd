//! Facts: what a host has now, gathered in one round trip.
//!
//! For every host one POSIX `sh` script is generated and sent over stdin
//! (never on the command line). It reports, for every managed file, its
//! sha256, mode, owner and group (or its absence) and, when the content
//! differs from the desired content and is not sensitive, the content itself
//! so plan can show a diff without a second round trip; for every package
//! its installed version; for every service whether it is active and
//! enabled. It needs only sh, coreutils, dpkg-query and systemctl, and
//! starts each program once, whatever the number of items: a converged
//! host proves its whole managed tree unchanged with one digest (`D`), and
//! only a tree that differs is read file by file.
//!
//! The output is parsed strictly: a line that does not fit, a missing or
//! repeated item, or a missing end marker is an error naming the host, never
//! a silent "absent".

mod gather;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A host whose facts could not be read, with why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Unreachable {
    pub host: String,
    pub error: String,
    /// What to check, apart from the error: hosts failing alike share it,
    /// so a report says it once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Unreachable {
    /// Splits `message` at the `hint:` the transport's errors end with.
    pub fn new(host: String, message: &str) -> Unreachable {
        match message.split_once("\n\nhint: ") {
            Some((error, hint)) => Unreachable { host, error: error.to_string(), hint: Some(hint.trim().to_string()) },
            None => Unreachable { host, error: message.to_string(), hint: None },
        }
    }
}
use sha2::{Digest, Sha256};

use crate::desired::HostState;

pub use gather::{Connected, Gathered, connect, gather, read, targets_of};

/// Where apply records the service actions still owed after it swapped
/// files in; removed once the host is healthy.
pub const PENDING_JOURNAL: &str = "/var/lib/infra/pending";

/// Files larger than this are compared by hash only; their diff is not shown.
const MAX_DIFF_BYTES: u64 = 256 * 1024;

/// What is at the path of a managed symlink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkFact {
    Absent,
    /// A symlink, and what it points at.
    Link(String),
    /// Something that is not a symlink: apply must not replace it.
    NotALink,
}

impl LinkFact {
    /// The release a link points at (`releases/ID`), if it is one.
    pub fn release(&self) -> Option<String> {
        match self {
            LinkFact::Link(target) => target.rsplit('/').next().filter(|id| is_release_id(id)).map(String::from),
            LinkFact::Absent | LinkFact::NotALink => None,
        }
    }
}

/// Releases (id, when unpacked) newest first; ties by id, so the order is
/// the same on every run.
pub fn newest_first(releases: &[(String, i64)]) -> Vec<&(String, i64)> {
    let mut sorted: Vec<&(String, i64)> = releases.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    sorted
}

/// What a host has now, for the items its desired state manages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub files: BTreeMap<String, FileFact>,
    pub packages: BTreeMap<String, Option<String>>,
    pub services: BTreeMap<String, ServiceFact>,
    /// Service actions and hooks an interrupted apply left undone, from the
    /// host's journal: `("reload" | "restart" | "hook", name)`.
    pub pending: Vec<(String, String)>,
    /// Where infra's own SSH connection comes from and the port it reached,
    /// from sshd's `SSH_CONNECTION`: plan refuses a firewall that would cut it.
    /// Not part of the fingerprint: it describes the connection, not the host.
    #[serde(default)]
    pub ssh_connection: Option<(std::net::IpAddr, u16)>,
    /// The host's operating system from `/etc/os-release`: `ID` and
    /// `VERSION_CODENAME` (`debian`, `trixie`). Part of the fingerprint: an
    /// upgraded host is not the host a saved plan was made for.
    #[serde(default)]
    pub os: Option<(String, String)>,
    /// A load balancer's IPv4 addresses now, to tell which one holds the
    /// virtual IP. Not part of the fingerprint: the address moves by design.
    #[serde(default)]
    pub addresses: Vec<std::net::IpAddr>,
    /// A database host's newest backup and newest passing restore drill
    /// (ids, `None` when there is none), for plan's age warnings. Not part
    /// of the fingerprint: a backup taken since must not drift a saved plan.
    #[serde(default)]
    pub backups: Option<(Option<String>, Option<String>)>,
    /// An app host's `current` link (part of the fingerprint: a release
    /// switched by someone else drifts a saved plan) and its releases, with
    /// when each was unpacked (Unix seconds), for pruning.
    #[serde(default)]
    pub release_link: Option<LinkFact>,
    #[serde(default)]
    pub releases: Vec<(String, i64)>,
    /// For each release with installed packages, their requirements' digest.
    #[serde(default)]
    pub venvs: BTreeMap<String, String>,
    /// For each release, the Gunicorn it serves with: its `.venv`'s version,
    /// or [`SYSTEM_SERVER`] (Debian's) for a release without a `.venv`.
    /// Absent when its `.venv` has none (one made before releases brought
    /// their own server): not known.
    #[serde(default)]
    pub servers: BTreeMap<String, String>,
    /// The instances of app processes (`infra-app-worker@1.service`)
    /// enabled at boot on an app host.
    #[serde(default)]
    pub process_instances: std::collections::BTreeSet<String>,
    /// The releases whose migration ran, as this host knows: its
    /// migration ledger (every release the fleet migrated by the time the
    /// host last switched) and the `.infra-migrated` marks of its releases.
    /// Plan takes the union over the app hosts: a release goes through its
    /// migration once for the fleet, never again when switched back to.
    #[serde(default)]
    pub migrated: std::collections::BTreeSet<String>,
    /// The release an operator chose (`infra deploy --source`, `infra
    /// rollback`), which a plain apply keeps.
    #[serde(default)]
    pub choice: Option<crate::desired::ReleaseChoice>,
    /// The releases that passed their health checks on the host
    /// (`.infra-healthy`): what a rollback goes back to, and what pruning
    /// keeps one of.
    #[serde(default)]
    pub healthy: std::collections::BTreeSet<String>,
    /// What each release recorded about itself when it was unpacked
    /// (`.infra-release`): where its code came from and who deployed it.
    /// Not part of the fingerprint.
    #[serde(default)]
    pub records: BTreeMap<String, crate::desired::ReleaseRecord>,
    /// A web host's releases whose static files are published there
    /// (`app.static`).
    #[serde(default)]
    pub static_releases: std::collections::BTreeSet<String>,
    /// The host's Python (`3.13`) and machine (`x86_64`): what wheels fit.
    #[serde(default)]
    pub python: Option<(String, String)>,
    /// Who listens on the ports this host's services will use: `(port,
    /// unit, process)`, for plan to refuse a port a service infra does not
    /// manage holds. Not part of the fingerprint: infra's own services take
    /// and leave these ports as apply runs.
    #[serde(default)]
    pub listeners: Vec<Listening>,
    /// The process holding dpkg's lock (an unattended-upgrades run on a
    /// fresh cloud host), which apply's installs wait for. Not part of the
    /// fingerprint.
    #[serde(default)]
    pub dpkg_busy: Option<String>,
    /// The host's network interfaces, when its configuration names one.
    /// Not part of the fingerprint.
    #[serde(default)]
    pub interfaces: Option<Vec<String>>,
    /// A digest of everything above: a saved plan records it, and apply
    /// refuses when the host no longer matches.
    pub fingerprint: String,
}

impl HostFacts {
    /// The supported Debian release the host says it runs, if it is one.
    pub fn debian(&self) -> Option<crate::debian::Debian> {
        let (id, codename) = self.os.as_ref()?;
        crate::debian::Debian::from_os_release(id, codename)
    }
}

/// A process listening on a port a service of this host will use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listening {
    pub port: u16,
    /// Its systemd unit (`apache2.service`), `-` when it has none.
    pub unit: String,
    pub process: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileFact {
    Absent,
    Present {
        sha256: String,
        mode: u32,
        owner: String,
        group: String,
        /// The current content, sent only when it differs from the desired
        /// content, is not sensitive and is small enough to diff.
        #[serde(skip)]
        content: Option<Vec<u8>>,
    },
    /// Something other than a regular file is at the path.
    NotAFile {
        kind: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFact {
    pub active: bool,
    pub enabled: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FactsError {
    #[error("host `{host}` answered the facts script with an unexpected line {line_number}: `{line}`")]
    UnexpectedLine { host: String, line_number: usize, line: String },
    #[error("host `{host}` did not report {what}; its answer was cut short or garbled")]
    Missing { host: String, what: String },
    #[error("host `{host}` reported {what} twice")]
    Repeated { host: String, what: String },
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

use crate::transport::shell_quote as quote;

/// The script that gathers a host's facts; items are referred to by index so
/// no path or name needs parsing back.
pub fn script(host: &HostState) -> String {
    let mut script = SCRIPT_PRELUDE.replace("MAX_DIFF_BYTES", &MAX_DIFF_BYTES.to_string());
    script.push_str("require_root\n");
    script.push_str(&files_script(&host.files));
    // One dpkg-query and one systemctl for all items: on a host each process
    // costs milliseconds, and with many hosts on few cores that adds up.
    // Neither may run without names: they would list every package or
    // describe the service manager itself.
    if !host.packages.is_empty() {
        let names: Vec<String> = host.packages.iter().map(|package| quote(package)).collect();
        script.push_str(&format!("packages {}\n", names.join(" ")));
    }
    if !host.services.is_empty() {
        let units: Vec<String> = host.services.iter().map(|service| quote(&service.unit_name())).collect();
        script.push_str(&format!("services {}\n", units.join(" ")));
    }
    script.push_str(&format!("[ -f {PENDING_JOURNAL} ] && sed 's/^/J /' {PENDING_JOURNAL}\n"));
    script.push_str("# shellcheck disable=SC2086 # split into its four words\nset -- ${SSH_CONNECTION:-}\n[ $# -eq 4 ] && echo \"L $1 $4\"\n");
    // Read, never sourced: os-release is a file on the host, not a script
    // for infra to run. Values may be quoted; `parse` checks the words.
    script.push_str("os_release\n");
    if !host.ports.is_empty() {
        let ports: Vec<String> = host.ports.iter().map(|port| port.port.to_string()).collect();
        script.push_str(&format!("listeners {}\n", ports.join(" ")));
    }
    script.push_str("dpkg_lock\n");
    if !host.interfaces.is_empty() {
        script.push_str("interfaces\n");
    }
    if host.roles.contains(&crate::role::Role::LoadBalancer) {
        script.push_str(crate::catalog::keepalived::ADDRESSES_SCRIPT);
    }
    if let Some(backups) = &host.backups {
        script.push_str(&backup_facts(&backups.directory));
    }
    if let Some(releases) = &host.releases {
        script.push_str(&release_facts(releases));
    }
    if let Some(root) = &host.static_releases {
        script.push_str(&format!("static_releases {}\n", quote(root)));
    }
    script.push_str("echo END\n");
    script
}

/// The managed files: one digest for all of them first (`D` when the
/// tree is exactly as desired, the usual answer of a converged host), and
/// only when it differs a line per file, with the content for a diff.
fn files_script(files: &[crate::desired::ManagedFile]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let paths: Vec<String> = files.iter().map(|file| quote(&file.path)).collect();
    let mut script = format!("if files_unchanged {} {}; then echo D; else\n", tree_digest(files), paths.join(" "));
    for (index, file) in files.iter().enumerate() {
        let send = if file.sensitive { 0 } else { 1 };
        script.push_str(&format!("file {index} {} {} {send}\n", paths[index], sha256_hex(&file.content)));
    }
    script.push_str("fi\n");
    script
}

/// What `files_unchanged` on the host digests when every file is as
/// desired: `stat -c '%F %a %U %G %s'` of each, then their contents.
pub fn tree_digest(files: &[crate::desired::ManagedFile]) -> String {
    let mut digest = Sha256::new();
    for file in files {
        let kind = if file.content.is_empty() { "regular empty file" } else { "regular file" };
        digest.update(format!(
            "{kind} {:o} {} {} {}\n",
            file.mode & 0o7777,
            file.owner,
            file.group,
            file.content.len()
        ));
    }
    for file in files {
        digest.update(&file.content);
    }
    hex(&digest.finalize())
}

/// `K TARGET` (`K -` for no link, `K !` for something else there), one
/// `R ID MTIME VENV MIGRATED HEALTHY SERVER` per complete release directory
/// (`VENV`: the digest of the requirements its `.venv` holds, `-` for none;
/// `MIGRATED`: whether its migration ran; `HEALTHY`: whether it passed its
/// health checks here; `SERVER`: the version of the Gunicorn in its
/// `.venv`, `system` without one, `-` for a `.venv` without Gunicorn), `M ID JSON` with its `.infra-release` when it has
/// one, `G ID` for each release the host's migration ledger names, `H
/// JSON` with the operator's release choice, `X UNIT` for each enabled
/// instance of an app process, and `Y VERSION ARCH` of the host's Python
/// (what wheels must be built for).
fn release_facts(releases: &crate::desired::Releases) -> String {
    use crate::desired::release_marks::{CHOICE, COMPLETE, HEALTHY, MIGRATED, MIGRATION_LEDGER, PACKAGES, RECORD};
    let (link, dir) = (quote(&releases.link), quote(&releases.directory));
    format!(
        "if [ -L {link} ]; then echo \"K $(readlink {link})\"; elif [ -e {link} ]; then echo 'K !'; else echo 'K -'; fi\n\
         releases {dir} {COMPLETE} {PACKAGES} {MIGRATED} {HEALTHY} {RECORD}\n\
         release_ledgers {MIGRATION_LEDGER} {CHOICE}\n\
         app_processes\n\
         python_facts\n"
    )
}

/// `B NEWEST_BACKUP NEWEST_PASSED_DRILL` (see `backups` in prelude.sh).
fn backup_facts(directory: &str) -> String {
    format!("backups {}\n", quote(directory))
}

/// The functions the facts script calls, from `prelude.sh`: kept a file of
/// its own so it reads (and shellchecks) as the shell it is.
const SCRIPT_PRELUDE: &str = include_str!("prelude.sh");

/// Parses a host's answer to [`script`].
pub fn parse(host: &HostState, output: &str) -> Result<HostFacts, FactsError> {
    let name = &host.name;
    let mut facts = HostFacts::default();
    let mut contents: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let mut ended = false;
    for (number, line) in output.lines().enumerate() {
        let unexpected = || FactsError::UnexpectedLine {
            host: name.clone(),
            line_number: number + 1,
            line: crate::sanitize::printable(&line.chars().take(120).collect::<String>()),
        };
        if ended {
            return Err(unexpected());
        }
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["END"] => ended = true,
            // Only what this host's plan could have owed: a journal edited
            // on the host must not make apply restart a unit of its choice.
            ["J", kind @ ("reload" | "restart" | "hook"), name] => {
                let name = name.replace('_', " ");
                let known = match *kind {
                    "hook" => host.hooks.iter().any(|hook| hook.name == name),
                    _ => host.services.iter().any(|service| service.name == name),
                };
                if !known {
                    return Err(unexpected());
                }
                facts.pending.push((kind.to_string(), name))
            }
            ["O", id, codename] if facts.os.is_none() && is_os_word(id) && is_os_word(codename) => {
                facts.os = Some((id.to_string(), codename.to_string()));
            }
            ["V", address] => facts.addresses.push(address.parse().map_err(|_| unexpected())?),
            ["K", _, ..] if facts.release_link.is_none() && host.releases.is_some() => {
                facts.release_link = Some(match line.strip_prefix("K ").ok_or_else(unexpected)? {
                    "-" => LinkFact::Absent,
                    "!" => LinkFact::NotALink,
                    target => LinkFact::Link(target.to_string()),
                });
            }
            ["R", id, mtime, venv, migrated, healthy, server] if host.releases.is_some() && is_release_id(id) => {
                facts.releases.push((id.to_string(), mtime.parse().map_err(|_| unexpected())?));
                if is_server_version(server) {
                    facts.servers.insert(id.to_string(), server.to_string());
                }
                if is_release_id(venv) {
                    facts.venvs.insert(id.to_string(), venv.to_string());
                }
                if *migrated == "migrated" {
                    facts.migrated.insert(id.to_string());
                }
                if *healthy == "healthy" {
                    facts.healthy.insert(id.to_string());
                }
            }
            ["M", id, ..] if host.releases.is_some() && is_release_id(id) => {
                // A record someone edited into garbage only loses its
                // description: it never stops plan from reading the host.
                let record = line.get(2 + id.len()..).unwrap_or_default();
                if let Ok(record) = serde_json::from_str(record) {
                    facts.records.insert(id.to_string(), record);
                }
            }
            ["W", id] if host.static_releases.is_some() && is_release_id(id) => {
                facts.static_releases.insert(id.to_string());
            }
            ["X", unit] if host.releases.is_some() && crate::catalog::is_process_instance(unit) => {
                facts.process_instances.insert(unit.to_string());
            }
            ["G", id] if host.releases.is_some() && is_release_id(id) => {
                facts.migrated.insert(id.to_string());
            }
            ["H", ..] if host.releases.is_some() && facts.choice.is_none() => {
                // Garbage only loses the choice: apply then deploys what
                // the inventory names, and plan says so.
                let choice = serde_json::from_str::<crate::desired::ReleaseChoice>(line.get(2..).unwrap_or_default());
                facts.choice =
                    choice.ok().filter(|choice| is_release_id(&choice.release) && is_release_id(&choice.inventory));
            }
            ["Y", version, arch] if host.releases.is_some() && facts.python.is_none() => {
                facts.python = is_python(version, arch).then(|| (version.to_string(), arch.to_string()));
            }
            ["B", backup, drill] if facts.backups.is_none() && host.backups.is_some() => {
                let id = |text: &str| crate::backup::is_id(text).then(|| text.to_string());
                facts.backups = Some((id(backup), id(drill)));
            }
            ["T", port, unit, process] if is_host_word(unit) && is_host_word(process) => {
                let port = port.parse().map_err(|_| unexpected())?;
                if !host.ports.iter().any(|wanted| wanted.port == port) {
                    return Err(unexpected());
                }
                facts.listeners.push(Listening { port, unit: unit.to_string(), process: process.to_string() });
            }
            ["I", names @ ..] if facts.interfaces.is_none() && names.iter().all(|name| is_host_word(name)) => {
                facts.interfaces = Some(names.iter().map(|name| name.to_string()).collect());
            }
            ["Z", process] if facts.dpkg_busy.is_none() && is_host_word(process) => {
                facts.dpkg_busy = Some(process.to_string());
            }
            ["L", client, port] if facts.ssh_connection.is_none() => {
                let client = client.parse().map_err(|_| unexpected())?;
                facts.ssh_connection = Some((client, port.parse().map_err(|_| unexpected())?));
            }
            // The host proved the whole tree is as desired: each file is
            // what infra would write (a second report of any is an error).
            ["D"] if !host.files.is_empty() => {
                tracing::debug!(host = %name, files = host.files.len(), "managed files proved unchanged by one digest");
                for (index, file) in host.files.iter().enumerate() {
                    let fact = FileFact::Present {
                        sha256: sha256_hex(&file.content),
                        mode: file.mode & 0o7777,
                        owner: file.owner.clone(),
                        group: file.group.clone(),
                        content: None,
                    };
                    insert_file(&mut facts, host, &index.to_string(), fact).ok_or_else(unexpected)??;
                }
            }
            ["A", index] => insert_file(&mut facts, host, index, FileFact::Absent).ok_or_else(unexpected)??,
            ["N", index, kind] => {
                insert_file(&mut facts, host, index, FileFact::NotAFile { kind: kind.replace('_', " ") })
                    .ok_or_else(unexpected)??
            }
            ["F", index, sha256, mode, owner, group] if is_sha256(sha256) => {
                let mode = u32::from_str_radix(mode, 8).map_err(|_| unexpected())?;
                let fact = FileFact::Present {
                    sha256: sha256.to_string(),
                    mode,
                    owner: owner.to_string(),
                    group: group.to_string(),
                    content: None,
                };
                insert_file(&mut facts, host, index, fact).ok_or_else(unexpected)??;
            }
            ["C", index, encoded] => {
                let index: usize = index.parse().map_err(|_| unexpected())?;
                let bytes = decode_base64(encoded).ok_or_else(unexpected)?;
                if host.files.get(index).is_none() || contents.insert(index, bytes).is_some() {
                    return Err(unexpected());
                }
            }
            ["P", index, version] => {
                let package = item(&host.packages, index).ok_or_else(unexpected)?;
                let version = (*version != "-").then(|| version.to_string());
                if facts.packages.insert(package.clone(), version).is_some() {
                    return Err(FactsError::Repeated { host: name.clone(), what: format!("package `{package}`") });
                }
            }
            ["S", index, active, enabled] => {
                let service = item(&host.services, index).ok_or_else(unexpected)?;
                let fact = ServiceFact { active: *active == "active", enabled: *enabled == "enabled" };
                if facts.services.insert(service.name.clone(), fact).is_some() {
                    return Err(FactsError::Repeated {
                        host: name.clone(),
                        what: format!("service `{}`", service.name),
                    });
                }
            }
            _ => return Err(unexpected()),
        }
    }
    attach_contents(&mut facts, host, contents);
    complete(&facts, host, ended)?;
    facts.fingerprint = fingerprint(&facts);
    Ok(facts)
}

/// Release directories infra made: 12 lowercase hex digits. Anything else
/// in the directory is not infra's to list or prune.
pub fn is_release_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// [`HostFacts::servers`]' word for Debian's own Gunicorn.
pub const SYSTEM_SERVER: &str = "system";

/// A Gunicorn version as a dist-info directory names it (`23.0.0`,
/// `22.0.0.post1`), or [`SYSTEM_SERVER`]; never `-` or anything a host
/// made up to reach a message.
fn is_server_version(text: &str) -> bool {
    text == SYSTEM_SERVER
        || (text.len() <= 40
            && text.starts_with(|c: char| c.is_ascii_digit())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'!' | b'_')))
}

fn is_python(version: &str, arch: &str) -> bool {
    let version_ok = version.split_once('.').is_some_and(|(major, minor)| {
        major == "3" && !minor.is_empty() && minor.bytes().all(|byte| byte.is_ascii_digit())
    });
    version_ok && !arch.is_empty() && arch.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

fn item<'a, T>(items: &'a [T], index: &str) -> Option<&'a T> {
    index.parse::<usize>().ok().and_then(|index| items.get(index))
}

/// `None` for a bad index; `Some(Err)` for a file reported twice.
fn insert_file(facts: &mut HostFacts, host: &HostState, index: &str, fact: FileFact) -> Option<Result<(), FactsError>> {
    let file = item(&host.files, index)?;
    Some(match facts.files.insert(file.path.clone(), fact) {
        Some(_) => Err(FactsError::Repeated { host: host.name.clone(), what: format!("file `{}`", file.path) }),
        None => Ok(()),
    })
}

fn attach_contents(facts: &mut HostFacts, host: &HostState, contents: BTreeMap<usize, Vec<u8>>) {
    for (index, bytes) in contents {
        if let Some(FileFact::Present { content, sha256, .. }) = facts.files.get_mut(&host.files[index].path)
            && sha256_hex(&bytes) == *sha256
        {
            *content = Some(bytes);
        }
    }
}

fn complete(facts: &HostFacts, host: &HostState, ended: bool) -> Result<(), FactsError> {
    let missing = |what: String| Err(FactsError::Missing { host: host.name.clone(), what });
    if let Some(file) = host.files.iter().find(|file| !facts.files.contains_key(&file.path)) {
        return missing(format!("file `{}`", file.path));
    }
    if let Some(package) = host.packages.iter().find(|package| !facts.packages.contains_key(*package)) {
        return missing(format!("package `{package}`"));
    }
    if let Some(service) = host.services.iter().find(|service| !facts.services.contains_key(&service.name)) {
        return missing(format!("service `{}`", service.name));
    }
    if !ended {
        return missing("the end marker".to_string());
    }
    Ok(())
}

fn fingerprint(facts: &HostFacts) -> String {
    let mut text = String::new();
    for (path, fact) in &facts.files {
        let state = match fact {
            FileFact::Absent => "absent".to_string(),
            FileFact::NotAFile { kind } => format!("not a file: {kind}"),
            FileFact::Present { sha256, mode, owner, group, .. } => format!("{sha256} {mode:o} {owner}:{group}"),
        };
        text.push_str(&format!("file {path} {state}\n"));
    }
    for (package, version) in &facts.packages {
        text.push_str(&format!("package {package} {}\n", version.as_deref().unwrap_or("-")));
    }
    for (service, fact) in &facts.services {
        text.push_str(&format!("service {service} {} {}\n", fact.active, fact.enabled));
    }
    for (kind, name) in &facts.pending {
        text.push_str(&format!("pending {kind} {name}\n"));
    }
    if let Some(link) = &facts.release_link {
        text.push_str(&format!("release link {link:?}\n"));
    }
    if let Some((version, arch)) = &facts.python {
        text.push_str(&format!("python {version} {arch}\n"));
    }
    // What decides a release plan: a migration recorded since, or a
    // choice made since, is not the host the plan was made for.
    for id in &facts.migrated {
        text.push_str(&format!("migrated {id}\n"));
    }
    if let Some(choice) = &facts.choice {
        text.push_str(&format!("chosen {} over {}\n", choice.release, choice.inventory));
    }
    if let Some((id, codename)) = &facts.os {
        text.push_str(&format!("os {id} {codename}\n"));
    }
    for id in &facts.static_releases {
        text.push_str(&format!("static files of {id}\n"));
    }
    sha256_hex(text.as_bytes())
}

/// `os-release` IDs and codenames are lowercase words; anything else is
/// not an answer infra understands.
/// A unit or process name as the host reports it: printable, no spaces
/// (the script writes them as `_`), at most 128 bytes.
fn is_host_word(text: &str) -> bool {
    !text.is_empty() && text.len() <= 128 && text.bytes().all(|byte| byte.is_ascii_graphic())
}

fn is_os_word(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte))
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Standard base64, as coreutils' `base64` writes it.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests;

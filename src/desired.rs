//! The desired state of each host: plain data that plan and apply consume.
//!
//! Rendering produces it; nothing here does I/O. A host's state lists the
//! packages to install, the files to write (content, mode, owner, and the
//! checker that validates them), and the services with the files that make
//! them reload or restart. Keeping it plain data is what makes plan a pure
//! function of desired state and facts.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::role::Role;
use crate::transport::Target;

/// Every host's desired state, in stage order.
#[derive(Clone, Debug, Serialize)]
pub struct DesiredState {
    pub hosts: Vec<HostState>,
    /// The load balancers' virtual IP: apply changes its holder last.
    pub virtual_ip: Option<IpAddr>,
    /// Hosts a limited run reads but plans nothing for: the other app
    /// hosts (their migration records), and the web hosts a release's
    /// static files are published to before any app host switches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<HostState>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostState {
    pub name: String,
    pub address: IpAddr,
    /// How apply and plan reach the host, resolved from the inventory.
    #[serde(skip)]
    pub target: Target,
    pub roles: Vec<Role>,
    /// The stage apply converges this host in (render takes it from the stack).
    pub stage: Role,
    pub packages: Vec<String>,
    pub files: Vec<ManagedFile>,
    pub services: Vec<ManagedService>,
    /// Commands to run after the files that trigger them changed (the SQL
    /// that creates the database and user, say).
    pub hooks: Vec<Hook>,
    /// Commands that must succeed once the host is converged.
    pub health_checks: Vec<HealthCheck>,
    /// The firewall's SSH rule, so plan can refuse a ruleset that would cut
    /// the connection apply is using.
    pub ssh_guard: Option<crate::firewall::SshGuard>,
    /// The TCP ports this host's services listen on: plan refuses one that
    /// something infra does not manage already holds.
    pub ports: Vec<Port>,
    /// The network interfaces its configuration names (keepalived's, and
    /// each network's): plan refuses a host that has none of that name.
    pub interfaces: Vec<Interface>,
    /// The database host's backups: where facts look for the newest, and
    /// whether apply takes one before a risky change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<Backups>,
    /// An app host's releases: the directory each release is unpacked in,
    /// the `current` link that picks one, and how many are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub releases: Option<Releases>,
    /// A web host's directory of releases' static files (`app.static`):
    /// facts list the releases published there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_releases: Option<String>,
}

/// An interface a host's configuration names, what for, and the setting
/// that names it (for the refusal's fix).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    /// `the private network`, `keepalived to move the virtual IP on`.
    pub purpose: &'static str,
    /// `networks.private.interface`, `load_balancer.interface`.
    pub setting: &'static str,
}

/// A port a service of the host listens on, and how an operator names it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Port {
    pub port: u16,
    pub service: String,
}

/// Versioned releases of the app: `directory/ID/` holds one release's code
/// (the id is a digest of it, the same on every host), `link` points at the
/// one Gunicorn serves and is switched by an atomic rename, so it is valid
/// at every moment; switching back is a rollback in seconds.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Releases {
    /// Where releases are unpacked: `/srv/app/releases`.
    pub directory: String,
    /// The symlink Gunicorn's `chdir` goes through: `/srv/app/current`.
    pub link: String,
    /// The release this host should serve.
    pub id: String,
    /// The release the inventory itself names: `id`, unless `infra deploy
    /// --source` asked for another revision. Recorded with a deploy's
    /// choice, so apply keeps the deployed release until this changes.
    pub inventory_id: String,
    /// Set when the run is an operator's explicit choice of release
    /// (`infra deploy --source v4`): it switches whatever release an
    /// earlier choice keeps, and records its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<String>,
    /// How many releases stay on the host (the current one always does).
    pub keep: u32,
    /// The release's Python requirements, installed in its own `.venv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Requirements>,
    /// The module Gunicorn imports (`app` of `app:app`): checked to import
    /// before a host switches to the release.
    pub module: String,
    /// Run once per release before any host switches to it: the words of
    /// its command line (`app.migrate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<Vec<String>>,
    /// The Python the app needs (`app.python`, specifiers like `>=3.11`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// Where the code came from: shown by `infra releases`, recorded in
    /// the release on the host.
    pub origin: Origin,
    /// The release's code: paths relative to its directory, and contents.
    /// Not managed files: a release is written once, whole, into a new
    /// directory nothing serves yet, and never changed; the link's switch
    /// is the transaction.
    #[serde(skip)]
    pub files: Vec<(String, Arc<[u8]>)>,
    /// Directories kept across releases (`app.shared`), relative to a
    /// release: each is a link in every release to its directory under
    /// [`shared_root`], made when the release is unpacked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
    /// Commands each app host runs in the release before it switches to
    /// it, and after (`app.before_switch`, `app.after_switch`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_switch: Vec<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_switch: Vec<Vec<String>>,
    /// The instance units of the app's processes (`app.processes`): a
    /// rollback restarts them onto the release it switches to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
    /// The release's static files (`app.static`), published to the web
    /// hosts before the first app host switches to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_files: Option<StaticFiles>,
}

/// Where a release's static files come from and where web hosts keep
/// them: `ROOT/ID/…`, served at `/static/ID/…`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StaticFiles {
    /// The web hosts' static root (`web.static_root`).
    pub root: String,
    pub source: StaticSource,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StaticSource {
    /// A directory of the release (relative to it), published as the
    /// release has it: this machine has its files already.
    Directory(String),
    /// Commands that fill `$STATIC_ROOT` on an app host, in the release.
    Build(Vec<Vec<String>>),
}

/// The URL path release `id`'s static files are served at (`app.static`),
/// `STATIC_URL` to the app: Nginx serves `/static/` from the static root.
pub fn static_url(id: &str) -> String {
    format!("/static/{id}/")
}

/// The names of a release's own environment
/// ([`release_marks::ENVIRONMENT`]).
pub fn release_environment_names(static_files: bool) -> Vec<&'static str> {
    if static_files { vec!["INFRA_RELEASE", "STATIC_URL"] } else { vec!["INFRA_RELEASE"] }
}

impl Releases {
    /// The text of release `id`'s own environment file: which release it
    /// is, and with `app.static` the URL its static files are served at.
    pub fn environment(&self, id: &str) -> String {
        let mut text = format!("INFRA_RELEASE={id}\n");
        if self.static_files.is_some() {
            text.push_str(&format!("STATIC_URL={}\n", static_url(id)));
        }
        text
    }
}

/// Where shared directories live (`app.shared`): `shared` beside the
/// releases `directory` (`/srv/app/shared` for `/srv/app/releases`).
pub fn shared_root(directory: &str) -> String {
    let parent = std::path::Path::new(directory).parent().and_then(|parent| parent.to_str());
    format!("{}/shared", parent.unwrap_or("/srv/app"))
}

/// Where a release's code came from: the inventory's `app.source`, and for
/// a git source the revision asked for and the commit it named.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Origin {
    #[serde(default)]
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl std::fmt::Display for Origin {
    /// `from ../app at v2 (commit 3f2a9c1e0b7d)`, or `from ../app`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "from {}", self.source)?;
        if let Some(revision) = &self.revision {
            write!(f, " at {revision}")?;
        }
        if let Some(commit) = &self.commit {
            write!(f, " (commit {})", commit.get(..12).unwrap_or(commit))?;
        }
        Ok(())
    }
}

/// What a release says about itself on the host (one line of JSON in
/// [`release_marks::RECORD`]): where its code came from and who deployed
/// it; when is the directory's own time. Apply writes it, facts read it.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ReleaseRecord {
    #[serde(flatten)]
    pub origin: Origin,
    #[serde(default)]
    pub by: String,
}

/// An operator's choice of release, which a plain `apply` keeps: `infra
/// deploy --source` or `infra rollback` made `release` current while the
/// inventory named `inventory`. Apply keeps it until the inventory names
/// another release (its source changed), and says so in plan; one line of
/// JSON in [`release_marks::CHOICE`] on each app host.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReleaseChoice {
    pub release: String,
    pub inventory: String,
    /// What made the choice, as the operator typed it: `infra deploy
    /// --source v4`, `infra rollback`.
    pub command: String,
    /// Who, and when (UTC, like a backup id); filled in by the run that
    /// writes it.
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub at: String,
}

/// The files in a release directory that say what happened to it on the
/// host, and the two host-wide records beside them: apply writes them,
/// facts read them.
pub mod release_marks {
    /// The releases whose migration ran anywhere in the fleet, one id per
    /// line: every app host that switches to a release appends what the
    /// fleet knows, so the record survives pruning and any one host.
    pub const MIGRATION_LEDGER: &str = "/var/lib/infra/migrated";
    /// The [`super::ReleaseChoice`] a plain apply keeps.
    pub const CHOICE: &str = "/var/lib/infra/release-choice";
    /// Unpacked whole: a directory without it is not a release.
    pub const COMPLETE: &str = ".infra-complete";
    /// Its migration ran: it never runs again for this release.
    pub const MIGRATED: &str = ".infra-migrated";
    /// It passed its health checks here: only such releases are rolled back to.
    pub const HEALTHY: &str = ".infra-healthy";
    /// Its [`super::ReleaseRecord`].
    pub const RECORD: &str = ".infra-release";
    /// The release's own environment (`INFRA_RELEASE`, and `STATIC_URL`
    /// with `app.static`), `NAME=value` lines read by Gunicorn's config at
    /// each load, by the app's processes and by its commands.
    pub const ENVIRONMENT: &str = ".infra-env";
    /// The digest of the requirements its `.venv` holds, written last.
    pub const PACKAGES: &str = ".venv/.infra-requirements";
}

/// A release's requirements file and what identifies its installed
/// packages: releases with the same digest share them (hard links), so a
/// code-only release installs nothing.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Requirements {
    /// The file, relative to the release.
    pub file: String,
    /// [`crate::requirements::digest`] of its text.
    pub digest: String,
    /// The distributions it names, for the plan.
    pub names: Vec<String>,
    /// Requirements infra installs beside the file's: Gunicorn, pinned to
    /// the catalog's default version, when the file does not name it (a release's `.venv` sees no Debian package, so its
    /// server must be in it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// The Gunicorn version the release serves with, when the
    /// requirements pin it exactly (or infra adds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gunicorn: Option<String>,
}

impl Releases {
    /// One of the release's files, by its path relative to the release.
    pub fn file(&self, relative: &str) -> Option<&[u8]> {
        self.files.iter().find(|(path, _)| path == relative).map(|(_, content)| &content[..])
    }

    /// The link's target for a release: relative, so the tree can move.
    pub fn target(&self, id: &str) -> String {
        let base =
            std::path::Path::new(&self.directory).file_name().and_then(|name| name.to_str()).unwrap_or("releases");
        format!("{base}/{id}")
    }
}

/// What plan and apply need to know of a database host's backups.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Backups {
    /// The backup directory on the host.
    pub directory: String,
    /// systemd `OnCalendar=`: how often a backup is due.
    pub on_calendar: String,
    /// Take a backup before restarting MariaDB or feeding it SQL
    /// (`database.backup.before_apply`), so a bad change can be undone.
    pub before_apply: bool,
}

/// A file with exactly this content, mode and owner.
#[derive(Clone, Debug, Serialize)]
pub struct ManagedFile {
    pub path: String,
    /// Shared, not copied: 10,000 web hosts hold one Nginx site.
    #[serde(skip)]
    pub content: Arc<[u8]>,
    /// Written in octal (`"0644"`) wherever infra shows it, JSON included.
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// The content holds a secret: never shown in diffs or logs.
    pub sensitive: bool,
    /// The service's own parser for this file, if it has one.
    pub checker: Option<Checker>,
    /// Where the content came from: a template name or a local source path.
    pub origin: String,
}

/// A systemd service and the files that affect it.
#[derive(Clone, Debug, Serialize)]
pub struct ManagedService {
    pub name: String,
    /// Files whose change needs only a graceful reload.
    pub reload_on: Vec<String>,
    /// Files whose change needs a restart (or that the service cannot reload).
    pub restart_on: Vec<String>,
    pub enabled: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Hook {
    pub name: String,
    pub command: String,
    pub triggered_by: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HealthCheck {
    pub description: String,
    pub command: String,
}

/// A service's own configuration checker, able to judge a whole config tree.
/// Named by its program everywhere (text and JSON alike): [`Checker::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Checker {
    Haproxy,
    Nginx,
    Keepalived,
    Mariadb,
    /// Gunicorn's config is Python: compile it.
    Python,
    SystemdUnit,
    /// `nft -c`: parses and checks the ruleset against the kernel, loads nothing.
    Nft,
    /// `bash -n`: a script's syntax, without running it.
    Shell,
}

impl Checker {
    pub fn name(self) -> &'static str {
        match self {
            Checker::Haproxy => "haproxy",
            Checker::Nginx => "nginx",
            Checker::Keepalived => "keepalived",
            Checker::Mariadb => "mariadbd",
            Checker::Python => "python3",
            Checker::SystemdUnit => "systemd-analyze",
            Checker::Nft => "nft",
            Checker::Shell => "bash",
        }
    }
}

impl Serialize for Checker {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

fn octal<S: serde::Serializer>(mode: &u32, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("{mode:04o}"))
}

impl ManagedService {
    /// Its full unit name: a service's is its name with `.service`; other
    /// kinds (a `.timer`) are named in full.
    pub fn unit_name(&self) -> String {
        if self.name.contains('.') { self.name.clone() } else { format!("{}.service", self.name) }
    }
}

impl HostState {
    pub fn file(&self, path: &str) -> Option<&ManagedFile> {
        self.files.iter().find(|file| file.path == path)
    }
}

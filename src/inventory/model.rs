//! The decoded inventory: typed values that still remember their spans.
//!
//! Later steps trust the types here (an address is an `IpAddr`, a port is a
//! `u16`) but keep spans so the stack rules can point at the line to fix.
//! Defaults that the documentation promises are applied here, once.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;

use crate::role::Role;
use crate::secret::SecretRef;
use crate::source::{Span, Spanned};

/// Everything an inventory file declares.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// Where the inventory's local paths are resolved, and may lead.
    pub files: crate::source::LocalFiles,
    pub ssh: SshSettings,
    pub templates: Option<Spanned<PathBuf>>,
    pub hosts: Vec<Host>,
    /// The span of the `hosts` key, for problems with the host list as a whole.
    pub hosts_span: Span,
    pub load_balancer: Option<LoadBalancerSettings>,
    pub web: Option<WebSettings>,
    pub app: Option<AppSettings>,
    pub database: Option<DatabaseSettings>,
    pub firewall: Option<FirewallSettings>,
    /// `networks: {public: …, private: …}`: hosts with two interfaces.
    pub networks: Option<Networks>,
    /// The role sections the file has, including ones that failed to decode.
    pub declared_sections: Vec<&'static str>,
    /// True when decoding reported errors: rules that reason about what is
    /// absent stay quiet, because the absence may be a decoding casualty.
    pub incomplete: bool,
}

impl Inventory {
    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |host| host.has_role(role))
    }
}

/// How to reach hosts over SSH; each host may override any of it.
#[derive(Clone, Debug, Default)]
pub struct SshSettings {
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub identity: Option<Spanned<PathBuf>>,
    pub known_hosts: Option<Spanned<PathBuf>>,
    /// What `ssh` dials when it is not the host's `address` (a public
    /// address, a DNS name, a `~/.ssh/config` alias); only hosts have one.
    pub host: Option<Spanned<String>>,
    /// `become: sudo`: log in as `user` and run everything as root
    /// through `sudo -n`.
    pub privilege: Option<Spanned<crate::transport::Privilege>>,
    /// The bastion in front of the host (`jump: admin@bastion:22`).
    pub jump: Option<Spanned<crate::transport::Jump>>,
}

impl SshSettings {
    pub fn user_or_default(&self) -> &str {
        self.user.as_ref().map_or("root", |user| user.value.as_str())
    }

    pub fn port_or_default(&self) -> u16 {
        self.port.as_ref().map_or(22, |port| port.value)
    }
}

#[derive(Clone, Debug)]
pub struct Host {
    pub name: Spanned<String>,
    /// The address the tiers use (on the private network, when there are two).
    pub address: Spanned<IpAddr>,
    /// The host's address on the public network, when `networks` has one:
    /// where clients and SSH reach it.
    pub public_address: Option<Spanned<IpAddr>>,
    pub roles: Vec<Spanned<Role>>,
    pub ssh: SshSettings,
    pub vrrp: HostVrrp,
    /// How `infra lab up` boots this host; only the lab reads it.
    pub lab: HostLab,
}

/// A host's `lab:` settings: plan and apply go by what the host reports,
/// never by these.
#[derive(Clone, Debug, Default)]
pub struct HostLab {
    /// The Debian release to boot (`release: trixie`).
    pub release: Option<Spanned<crate::debian::Debian>>,
    /// `sudo: password`: the login user's sudo asks for a password, as on
    /// a host whose sudoers lack `NOPASSWD` (for the refusal's test).
    pub sudo_password: bool,
    /// `preinstalled: [apache2]`: installed at first boot, so the host
    /// looks reused (one of [`LAB_PREINSTALLABLE`]).
    pub preinstalled: Vec<String>,
}

/// What `lab.preinstalled` may name: the lab caches these in its root
/// filesystem, as lab hosts have no network to fetch anything else.
pub const LAB_PREINSTALLABLE: [&str; 1] = ["apache2"];

impl Host {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|candidate| candidate.value == role)
    }

    /// The host's address on the network `peer` is in: its public address
    /// when `peer` is on the public network, else `address`. A balancer
    /// speaks VRRP from the address facing the virtual IP.
    pub fn address_facing(&self, networks: Option<&Networks>, peer: IpAddr) -> &Spanned<IpAddr> {
        let public = networks.is_some_and(|networks| networks.public.cidr.value.contains(&peer));
        match &self.public_address {
            Some(address) if public => address,
            _ => &self.address,
        }
    }

    /// Every address the host has in the inventory, private first.
    pub fn addresses(&self) -> impl Iterator<Item = &Spanned<IpAddr>> {
        std::iter::once(&self.address).chain(self.public_address.as_ref())
    }
}

/// Per-host keepalived settings; unset values come from `load_balancer`.
#[derive(Clone, Debug, Default)]
pub struct HostVrrp {
    pub priority: Option<Spanned<u8>>,
    pub virtual_router_id: Option<Spanned<u8>>,
    pub secret: Option<SecretRef>,
}

/// HAProxy balancing algorithms that make sense for HTTP backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    LeastConn,
    Source,
}

impl Balance {
    pub const NAMES: [&'static str; 3] = ["roundrobin", "leastconn", "source"];

    pub fn from_name(name: &str) -> Option<Balance> {
        match name {
            "roundrobin" => Some(Balance::RoundRobin),
            "leastconn" => Some(Balance::LeastConn),
            "source" => Some(Balance::Source),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        Balance::NAMES[self as usize]
    }
}

#[derive(Clone, Debug)]
pub struct LoadBalancerSettings {
    pub span: Span,
    /// The virtual IP with its prefix length, e.g. `10.20.0.10/24`.
    pub virtual_ip: Spanned<IpNet>,
    pub interface: Spanned<String>,
    /// Whether `interface` was written (or is the `eth0` default): with
    /// `networks`, the virtual IP's network names the interface instead.
    pub interface_declared: bool,
    pub virtual_router_id: Spanned<u8>,
    pub vrrp_secret: SecretRef,
    pub frontend_port: Spanned<u16>,
    pub balance: Spanned<Balance>,
    /// An explicit backend list (host names); must be exactly the web hosts.
    pub backends: Option<Spanned<Vec<Spanned<String>>>>,
    pub tls: Option<TlsSettings>,
}

/// TLS termination at HAProxy.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub span: Span,
    /// The certificate chain (PEM, leaf first), relative to the inventory.
    pub certificate: Spanned<PathBuf>,
    /// The private key (PEM): a secret like any other.
    pub key: SecretRef,
    pub port: Spanned<u16>,
    /// Answer plain HTTP with a redirect to HTTPS.
    pub redirect_http: Spanned<bool>,
    /// Send Strict-Transport-Security on HTTPS responses.
    pub hsts: Spanned<bool>,
}

#[derive(Clone, Debug)]
pub struct WebSettings {
    pub span: Span,
    pub port: Spanned<u16>,
    pub server_name: Spanned<String>,
    pub static_root: Spanned<String>,
    pub static_source: Option<Spanned<PathBuf>>,
    /// An explicit upstream list; must be exactly the app hosts' Gunicorn binds.
    pub upstreams: Option<Spanned<Vec<Spanned<SocketAddr>>>>,
}

#[derive(Clone, Debug)]
pub struct AppSettings {
    pub span: Span,
    /// The WSGI entry point, `module:callable`.
    pub module: Spanned<String>,
    pub bind: Spanned<SocketAddr>,
    pub workers: Spanned<u16>,
    /// The app's code: a directory, or a git repository when `revision`
    /// names the commit to deploy from it.
    pub source: Spanned<PathBuf>,
    /// `app.source.ref`: the branch, tag or commit of the `source`
    /// repository (grammar-checked), overridden by `infra deploy --source`.
    pub revision: Option<Spanned<String>>,
    pub directory: Spanned<String>,
    /// How many releases each app host keeps under `directory/releases`.
    pub keep_releases: Spanned<u32>,
    /// The app's Python requirements, a file inside `source`: installed in
    /// each release's own `.venv` from wheels infra downloads.
    pub requirements: Option<Spanned<String>>,
    /// A command run once per release, in the release's directory with the
    /// app's environment, before any host switches to it (`[python3, -m,
    /// alembic, upgrade, head]`): the words of its command line.
    pub migrate: Option<Spanned<Vec<String>>>,
    /// More of the app's environment, beside the database settings infra
    /// writes itself: plain values, or secret references.
    pub env: Vec<(Spanned<String>, EnvValue)>,
    /// The Python the app needs (`>=3.11`), checked against each app
    /// host's: plan refuses a host that does not satisfy it.
    pub python: Option<Spanned<String>>,
}

/// One value of `app.env`.
#[derive(Clone, Debug)]
pub enum EnvValue {
    Plain(Spanned<String>),
    Secret(SecretRef),
}

impl WebSettings {
    /// What `web` means when the inventory has no such section: every
    /// setting has a default. `span` is where problems with it point.
    pub fn defaults(span: Span) -> WebSettings {
        WebSettings {
            span,
            port: Spanned::new(WEB_PORT, span),
            server_name: Spanned::new(SERVER_NAME.to_string(), span),
            static_root: Spanned::new(STATIC_ROOT.to_string(), span),
            static_source: None,
            upstreams: None,
        }
    }
}

/// The port Nginx listens on when `web` does not say.
pub const WEB_PORT: u16 = 80;
/// Nginx's catch-all server name, when `web` does not name one.
pub const SERVER_NAME: &str = "_";
/// Where Nginx serves static files from when `web` does not say.
pub const STATIC_ROOT: &str = "/var/www/infra";

/// How many releases an app host keeps when `app` does not say.
pub const KEEP_RELEASES: u32 = 5;

#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    pub span: Span,
    pub name: Spanned<String>,
    pub user: Spanned<String>,
    pub password: SecretRef,
    pub port: Spanned<u16>,
    pub bind_address: Option<Spanned<IpAddr>>,
    /// An explicit list of client addresses; must be exactly the app hosts'.
    pub allowed_hosts: Option<Spanned<Vec<Spanned<IpAddr>>>>,
    /// Always there: the decoder applies the defaults when the file has no
    /// `backup` section.
    pub backup: BackupSettings,
}

/// Where backups are kept when `database.backup` does not say.
pub const BACKUP_DIRECTORY: &str = "/var/backups/infra";
/// How many backups are kept when `database.backup` does not say.
pub const BACKUP_KEEP: u32 = 7;
/// When backups are taken when `database.backup` does not say (systemd's
/// `OnCalendar=` shorthand).
pub const BACKUP_SCHEDULE: &str = "daily";

/// Whether MariaDB keeps binary logs when `database.backup` does not say.
pub const BACKUP_BINLOGS: bool = false;
/// Whether a risky apply takes a backup first when `database.backup` does not say.
pub const BACKUP_BEFORE_APPLY: bool = true;

impl BackupSettings {
    /// What `database.backup` means when the inventory has no such section.
    pub fn defaults(span: Span) -> BackupSettings {
        BackupSettings {
            span,
            declared: false,
            directory: Spanned::new(BACKUP_DIRECTORY.to_string(), span),
            keep: Spanned::new(BACKUP_KEEP, span),
            schedule: Spanned::new(BACKUP_SCHEDULE.to_string(), span),
            destination: None,
            binlogs: Spanned::new(BACKUP_BINLOGS, span),
            before_apply: Spanned::new(BACKUP_BEFORE_APPLY, span),
            drill_host: None,
        }
    }
}

/// `database.backup`: where `infra backup` keeps dumps and how many.
#[derive(Clone, Debug)]
pub struct BackupSettings {
    pub span: Span,
    /// False when the file has no `backup` section and these are the
    /// defaults: the rules advise only on a backup setup the file declares.
    pub declared: bool,
    /// A directory on the database host (normalised, outside system directories).
    pub directory: Spanned<String>,
    /// How many backups to keep; older ones are removed after a new one is written.
    pub keep: Spanned<u32>,
    /// systemd `OnCalendar=`: `hourly`, `daily`, `weekly` or `*-*-* HH:MM:00`.
    pub schedule: Spanned<String>,
    /// Where each backup is copied off the database host, so it outlives it.
    pub destination: Option<BackupDestination>,
    /// Whether MariaDB keeps binary logs, for restores to a point in time.
    pub binlogs: Spanned<bool>,
    /// Whether an apply that restarts MariaDB or feeds it SQL takes a backup first.
    pub before_apply: Spanned<bool>,
    /// The inventory host whose scratch MariaDB instance restore drills use.
    pub drill_host: Option<Spanned<String>>,
}

/// `database.backup.destination`: a directory on another inventory host.
/// infra copies each backup there over its own SSH connections (database
/// host → infra → destination), so no host needs a key to another and the
/// tier firewall keeps allowing SSH from the admin networks only. Kept a
/// struct of its own so another kind of store (restic, object storage) can
/// become a variant beside it.
#[derive(Clone, Debug)]
pub struct BackupDestination {
    pub span: Span,
    /// The name of an inventory host.
    pub host: Spanned<String>,
    /// A directory on that host (normalised, outside system directories).
    pub directory: Spanned<String>,
}

/// Two networks: the public one (clients, SSH, the virtual IP) and the
/// private one every host's `address` is on (tier traffic). Which port
/// opens on which interface follows from them (`topology::allowances`).
#[derive(Clone, Debug)]
pub struct Networks {
    pub span: Span,
    pub public: Network,
    pub private: Network,
}

/// One network: its addresses, and the interface hosts have on it.
#[derive(Clone, Debug)]
pub struct Network {
    pub cidr: Spanned<IpNet>,
    pub interface: Spanned<String>,
}

impl Networks {
    /// The network `address` is on, if either.
    pub fn containing(&self, address: IpAddr) -> Option<&Network> {
        [&self.public, &self.private].into_iter().find(|network| network.cidr.value.contains(&address))
    }
}

/// The tier firewall's inputs that the topology cannot supply.
#[derive(Clone, Debug)]
pub struct FirewallSettings {
    pub span: Span,
    /// The networks SSH is accepted from, on every host.
    pub admin_cidrs: Spanned<Vec<Spanned<IpNet>>>,
}

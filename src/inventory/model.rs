//! The decoded inventory: typed values that still remember their spans.
//!
//! Later steps trust the types here (an address is an `IpAddr`, a port is a
//! `u16`) but keep spans so the stack rules can point at the line to fix.
//! Defaults that the documentation promises are applied here, once.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;
use schemars::JsonSchema;

use super::schema;

use crate::role::Role;
use crate::secret::SecretRef;
use crate::source::{Span, Spanned};

/// An inventory of one web stack: its hosts and their roles, and each
/// role's settings (docs/inventory.md).
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields, title = "infra inventory")]
pub struct Inventory {
    /// Where the inventory's local paths are resolved, and may lead.
    #[schemars(skip)]
    pub files: crate::source::LocalFiles,
    /// How to reach hosts over SSH; each host may override any of it.
    #[schemars(with = "Option::<SshSettings>")]
    pub ssh: SshSettings,
    /// A directory of template overrides, named as the built-in ones.
    pub templates: Option<Spanned<PathBuf>>,
    /// Every server, with the roles it plays.
    pub hosts: Vec<Host>,
    /// The span of the `hosts` key, for problems with the host list as a whole.
    #[schemars(skip)]
    pub hosts_span: Span,
    pub load_balancer: Option<LoadBalancerSettings>,
    pub web: Option<WebSettings>,
    pub app: Option<AppSettings>,
    pub database: Option<DatabaseSettings>,
    pub firewall: Option<FirewallSettings>,
    /// `networks: {public: …, private: …}`: hosts with two interfaces.
    pub networks: Option<Networks>,
    /// The role sections the file has, including ones that failed to decode.
    #[schemars(skip)]
    pub declared_sections: Vec<&'static str>,
    /// True when decoding reported errors: rules that reason about what is
    /// absent stay quiet, because the absence may be a decoding casualty.
    #[schemars(skip)]
    pub incomplete: bool,
}

impl Inventory {
    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |host| host.has_role(role))
    }
}

/// How to reach hosts over SSH; each host may override any of it.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SshSettings {
    /// The login user (default `root`).
    pub user: Option<Spanned<String>>,
    /// sshd's port (default 22).
    pub port: Option<Spanned<u16>>,
    /// A private key file.
    pub identity: Option<Spanned<PathBuf>>,
    /// A known_hosts file; host keys are always checked strictly.
    pub known_hosts: Option<Spanned<PathBuf>>,
    /// What `ssh` dials when it is not the host's `address` (a public
    /// address, a DNS name, a `~/.ssh/config` alias); only hosts have one.
    pub host: Option<Spanned<String>>,
    /// `become: sudo`: log in as `user` and run everything as root
    /// through `sudo -n`.
    #[schemars(rename = "become", with = "Option::<schema::Become>")]
    pub privilege: Option<Spanned<crate::transport::Privilege>>,
    /// The bastion in front of the host (`jump: admin@bastion:22`).
    #[schemars(with = "Option::<String>")]
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

/// One server.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Host {
    /// Its name: what `--limit`, `infra ssh` and the plan call it.
    pub name: Spanned<String>,
    /// The address the tiers use (on the private network, when there are two).
    pub address: Spanned<IpAddr>,
    /// The host's address on the public network, when `networks` has one:
    /// where clients and SSH reach it.
    pub public_address: Option<Spanned<IpAddr>>,
    /// What it does in the stack.
    pub roles: Vec<Spanned<Role>>,
    /// This host's own SSH settings, over the shared ones.
    #[schemars(with = "Option::<SshSettings>")]
    pub ssh: SshSettings,
    /// A load balancer's keepalived settings.
    #[schemars(with = "Option::<HostVrrp>")]
    pub vrrp: HostVrrp,
    /// How `infra lab up` boots this host; only the lab reads it.
    #[schemars(with = "Option::<HostLab>")]
    pub lab: HostLab,
}

/// A host's `lab:` settings: plan and apply go by what the host reports,
/// never by these.
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HostLab {
    /// The Debian release to boot (`release: trixie`).
    pub release: Option<Spanned<crate::debian::Debian>>,
    /// `sudo: password`: the login user's sudo asks for a password, as on
    /// a host whose sudoers lack `NOPASSWD` (for the refusal's test).
    #[schemars(rename = "sudo", with = "Option::<schema::LabSudo>")]
    pub sudo_password: bool,
    /// `preinstalled: [apache2]`: installed at first boot, so the host
    /// looks reused (one of [`LAB_PREINSTALLABLE`]).
    #[schemars(with = "Option::<schema::Preinstallable>")]
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
#[derive(Clone, Debug, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HostVrrp {
    /// The highest priority holds the virtual IP.
    pub priority: Option<Spanned<u8>>,
    pub virtual_router_id: Option<Spanned<u8>>,
    #[schemars(with = "Option::<schema::Secret>")]
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

/// The HAProxy pair and the virtual IP keepalived moves between them.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LoadBalancerSettings {
    #[schemars(skip)]
    pub span: Span,
    /// The virtual IP with its prefix length, e.g. `10.20.0.10/24`.
    #[schemars(with = "String")]
    pub virtual_ip: Spanned<IpNet>,
    /// The interface keepalived moves the virtual IP on (default `eth0`).
    #[schemars(with = "Option::<String>")]
    pub interface: Spanned<String>,
    /// Whether `interface` was written (or is the `eth0` default): with
    /// `networks`, the virtual IP's network names the interface instead.
    #[schemars(skip)]
    pub interface_declared: bool,
    /// VRRP's router id, the same on both balancers (1–255).
    pub virtual_router_id: Spanned<u8>,
    /// VRRP's shared secret: `{env: NAME}` or `{file: path}`.
    #[schemars(with = "schema::Secret")]
    pub vrrp_secret: SecretRef,
    /// The port clients reach (default 80).
    #[schemars(with = "Option::<u16>")]
    pub frontend_port: Spanned<u16>,
    /// HAProxy's balancing algorithm (default `roundrobin`).
    #[schemars(with = "Option::<schema::BalanceName>")]
    pub balance: Spanned<Balance>,
    /// An explicit backend list (host names); must be exactly the web hosts.
    pub backends: Option<Spanned<Vec<Spanned<String>>>>,
    pub tls: Option<TlsSettings>,
}

/// TLS termination at HAProxy.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TlsSettings {
    #[schemars(skip)]
    pub span: Span,
    /// The certificate chain (PEM, leaf first), relative to the inventory.
    pub certificate: Spanned<PathBuf>,
    /// The private key (PEM): a secret like any other.
    #[schemars(with = "schema::Secret")]
    pub key: SecretRef,
    /// The TLS port (default 443).
    #[schemars(with = "Option::<u16>")]
    pub port: Spanned<u16>,
    /// Answer plain HTTP with a redirect to HTTPS.
    #[schemars(with = "Option::<bool>")]
    pub redirect_http: Spanned<bool>,
    /// Send Strict-Transport-Security on HTTPS responses.
    #[schemars(with = "Option::<bool>")]
    pub hsts: Spanned<bool>,
}

#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WebSettings {
    #[schemars(skip)]
    pub span: Span,
    /// Nginx's port (default 80).
    #[schemars(with = "Option::<u16>")]
    pub port: Spanned<u16>,
    /// Nginx's `server_name` (default `_`).
    #[schemars(with = "Option::<String>")]
    pub server_name: Spanned<String>,
    /// Where the static files are served from on the host.
    #[schemars(with = "Option::<String>")]
    pub static_root: Spanned<String>,
    pub static_source: Option<Spanned<PathBuf>>,
    /// An explicit upstream list; must be exactly the app hosts' Gunicorn binds.
    pub upstreams: Option<Spanned<Vec<Spanned<SocketAddr>>>>,
}

#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AppSettings {
    #[schemars(skip)]
    pub span: Span,
    /// The WSGI entry point, `module:callable`.
    pub module: Spanned<String>,
    /// Where Gunicorn listens (default `0.0.0.0:8000`).
    #[schemars(with = "Option::<SocketAddr>")]
    pub bind: Spanned<SocketAddr>,
    /// Gunicorn's worker processes.
    #[schemars(with = "Option::<u16>")]
    pub workers: Spanned<u16>,
    /// The app's code: a directory, or a git repository when `revision`
    /// names the commit to deploy from it.
    #[schemars(with = "schema::AppSource")]
    pub source: Spanned<PathBuf>,
    /// `app.source.ref`: the branch, tag or commit of the `source`
    /// repository (grammar-checked), overridden by `infra deploy --source`.
    #[schemars(skip)]
    pub revision: Option<Spanned<String>>,
    /// The `ref` the inventory itself names, when `infra deploy --source`
    /// replaced `revision` for this run: apply keeps a deployed release
    /// until the inventory names another one.
    #[schemars(skip)]
    pub inventory_revision: Option<String>,
    /// Where releases live on the app hosts (default `/srv/app`).
    #[schemars(with = "Option::<String>")]
    pub directory: Spanned<String>,
    /// How many releases each app host keeps under `directory/releases`.
    #[schemars(with = "Option::<u32>")]
    pub keep_releases: Spanned<u32>,
    /// The app's Python requirements, a file inside `source`: installed in
    /// each release's own `.venv` from wheels infra downloads.
    pub requirements: Option<Spanned<String>>,
    /// A command run once per release, in the release's directory with the
    /// app's environment, before any host switches to it (`[python3, -m,
    /// alembic, upgrade, head]`): the words of its command line.
    #[schemars(with = "Option::<Vec::<String>>")]
    pub migrate: Option<Spanned<Vec<String>>>,
    /// More of the app's environment, beside the database settings infra
    /// writes itself: plain values, or secret references.
    #[schemars(with = "Option::<schema::AppEnv>")]
    pub env: Vec<(Spanned<String>, EnvValue)>,
    /// The Python the app needs (`>=3.11`), checked against each app
    /// host's: plan refuses a host that does not satisfy it.
    pub python: Option<Spanned<String>>,
    /// How apply and rollback ask the app whether a release serves.
    pub health: Option<AppHealth>,
    /// Directories that outlive releases (`[media, log]`): kept in
    /// `directory/shared`, owned by the app's user, and linked into every
    /// release at the same path. Uploads and logs go there; everything
    /// else in a release is read-only to the app.
    #[schemars(with = "Option::<Vec::<String>>")]
    pub shared: Vec<Spanned<String>>,
    /// Commands run on each app host in the new release, as the app, before
    /// the host switches to it (after its import check and the release's
    /// migration): `[[python3, manage.py, collectstatic, --noinput]]`. A
    /// failure stops the apply with the host still on its release.
    #[schemars(with = "Option::<Vec::<Vec::<String>>>")]
    pub before_switch: Vec<Spanned<Vec<String>>>,
    /// Commands run on each app host once it serves the new release and
    /// passed its health checks; a failure switches the host back.
    #[schemars(with = "Option::<Vec::<Vec::<String>>>")]
    pub after_switch: Vec<Spanned<Vec<String>>>,
    /// The app's background processes (workers, schedulers), Procfile-like:
    /// each runs as systemd units from the serving release, restarted onto
    /// the new release when a host switches, and back with a rollback.
    #[schemars(with = "Option::<Vec::<AppProcess>>")]
    pub processes: Vec<AppProcess>,
    /// The release's static files (`app.static`), published to every web
    /// host before the first app host switches, served at
    /// `/static/RELEASE/` (the app reads `STATIC_URL`), removed with the
    /// release.
    #[schemars(rename = "static")]
    pub static_files: Option<AppStatic>,
    /// Debian packages every app host installs for the app at run time
    /// (`[libmariadb3]`, the library mysqlclient's wheel links).
    #[schemars(with = "Option::<Vec::<String>>")]
    pub packages: Vec<Spanned<String>>,
    /// Debian packages every app host installs to build wheels of the
    /// requirements published only as source (`[gcc, python3-dev,
    /// pkg-config, libmariadb-dev]` for mysqlclient).
    #[schemars(with = "Option::<Vec::<String>>")]
    pub build_packages: Vec<Spanned<String>>,
}

/// `app.static`: where a release's static files come from, one of two:
/// a directory of the release (`{directory: static}`), or commands that
/// write them into `$STATIC_ROOT` in the release's environment (`{build:
/// [[python, manage.py, collectstatic, --noinput]]}`).
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AppStatic {
    #[schemars(skip)]
    pub span: Span,
    /// A directory inside the release, published as it is in the source.
    #[schemars(with = "Option::<String>")]
    pub directory: Option<Spanned<String>>,
    /// Commands run on one app host in the new release, as the app, with
    /// `STATIC_ROOT` naming an empty directory they fill (Django's
    /// `collectstatic` with `STATIC_ROOT = os.environ["STATIC_ROOT"]`).
    #[schemars(with = "Option::<Vec::<Vec::<String>>>")]
    pub build: Vec<Spanned<Vec<String>>>,
}

/// One of `app.processes`: `{name: worker, command: [celery, -A, proj,
/// worker], count: 2}`.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AppProcess {
    #[schemars(skip)]
    pub span: Span,
    /// Lowercase letters, digits and `-` (`worker`, `beat`): its units are
    /// `infra-app-NAME@1` … `@COUNT`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Its words, run in the release with the app's environment and the
    /// release's `.venv` first on `PATH` (no shell).
    #[schemars(with = "Vec::<String>")]
    pub command: Spanned<Vec<String>>,
    /// How many run on each app host (default 1).
    #[schemars(with = "Option::<u32>")]
    pub count: Spanned<u32>,
}

/// `app.health`: the request every health check of the app makes (on each
/// app host's Gunicorn, and through each web host's Nginx), for apps that
/// answer `/` with a redirect or a login page, or check the `Host` header
/// (Django's `ALLOWED_HOSTS`).
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AppHealth {
    #[schemars(skip)]
    pub span: Span,
    /// The path requested (default `/`): `/healthz`, `/up?full=1`.
    #[schemars(with = "Option::<String>")]
    pub path: Spanned<String>,
    /// The status that means healthy (default: any below 400).
    pub status: Option<Spanned<u16>>,
    /// The `Host` header sent (default: the address requested): a name the
    /// app accepts, like one in Django's `ALLOWED_HOSTS`.
    pub host: Option<Spanned<String>>,
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

#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DatabaseSettings {
    #[schemars(skip)]
    pub span: Span,
    pub name: Spanned<String>,
    pub user: Spanned<String>,
    /// Its password: `{env: NAME}` or `{file: path}`.
    #[schemars(with = "schema::Secret")]
    pub password: SecretRef,
    /// MariaDB's port (default 3306).
    #[schemars(with = "Option::<u16>")]
    pub port: Spanned<u16>,
    pub bind_address: Option<Spanned<IpAddr>>,
    /// An explicit list of client addresses; must be exactly the app hosts'.
    pub allowed_hosts: Option<Spanned<Vec<Spanned<IpAddr>>>>,
    /// Always there: the decoder applies the defaults when the file has no
    /// `backup` section.
    #[schemars(with = "Option::<BackupSettings>")]
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
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BackupSettings {
    #[schemars(skip)]
    pub span: Span,
    /// False when the file has no `backup` section and these are the
    /// defaults: the rules advise only on a backup setup the file declares.
    #[schemars(skip)]
    pub declared: bool,
    /// A directory on the database host (normalised, outside system directories).
    #[schemars(with = "Option::<String>")]
    pub directory: Spanned<String>,
    /// How many backups to keep; older ones are removed after a new one is written.
    #[schemars(with = "Option::<u32>")]
    pub keep: Spanned<u32>,
    /// systemd `OnCalendar=`: `hourly`, `daily`, `weekly` or `*-*-* HH:MM:00`.
    #[schemars(with = "Option::<String>")]
    pub schedule: Spanned<String>,
    /// Where each backup is copied off the database host, so it outlives it.
    pub destination: Option<BackupDestination>,
    /// Whether MariaDB keeps binary logs, for restores to a point in time.
    #[schemars(with = "Option::<bool>")]
    pub binlogs: Spanned<bool>,
    /// Whether an apply that restarts MariaDB or feeds it SQL takes a backup first.
    #[schemars(with = "Option::<bool>")]
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
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BackupDestination {
    #[schemars(skip)]
    pub span: Span,
    /// The name of an inventory host.
    pub host: Spanned<String>,
    /// A directory on that host (normalised, outside system directories).
    #[schemars(with = "Option::<String>")]
    pub directory: Spanned<String>,
}

/// Two networks: the public one (clients, SSH, the virtual IP) and the
/// private one every host's `address` is on (tier traffic). Which port
/// opens on which interface follows from them (`topology::allowances`).
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Networks {
    #[schemars(skip)]
    pub span: Span,
    pub public: Network,
    pub private: Network,
}

/// One network: its addresses, and the interface hosts have on it.
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Network {
    #[schemars(with = "String")]
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
#[derive(Clone, Debug, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FirewallSettings {
    #[schemars(skip)]
    pub span: Span,
    /// The networks SSH is accepted from, on every host.
    #[schemars(with = "Vec::<String>")]
    pub admin_cidrs: Spanned<Vec<Spanned<IpNet>>>,
}

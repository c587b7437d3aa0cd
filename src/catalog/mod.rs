//! Every service infra manages, described once, as data.
//!
//! A [`Service`] names its systemd unit, the packages that provide it, each
//! config file it owns (template, path, mode, group, the checker that judges
//! it and what a change to it sets off) and the probes that say it is
//! healthy. [`check`] adds each checker's plan. Three interpreters read
//! these: `render` (to build a host's desired state), `checkers` (to judge
//! rendered files on this machine) and `apply::steps` (to judge them on the
//! host before they are swapped in). A new service, or a difference between
//! Debian releases, is therefore written here once; before this module the
//! paths and checkers were written in three places and had drifted.

pub mod checker;
pub mod gunicorn;
pub mod haproxy;
pub mod keepalived;
pub mod mariadb;
pub mod verbs;

pub use checker::{Borrowed, CheckPlan, Part, Rewrite, check_plan};

use crate::desired::Checker;

/// A service as infra installs and watches it.
#[derive(Debug)]
pub struct Service {
    /// What an operator calls it: `infra logs web-01 nginx`.
    pub name: &'static str,
    /// The systemd unit (without `.service`; other kinds, such as a
    /// `.timer`, by their full name).
    pub unit: &'static str,
    /// The units whose journal is this service's log (a timer's is its
    /// service's: the runs, not the schedule).
    pub journal: &'static [&'static str],
    /// Debian packages that provide it (and the libraries the shipped
    /// example application imports).
    pub packages: &'static [&'static str],
    pub files: &'static [ConfigFile],
    /// What must answer once the host is converged.
    pub probes: &'static [Probe],
}

/// A file rendered from a template.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: &'static str,
    pub template: &'static str,
    pub mode: u32,
    /// Owned by root; the group may read it when the mode lets it (the
    /// app's environment file, read by [`gunicorn::USER`]).
    pub group: &'static str,
    pub checker: Option<Checker>,
    pub on_change: Trigger,
}

/// What a changed file sets off once it is in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A graceful reload of the service: no connection dropped.
    Reload,
    /// A restart: the service cannot reread this file without one.
    Restart,
    /// The file is a script fed to `program` (the SQL that creates the
    /// database and its user); `name` says what it does.
    Feed { name: &'static str, program: &'static str },
    /// Nothing: a program run on demand (the backup script).
    Nothing,
}

/// A health probe; where it needs a port, the role supplies it.
#[derive(Debug)]
pub enum Probe {
    /// A command that must succeed on the host.
    Command { description: &'static str, command: &'static str },
    /// An HTTP request that must answer with success, on loopback or on the
    /// host's own address (a service that listens only there); `tls` probes
    /// the TLS port and exist only where TLS is configured.
    Http { description: &'static str, path: RequestPath, on: Listener, tls: bool },
}

/// What an HTTP probe asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestPath {
    /// A path infra's own configuration answers (`/healthz`).
    Fixed(&'static str),
    /// The app itself, as `app.health` says to ask it ([`AppRequest`]).
    App,
}

/// The request a probe of the app makes (`app.health`): by default `GET /`,
/// healthy when it answers below 400, with the address asked as its `Host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppRequest<'a> {
    pub path: &'a str,
    pub status: Option<u16>,
    pub host: Option<&'a str>,
}

impl Default for AppRequest<'_> {
    fn default() -> Self {
        AppRequest { path: "/", status: None, host: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Loopback,
    OwnAddress,
}

const fn config(
    path: &'static str,
    template: &'static str,
    checker: Option<Checker>,
    on_change: Trigger,
) -> ConfigFile {
    ConfigFile { path, template, mode: 0o644, group: "root", checker, on_change }
}

/// MariaDB's settings, read only at start.
pub const MARIADB_CONFIG: ConfigFile =
    config("/etc/mysql/mariadb.conf.d/60-infra.cnf", "mariadb.cnf.j2", Some(Checker::Mariadb), Trigger::Restart);
/// The idempotent SQL that creates the database and grants; holds the password.
pub const DATABASE_SQL: ConfigFile = ConfigFile {
    mode: 0o600,
    ..config(
        "/etc/infra/database.sql",
        "database.sql.j2",
        None,
        Trigger::Feed { name: "create database and grants", program: "mariadb" },
    )
};

/// What `infra backup` and `infra restore` run on the database host.
pub const BACKUP_SCRIPT: ConfigFile = ConfigFile {
    mode: 0o755,
    ..config("/usr/local/sbin/infra-backup", "infra-backup.sh.j2", Some(Checker::Shell), Trigger::Nothing)
};

/// The key the backup script seals each manifest with (derived from the
/// database password): root's alone.
pub const BACKUP_SEALING_KEY: ConfigFile = ConfigFile {
    mode: 0o600,
    ..config("/etc/infra/backup-sealing.key", "backup-sealing.key.j2", None, Trigger::Nothing)
};

/// The oneshot the timer starts. `bash SCRIPT` rather than the script
/// itself: `systemd-analyze verify` checks that ExecStart's program exists,
/// and a new script is not in place yet when its unit is checked.
pub const BACKUP_UNIT: ConfigFile = config(
    "/etc/systemd/system/infra-backup.service",
    "infra-backup.service.j2",
    Some(Checker::SystemdUnit),
    Trigger::Nothing,
);
pub const BACKUP_TIMER: ConfigFile = config(
    "/etc/systemd/system/infra-backup.timer",
    "infra-backup.timer.j2",
    Some(Checker::SystemdUnit),
    Trigger::Restart,
);

/// Scheduled backups of the app's database: a timer on the database host
/// starts the backup script (`infra backup now` runs the same script).
pub const BACKUP: Service = Service {
    name: "backup",
    unit: "infra-backup.timer",
    journal: &["infra-backup.service", "infra-backup.timer"],
    packages: &[],
    files: &[BACKUP_SCRIPT, BACKUP_SEALING_KEY, BACKUP_UNIT, BACKUP_TIMER],
    probes: &[Probe::Command {
        description: "the backup timer is scheduled",
        command: "systemctl is-active --quiet infra-backup.timer",
    }],
};

pub const MARIADB: Service = Service {
    name: "mariadb",
    unit: "mariadb",
    journal: &["mariadb"],
    packages: &["mariadb-server"],
    files: &[MARIADB_CONFIG, DATABASE_SQL],
    probes: &[Probe::Command { description: "the database answers a query", command: "mariadb --execute 'SELECT 1'" }],
};

pub const GUNICORN_CONFIG: ConfigFile =
    config("/etc/infra/gunicorn.conf.py", "gunicorn.conf.py.j2", Some(Checker::Python), Trigger::Reload);
pub const APP_UNIT: ConfigFile = config(
    "/etc/systemd/system/infra-app.service",
    "infra-app.service.j2",
    Some(Checker::SystemdUnit),
    Trigger::Restart,
);
/// The app's environment, with the database password: readable by the
/// app's group only.
pub const APP_ENVIRONMENT: ConfigFile = ConfigFile {
    mode: 0o640,
    group: gunicorn::USER,
    ..config("/etc/infra/app.env", "app.env.j2", None, Trigger::Restart)
};

/// The app's listening socket: a change to it (the bind address) restarts
/// the socket, and with it Gunicorn (`Requires=`).
pub const APP_SOCKET: ConfigFile =
    config("/etc/systemd/system/infra-app.socket", "infra-app.socket.j2", Some(Checker::SystemdUnit), Trigger::Restart);

/// The socket Gunicorn serves on, held by systemd so that a restart of
/// Gunicorn refuses no connection. Started before [`GUNICORN`]; no package
/// provides it, so it is started, never restarted, when it is not running
/// (a restart would restart Gunicorn with it).
pub const GUNICORN_SOCKET: Service = Service {
    name: "gunicorn-socket",
    unit: "infra-app.socket",
    journal: &["infra-app.socket"],
    packages: &[],
    files: &[APP_SOCKET],
    probes: &[],
};

/// The unit of one of the app's processes (`app.processes`), a template
/// whose instances are `infra-app-NAME@1` … `@COUNT`: one file per process,
/// at [`process_unit_path`]. Rendered by the app role beside Gunicorn.
pub const APP_PROCESS_TEMPLATE: &str = "infra-app-process.service.j2";

/// Where the unit of the process `name` lives.
pub fn process_unit_path(name: &str) -> String {
    format!("/etc/systemd/system/{}", process_unit_file(name))
}

/// The unit file of the process `name`: `infra-app-worker@.service`.
pub fn process_unit_file(name: &str) -> String {
    format!("infra-app-{name}@.service")
}

/// The instance `index` (from 1) of the process `name`.
pub fn process_instance(name: &str, index: u32) -> String {
    format!("infra-app-{name}@{index}.service")
}

/// Whether `unit` is an instance of an app process as
/// [`process_instance`] names it (what a host may list: nothing else is
/// ever stopped because a host said so).
pub fn is_process_instance(unit: &str) -> bool {
    let Some((name, index)) = unit
        .strip_prefix("infra-app-")
        .and_then(|rest| rest.strip_suffix(".service"))
        .and_then(|rest| rest.split_once('@'))
    else {
        return false;
    };
    is_process_name(name) && index.parse::<u32>().is_ok_and(|number| number >= 1 && number.to_string() == index)
}

/// A process name as units carry it: a lowercase letter, then lowercase
/// letters, digits and inner `-`, at most 24 (the inventory's grammar).
pub fn is_process_name(text: &str) -> bool {
    (1..=24).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && !text.ends_with('-')
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Every instance unit of the processes `(name, count)`, in order.
pub fn process_instances<'a>(processes: impl IntoIterator<Item = (&'a str, u32)>) -> Vec<String> {
    processes
        .into_iter()
        .flat_map(|(name, count)| (1..=count).map(move |index| process_instance(name, index)))
        .collect()
}

/// Gunicorn serving the app; a change to the app's code reloads it too.
pub const GUNICORN: Service = Service {
    name: "gunicorn",
    unit: "infra-app",
    // The app's processes (`infra-app-worker@1`) log with it: one place
    // for the app's journal (`infra logs app-01 gunicorn`).
    journal: &["infra-app", "infra-app.socket", "infra-app-*@*.service"],
    packages: &["gunicorn", "python3-flask", "python3-pymysql"],
    files: &[GUNICORN_CONFIG, APP_UNIT, APP_ENVIRONMENT],
    probes: &[Probe::Http {
        description: "Gunicorn answers HTTP",
        path: RequestPath::App,
        on: Listener::OwnAddress,
        tls: false,
    }],
};

pub const NGINX_MAIN: ConfigFile =
    config("/etc/nginx/nginx.conf", "nginx.conf.j2", Some(Checker::Nginx), Trigger::Reload);
pub const NGINX_SITE: ConfigFile =
    config("/etc/nginx/sites-enabled/infra.conf", "nginx-site.conf.j2", Some(Checker::Nginx), Trigger::Reload);
/// The file nginx.conf includes for MIME types, shipped by the package.
pub const NGINX_MIME_TYPES: &str = "/etc/nginx/mime.types";

pub const NGINX: Service = Service {
    name: "nginx",
    unit: "nginx",
    journal: &["nginx"],
    packages: &["nginx"],
    files: &[NGINX_MAIN, NGINX_SITE],
    probes: &[
        Probe::Http {
            description: "Nginx answers",
            path: RequestPath::Fixed("/healthz"),
            on: Listener::Loopback,
            tls: false,
        },
        Probe::Http {
            description: "Nginx proxies to the app",
            path: RequestPath::App,
            on: Listener::Loopback,
            tls: false,
        },
    ],
};

pub const HAPROXY_CONFIG: ConfigFile =
    config("/etc/haproxy/haproxy.cfg", "haproxy.cfg.j2", Some(Checker::Haproxy), Trigger::Reload);
/// Where HAProxy finds the TLS chain and, beside it, the key.
pub const HAPROXY_CERTS: &str = "/etc/haproxy/certs/";

/// HAProxy; the TLS files (not templates) reload it too.
pub const HAPROXY: Service = Service {
    name: "haproxy",
    unit: "haproxy",
    journal: &["haproxy"],
    packages: &["haproxy"],
    files: &[HAPROXY_CONFIG],
    probes: &[
        Probe::Http {
            description: "HAProxy answers on the frontend",
            path: RequestPath::Fixed("/healthz"),
            on: Listener::Loopback,
            tls: false,
        },
        Probe::Http {
            description: "HAProxy answers over TLS",
            path: RequestPath::Fixed("/healthz"),
            on: Listener::Loopback,
            tls: true,
        },
    ],
};

/// keepalived's config holds the VRRP secret: root only.
pub const KEEPALIVED_CONFIG: ConfigFile = ConfigFile {
    mode: 0o600,
    ..config("/etc/keepalived/keepalived.conf", "keepalived.conf.j2", Some(Checker::Keepalived), Trigger::Reload)
};

pub const KEEPALIVED: Service = Service {
    name: "keepalived",
    unit: "keepalived",
    journal: &["keepalived"],
    packages: &["keepalived"],
    files: &[KEEPALIVED_CONFIG],
    probes: &[],
};

pub const FIREWALL_RULESET: ConfigFile =
    config("/etc/infra/firewall.nft", "firewall.nft.j2", Some(Checker::Nft), Trigger::Reload);
pub const FIREWALL_UNIT: ConfigFile = config(
    "/etc/systemd/system/infra-firewall.service",
    "infra-firewall.service.j2",
    Some(Checker::SystemdUnit),
    Trigger::Restart,
);

/// The tier firewall: one nftables table, loaded by its own unit.
pub const FIREWALL: Service = Service {
    name: "firewall",
    unit: "infra-firewall",
    journal: &["infra-firewall"],
    packages: &["nftables"],
    files: &[FIREWALL_RULESET, FIREWALL_UNIT],
    probes: &[Probe::Command {
        description: "the firewall is loaded",
        command: "nft list table inet infra > /dev/null",
    }],
};

/// Every service, in the order a host with all roles installs them.
pub const SERVICES: [&Service; 8] =
    [&MARIADB, &BACKUP, &GUNICORN_SOCKET, &GUNICORN, &NGINX, &HAPROXY, &KEEPALIVED, &FIREWALL];

impl Service {
    /// The files whose change sets off `trigger`.
    pub fn paths_on(&self, trigger: Trigger) -> impl Iterator<Item = &'static str> + '_ {
        self.files.iter().filter(move |file| file.on_change == trigger).map(|file| file.path)
    }
}

/// A probe command retried for up to 30 s, half a second apart: a
/// service takes a moment to answer after a start or a reload. The last
/// attempt's output is what a failure shows.
pub fn until_it_passes(probe: &str) -> String {
    format!("for _ in $(seq 1 60); do {probe} && exit 0; sleep 0.5; done; {probe}\n")
}

impl Probe {
    /// The command that runs this probe on a host at `address`, the
    /// service listening on `port` (or, for a TLS probe, on `tls_port`),
    /// asking the app as `app` says; none for a TLS probe where TLS is not
    /// configured. One shell command (a group when it checks the status),
    /// so it can stand before `&&` and inside `$(…)`.
    pub fn command(
        &self,
        address: std::net::IpAddr,
        port: u16,
        tls_port: Option<u16>,
        app: AppRequest,
    ) -> Option<String> {
        let Probe::Http { path, on, tls, .. } = self else {
            let Probe::Command { command, .. } = self else { return None };
            return Some((*command).to_string());
        };
        let host = match (on, address) {
            (Listener::Loopback, _) => "127.0.0.1".to_string(),
            (Listener::OwnAddress, std::net::IpAddr::V6(address)) => format!("[{address}]"),
            (Listener::OwnAddress, address) => address.to_string(),
        };
        // Certificate trust is checked before apply; a TLS probe
        // checks that the service serves TLS.
        let (scheme, insecure, port) = if *tls { ("https", "k", tls_port?) } else { ("http", "", port) };
        let request = match path {
            RequestPath::Fixed(path) => AppRequest { path, ..AppRequest::default() },
            RequestPath::App => app,
        };
        let url = crate::transport::shell_quote(&format!("{scheme}://{host}:{port}{}", request.path));
        let header = request.host.map_or_else(String::new, |name| {
            format!(" -H {}", crate::transport::shell_quote(&format!("Host: {name}")))
        });
        Some(match request.status {
            None => format!("curl -fsS{insecure} -o /dev/null{header} {url}"),
            Some(status) => format!(
                "{{ code=$(curl -sS{insecure} -o /dev/null -w '%{{http_code}}'{header} {url}); [ \"$code\" = {status} ] || {{ echo \"{url_text} answered HTTP ${{code:-nothing}}, not {status}\"; false; }}; }}",
                url_text = format!("{scheme}://{host}:{port}{}", request.path).replace(['"', '$', '`', '\\'], ""),
            ),
        })
    }

    pub fn description(&self) -> &'static str {
        match self {
            Probe::Command { description, .. } | Probe::Http { description, .. } => description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A template is rendered to one path only: two services sharing a
    /// path would replace each other's file.
    #[test]
    fn every_path_and_template_belongs_to_one_service() {
        let files: Vec<&ConfigFile> = SERVICES.iter().flat_map(|service| service.files).collect();
        let mut paths: Vec<&str> = files.iter().map(|file| file.path).collect();
        let mut templates: Vec<&str> = files.iter().map(|file| file.template).collect();
        paths.sort_unstable();
        paths.dedup();
        templates.sort_unstable();
        templates.dedup();
        assert_eq!(paths.len(), files.len());
        assert_eq!(templates.len(), files.len());
    }

    #[test]
    fn every_built_in_template_is_in_the_catalog() {
        let catalogued: Vec<&str> =
            SERVICES.iter().flat_map(|service| service.files).map(|file| file.template).collect();
        for (name, _) in crate::render::BUILT_IN {
            assert!(catalogued.contains(&name) || name == APP_PROCESS_TEMPLATE, "{name} is not in the catalog");
        }
    }

    /// The check plan rewrites `HAPROXY_CERTS` into its check directory.
    #[test]
    fn the_tls_files_live_where_haproxy_is_checked_for_them() {
        assert!(crate::tls::CERTIFICATE_PATH.starts_with(HAPROXY_CERTS));
        assert!(crate::tls::KEY_PATH.starts_with(HAPROXY_CERTS));
    }

    #[test]
    fn a_tls_probe_exists_only_with_a_tls_port() {
        let address = std::net::IpAddr::from([10, 0, 0, 1]);
        let [frontend, tls] = HAPROXY.probes else { panic!("HAProxy has two probes") };
        let app = AppRequest::default();
        assert_eq!(
            frontend.command(address, 80, None, app).as_deref(),
            Some("curl -fsS -o /dev/null 'http://127.0.0.1:80/healthz'")
        );
        assert_eq!(tls.command(address, 80, None, app), None);
        assert_eq!(
            tls.command(address, 80, Some(443), app).as_deref(),
            Some("curl -fsSk -o /dev/null 'https://127.0.0.1:443/healthz'")
        );
    }

    /// `app.health` reaches the probes of the app, and only those.
    #[test]
    fn the_app_is_asked_as_app_health_says() {
        let address = std::net::IpAddr::from([10, 0, 0, 21]);
        let app = AppRequest { path: "/up?full=1", status: Some(200), host: Some("www.example.com") };
        let [gunicorn] = GUNICORN.probes else { panic!("Gunicorn has one probe") };
        let command = gunicorn.command(address, 8000, None, app).expect("a probe");
        assert_eq!(
            command,
            "{ code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Host: www.example.com' 'http://10.0.0.21:8000/up?full=1'); [ \"$code\" = 200 ] || { echo \"http://10.0.0.21:8000/up?full=1 answered HTTP ${code:-nothing}, not 200\"; false; }; }"
        );
        let [nginx, proxied] = NGINX.probes else { panic!("Nginx has two probes") };
        assert_eq!(
            nginx.command(address, 80, None, app).as_deref(),
            Some("curl -fsS -o /dev/null 'http://127.0.0.1:80/healthz'")
        );
        let proxied = proxied.command(address, 80, None, AppRequest { status: None, ..app }).expect("a probe");
        assert_eq!(proxied, "curl -fsS -o /dev/null -H 'Host: www.example.com' 'http://127.0.0.1:80/up?full=1'");
        let ipv6 = gunicorn.command("fd00::21".parse().expect("address"), 8000, None, AppRequest::default());
        assert_eq!(ipv6.as_deref(), Some("curl -fsS -o /dev/null 'http://[fd00::21]:8000/'"));
    }
}

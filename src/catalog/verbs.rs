//! The run-time verbs of the services, beside their description: which
//! services a host runs, found by the name an operator types, and the
//! command that reads their logs. `infra logs` only calls these, so a new
//! service gets its log by being catalogued.

use super::{BACKUP, FIREWALL, GUNICORN, HAPROXY, KEEPALIVED, MARIADB, NGINX, SERVICES, Service};
use crate::role::Role;

/// The services a host with `roles` runs, in [`SERVICES`] order; the
/// firewall on every host.
pub fn services_on(roles: &[Role]) -> Vec<&'static Service> {
    let mut services: Vec<&'static Service> = vec![&FIREWALL];
    for role in roles {
        services.extend_from_slice(match role {
            Role::Database => &[&MARIADB, &BACKUP][..],
            Role::App => &[&GUNICORN],
            Role::Web => &[&NGINX],
            Role::LoadBalancer => &[&HAPROXY, &KEEPALIVED],
        });
    }
    // By name: a `const`'s address is not one place, so no pointer compare.
    services.sort_by_key(|service| SERVICES.iter().position(|known| known.name == service.name));
    services.dedup_by_key(|service| service.name);
    services
}

/// The service an operator named (`nginx`, `gunicorn`), by its name or its unit.
pub fn service_named(name: &str) -> Option<&'static Service> {
    SERVICES.iter().copied().find(|service| service.name == name || service.unit == name)
}

/// How much of the journal [`logs_command`] reads.
#[derive(Clone, Copy, Debug)]
pub struct LogWindow {
    /// The last lines of each host's journal.
    pub lines: u32,
    /// Keep printing new lines as they come.
    pub follow: bool,
}

/// The `journalctl` command that prints `services`' journal on a host,
/// their lines merged by time. Unit names are the catalog's own, never
/// the operator's text.
pub fn logs_command(services: &[&Service], window: LogWindow) -> String {
    let mut command = format!("journalctl --no-pager --output=short-iso --lines={}", window.lines);
    for unit in services.iter().flat_map(|service| service.journal) {
        command.push_str(" --unit=");
        // A pattern (the app's processes) is journalctl's to match, not the shell's.
        command.push_str(&if unit.contains('*') { crate::transport::shell_quote(unit) } else { unit.to_string() });
    }
    if window.follow {
        command.push_str(" --follow");
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_runs_its_roles_services_and_the_firewall() {
        let names: Vec<&str> = services_on(&[Role::LoadBalancer]).iter().map(|service| service.name).collect();
        assert_eq!(names, ["haproxy", "keepalived", "firewall"]);
        let names: Vec<&str> = services_on(&[Role::Web, Role::Database]).iter().map(|s| s.name).collect();
        assert_eq!(names, ["mariadb", "backup", "nginx", "firewall"]);
        let names: Vec<&str> = services_on(&[Role::Web]).iter().map(|s| s.name).collect();
        assert_eq!(names, ["nginx", "firewall"]);
    }

    #[test]
    fn services_are_found_by_name_or_unit() {
        assert_eq!(service_named("gunicorn").map(|service| service.unit), Some("infra-app"));
        assert_eq!(service_named("infra-app").map(|service| service.name), Some("gunicorn"));
        assert!(service_named("sshd; reboot").is_none());
    }

    #[test]
    fn the_backup_log_is_its_runs_and_its_schedule() {
        let command = logs_command(&[&BACKUP], LogWindow { lines: 50, follow: true });
        assert_eq!(
            command,
            "journalctl --no-pager --output=short-iso --lines=50 --unit=infra-backup.service --unit=infra-backup.timer --follow"
        );
        let command = logs_command(&[&GUNICORN], LogWindow { lines: 20, follow: false });
        assert!(
            command.ends_with("--unit=infra-app --unit=infra-app.socket --unit='infra-app-*@*.service'"),
            "{command}"
        );
    }
}

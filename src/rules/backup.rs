//! Rules about `database.backup`: the hosts it names exist, and a backup
//! that would die with the database host says so.

use crate::diagnostic::Diagnostic;
use crate::inventory::{BackupSettings, Inventory};
use crate::source::Spanned;
use crate::topology::Role;

pub fn check(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let Some(backup) = inventory.database.as_ref().map(|database| &database.backup).filter(|backup| backup.declared)
    else {
        return;
    };
    let database = inventory.hosts_with(Role::Database).next().map(|host| host.name.value.as_str());
    match &backup.destination {
        None => found.push(kept_on_the_database_host(backup, database)),
        Some(destination) => {
            if let Some(unknown) = unknown_host(inventory, &destination.host, "the backup destination") {
                found.push(unknown);
            } else if Some(destination.host.value.as_str()) == database {
                found.push(
                    Diagnostic::warning(
                        "backup-on-database-host",
                        "the backup destination is the database host: the copies die with it",
                    )
                    .at(destination.host.span, "the database host")
                    .help("name another host of the inventory, e.g. a web host with disk to spare"),
                );
            } else if inventory.hosts_with(Role::App).any(|host| host.name.value == destination.host.value) {
                // The seal's key derives from the database password, which
                // an app host holds: it could seal a backup of its own.
                found.push(
                    Diagnostic::error(
                        "backup-destination-holds-password",
                        "the backup destination is an app host, which holds the database password the backups are sealed with",
                    )
                    .at(destination.host.span, "an app host")
                    .help("name a host that is not an app host (a web host with disk to spare): a compromised destination must not be able to make a backup restore would trust"),
                );
            }
        }
    }
    if let Some(drill_host) = &backup.drill_host
        && let Some(unknown) = unknown_host(inventory, drill_host, "the drill host")
    {
        found.push(unknown);
    }
}

fn kept_on_the_database_host(backup: &BackupSettings, database: Option<&str>) -> Diagnostic {
    Diagnostic::warning(
        "backup-on-database-host",
        format!("backups stay on `{}` only: losing that host loses them too", database.unwrap_or("the database host")),
    )
    .at(backup.span, "no `destination`")
    .help("add `destination: {host: NAME, directory: /var/backups/infra}` naming another host of the inventory")
}

fn unknown_host(inventory: &Inventory, name: &Spanned<String>, what: &str) -> Option<Diagnostic> {
    if inventory.hosts.iter().any(|host| host.name.value == name.value) {
        return None;
    }
    let known: Vec<&str> = inventory.hosts.iter().map(|host| host.name.value.as_str()).collect();
    Some(
        Diagnostic::error("unknown-host", format!("{what} `{}` is not a host of this inventory", name.value))
            .at(name.span, "not in `hosts`")
            .help(format!("name one of: {}", known.join(", "))),
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    fn with_backup(section: &str) -> String {
        format!("{VALID}  backup:\n{section}")
    }

    #[test]
    fn a_destination_on_another_host_is_clean() {
        assert!(codes(&with_backup("    destination: {host: web-01}\n")).is_empty());
    }

    #[test]
    fn backups_kept_only_on_the_database_host_are_a_warning() {
        assert_eq!(codes(&with_backup("    keep: 3\n")), ["backup-on-database-host"]);
        assert_eq!(codes(&with_backup("    destination: {host: db-01}\n")), ["backup-on-database-host"]);
    }

    #[test]
    fn a_destination_that_could_seal_backups_is_an_error() {
        assert_eq!(codes(&with_backup("    destination: {host: app-01}\n")), ["backup-destination-holds-password"]);
    }

    #[test]
    fn unknown_destination_and_drill_hosts_are_errors() {
        let text = with_backup("    destination: {host: vault-01}\n    drill_host: scratch-01\n");
        assert_eq!(codes(&text), ["unknown-host", "unknown-host"]);
    }
}

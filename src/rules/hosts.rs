//! Rules about the host list: unique names and addresses, usable addresses,
//! every role present, ports that do not collide on a host with many roles.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::source::Span;
use crate::topology;
use crate::topology::Role;

pub fn check(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    unique_names(inventory, found);
    unique_addresses(inventory, found);
    usable_addresses(inventory, found);
    every_role_present(inventory, found);
    one_database(inventory, found);
    ports_per_host(inventory, found);
}

fn unique_names(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let mut first_seen: HashMap<&str, Span> = HashMap::new();
    for host in &inventory.hosts {
        if let Some(first) = first_seen.insert(&host.name.value, host.name.span) {
            found.push(
                Diagnostic::error("duplicate-host-name", format!("host name `{}` is used twice", host.name))
                    .at(host.name.span, "used again here")
                    .also(first, "first used here")
                    .help("host names identify hosts in plans and logs: give each host its own"),
            );
            first_seen.insert(&host.name.value, first);
        }
    }
}

fn unique_addresses(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let mut first_seen: HashMap<IpAddr, (Span, &str)> = HashMap::new();
    for host in &inventory.hosts {
        for address in host.addresses() {
            if let Some((first, other)) = first_seen.get(&address.value) {
                found.push(
                    Diagnostic::error(
                        "duplicate-address",
                        format!("hosts `{}` and `{}` have the same address {}", other, host.name, address),
                    )
                    .at(address.span, "used again here")
                    .also(*first, "first used here"),
                );
            } else {
                first_seen.insert(address.value, (address.span, &host.name.value));
            }
        }
    }
}

fn usable_addresses(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    for host in &inventory.hosts {
        let address = host.address.value;
        let problem = if address.is_unspecified() {
            Some("the unspecified address")
        } else if address.is_loopback() {
            Some("a loopback address, which other hosts cannot reach")
        } else if address.is_multicast() {
            Some("a multicast address")
        } else if address == IpAddr::from([255, 255, 255, 255]) {
            Some("the broadcast address")
        } else {
            None
        };
        if let Some(problem) = problem {
            found.push(
                Diagnostic::error("unusable-address", format!("host `{}` has address {address}: {problem}", host.name))
                    .at(host.address.span, "not a host address"),
            );
        }
    }
}

fn every_role_present(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    if inventory.incomplete {
        return;
    }
    for role in Role::ALL {
        if inventory.hosts_with(role).next().is_none() {
            found.push(
                Diagnostic::error("missing-role", format!("no host has the role `{}`", role.name()))
                    .at(inventory.hosts_span, format!("add a host with `roles: [{}]`", role.name()))
                    .help("the stack needs at least one database, app, web and load_balancer host"),
            );
        }
    }
}

fn one_database(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let databases: Vec<_> = inventory.hosts_with(Role::Database).collect();
    if let [first, rest @ ..] = databases.as_slice() {
        for extra in rest {
            found.push(
                Diagnostic::error(
                    "multiple-databases",
                    format!("hosts `{}` and `{}` both have the role `database`", first.name, extra.name),
                )
                .at(extra.name.span, "second database host")
                .also(first.name.span, "first database host")
                .help("the stack has one database server; replication is not managed by infra"),
            );
        }
    }
}

/// A host with several roles must not have two services on one port, and
/// no service may take the SSH port: the firewall opens a service's port to
/// its clients, which would open SSH past `firewall.admin_cidrs`.
fn ports_per_host(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    for host in &inventory.hosts {
        let ssh_span = host.ssh.port.as_ref().or(inventory.ssh.port.as_ref()).map_or(host.name.span, |port| port.span);
        let mut listeners: Vec<(u16, &str, Span)> = vec![(topology::ssh_port(&inventory.ssh, host), "SSH", ssh_span)];
        let mut listen = |port: u16, service: &'static str, span: Span| {
            if let Some((_, other, _)) = listeners.iter().find(|(used, _, _)| *used == port) {
                let mut diagnostic = Diagnostic::error(
                    "port-conflict",
                    format!("host `{}` would run {other} and {service} on port {port}", host.name),
                )
                .at(span, format!("{service} port"))
                .also(host.name.span, "on this host");
                if *other == "SSH" {
                    diagnostic = diagnostic.help(format!(
                        "the firewall opens {service}'s port to its clients, which would open SSH past `firewall.admin_cidrs`: choose another port"
                    ));
                }
                found.push(diagnostic);
            }
            listeners.push((port, service, span));
        };
        for listener in crate::stack::listeners(inventory, host) {
            listen(listener.port, listener.service, listener.span);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    #[test]
    fn duplicate_host_names() {
        assert_eq!(codes(&broken("name: web-01", "name: app-01")), ["duplicate-host-name"]);
    }

    #[test]
    fn duplicate_addresses() {
        assert_eq!(codes(&broken("address: 10.20.0.21", "address: 10.20.0.31")), ["duplicate-address"]);
    }

    #[test]
    fn loopback_host_address() {
        assert_eq!(codes(&broken("address: 10.20.0.41", "address: 127.0.0.1")), ["unusable-address"]);
    }

    #[test]
    fn missing_role() {
        assert_eq!(codes(&broken("roles: [web]", "roles: [app]")), ["missing-role", "unused-settings"]);
    }

    #[test]
    fn two_databases() {
        let found = codes(&broken("roles: [app]", "roles: [app, database]"));
        assert!(found.contains(&"multiple-databases"), "{found:?}");
    }

    #[test]
    fn a_service_on_the_ssh_port() {
        assert_eq!(codes(&broken("bind: 0.0.0.0:8000", "bind: 0.0.0.0:22")), ["port-conflict"]);
    }

    #[test]
    fn port_conflict_on_a_host_with_two_roles() {
        let found = codes(&broken("roles: [web]", "roles: [web, load_balancer]"));
        assert!(found.contains(&"port-conflict"), "{found:?}");
    }
}

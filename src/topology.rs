//! Roles, the stage order between them, and the facts derived across hosts.
//!
//! A role's dependencies are declared once ([`Role::depends_on`]); stages are
//! a topological sort of that graph, so adding a role never means editing a
//! chain of if/else. The derived facts (HAProxy backends, Nginx upstreams,
//! database clients) come from here and nowhere else, which is what lets the
//! rules in `check` compare explicit lists against them.

use std::net::{IpAddr, SocketAddr};

use crate::inventory::{Host, Inventory};
use crate::source::Span;
use crate::transport::Target;

pub use crate::role::Role;

/// Roles in dependency order: a role comes after everything it depends on.
pub fn role_order() -> Vec<Role> {
    let mut order: Vec<Role> = Vec::with_capacity(Role::ALL.len());
    while order.len() < Role::ALL.len() {
        let before = order.len();
        for role in Role::ALL {
            if !order.contains(&role) && role.depends_on().iter().all(|dependency| order.contains(dependency)) {
                order.push(role);
            }
        }
        assert!(order.len() > before, "the role dependency graph has a cycle");
    }
    order
}

/// One step of a rollout: a role and the hosts that carry it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Stage<'a> {
    pub role: Role,
    #[serde(serialize_with = "host_names")]
    pub hosts: Vec<&'a Host>,
}

fn host_names<S: serde::Serializer>(hosts: &[&Host], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(hosts.iter().map(|host| host.name.value.as_str()))
}

/// The stage a host is converged in: the earliest of its roles in
/// dependency order, so that it is converged before anything that depends
/// on any of its roles. The only place this is decided: `stages`, the
/// desired state (and through it plan and apply) all ask here.
pub fn stage_of(host: &Host) -> Option<Role> {
    role_order().into_iter().find(|role| host.has_role(*role))
}

/// The stages of an inventory in dependency order, each with its hosts.
pub fn stages(inventory: &Inventory) -> Vec<Stage<'_>> {
    let stage_of_each: Vec<Option<Role>> = inventory.hosts.iter().map(stage_of).collect();
    role_order()
        .into_iter()
        .map(|role| Stage {
            role,
            hosts: inventory
                .hosts
                .iter()
                .zip(&stage_of_each)
                .filter(|(_, stage)| **stage == Some(role))
                .map(|(host, _)| host)
                .collect(),
        })
        .collect()
}

pub fn hosts_with(inventory: &Inventory, role: Role) -> impl Iterator<Item = &Host> {
    inventory.hosts.iter().filter(move |host| host.has_role(role))
}

/// The web hosts HAProxy balances over, with the port Nginx listens on;
/// none without a `web` section (the rules refuse web hosts without one).
pub fn haproxy_backends(inventory: &Inventory) -> Vec<(&str, SocketAddr)> {
    let Some(web) = &inventory.web else { return Vec::new() };
    let port = web.port.value;
    hosts_with(inventory, Role::Web)
        .map(|host| (host.name.value.as_str(), SocketAddr::new(host.address.value, port)))
        .collect()
}

/// The Gunicorn addresses Nginx proxies to: each app host at the bind
/// port; none without an `app` section.
pub fn nginx_upstreams(inventory: &Inventory) -> Vec<SocketAddr> {
    let Some(port) = app_port(inventory) else { return Vec::new() };
    hosts_with(inventory, Role::App).map(|host| SocketAddr::new(host.address.value, port)).collect()
}

/// The port Gunicorn listens on, when the inventory has an app tier.
pub fn app_port(inventory: &Inventory) -> Option<u16> {
    inventory.app.as_ref().map(|app| app.bind.value.port())
}

/// The addresses the database accepts the application's user from.
pub fn database_clients(inventory: &Inventory) -> Vec<IpAddr> {
    hosts_with(inventory, Role::App).map(|host| host.address.value).collect()
}

/// The effective VRRP priority of each balancer, in inventory order: an
/// explicit `vrrp.priority`, or 150, 140, 130, … by position.
pub fn vrrp_priorities<'a>(balancers: &[&'a Host]) -> Vec<(u8, Option<Span>, &'a Host)> {
    balancers
        .iter()
        .enumerate()
        .map(|(index, host)| match &host.vrrp.priority {
            Some(priority) => (priority.value, Some(priority.span), *host),
            None => (150u8.saturating_sub(u8::try_from(index * 10).unwrap_or(u8::MAX)).max(1), None, *host),
        })
        .collect()
}

/// The port infra's SSH connections reach on `host`, which the firewall must keep open.
pub fn ssh_port(inventory: &Inventory, host: &Host) -> u16 {
    host.ssh.port.as_ref().map_or_else(|| inventory.ssh.port_or_default(), |port| port.value)
}

/// How to reach `host`: its own SSH settings, then the inventory's, then
/// ssh's own defaults; paths relative to the inventory.
pub fn ssh_target(inventory: &Inventory, host: &Host) -> Target {
    let path = |own: &Option<crate::source::Spanned<std::path::PathBuf>>,
                shared: &Option<crate::source::Spanned<std::path::PathBuf>>| {
        own.as_ref().or(shared.as_ref()).map(|path| inventory.files.base_dir.join(&path.value))
    };
    Target {
        name: host.name.value.clone(),
        address: host.address.value,
        user: host
            .ssh
            .user
            .as_ref()
            .map_or_else(|| inventory.ssh.user_or_default().to_string(), |user| user.value.clone()),
        port: ssh_port(inventory, host),
        identity: path(&host.ssh.identity, &inventory.ssh.identity),
        known_hosts: path(&host.ssh.known_hosts, &inventory.ssh.known_hosts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_their_dependencies() {
        assert_eq!(role_order(), vec![Role::Database, Role::App, Role::Web, Role::LoadBalancer]);
    }
}

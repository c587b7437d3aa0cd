//! The facts derived across a stack's hosts: stages, HAProxy backends,
//! Nginx upstreams, database clients, VRRP priorities, SSH targets and the
//! tier firewall's allowances. They come from here and nowhere else, which
//! is what lets the rules compare an inventory's explicit lists against
//! them (on the raw inventory, through [`crate::stack::listeners`]) and
//! render, the diagram and the commands read the same answers.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::desired::Interface;
use crate::firewall::Allowance;
use crate::inventory::Host;
use crate::source::Span;
use crate::stack::Stack;
use crate::transport::Target;

pub use crate::role::{Role, role_order};

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

/// The stages of a stack in dependency order, each with its hosts: a host
/// is converged in the stage of its earliest role ([`crate::stack::stage_of`]).
pub fn stages(stack: &Stack) -> Vec<Stage<'_>> {
    role_order()
        .into_iter()
        .map(|role| Stage { role, hosts: stack.hosts.iter().filter(|host| stack.stage(host) == Some(role)).collect() })
        .collect()
}

/// The web hosts HAProxy balances over, with the port Nginx listens on.
pub fn haproxy_backends(stack: &Stack) -> Vec<(&str, SocketAddr)> {
    stack
        .hosts_with(Role::Web)
        .filter_map(|host| {
            Some((host.name.value.as_str(), SocketAddr::new(host.address.value, stack.port(host, Role::Web)?)))
        })
        .collect()
}

/// The Gunicorn addresses Nginx proxies to: each app host at the bind port.
pub fn nginx_upstreams(stack: &Stack) -> Vec<SocketAddr> {
    stack
        .hosts_with(Role::App)
        .filter_map(|host| Some(SocketAddr::new(host.address.value, stack.port(host, Role::App)?)))
        .collect()
}

/// The addresses the database accepts the application's user from.
pub fn database_clients(stack: &Stack) -> Vec<IpAddr> {
    stack.hosts_with(Role::App).map(|host| host.address.value).collect()
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
pub fn ssh_port(ssh: &crate::inventory::SshSettings, host: &Host) -> u16 {
    host.ssh.port.as_ref().map_or_else(|| ssh.port_or_default(), |port| port.value)
}

/// How to reach `host`: its own SSH settings, then the stack's, then
/// ssh's own defaults; paths relative to the inventory.
pub fn ssh_target(stack: &Stack, host: &Host) -> Target {
    let path = |own: &Option<crate::source::Spanned<std::path::PathBuf>>,
                shared: &Option<crate::source::Spanned<std::path::PathBuf>>| {
        own.as_ref().or(shared.as_ref()).map(|path| stack.files.base_dir.join(&path.value))
    };
    let (own, shared) = (&host.ssh, &stack.ssh);
    Target {
        name: host.name.value.clone(),
        address: host.address.value,
        destination: own.host.as_ref().map_or_else(|| ssh_address(host).to_string(), |host| host.value.clone()),
        user: own.user.as_ref().map_or_else(|| shared.user_or_default().to_string(), |user| user.value.clone()),
        port: ssh_port(shared, host),
        identity: path(&own.identity, &shared.identity),
        known_hosts: path(&own.known_hosts, &shared.known_hosts),
        privilege: own
            .privilege
            .as_ref()
            .or(shared.privilege.as_ref())
            .map(|privilege| privilege.value)
            .unwrap_or_default(),
        jump: own.jump.as_ref().or(shared.jump.as_ref()).map(|jump| jump.value.clone()),
    }
}

/// Where SSH dials a host without `ssh.host`: its public address when it
/// has one (the private network is reached through a bastion, or not at all).
fn ssh_address(host: &Host) -> IpAddr {
    host.public_address.as_ref().map_or(host.address.value, |public| public.value)
}

/// The interface keepalived moves the virtual IP on: with two networks,
/// the interface of the network the virtual IP is in.
pub fn vrrp_interface(stack: &Stack) -> &str {
    let vip = stack.load_balancer.virtual_ip.value.addr();
    let network = stack.networks.as_ref().and_then(|networks| networks.containing(vip));
    network.map_or(&stack.load_balancer.interface.value, |network| &network.interface.value)
}

/// A balancer's address on the virtual IP's network, which its VRRP
/// adverts come from: its public address when the virtual IP is public.
pub fn vrrp_address(stack: &Stack, host: &Host) -> IpAddr {
    host.address_facing(stack.networks.as_ref(), stack.load_balancer.virtual_ip.value.addr()).value
}

/// The interfaces `host` must have for its configuration to work (plan
/// refuses a host without one): with two networks the private one and,
/// where it has a public address, the public one (keepalived's is one of
/// them); else a balancer's `load_balancer.interface`.
pub fn interfaces(stack: &Stack, host: &Host) -> Vec<Interface> {
    let named = |network: &crate::inventory::Network, purpose, setting| Interface {
        name: network.interface.value.clone(),
        purpose,
        setting,
    };
    match &stack.networks {
        Some(networks) => {
            let mut needed = vec![named(&networks.private, "the private network", "networks.private.interface")];
            if host.public_address.is_some() {
                needed.push(named(&networks.public, "the public network", "networks.public.interface"));
            }
            needed
        }
        None if host.has_role(Role::LoadBalancer) => vec![Interface {
            name: stack.load_balancer.interface.value.clone(),
            purpose: "keepalived to move the virtual IP on",
            setting: "load_balancer.interface",
        }],
        None => Vec::new(),
    }
}

/// The interface tier traffic arrives on, with two networks; `None`: any.
fn private_interface(stack: &Stack) -> Option<String> {
    stack.networks.as_ref().map(|networks| networks.private.interface.value.clone())
}

/// The networks SSH is accepted from, on every host.
pub fn admin_networks(stack: &Stack) -> Vec<IpNet> {
    stack.firewall.admin_cidrs.value.iter().map(|cidr| cidr.value).collect()
}

/// Everything `host` accepts beyond SSH, from its roles: each of its
/// listeners, from exactly the hosts of the tier in front of it.
pub fn allowances(stack: &Stack, host: &Host) -> Vec<Allowance> {
    let addresses = |role| stack.hosts_with(role).map(|host| host.address.value).collect::<Vec<_>>();
    let tiers = private_interface(stack);
    // Clients and VRRP arrive on the virtual IP's network.
    let front = stack.networks.as_ref().map(|_| vrrp_interface(stack).to_string());
    let ports = |role| -> Vec<u16> {
        stack.listeners(host).iter().filter(|listener| listener.role == role).map(|listener| listener.port).collect()
    };
    let mut allowances = Vec::new();
    if host.has_role(Role::LoadBalancer) {
        allowances.push(Allowance {
            comment: "Clients reach the load balancers".into(),
            tcp_ports: ports(Role::LoadBalancer),
            from: None,
            interface: front.clone(),
        });
        let peers: Vec<IpAddr> = stack
            .hosts_with(Role::LoadBalancer)
            .filter(|peer| peer.name.value != host.name.value)
            .map(|peer| vrrp_address(stack, peer))
            .collect();
        if !peers.is_empty() {
            allowances.push(Allowance {
                comment: "VRRP adverts from the other load balancers".into(),
                tcp_ports: Vec::new(),
                from: Some(peers),
                interface: front,
            });
        }
    }
    if host.has_role(Role::Web) {
        let mut from = addresses(Role::LoadBalancer);
        // A balancer may answer from the virtual IP while it holds it.
        from.push(stack.load_balancer.virtual_ip.value.addr());
        allowances.push(Allowance {
            comment: "HTTP from the load balancers only".into(),
            tcp_ports: ports(Role::Web),
            from: Some(from),
            interface: tiers.clone(),
        });
    }
    if host.has_role(Role::App) {
        allowances.push(Allowance {
            comment: "Gunicorn from the web servers only".into(),
            tcp_ports: ports(Role::App),
            from: Some(addresses(Role::Web)),
            interface: tiers.clone(),
        });
    }
    if host.has_role(Role::Database) {
        allowances.push(Allowance {
            comment: "The database from the app servers only".into(),
            tcp_ports: ports(Role::Database),
            from: Some(database_clients(stack)),
            interface: tiers.clone(),
        });
    }
    allowances
}

//! Rules for the keepalived pair: enough balancers, a virtual IP that can live
//! on them, and VRRP settings that make the pair one cluster.

use std::collections::HashMap;

use crate::diagnostic::Diagnostic;
use crate::inventory::{Host, Inventory, LoadBalancerSettings};
use crate::source::Span;
use crate::topology::{self, Role};

pub fn check(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let balancers: Vec<&Host> = inventory.hosts_with(Role::LoadBalancer).collect();
    if balancers.is_empty() {
        return;
    }
    if balancers.len() == 1 {
        found.push(
            Diagnostic::warning(
                "single-load-balancer",
                format!("`{}` is the only load balancer: a single point of failure", balancers[0].name),
            )
            .at(balancers[0].name.span, "the only load balancer")
            .help("add a second host with `roles: [load_balancer]` so keepalived can move the virtual IP"),
        );
    }
    let Some(settings) = &inventory.load_balancer else {
        if inventory.declared_sections.contains(&"load_balancer") {
            return; // present but broken: decoding already said how
        }
        found.push(
            Diagnostic::error(
                "missing-settings",
                "hosts have the role `load_balancer` but the inventory has no `load_balancer` section",
            )
            .at(
                balancers[0]
                    .roles
                    .iter()
                    .find(|r| r.value == Role::LoadBalancer)
                    .map_or(balancers[0].name.span, |r| r.span),
                "load balancer role",
            )
            .help("add `load_balancer:` with `virtual_ip`, `virtual_router_id` and `vrrp_secret`"),
        );
        return;
    };
    virtual_ip(inventory, settings, &balancers, found);
    shared_vrrp_settings(settings, &balancers, found);
    distinct_priorities(&balancers, found);
}

fn virtual_ip(
    inventory: &Inventory,
    settings: &LoadBalancerSettings,
    balancers: &[&Host],
    found: &mut Vec<Diagnostic>,
) {
    let network = settings.virtual_ip.value;
    let vip = network.addr();
    let span = settings.virtual_ip.span;
    if vip == network.network() || (vip == network.broadcast() && network.prefix_len() < network.max_prefix_len() - 1) {
        found.push(
            Diagnostic::error(
                "vip-not-host-address",
                format!("virtual IP {vip} is the network or broadcast address of {}", network.trunc()),
            )
            .at(span, "not usable as a host address"),
        );
    }
    for balancer in balancers {
        let address = balancer.address_facing(inventory.networks.as_ref(), vip);
        if !network.contains(&address.value) {
            found.push(
                Diagnostic::error(
                    "vip-outside-subnet",
                    format!(
                        "load balancer `{}` ({}) is outside the virtual IP's subnet {}",
                        balancer.name,
                        address,
                        network.trunc()
                    ),
                )
                .at(span, "virtual IP and prefix")
                .also(address.span, "not in that subnet")
                .help("keepalived can only move the virtual IP between hosts on its subnet"),
            );
        }
    }
    for host in &inventory.hosts {
        for address in host.addresses().filter(|address| address.value == vip) {
            found.push(
                Diagnostic::error(
                    "vip-is-host-address",
                    format!("virtual IP {vip} is also the address of host `{}`", host.name),
                )
                .at(span, "virtual IP")
                .also(address.span, "same address")
                .help("the virtual IP must be a free address that only the active load balancer holds"),
            );
        }
    }
}

/// Every balancer's effective router id and secret, with where each came from.
fn shared_vrrp_settings(settings: &LoadBalancerSettings, balancers: &[&Host], found: &mut Vec<Diagnostic>) {
    let default_id = (settings.virtual_router_id.value, settings.virtual_router_id.span);
    let ids: Vec<(u8, Span, &Host)> = balancers
        .iter()
        .map(|host| {
            host.vrrp
                .virtual_router_id
                .as_ref()
                .map_or((default_id.0, default_id.1, *host), |id| (id.value, id.span, *host))
        })
        .collect();
    if let Some((first, rest)) = ids.split_first() {
        for (id, span, host) in rest.iter().filter(|(id, _, _)| *id != first.0) {
            found.push(
                Diagnostic::error(
                    "vrrp-router-id-mismatch",
                    format!(
                        "load balancers `{}` and `{}` use different virtual_router_id ({} and {id})",
                        first.2.name, host.name, first.0
                    ),
                )
                .at(*span, format!("virtual_router_id {id}"))
                .also(first.1, format!("virtual_router_id {}", first.0))
                .help("both keepalived peers must share one virtual_router_id, or each will claim the virtual IP"),
            );
        }
    }
    let default_secret = &settings.vrrp_secret;
    let secrets: Vec<_> =
        balancers.iter().map(|host| (host.vrrp.secret.as_ref().unwrap_or(default_secret), *host)).collect();
    if let Some((first, rest)) = secrets.split_first() {
        for (secret, host) in rest.iter().filter(|(secret, _)| secret.source != first.0.source) {
            found.push(
                Diagnostic::error(
                    "vrrp-secret-mismatch",
                    format!("load balancers `{}` and `{}` use different VRRP secrets", first.1.name, host.name),
                )
                .at(secret.span, format!("{}", secret.source))
                .also(first.0.span, format!("{}", first.0.source))
                .help("keepalived peers with different secrets ignore each other and both hold the virtual IP"),
            );
        }
    }
}

fn distinct_priorities(balancers: &[&Host], found: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<u8, &Host> = HashMap::new();
    for (priority, span, host) in topology::vrrp_priorities(balancers) {
        if let Some(other) = seen.get(&priority) {
            found.push(
                Diagnostic::error(
                    "vrrp-priority-duplicate",
                    format!(
                        "load balancers `{}` and `{}` have the same VRRP priority {priority}",
                        other.name, host.name
                    ),
                )
                .at(span.unwrap_or(host.name.span), format!("priority {priority}"))
                .help("give each load balancer its own `vrrp: {priority: N}` so the master is predictable"),
            );
        } else {
            seen.insert(priority, host);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    #[test]
    fn one_load_balancer_is_a_warning() {
        let text = broken(
            "  - name: lb-02\n    address: 10.20.0.12\n    roles: [load_balancer]\n    vrrp: {priority: 100}\n",
            "",
        );
        assert_eq!(codes(&text), ["single-load-balancer"]);
    }

    #[test]
    fn vip_outside_the_balancers_subnet() {
        assert_eq!(
            codes(&broken("virtual_ip: 10.20.0.10/24", "virtual_ip: 10.30.0.10/24")),
            ["vip-outside-subnet", "vip-outside-subnet"]
        );
    }

    #[test]
    fn vip_equal_to_a_host_address() {
        assert_eq!(codes(&broken("virtual_ip: 10.20.0.10/24", "virtual_ip: 10.20.0.21/24")), ["vip-is-host-address"]);
    }

    #[test]
    fn vip_is_the_network_address() {
        assert_eq!(codes(&broken("virtual_ip: 10.20.0.10/24", "virtual_ip: 10.20.0.0/24")), ["vip-not-host-address"]);
    }

    #[test]
    fn router_ids_differ() {
        let text = broken("    vrrp: {priority: 100}", "    vrrp: {priority: 100, virtual_router_id: 52}");
        assert_eq!(codes(&text), ["vrrp-router-id-mismatch"]);
    }

    #[test]
    fn secrets_differ() {
        let text = broken("    vrrp: {priority: 100}", "    vrrp: {priority: 100, secret: {env: OTHER_SECRET}}");
        assert_eq!(codes(&text), ["vrrp-secret-mismatch"]);
    }

    #[test]
    fn equal_priorities() {
        assert_eq!(codes(&broken("vrrp: {priority: 100}", "vrrp: {priority: 150}")), ["vrrp-priority-duplicate"]);
    }
}

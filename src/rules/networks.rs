//! Rules about two networks (`networks`): every host's `address` is on the
//! private one, every `public_address` on the public one, the virtual IP on
//! one of them (and, when public, every balancer has a public address to
//! speak VRRP from), and the interface keepalived uses is said once.

use crate::diagnostic::Diagnostic;
use crate::inventory::{Inventory, Network, Networks};
use crate::role::Role;

pub fn check(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let Some(networks) = &inventory.networks else {
        public_addresses_need_networks(inventory, found);
        return;
    };
    if networks.public.cidr.value.contains(&networks.private.cidr.value.network())
        || networks.private.cidr.value.contains(&networks.public.cidr.value.network())
    {
        found.push(
            Diagnostic::error("networks-overlap", "the public and private networks overlap")
                .at(networks.public.cidr.span, "public")
                .also(networks.private.cidr.span, "private")
                .help("the two networks are told apart by their addresses: give each its own subnet"),
        );
    }
    addresses_on_their_networks(inventory, networks, found);
    virtual_ip_network(inventory, networks, found);
}

fn public_addresses_need_networks(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    for host in &inventory.hosts {
        let Some(public) = &host.public_address else { continue };
        found.push(
            Diagnostic::error(
                "public-address-without-networks",
                format!("host `{}` has a `public_address`, but the inventory declares no `networks`", host.name),
            )
            .at(public.span, "on which network?")
            .help(
                "declare both: `networks: {public: {cidr: ..., interface: ...}, private: {cidr: ..., interface: ...}}`",
            ),
        );
    }
}

fn addresses_on_their_networks(inventory: &Inventory, networks: &Networks, found: &mut Vec<Diagnostic>) {
    let outside = |network: &Network, key: &str, which: &str, host: &crate::inventory::Host, address| {
        Diagnostic::error(
            "address-outside-network",
            format!("`{key}` {address} of host `{}` is not on the {which} network {}", host.name, network.cidr.value),
        )
        .also(network.cidr.span, format!("the {which} network"))
    };
    for host in &inventory.hosts {
        let address = &host.address;
        if !networks.private.cidr.value.contains(&address.value) {
            found.push(
                outside(&networks.private, "address", "private", host, address.value)
                    .at(address.span, "the tiers reach the host here")
                    .help("`address` is the host's private address; its public one goes in `public_address`"),
            );
        }
        if let Some(public) = &host.public_address
            && !networks.public.cidr.value.contains(&public.value)
        {
            found.push(
                outside(&networks.public, "public_address", "public", host, public.value).at(public.span, "here"),
            );
        }
    }
}

fn virtual_ip_network(inventory: &Inventory, networks: &Networks, found: &mut Vec<Diagnostic>) {
    let Some(settings) = &inventory.load_balancer else { return };
    if settings.interface_declared {
        found.push(
            Diagnostic::error(
                "interface-twice",
                "`load_balancer.interface` and `networks` both say where the virtual IP lives",
            )
            .at(settings.interface.span, "remove this")
            .help("keepalived uses the interface of the network the virtual IP is in"),
        );
    }
    let vip = settings.virtual_ip.value.addr();
    let Some(network) = networks.containing(vip) else {
        found.push(
            Diagnostic::error(
                "vip-outside-networks",
                format!("the virtual IP {vip} is on neither the public nor the private network"),
            )
            .at(settings.virtual_ip.span, "virtual IP")
            .also(networks.public.cidr.span, "clients usually reach it here")
            .help("pick a free address of the public network, where clients connect"),
        );
        return;
    };
    if !std::ptr::eq(network, &networks.public) {
        return;
    }
    for balancer in inventory.hosts_with(Role::LoadBalancer).filter(|host| host.public_address.is_none()) {
        found.push(
            Diagnostic::error(
                "balancer-without-public-address",
                format!(
                    "load balancer `{}` has no `public_address`, and the virtual IP is on the public network",
                    balancer.name
                ),
            )
            .at(balancer.name.span, "this balancer")
            .also(settings.virtual_ip.span, "public virtual IP")
            .help(format!(
                "add `public_address:` with its address on {}: keepalived moves the virtual IP there",
                networks.public.cidr.value
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::{VALID, codes};

    /// The valid fixture on two networks: balancers public at 192.0.2.x,
    /// every tier private at 10.20.0.x, the virtual IP public.
    fn two_networks(edit: impl Fn(String) -> String) -> String {
        let text = VALID
            .replacen("  interface: eth0\n", "", 1)
            .replacen("virtual_ip: 10.20.0.10/24", "virtual_ip: 192.0.2.10/24", 1)
            .replacen("    address: 10.20.0.11\n", "    address: 10.20.0.11\n    public_address: 192.0.2.11\n", 1)
            .replacen("    address: 10.20.0.12\n", "    address: 10.20.0.12\n    public_address: 192.0.2.12\n", 1);
        edit(format!(
            "{text}\nnetworks:\n  public: {{cidr: 192.0.2.0/24, interface: ens5}}\n  private: {{cidr: 10.20.0.0/24, interface: ens6}}\n"
        ))
    }

    #[test]
    fn two_networks_with_a_public_virtual_ip_pass() {
        assert_eq!(codes(&two_networks(|text| text)), Vec::<&str>::new());
    }

    #[test]
    fn a_private_address_off_the_private_network() {
        let text = two_networks(|text| text.replacen("address: 10.20.0.21", "address: 10.99.0.21", 1));
        assert_eq!(codes(&text), ["address-outside-network"]);
    }

    #[test]
    fn a_balancer_without_a_public_address() {
        let text = two_networks(|text| text.replacen("    public_address: 192.0.2.12\n", "", 1));
        assert_eq!(codes(&text), ["vip-outside-subnet", "balancer-without-public-address"]);
    }

    #[test]
    fn a_public_address_without_networks() {
        let text =
            VALID.replacen("    address: 10.20.0.21\n", "    address: 10.20.0.21\n    public_address: 192.0.2.21\n", 1);
        assert_eq!(codes(&text), ["public-address-without-networks"]);
    }

    #[test]
    fn the_interface_said_twice() {
        let text = two_networks(|text| text.replacen("load_balancer:\n", "load_balancer:\n  interface: eth0\n", 1));
        assert_eq!(codes(&text), ["interface-twice"]);
    }

    #[test]
    fn a_virtual_ip_on_neither_network() {
        let text = two_networks(|text| text.replacen("virtual_ip: 192.0.2.10/24", "virtual_ip: 198.51.100.10/24", 1));
        assert!(codes(&text).contains(&"vip-outside-networks"));
    }
}

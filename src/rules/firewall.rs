//! Rules about the tier firewall's one hand-written input: where SSH may
//! come from. Everything else the firewall allows is derived from the roles.

use crate::diagnostic::Diagnostic;
use crate::inventory::{Inventory, file_start};

pub fn check(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let Some(firewall) = &inventory.firewall else {
        if !inventory.incomplete {
            found.push(missing_admin_cidr(file_start(), "no `firewall` section in this file"));
        }
        return;
    };
    let admin = &firewall.admin_cidrs;
    if admin.value.is_empty() {
        found.push(missing_admin_cidr(admin.span, "empty"));
    }
    // Judged on the union, so `[0.0.0.0/1, 128.0.0.0/1]` is every address too.
    let networks: Vec<ipnet::IpNet> = admin.value.iter().map(|cidr| cidr.value).collect();
    for everything in ipnet::IpNet::aggregate(&networks).into_iter().filter(|network| network.prefix_len() == 0) {
        let covering: Vec<_> = admin.value.iter().filter(|cidr| everything.contains(&cidr.value)).collect();
        let Some((first, rest)) = covering.split_first() else { continue };
        let shown = covering.iter().map(|cidr| format!("`{}`", cidr.value)).collect::<Vec<_>>().join(", ");
        let mut warning =
            Diagnostic::warning("ssh-open-to-all", format!("{shown} lets every address on the internet try SSH"))
                .at(first.span, "together these match every address")
                .help("name the networks you administer from, e.g. `203.0.113.0/24` or a bastion's address");
        for cidr in rest {
            warning = warning.also(cidr.span, "part of every address");
        }
        found.push(warning);
    }
    bastions_outside_admin(inventory, &networks, found);
}

/// Hosts behind a bastion see SSH come from the bastion: an admin list
/// without it is a firewall that locks infra out of them (plan would
/// refuse it; validate says so first, where the bastion is an address).
fn bastions_outside_admin(inventory: &Inventory, networks: &[ipnet::IpNet], found: &mut Vec<Diagnostic>) {
    let mut reported = Vec::new();
    for host in &inventory.hosts {
        let Some(jump) = host.ssh.jump.as_ref().or(inventory.ssh.jump.as_ref()) else { continue };
        let Ok(address) = jump.value.destination.parse::<std::net::IpAddr>() else { continue };
        // A bastion dialled on the public network reaches the host from
        // its private address, which the inventory does not know: plan's
        // lockout check, which reads where SSH really comes from, decides.
        let public = inventory.networks.as_ref().is_some_and(|two| !two.private.cidr.value.contains(&address));
        if public || networks.iter().any(|network| network.contains(&address)) || reported.contains(&address) {
            continue;
        }
        reported.push(address);
        found.push(
            Diagnostic::error(
                "bastion-not-admin",
                format!(
                    "`{}` is reached through the bastion {address}, which `firewall.admin_cidrs` does not include: once the firewall is up, the host would refuse SSH from it",
                    host.name.value
                ),
            )
            .at(jump.span, "SSH arrives from here")
            .help(format!("add `{address}/32` to `firewall.admin_cidrs`")),
        );
    }
}

fn missing_admin_cidr(span: crate::source::Span, label: &str) -> Diagnostic {
    Diagnostic::error("missing-admin-cidr", "the inventory names no admin CIDR: no host would accept SSH")
        .at(span, label)
        .help(
            "add `firewall: {admin_cidrs: [192.0.2.0/24]}` with the networks infra and administrators connect from \
             (the lab's is its gateway, e.g. `10.20.0.254/32`)",
        )
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    #[test]
    fn a_missing_firewall_section_is_an_error() {
        assert_eq!(codes(&broken("firewall:\n  admin_cidrs: [10.20.0.254/32]\n", "")), ["missing-admin-cidr"]);
    }

    #[test]
    fn an_empty_admin_list_is_an_error() {
        assert_eq!(codes(&broken("[10.20.0.254/32]", "[]")), ["missing-admin-cidr"]);
    }

    #[test]
    fn a_bastion_outside_the_admin_networks_is_an_error() {
        let behind = broken("    roles: [app]\n", "    roles: [app]\n    ssh: {jump: admin@10.20.0.5}\n");
        assert_eq!(codes(&behind), ["bastion-not-admin"]);
        assert!(codes(&behind.replace("[10.20.0.254/32]", "[10.20.0.254/32, 10.20.0.5/32]")).is_empty());
        assert!(
            codes(&behind.replace("admin@10.20.0.5", "bastion.example.com")).is_empty(),
            "a name is checked by plan"
        );
    }

    #[test]
    fn ssh_open_to_everyone_is_a_warning() {
        assert_eq!(codes(&broken("[10.20.0.254/32]", "[0.0.0.0/0]")), ["ssh-open-to-all"]);
        assert_eq!(codes(&broken("[10.20.0.254/32]", "[0.0.0.0/1, 128.0.0.0/1]")), ["ssh-open-to-all"]);
        assert_eq!(codes(&broken("[10.20.0.254/32]", "[10.20.0.254/32, 128.0.0.0/1]")), Vec::<&str>::new());
    }
}

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
    fn ssh_open_to_everyone_is_a_warning() {
        assert_eq!(codes(&broken("[10.20.0.254/32]", "[0.0.0.0/0]")), ["ssh-open-to-all"]);
        assert_eq!(codes(&broken("[10.20.0.254/32]", "[0.0.0.0/1, 128.0.0.0/1]")), ["ssh-open-to-all"]);
        assert_eq!(codes(&broken("[10.20.0.254/32]", "[10.20.0.254/32, 128.0.0.0/1]")), Vec::<&str>::new());
    }
}

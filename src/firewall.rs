//! The tier firewall's vocabulary: an [`Allowance`] (who may reach which
//! port on a host; `topology::allowances` derives each host's from the
//! stack) and the guard that keeps apply from locking itself out. It
//! reads no inventory, so plan can use the guard without reaching it.
//!
//! Nothing is hand-listed: a web server accepts HTTP from exactly the
//! load balancers because those are the hosts with the `load_balancer` role,
//! so adding a balancer to the inventory opens the web tier to it. The only
//! input the topology cannot supply is where administrators connect from
//! (`firewall.admin_cidrs`). The rules are rendered into one nftables table
//! (`templates/firewall.nft.j2`) that `nft -f` replaces atomically.
//!
//! [`ssh_lockout`] is the pure check plan runs before a ruleset reaches a
//! host: the address and port of the SSH connection infra is using must
//! still be accepted, or the change is refused before it is sent.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One thing a host accepts besides SSH, loopback, ICMP and replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Allowance {
    /// Why the port is open, written above the rule.
    pub comment: String,
    /// The TCP ports; empty for VRRP, which has no ports.
    pub tcp_ports: Vec<u16>,
    /// `None`: from anywhere.
    pub from: Option<Vec<IpAddr>>,
    /// The interface it arrives on, with two networks; `None`: any.
    pub interface: Option<String>,
}

/// What plan needs to know to refuse a ruleset that would cut its own SSH
/// connection: the port SSH is accepted on and the networks it is accepted from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshGuard {
    pub ruleset: String,
    pub port: u16,
    pub admin: Vec<IpNet>,
}

/// Why the ruleset in `guard` would cut the SSH connection that arrives from
/// `client` on `server_port`; `None` when that connection stays allowed.
pub fn ssh_lockout(guard: &SshGuard, client: IpAddr, server_port: u16) -> Option<String> {
    let client = canonical(client);
    if server_port != guard.port {
        return Some(format!(
            "infra's SSH connection arrives on port {server_port}, but the new firewall accepts SSH only on port {}",
            guard.port
        ));
    }
    if !guard.admin.iter().any(|network| network.contains(&client)) {
        let admin: Vec<String> = guard.admin.iter().map(ToString::to_string).collect();
        return Some(format!(
            "infra's SSH connection comes from {client}, which the new firewall would refuse (SSH only from {})",
            admin.join(", ")
        ));
    }
    None
}

/// `::ffff:10.0.0.1` is 10.0.0.1 to the firewall.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(admin: &[&str]) -> SshGuard {
        SshGuard {
            ruleset: crate::catalog::FIREWALL_RULESET.path.into(),
            port: 22,
            admin: admin.iter().map(|cidr| cidr.parse().expect("cidr")).collect(),
        }
    }

    #[test]
    fn a_connection_from_an_admin_network_is_kept() {
        assert_eq!(ssh_lockout(&guard(&["10.20.0.0/24"]), "10.20.0.254".parse().expect("ip"), 22), None);
        assert_eq!(ssh_lockout(&guard(&["10.20.0.254/32"]), "::ffff:10.20.0.254".parse().expect("ip"), 22), None);
    }

    #[test]
    fn a_connection_from_elsewhere_is_refused_with_the_address() {
        assert_eq!(
            ssh_lockout(&guard(&["192.0.2.0/24"]), "10.20.0.254".parse().expect("ip"), 22).as_deref(),
            Some(
                "infra's SSH connection comes from 10.20.0.254, which the new firewall would refuse (SSH only from 192.0.2.0/24)"
            )
        );
    }

    #[test]
    fn a_connection_on_another_port_is_refused() {
        let refusal = ssh_lockout(&guard(&["0.0.0.0/0"]), "10.20.0.254".parse().expect("ip"), 2222);
        assert!(refusal.is_some_and(|text| text.contains("port 2222")));
    }
}

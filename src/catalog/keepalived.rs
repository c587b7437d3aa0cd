//! Who holds the virtual IP keepalived moves between the balancers: one
//! script that lists a host's addresses, read by the facts (plan, the live
//! diagram) and by apply (which balancer to change last) alike.

use std::net::IpAddr;

/// Prints `V ADDRESS` for each IPv4 address of the host (virtual IPs are
/// IPv4, the inventory's grammar says). `ip -o` prints
/// `2: eth0    inet 10.0.0.11/24 brd ...`: the fourth field.
pub const ADDRESSES_SCRIPT: &str =
    "ip -o -4 addr show 2>/dev/null | while read -r _ _ _ address _; do echo \"V ${address%/*}\"; done\n";

/// The addresses in [`ADDRESSES_SCRIPT`]'s output; lines that are not an
/// address are left out.
pub fn addresses(output: &str) -> impl Iterator<Item = IpAddr> + '_ {
    output.lines().filter_map(|line| line.strip_prefix("V ")?.trim().parse().ok())
}

/// Whether a host whose [`ADDRESSES_SCRIPT`] said `output` holds `vip`.
pub fn holds(output: &str, vip: IpAddr) -> bool {
    addresses(output).any(|address| address == vip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_the_host_that_lists_the_address() {
        let output = "V 127.0.0.1\nV 10.0.0.11\nV 10.0.0.10\n";
        assert!(holds(output, "10.0.0.10".parse().expect("address")));
        assert!(!holds(output, "10.0.0.12".parse().expect("address")));
        assert!(!holds("V 10.0.0.100\n", "10.0.0.10".parse().expect("address")));
    }
}

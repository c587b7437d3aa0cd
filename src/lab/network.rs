//! The lab's network: one bridge with the gateway address, and per host a
//! network namespace joined to it by a veth pair (`eth0` inside). A lab of
//! two networks has a second, private bridge that this machine has no
//! address on: hosts only there are reached through a bastion or not at all.
//!
//! Hosts get only their subnet routes: no default route, so nothing in the
//! lab can send to any address outside the lab.

use std::net::IpAddr;

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::system::{self, SystemError};

/// The lab's name (`INFRA_LAB_NAME`, default `infralab`) prefixes everything
/// it creates, so a test lab and a user's lab never touch each other.
pub fn lab_name() -> String {
    std::env::var("INFRA_LAB_NAME")
        .ok()
        .filter(|name| !name.is_empty() && name.len() <= 10 && name.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "infralab".to_string())
}

pub fn bridge_name() -> String {
    format!("{}0", lab_name())
}

/// The private network's bridge, when the lab has two.
pub fn private_bridge_name() -> String {
    format!("{}1", lab_name())
}

fn netns_prefix() -> String {
    format!("{}-", lab_name())
}

pub fn netns_name(host: &str) -> String {
    format!("{}{host}", netns_prefix())
}

/// The bridge-side veth name: interface names have at most 15 bytes, host
/// names may be longer, so it is a short hash of the lab and host names.
pub fn veth_name(host: &str) -> String {
    hashed_veth(host)
}

/// The bridge-side name of a host's second link, on the private bridge.
fn private_veth_name(host: &str) -> String {
    hashed_veth(&format!("{host}/private"))
}

fn hashed_veth(link: &str) -> String {
    let digest = Sha256::digest(format!("{}/{link}", lab_name()).as_bytes());
    let hex: String = digest.iter().take(5).map(|byte| format!("{byte:02x}")).collect();
    format!("il{hex}")
}

fn link_exists(name: &str) -> bool {
    system::succeeds(std::process::Command::new("ip").args(["link", "show", "dev", name]))
}

pub fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// Creates the bridge with the gateway address, unless it exists.
///
/// The bridge gets a fixed MAC address: left to itself, a Linux bridge
/// takes the lowest MAC of its ports, so adding or removing a host (a
/// restore drill's scratch host, `lab destroy`) could change the gateway's
/// MAC under every other host's ARP cache, and their replies to this
/// machine went nowhere until the entry expired (SSH connections timed
/// out for tens of seconds). An address set by hand is never recalculated.
pub fn ensure_bridge(subnet: IpNet, gateway: IpAddr) -> Result<(), SystemError> {
    let bridge = bridge_name();
    if !link_exists(&bridge) {
        system::ip(&["link", "add", &bridge, "type", "bridge"])?;
        let gateway = format!("{gateway}/{}", subnet.prefix_len());
        system::ip(&["addr", "add", &gateway, "dev", &bridge])?;
    }
    system::ip(&["link", "set", &bridge, "address", &bridge_mac(&bridge), "up"])?;
    Ok(())
}

/// Creates the private bridge, with no address of this machine on it.
pub fn ensure_private_bridge() -> Result<(), SystemError> {
    let bridge = private_bridge_name();
    if !link_exists(&bridge) {
        system::ip(&["link", "add", &bridge, "type", "bridge"])?;
    }
    system::ip(&["link", "set", &bridge, "address", &bridge_mac(&bridge), "up"])?;
    Ok(())
}

/// A locally administered unicast MAC address derived from the bridge's
/// name, so two labs on one machine differ and one lab keeps its own across runs.
pub fn bridge_mac(bridge: &str) -> String {
    let digest = Sha256::digest(format!("{bridge}/bridge").as_bytes());
    let octets: Vec<String> = digest.iter().take(5).map(|byte| format!("{byte:02x}")).collect();
    format!("02:{}", octets.join(":"))
}

/// Creates a host's namespace and link with its address, unless they exist.
/// The host's side of the link is named `interface` (`eth0`, or `ens5`
/// as a cloud names it).
/// `private`: the link is on the private bridge.
pub fn ensure_host(
    host: &str,
    address: IpAddr,
    subnet: IpNet,
    interface: &str,
    private: bool,
) -> Result<(), SystemError> {
    let netns = netns_name(host);
    if !netns_exists(&netns) {
        system::ip(&["netns", "add", &netns])?;
    }
    let bridge = if private { private_bridge_name() } else { bridge_name() };
    ensure_link(&netns, &veth_name(host), &bridge, (address, subnet), interface)?;
    system::ip(&["-n", &netns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Gives a host (its namespace made by [`ensure_host`]) a second link, on
/// the private bridge.
pub fn ensure_private_link(host: &str, address: IpAddr, subnet: IpNet, interface: &str) -> Result<(), SystemError> {
    ensure_link(&netns_name(host), &private_veth_name(host), &private_bridge_name(), (address, subnet), interface)
}

fn ensure_link(
    netns: &str,
    veth: &str,
    bridge: &str,
    (address, subnet): (IpAddr, IpNet),
    interface: &str,
) -> Result<(), SystemError> {
    if !link_exists(veth) {
        system::ip(&["link", "add", veth, "type", "veth", "peer", "name", interface, "netns", netns])?;
        system::ip(&["-n", netns, "addr", "add", &format!("{address}/{}", subnet.prefix_len()), "dev", interface])?;
    }
    system::ip(&["link", "set", veth, "master", bridge, "up"])?;
    system::ip(&["-n", netns, "link", "set", interface, "up"])?;
    Ok(())
}

/// Makes a host private: what it sends to `gateway` (this machine) is
/// dropped, so only the lab's other hosts (its bastion) reach it, as a
/// cloud's private subnet is reached only through its bastion.
pub fn isolate(host: &str, gateway: IpAddr) -> Result<(), SystemError> {
    system::ip(&["-n", &netns_name(host), "route", "replace", "blackhole", &format!("{gateway}/32")])?;
    Ok(())
}

/// Takes a host's link down (`cut`) or up (`heal`), like pulling its cable.
/// Both of its links, with two networks.
pub fn set_link(host: &str, up: bool) -> Result<(), SystemError> {
    system::ip(&["link", "set", &veth_name(host), if up { "up" } else { "down" }])?;
    let private = private_veth_name(host);
    if link_exists(&private) {
        system::ip(&["link", "set", &private, if up { "up" } else { "down" }])?;
    }
    Ok(())
}

pub fn link_is_up(host: &str) -> bool {
    std::process::Command::new("ip")
        .args(["-br", "link", "show", "dev", &veth_name(host)])
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains(" UP "))
}

/// Removes a host's namespace (which takes the veth pair with it, though
/// the kernel may finish that a moment later: a veth already gone is fine).
pub fn remove_host(host: &str) -> Result<(), SystemError> {
    let netns = netns_name(host);
    if netns_exists(&netns) {
        system::ip(&["netns", "del", &netns])?;
    }
    for veth in [veth_name(host), private_veth_name(host)] {
        if link_exists(&veth)
            && let Err(error) = system::ip(&["link", "del", &veth])
            && link_exists(&veth)
        {
            return Err(error);
        }
    }
    Ok(())
}

/// Removes both bridges.
pub fn remove_bridge() -> Result<(), SystemError> {
    for bridge in [bridge_name(), private_bridge_name()] {
        if link_exists(&bridge) {
            system::ip(&["link", "del", &bridge])?;
        }
    }
    Ok(())
}

/// The lab namespaces present on this machine, found by name: `down` must
/// clean up even when its state file is lost.
pub fn leftover_namespaces() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str().map(String::from))
                .filter_map(|name| name.strip_prefix(&netns_prefix()).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bridge_mac_is_a_locally_administered_unicast_address() {
        let mac = bridge_mac(&bridge_name());
        let octets: Vec<u8> = mac.split(':').map(|octet| u8::from_str_radix(octet, 16).expect("hex")).collect();
        assert_eq!(octets.len(), 6, "{mac}");
        assert_eq!(octets[0] & 0b11, 0b10, "locally administered, unicast: {mac}");
    }
}

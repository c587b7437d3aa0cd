//! The lab's network: one bridge with the gateway address, and per host a
//! network namespace joined to it by a veth pair (`eth0` inside).
//!
//! Hosts get only their subnet route: no default route, so nothing in the
//! lab can send to any address outside the lab.

use std::net::IpAddr;

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::system::{self, SystemError};

pub const BRIDGE: &str = "infralab0";
const NETNS_PREFIX: &str = "infralab-";

pub fn netns_name(host: &str) -> String {
    format!("{NETNS_PREFIX}{host}")
}

/// The bridge-side veth name: interface names have at most 15 bytes, host
/// names may be longer, so it is a short hash of the host name.
pub fn veth_name(host: &str) -> String {
    let digest = Sha256::digest(host.as_bytes());
    format!(
        "il{}",
        digest
            .iter()
            .take(5)
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    )
}

fn link_exists(name: &str) -> bool {
    system::succeeds(std::process::Command::new("ip").args(["link", "show", "dev", name]))
}

pub fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// Creates the bridge with the gateway address, unless it exists.
pub fn ensure_bridge(subnet: IpNet, gateway: IpAddr) -> Result<(), SystemError> {
    if !link_exists(BRIDGE) {
        system::ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        system::ip(&[
            "addr",
            "add",
            &format!("{gateway}/{}", subnet.prefix_len()),
            "dev",
            BRIDGE,
        ])?;
    }
    system::ip(&["link", "set", BRIDGE, "up"])?;
    Ok(())
}

/// Creates a host's namespace and link with its address, unless they exist.
pub fn ensure_host(host: &str, address: IpAddr, subnet: IpNet) -> Result<(), SystemError> {
    let netns = netns_name(host);
    let veth = veth_name(host);
    if !netns_exists(&netns) {
        system::ip(&["netns", "add", &netns])?;
    }
    if !link_exists(&veth) {
        system::ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ])?;
        system::ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{address}/{}", subnet.prefix_len()),
            "dev",
            "eth0",
        ])?;
    }
    system::ip(&["link", "set", &veth, "master", BRIDGE, "up"])?;
    system::ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
    system::ip(&["-n", &netns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Takes a host's link down (`cut`) or up (`heal`), like pulling its cable.
pub fn set_link(host: &str, up: bool) -> Result<(), SystemError> {
    system::ip(&[
        "link",
        "set",
        &veth_name(host),
        if up { "up" } else { "down" },
    ])?;
    Ok(())
}

pub fn link_is_up(host: &str) -> bool {
    std::process::Command::new("ip")
        .args(["-br", "link", "show", "dev", &veth_name(host)])
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains(" UP "))
}

/// Removes a host's namespace (which takes the veth pair with it).
pub fn remove_host(host: &str) -> Result<(), SystemError> {
    let netns = netns_name(host);
    if netns_exists(&netns) {
        system::ip(&["netns", "del", &netns])?;
    }
    let veth = veth_name(host);
    if link_exists(&veth) {
        system::ip(&["link", "del", &veth])?;
    }
    Ok(())
}

pub fn remove_bridge() -> Result<(), SystemError> {
    if link_exists(BRIDGE) {
        system::ip(&["link", "del", BRIDGE])?;
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
                .filter(|name| name.starts_with(NETNS_PREFIX))
                .map(|name| name[NETNS_PREFIX.len()..].to_string())
                .collect()
        })
        .unwrap_or_default()
}

//! Refusals before the lab touches anything: not root, a missing tool, or a
//! lab subnet that overlaps a route this machine already has.

use ipnet::IpNet;

use super::system;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("the lab needs root (it creates network namespaces, mounts and containers); run it with sudo or as root")]
    NotRoot,
    #[error(
        "the lab needs `{program}`, which is not installed; install the Debian package `{package}` (`apt-get install {package}`)"
    )]
    MissingProgram { program: &'static str, package: &'static str },
    #[error(
        "the lab subnet {subnet} overlaps this machine's route to {route}{device}; choose inventory addresses in a subnet this machine does not use"
    )]
    SubnetOverlap { subnet: IpNet, route: IpNet, device: String },
    #[error("cannot read this machine's routes")]
    Routes(#[source] system::SystemError),
}

/// The programs the lab runs, with the Debian package that provides each.
const PROGRAMS: [(&str, &str); 6] = [
    ("ip", "iproute2"),
    ("debootstrap", "debootstrap"),
    ("systemd-nspawn", "systemd-container"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("mount", "mount"),
];

pub fn require_root() -> Result<(), PreflightError> {
    // The effective uid, read from /proc rather than through libc.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse::<u32>().ok());
    if euid == Some(0) { Ok(()) } else { Err(PreflightError::NotRoot) }
}

pub fn require_programs() -> Result<(), PreflightError> {
    for (program, package) in PROGRAMS {
        if system::find_program(program).is_none() {
            return Err(PreflightError::MissingProgram { program, package });
        }
    }
    Ok(())
}

/// Refuses a subnet that overlaps any route except the default route and
/// routes on the lab's own bridge (present when the lab is already up).
pub fn require_free_subnet(subnet: IpNet, own_bridge: &str) -> Result<(), PreflightError> {
    let output = system::ip(&["-j", "route", "show", "table", "all"]).map_err(PreflightError::Routes)?;
    let routes: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
    for route in routes {
        let device = route.get("dev").and_then(|dev| dev.as_str()).unwrap_or_default();
        let Some(destination) = route.get("dst").and_then(|dst| dst.as_str()) else {
            continue;
        };
        if device == own_bridge || destination == "default" {
            continue;
        }
        let Some(network) = parse_destination(destination) else {
            continue;
        };
        if network.prefix_len() > 0 && (network.contains(&subnet.network()) || subnet.contains(&network.network())) {
            let device = if device.is_empty() { String::new() } else { format!(" on `{device}`") };
            return Err(PreflightError::SubnetOverlap { subnet, route: network, device });
        }
    }
    Ok(())
}

/// `ip -j route` prints `10.0.0.0/24`, or a bare address for host routes.
fn parse_destination(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>().ok().or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

//! Refusals before the lab touches anything: not root, a missing tool, or a
//! lab subnet that overlaps a route this machine already has.

use ipnet::IpNet;

use super::system;

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("the lab needs root (it creates network namespaces, mounts and containers); run it with sudo or as root")]
    NotRoot,
    #[error(
        "the lab needs {}, not installed here, and cannot install {} itself ({why}); install {} with `apt-get install {}`",
        programs.join(", "),
        if programs.len() == 1 { "it" } else { "them" },
        if packages.len() == 1 { "the Debian package" } else { "the Debian packages" },
        packages.join(" ")
    )]
    MissingPrograms { programs: Vec<String>, packages: Vec<&'static str>, why: &'static str },
    #[error("cannot install the lab's prerequisites ({})", packages.join(" "))]
    Install {
        packages: Vec<&'static str>,
        #[source]
        error: system::SystemError,
    },
    #[error(
        "the lab subnet {subnet} overlaps this machine's route to {route}{device}; choose inventory addresses in a subnet this machine does not use"
    )]
    SubnetOverlap { subnet: IpNet, route: IpNet, device: String },
    #[error("cannot read this machine's routes")]
    Routes(#[source] system::SystemError),
}

/// The programs the lab runs, with the Debian package that provides each;
/// curl too, which asks the virtual IP for the README's one response.
const PROGRAMS: [(&str, &str); 8] = [
    ("ip", "iproute2"),
    ("debootstrap", "debootstrap"),
    ("systemd-nspawn", "systemd-container"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("mount", "mount"),
    ("curl", "curl"),
    // apply fetches the example app's wheels with `python3 -m pip download`.
    ("pip3", "python3-pip"),
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

/// Installs the programs the lab needs that are missing, with apt, on a
/// Debian or Ubuntu machine (the lab runs as root anyway), saying what it
/// installs; elsewhere refuses naming the exact command. Returns the
/// packages it installed.
pub fn ensure_programs() -> Result<Vec<&'static str>, PreflightError> {
    let missing: Vec<(&str, &'static str)> =
        PROGRAMS.into_iter().filter(|(program, _)| system::find_program(program).is_none()).collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let mut packages: Vec<&'static str> = missing.iter().map(|(_, package)| *package).collect();
    packages.dedup();
    let refuse = |why| PreflightError::MissingPrograms {
        programs: missing.iter().map(|(program, _)| format!("`{program}`")).collect(),
        packages: packages.clone(),
        why,
    };
    if system::find_program("apt-get").is_none() {
        return Err(refuse("there is no `apt-get` on this machine"));
    }
    if !is_debian_like(&std::fs::read_to_string("/etc/os-release").unwrap_or_default()) {
        return Err(refuse("this machine is not Debian or Ubuntu"));
    }
    stderrln!("lab: installing what it needs with apt-get: {}", packages.join(" "));
    let install = |args: &[&str]| {
        system::run(std::process::Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive"))
    };
    let mut arguments = vec!["install", "-y", "-qq", "--no-install-recommends"];
    arguments.extend(&packages);
    // A fresh machine may have no package lists yet: update once, then retry.
    let installed = install(&arguments).or_else(|_| install(&["update", "-qq"]).and_then(|_| install(&arguments)));
    installed.map_err(|error| PreflightError::Install { packages: packages.clone(), error })?;
    Ok(packages)
}

/// Whether an `/etc/os-release` text describes Debian or a derivative.
fn is_debian_like(os_release: &str) -> bool {
    os_release.lines().any(|line| {
        let value = |key: &str| line.strip_prefix(key).map(|value| value.trim_matches('"').to_string());
        value("ID=").is_some_and(|id| id == "debian" || id == "ubuntu")
            || value("ID_LIKE=").is_some_and(|like| like.split_whitespace().any(|id| id == "debian"))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_and_its_derivatives_can_install_with_apt() {
        assert!(is_debian_like("PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\n"));
        assert!(is_debian_like("ID=ubuntu\nID_LIKE=debian\n"));
        assert!(is_debian_like("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n"));
        assert!(!is_debian_like("ID=fedora\n"));
    }

    #[test]
    fn a_refusal_names_the_exact_command() {
        let error = PreflightError::MissingPrograms {
            programs: vec!["`ip`".into(), "`debootstrap`".into()],
            packages: vec!["iproute2", "debootstrap"],
            why: "there is no `apt-get` on this machine",
        };
        assert_eq!(
            error.to_string(),
            "the lab needs `ip`, `debootstrap`, not installed here, and cannot install them itself (there is no `apt-get` on this machine); install the Debian packages with `apt-get install iproute2 debootstrap`"
        );
    }
}

//! `infra lab`: the local lab of real hosts. The inventory is checked like
//! any other command's before the lab reads its hosts and addresses.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Format, LabCommand};
use crate::debian::Debian;
use crate::diagnostic::Style;
use crate::lab::{self, LabHost, LabSpec};
use crate::stack::Stack;
use crate::topology;

pub fn run(command: &LabCommand, style: Style) -> anyhow::Result<ExitCode> {
    match command {
        LabCommand::Up(args) => {
            let path = super::inventory_of(&args.inventory)?;
            // Before anything is written: the certificate lands in root's state directory.
            lab::require_root()?;
            lab_certificate(&path)?;
            let checked = super::load_and_check(&path, false)?;
            let Some(stack) = checked.printed_and_valid(style) else {
                return Ok(ExitCode::FAILURE);
            };
            up(stack, args.release.into())?;
        }
        LabCommand::Down => {
            let removed = lab::down().context("cannot take the lab down")?;
            stderrln!("lab down: removed {} hosts, their namespaces, mounts and the lab bridge", removed.len());
        }
        LabCommand::Status { format } => status(*format)?,
        LabCommand::Stop { host } => lab::stop(host).with_context(|| format!("cannot stop `{host}`"))?,
        LabCommand::Start { host } => lab::start(host).with_context(|| format!("cannot start `{host}`"))?,
        LabCommand::Destroy { host } => lab::destroy(host).with_context(|| format!("cannot destroy `{host}`"))?,
        LabCommand::Cut { host } => lab::set_link(host, false).with_context(|| format!("cannot cut `{host}`"))?,
        LabCommand::Heal { host } => lab::set_link(host, true).with_context(|| format!("cannot heal `{host}`"))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A lab inventory that asks for TLS gets a self-signed certificate before
/// its checks run (they would otherwise report it missing).
fn lab_certificate(path: &std::path::Path) -> anyhow::Result<()> {
    let Some(inventory) = crate::inventory::load(path, &super::allowed_paths())?.inventory else {
        return Ok(());
    };
    if let Some(generated) = lab::certificate::ensure(&inventory).context("cannot make the lab's TLS certificate")? {
        stderrln!(
            "lab: made a self-signed certificate for {} at `{}` (trust it with `curl --cacert`)",
            generated.names.join(", "),
            generated.certificate.display()
        );
    }
    Ok(())
}

/// The lab takes its subnet from the virtual IP (or, with two networks,
/// makes both) and names every host's interfaces as the inventory says. A
/// host SSH reaches as another user than root comes cloud-like (that user,
/// sudo, no root login); a host behind a jump is private, and a jump at a
/// lab address no host has is booted as a bastion (with two networks, on
/// both, at the same host number on the private one).
fn spec(stack: &Stack, default_release: Debian) -> anyhow::Result<LabSpec> {
    let load_balancer = &stack.load_balancer;
    let networks = stack.networks.as_ref();
    let login = |user: &str| (user != "root").then(|| user.to_string());
    let targets: Vec<_> = stack.hosts.iter().map(|host| (host, topology::ssh_target(stack, host))).collect();
    let mut hosts: Vec<LabHost> = targets
        .iter()
        .map(|(host, target)| {
            let (address, interface, private_link) = links(stack, host);
            LabHost {
                login: login(&target.user),
                sudo_password: host.lab.sudo_password,
                preinstalled: host.lab.preinstalled.clone(),
                bastion: target.jump.as_ref().and_then(|jump| jump.destination.parse().ok()),
                interface,
                private_link,
                ..LabHost::plain(
                    &host.name.value,
                    address,
                    host.lab.release.as_ref().map_or(default_release, |release| release.value),
                )
            }
        })
        .collect();
    for (_, target) in &targets {
        let Some(jump) = &target.jump else { continue };
        let Ok(address) = jump.destination.parse() else { continue };
        if hosts.iter().all(|known| known.address != address) {
            let user = jump.user.as_deref().unwrap_or(&target.user);
            let bastion = bastion(stack, &hosts, address, user, default_release)?;
            hosts.push(bastion);
        }
    }
    let (subnet, private) = match networks {
        Some(networks) => (networks.public.cidr.value, Some(networks.private.cidr.value)),
        None => (load_balancer.virtual_ip.value, None),
    };
    Ok(LabSpec::new(subnet, private, hosts, &[load_balancer.virtual_ip.value.addr()])?)
}

/// A host's first link (where SSH reaches it) and, with two networks and a
/// public address, its private one.
fn links(stack: &Stack, host: &crate::inventory::Host) -> (std::net::IpAddr, String, Option<lab::LabLink>) {
    let Some(networks) = &stack.networks else {
        return (host.address.value, stack.load_balancer.interface.value.clone(), None);
    };
    let private = networks.private.interface.value.clone();
    match &host.public_address {
        Some(public) => (
            public.value,
            networks.public.interface.value.clone(),
            Some(lab::LabLink { address: host.address.value, interface: private }),
        ),
        None => (host.address.value, private, None),
    }
}

/// The bastion the lab boots at a jump's `address`: on the public network
/// and, with two, on the private one at the same host number (the
/// address SSH reaches the private hosts from).
fn bastion(
    stack: &Stack,
    hosts: &[LabHost],
    address: std::net::IpAddr,
    user: &str,
    release: Debian,
) -> anyhow::Result<LabHost> {
    let name = if hosts.iter().any(|known| known.name == "bastion") {
        format!("bastion-{}", hosts.len())
    } else {
        "bastion".to_string()
    };
    let plain = LabHost {
        login: (user != "root").then(|| user.to_string()),
        interface: stack.load_balancer.interface.value.clone(),
        ..LabHost::plain(&name, address, release)
    };
    let Some(networks) = stack.networks.as_ref().filter(|networks| networks.public.cidr.value.contains(&address))
    else {
        return Ok(plain);
    };
    let private = networks.private.cidr.value;
    let taken = |candidate: &std::net::IpAddr| {
        hosts.iter().any(|host| {
            host.address == *candidate || host.private_link.as_ref().is_some_and(|link| link.address == *candidate)
        })
    };
    let on_private = same_host_part(address, networks.public.cidr.value, private)
        .filter(|candidate| !taken(candidate))
        .with_context(|| format!("the lab's bastion at {address} needs the same host number free on {private}"))?;
    Ok(LabHost {
        interface: networks.public.interface.value.clone(),
        private_link: Some(lab::LabLink { address: on_private, interface: networks.private.interface.value.clone() }),
        ..plain
    })
}

/// `10.21.0.5` on `10.21.0.0/24` is `10.21.1.5` on `10.21.1.0/24`.
fn same_host_part(address: std::net::IpAddr, from: ipnet::IpNet, to: ipnet::IpNet) -> Option<std::net::IpAddr> {
    let (std::net::IpAddr::V4(address), ipnet::IpNet::V4(from), ipnet::IpNet::V4(to)) = (address, from, to) else {
        return None;
    };
    let host = u32::from(address) - u32::from(from.network());
    let moved = std::net::Ipv4Addr::from(u32::from(to.network()).checked_add(host)?);
    to.contains(&moved).then_some(std::net::IpAddr::V4(moved))
}

fn up(stack: &Stack, default_release: Debian) -> anyhow::Result<()> {
    let spec = spec(stack, default_release)?;
    let mut releases: Vec<String> = Vec::new();
    for release in Debian::ALL {
        let hosts: Vec<&str> =
            spec.hosts.iter().filter(|host| host.release == release).map(|host| host.name.as_str()).collect();
        if !hosts.is_empty() {
            releases.push(format!("{release}: {}", hosts.join(", ")));
        }
    }
    stderrln!("lab: {} hosts on {} (gateway {}); {}", spec.hosts.len(), spec.subnet, spec.gateway, releases.join("; "));
    let report = lab::up(&spec).context("cannot bring the lab up")?;
    if !report.rootfs_built.is_empty() {
        let releases: Vec<String> = report.rootfs_built.iter().map(ToString::to_string).collect();
        stderrln!(
            "lab: built the root filesystem of {} in {:.0} s (cached for next time)",
            releases.join(" and "),
            report.rootfs_seconds
        );
    }
    if !report.already_up.is_empty() {
        stderrln!("lab: already up: {}", report.already_up.join(", "));
    }
    stderrln!(
        "lab: booted {} in {:.1} s; every host answers SSH",
        if report.booted.is_empty() { "nothing".into() } else { report.booted.join(", ") },
        report.seconds
    );
    stderrln!("lab: key `{}`, known hosts `{}`", lab::key_path().display(), lab::known_hosts_path().display());
    Ok(())
}

fn status(format: Format) -> anyhow::Result<()> {
    let hosts = lab::status()?;
    match format {
        Format::Json => stdoutln!("{}", serde_json::json!({ "version": 1, "hosts": hosts })),
        Format::Text => {
            for host in hosts {
                let state = if host.running { "running" } else { "stopped" };
                let link = if host.link_up { "link up" } else { "link cut" };
                stdoutln!("{:<12} {:<16} {state:<8} {link:<9} {}", host.name, host.address.to_string(), host.release);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::{VALID, stack};

    /// What the inventory says about SSH is how the lab boots its hosts:
    /// a user that is not root makes cloud-like hosts, a jump to a lab
    /// address no host has boots a bastion there, and the hosts behind it
    /// are private.
    #[test]
    fn the_lab_boots_what_the_inventorys_ssh_settings_describe() {
        let text = format!("ssh: {{user: admin, become: sudo}}\n{VALID}")
            .replace("    roles: [app]\n", "    roles: [app]\n    ssh: {jump: 10.20.0.5}\n    lab: {sudo: password}\n")
            .replace("interface: eth0", "interface: ens5")
            .replace("[10.20.0.254/32]", "[10.20.0.254/32, 10.20.0.5/32]");
        let spec = spec(&stack(&text), Debian::Trixie).expect("a lab");
        let host = |name: &str| spec.hosts.iter().find(|host| host.name == name).expect("a lab host");
        let app = host("app-01");
        assert_eq!(
            (app.login.as_deref(), app.sudo_password, app.bastion),
            (Some("admin"), true, Some("10.20.0.5".parse().expect("ip")))
        );
        assert_eq!((host("lb-01").bastion, host("lb-01").sudo_password), (None, false));
        let bastion = host("bastion");
        assert_eq!(
            (bastion.address.to_string().as_str(), bastion.login.as_deref(), bastion.bastion),
            ("10.20.0.5", Some("admin"), None)
        );
        assert!(spec.hosts.iter().all(|host| host.interface == "ens5"));
        let plain = super::spec(&stack(VALID), Debian::Trixie).expect("a lab");
        assert!(
            plain.hosts.iter().all(|host| host.login.is_none() && host.bastion.is_none() && host.interface == "eth0")
        );
    }
}

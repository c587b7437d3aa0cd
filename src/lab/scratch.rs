//! Throwaway lab hosts: booted for one job (a restore drill) from the same
//! cached root filesystem as the inventory's hosts, on a free address of
//! the lab subnet, and removed afterwards. They are recorded in the lab's
//! state while they live, so `lab down` removes one a killed job left.

use std::net::IpAddr;

use super::machine::{self, MachineDirs};
use super::{
    LabError, LabHost, LabSpec, POWER_OFF_GRACE, ensure_key_pair, known_hosts_path, load_spec, network, preflight,
    rootfs, save_spec, state_dir, system, wait_all,
};
use crate::debian::Debian;

/// A scratch host that answers SSH with the lab's key.
#[derive(Clone, Debug)]
pub struct Scratch {
    pub name: String,
    pub address: IpAddr,
}

/// Boots a scratch host called `name` running `release`; one left over
/// from an earlier job is removed first.
pub fn boot_scratch(name: &str, release: Debian) -> Result<Scratch, LabError> {
    preflight::require_root()?;
    remove_scratch(name)?;
    let mut spec = load_spec()?.ok_or(LabError::NotUp)?;
    let address = free_address(&spec)?;
    let (rootfs, _) = rootfs::ensure(release)?;
    let authorized_key = ensure_key_pair()?;
    // A scratch host logs in like the lab's others, but is never private.
    let login = spec.hosts.iter().find_map(|host| host.login.clone());
    spec.hosts.push(LabHost { login: login.clone(), ..LabHost::plain(name, address, release) });
    save_spec(&spec)?;
    let dirs = MachineDirs::new(&state_dir(), name);
    network::ensure_host(name, address, spec.subnet, "eth0", false)?;
    machine::ensure_overlay(&dirs, name, &rootfs, false)?;
    let identity = machine::Identity {
        name,
        etc_hosts: &spec.etc_hosts(),
        authorized_key: &authorized_key,
        login: login.as_deref(),
        sudo_password: false,
        first_boot: None,
    };
    let host_key = machine::write_identity(&dirs, &identity)?;
    let mut known_hosts = std::fs::read_to_string(known_hosts_path()).unwrap_or_default();
    known_hosts.push_str(&format!("{address},{name} {host_key}\n"));
    system::write(known_hosts_path(), known_hosts)?;
    machine::boot(&dirs, name)?;
    wait_all(&spec, &[name.to_string()])?;
    Ok(Scratch { name: name.to_string(), address })
}

/// Powers a scratch host off and removes every trace of it; nothing to do
/// when there is none.
pub fn remove_scratch(name: &str) -> Result<(), LabError> {
    let Some(mut spec) = load_spec()? else { return Ok(()) };
    let Some(index) = spec.hosts.iter().position(|host| host.name == name) else { return Ok(()) };
    let host = spec.hosts.remove(index);
    let dirs = MachineDirs::new(&state_dir(), name);
    machine::power_off(name, POWER_OFF_GRACE)?;
    machine::unmount(name)?;
    network::remove_host(name)?;
    let _ = std::fs::remove_dir_all(&dirs.base);
    let prefix = format!("{},{name} ", host.address);
    let known_hosts = std::fs::read_to_string(known_hosts_path()).unwrap_or_default();
    let kept: String =
        known_hosts.lines().filter(|line| !line.starts_with(&prefix)).map(|line| format!("{line}\n")).collect();
    system::write(known_hosts_path(), kept)?;
    save_spec(&spec)?;
    Ok(())
}

/// The highest address of the subnet no host, gateway or reserved address
/// (the virtual IP) takes.
fn free_address(spec: &LabSpec) -> Result<IpAddr, LabError> {
    let taken = |address: &IpAddr| {
        *address == spec.gateway
            || spec.reserved.contains(address)
            || spec.hosts.iter().any(|host| host.address == *address)
    };
    let free = spec.subnet.hosts().collect::<Vec<_>>().into_iter().rev().find(|address| !taken(address));
    free.ok_or(LabError::NoFreeAddress { subnet: spec.subnet })
}

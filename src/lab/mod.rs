//! The lab: real Debian hosts booted on this machine, one per inventory host,
//! at the inventory's addresses, so plan and apply can be tried and tested
//! against real sshd, systemd and services.
//!
//! Each host is a `systemd-nspawn` container over an overlay of one cached
//! rootfs (`rootfs`), in its own network namespace on a lab bridge
//! (`network`, `machine`). What the lab made is recorded in a state
//! directory (`INFRA_LAB_STATE`, default `/var/lib/infra/lab`): the SSH key
//! pair, a `known_hosts` with every host's key, and `lab.json`. `down`
//! removes exactly what `up` made.

pub mod certificate;
mod machine;
mod network;
mod preflight;
mod rootfs;
mod scratch;
mod system;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub use preflight::{PreflightError, require_root};
pub use rootfs::{PACKAGES, RootfsError};
pub use scratch::{Scratch, boot_scratch, remove_scratch};
pub use system::SystemError;

use crate::debian::Debian;
use machine::MachineDirs;

/// A host the lab boots: a name, an address and the Debian release, and
/// how cloud-like it is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabHost {
    pub name: String,
    pub address: IpAddr,
    /// Labs recorded before releases were chosen ran bookworm.
    #[serde(default = "bookworm")]
    pub release: Debian,
    /// The user SSH logs in as when it is not root: the host then comes
    /// the way cloud images do, that user with sudo and root login refused.
    #[serde(default)]
    pub login: Option<String>,
    /// The login user's sudo asks for a password.
    #[serde(default)]
    pub sudo_password: bool,
    /// Packages installed at first boot, to make the host look reused.
    #[serde(default)]
    pub preinstalled: Vec<String>,
    /// Reached only through `bastion`: this machine's packets to it go
    /// nowhere.
    #[serde(default)]
    pub bastion: Option<IpAddr>,
    /// The name of its network interface.
    #[serde(default = "eth0")]
    pub interface: String,
    /// Its second link, on the private network, when `address` is on the
    /// public one (a balancer's, a bastion's).
    #[serde(default)]
    pub private_link: Option<LabLink>,
}

/// One more network link of a lab host: its address and interface name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabLink {
    pub address: IpAddr,
    pub interface: String,
}

fn eth0() -> String {
    "eth0".into()
}

impl LabHost {
    /// A host as the lab made them before it made cloud-like ones.
    pub fn plain(name: &str, address: IpAddr, release: Debian) -> LabHost {
        LabHost {
            name: name.into(),
            address,
            release,
            login: None,
            sudo_password: false,
            preinstalled: Vec::new(),
            bastion: None,
            interface: eth0(),
            private_link: None,
        }
    }

    /// Who SSH logs in as.
    pub fn user(&self) -> &str {
        self.login.as_deref().unwrap_or("root")
    }
}

fn bookworm() -> Debian {
    Debian::Bookworm
}

/// What the lab is made of, derived from an inventory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabSpec {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    /// The private network of a lab of two, on a bridge of its own that
    /// this machine has no address on.
    #[serde(default)]
    pub private: Option<IpNet>,
    pub hosts: Vec<LabHost>,
    /// Addresses of the subnet no lab host may take (the virtual IP).
    #[serde(default)]
    pub reserved: Vec<IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    System(#[from] SystemError),
    #[error(
        "host `{host}` ({address}) is outside the lab subnet {subnet}; every lab host must be on the load balancers' subnet (or the private network)"
    )]
    OutsideSubnet { host: String, address: IpAddr, subnet: IpNet },
    #[error("the subnet {subnet} has no free address left for the lab's gateway")]
    NoGateway { subnet: IpNet },
    #[error("the subnet {subnet} has no free address left for a scratch host")]
    NoFreeAddress { subnet: IpNet },
    #[error("a lab for {existing} is already up; run `infra lab down` before starting one for {requested}")]
    OtherLab { existing: IpNet, requested: IpNet },
    #[error("no lab is up; run `infra lab up -i INVENTORY` first")]
    NotUp,
    #[error("`{host}` is not a lab host; the lab has {known}")]
    UnknownHost { host: String, known: String },
    #[error("host `{host}` did not answer SSH within {seconds} s; its console log is `{}`", console.display())]
    SshTimeout { host: String, seconds: u64, console: PathBuf },
    #[error("cannot read or write the lab state `{}`", path.display())]
    State {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

/// How long a booting host may take to answer SSH.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a clean power-off may take before the container is killed.
const POWER_OFF_GRACE: Duration = Duration::from_secs(20);

pub fn state_dir() -> PathBuf {
    std::env::var_os("INFRA_LAB_STATE").map_or_else(|| PathBuf::from("/var/lib/infra/lab"), PathBuf::from)
}

/// The files plan and apply use to reach lab hosts.
pub fn key_path() -> PathBuf {
    state_dir().join("id_ed25519")
}

pub fn known_hosts_path() -> PathBuf {
    state_dir().join("known_hosts")
}

fn spec_path() -> PathBuf {
    state_dir().join("lab.json")
}

impl LabSpec {
    /// The lab for an inventory: every host on `subnet` (or only on the
    /// `private` network), the gateway on the highest free address of `subnet`.
    pub fn new(
        subnet: IpNet,
        private: Option<IpNet>,
        hosts: Vec<LabHost>,
        reserved: &[IpAddr],
    ) -> Result<LabSpec, LabError> {
        let subnet = subnet.trunc();
        let private = private.map(|network| network.trunc());
        let on_private = |address: &IpAddr| private.is_some_and(|network| network.contains(address));
        for host in &hosts {
            let links = std::iter::once((host.address, subnet.contains(&host.address) || on_private(&host.address)));
            let second = host.private_link.iter().map(|link| (link.address, on_private(&link.address)));
            if let Some((address, _)) = links.chain(second).find(|(_, inside)| !inside) {
                return Err(LabError::OutsideSubnet { host: host.name.clone(), address, subnet });
            }
        }
        let taken = |address: &IpAddr| hosts.iter().any(|host| host.address == *address) || reserved.contains(address);
        let gateway = subnet.hosts().collect::<Vec<_>>().into_iter().rev().find(|address| !taken(address));
        let gateway = gateway.ok_or(LabError::NoGateway { subnet })?;
        Ok(LabSpec { subnet, gateway, private, hosts, reserved: reserved.to_vec() })
    }

    fn host(&self, name: &str) -> Result<&LabHost, LabError> {
        self.hosts.iter().find(|host| host.name == name).ok_or_else(|| LabError::UnknownHost {
            host: name.to_string(),
            known: self.hosts.iter().map(|host| format!("`{}`", host.name)).collect::<Vec<_>>().join(", "),
        })
    }

    fn etc_hosts(&self) -> String {
        let mut text = String::from("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n");
        for host in &self.hosts {
            text.push_str(&format!("{} {}\n", host.address, host.name));
        }
        text
    }
}

fn load_spec() -> Result<Option<LabSpec>, LabError> {
    let path = spec_path();
    match std::fs::read(&path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(LabError::State { path, error }),
    }
}

fn save_spec(spec: &LabSpec) -> Result<(), LabError> {
    let text = serde_json::to_string_pretty(spec).unwrap_or_default();
    system::write(spec_path(), text)?;
    Ok(())
}

/// What `up` did, for its report.
pub struct UpReport {
    /// The releases whose root filesystem had to be built.
    pub rootfs_built: Vec<Debian>,
    pub rootfs_seconds: f64,
    pub booted: Vec<String>,
    pub already_up: Vec<String>,
    pub seconds: f64,
}

/// Checks that refuse before anything is touched.
pub fn preflight(subnet: IpNet) -> Result<(), LabError> {
    preflight::require_root()?;
    preflight::ensure_programs()?;
    preflight::require_free_subnet(subnet.trunc(), &network::bridge_name())?;
    Ok(())
}

/// Boots every host of `spec` that is not running; leaves running ones alone.
pub fn up(spec: &LabSpec) -> Result<UpReport, LabError> {
    let started = Instant::now();
    preflight(spec.subnet)?;
    if let Some(private) = spec.private {
        preflight::require_free_subnet(private, &network::private_bridge_name())?;
    }
    if let Some(existing) = load_spec()?
        && existing.subnet != spec.subnet
        && existing.hosts.iter().any(|host| network::netns_exists(&network::netns_name(&host.name)))
    {
        return Err(LabError::OtherLab { existing: existing.subnet, requested: spec.subnet });
    }
    raise_inotify_limit(spec.hosts.len())?;
    let mut rootfs_of = std::collections::BTreeMap::new();
    let mut rootfs_built = Vec::new();
    for release in spec.hosts.iter().map(|host| host.release).collect::<std::collections::BTreeSet<_>>() {
        let (rootfs, built) = rootfs::ensure(release)?;
        if built {
            rootfs_built.push(release);
        }
        rootfs_of.insert(release, rootfs);
    }
    let rootfs_seconds = started.elapsed().as_secs_f64();
    let authorized_key = ensure_key_pair()?;
    network::ensure_bridge(spec.subnet, spec.gateway)?;
    if spec.private.is_some() {
        network::ensure_private_bridge()?;
    }
    save_spec(spec)?;
    let mut known_hosts = String::new();
    let (mut booted, mut already_up) = (Vec::new(), Vec::new());
    for host in &spec.hosts {
        let dirs = MachineDirs::new(&state_dir(), &host.name);
        connect(spec, host)?;
        let running = machine::running_pid(&host.name).is_some();
        machine::ensure_overlay(&dirs, &host.name, &rootfs_of[&host.release], running)?;
        let identity = machine::Identity {
            name: &host.name,
            etc_hosts: &spec.etc_hosts(),
            authorized_key: &authorized_key,
            login: host.login.as_deref(),
            sudo_password: host.sudo_password,
            first_boot: (host.login.is_some() || !host.preinstalled.is_empty()).then_some(host.preinstalled.as_slice()),
        };
        let host_key = if running { read_host_key(&dirs)? } else { machine::write_identity(&dirs, &identity)? };
        known_hosts.push_str(&format!("{},{} {host_key}\n", host.address, host.name));
        if running {
            already_up.push(host.name.clone());
        } else {
            machine::boot(&dirs, &host.name)?;
            booted.push(host.name.clone());
        }
    }
    system::write(known_hosts_path(), known_hosts)?;
    wait_all(spec, &booted)?;
    Ok(UpReport { rootfs_built, rootfs_seconds, booted, already_up, seconds: started.elapsed().as_secs_f64() })
}

/// Joins `host` to its networks. A host behind a bastion on the gateway's
/// network is cut off from this machine by a route; one only on the
/// private network is cut off by having no route at all.
fn connect(spec: &LabSpec, host: &LabHost) -> Result<(), LabError> {
    match spec.private.filter(|private| private.contains(&host.address)) {
        Some(private) => network::ensure_host(&host.name, host.address, private, &host.interface, true)?,
        None => {
            network::ensure_host(&host.name, host.address, spec.subnet, &host.interface, false)?;
            if host.bastion.is_some() {
                network::isolate(&host.name, spec.gateway)?;
            }
        }
    }
    if let (Some(link), Some(private)) = (&host.private_link, spec.private) {
        network::ensure_private_link(&host.name, link.address, private, &link.interface)?;
    }
    Ok(())
}

/// Each container's systemd holds several inotify instances; the kernel's
/// default of 128 per user stops a few dozen hosts from booting ("Failed to
/// allocate manager object: Too many open files"). Raise it, never lower it.
fn raise_inotify_limit(hosts: usize) -> Result<(), LabError> {
    let path = PathBuf::from("/proc/sys/fs/inotify/max_user_instances");
    let current: usize = std::fs::read_to_string(&path).ok().and_then(|text| text.trim().parse().ok()).unwrap_or(0);
    let needed = 128 + 32 * hosts;
    if current < needed {
        tracing::info!(current, needed, "raising fs.inotify.max_user_instances for the lab");
        std::fs::write(&path, needed.to_string()).map_err(|error| LabError::State { path, error })?;
    }
    Ok(())
}

fn read_host_key(dirs: &MachineDirs) -> Result<String, LabError> {
    let path = dirs.root().join("etc/ssh/ssh_host_ed25519_key.pub");
    let line = std::fs::read_to_string(&path).map_err(|error| LabError::State { path, error })?;
    Ok(line.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

/// The lab's SSH key pair, created once; returns the public key line.
fn ensure_key_pair() -> Result<String, LabError> {
    let key = key_path();
    if !key.exists() {
        std::fs::create_dir_all(state_dir()).map_err(|error| LabError::State { path: state_dir(), error })?;
        system::run(
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "infra-lab", "-f"]).arg(&key),
        )?;
    }
    let public = key.with_extension("pub");
    std::fs::read_to_string(&public).map_err(|error| LabError::State { path: public, error })
}

/// Waits for every named host to answer SSH, in parallel: first those
/// reached directly (bastions among them), then, over one connection to
/// their bastion, the hosts behind one.
fn wait_all(spec: &LabSpec, names: &[String]) -> Result<(), LabError> {
    let waited: Vec<&LabHost> = spec.hosts.iter().filter(|host| names.contains(&host.name)).collect();
    let (behind, direct): (Vec<&LabHost>, Vec<&LabHost>) = waited.into_iter().partition(|host| host.bastion.is_some());
    let mut failures = wait_parallel(&direct, None);
    let bastions: std::collections::BTreeSet<IpAddr> = behind.iter().filter_map(|host| host.bastion).collect();
    for address in bastions {
        let Some(bastion) = spec.hosts.iter().find(|host| host.address == address) else { continue };
        let socket = state_dir().join(format!("bastion-{address}.sock"));
        machine::open_master(bastion, &socket, &key_path(), &known_hosts_path())?;
        let hosts: Vec<&LabHost> = behind.iter().copied().filter(|host| host.bastion == Some(address)).collect();
        failures.extend(wait_parallel(&hosts, Some(&socket)));
        machine::close_master(&socket);
    }
    match failures.first() {
        Some(host) => Err(LabError::SshTimeout {
            host: host.clone(),
            seconds: BOOT_TIMEOUT.as_secs(),
            console: MachineDirs::new(&state_dir(), host).console_log(),
        }),
        None => Ok(()),
    }
}

/// The names of the hosts that did not answer within [`BOOT_TIMEOUT`].
fn wait_parallel(hosts: &[&LabHost], via: Option<&Path>) -> Vec<String> {
    let (key, known_hosts) = (key_path(), known_hosts_path());
    std::thread::scope(|scope| {
        let waits: Vec<_> = hosts
            .iter()
            .map(|host| {
                let (key, known_hosts) = (&key, &known_hosts);
                scope.spawn(move || {
                    let answered = machine::wait_for_ssh(host, via, key, known_hosts, BOOT_TIMEOUT);
                    (!answered).then(|| host.name.clone())
                })
            })
            .collect();
        waits.into_iter().filter_map(|wait| wait.join().ok().flatten()).collect()
    })
}

/// Removes every process, mount, namespace, veth and bridge the lab made,
/// and its state (the key pair stays for the next `up`).
pub fn down() -> Result<Vec<String>, LabError> {
    preflight::require_root()?;
    let mut names: Vec<String> =
        load_spec()?.map(|spec| spec.hosts.into_iter().map(|host| host.name).collect()).unwrap_or_default();
    for leftover in network::leftover_namespaces().into_iter().chain(machine::mounted_hosts()) {
        if !names.contains(&leftover) {
            names.push(leftover);
        }
    }
    if let Ok(entries) = std::fs::read_dir(state_dir().join("hosts")) {
        names.extend(
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str().map(String::from))
                .filter(|name| !names.contains(name))
                .collect::<Vec<_>>(),
        );
    }
    std::thread::scope(|scope| {
        for name in &names {
            scope.spawn(move || machine::power_off(name, POWER_OFF_GRACE));
        }
    });
    for name in &names {
        let dirs = MachineDirs::new(&state_dir(), name);
        machine::unmount(name)?;
        network::remove_host(name)?;
        let _ = std::fs::remove_dir_all(&dirs.base);
    }
    network::remove_bridge()?;
    for path in [spec_path(), known_hosts_path(), state_dir().join("hosts")] {
        let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
    }
    Ok(names)
}

/// One line of `lab status`.
#[derive(Serialize)]
pub struct HostStatus {
    pub name: String,
    pub address: IpAddr,
    pub running: bool,
    pub link_up: bool,
    pub release: Debian,
}

pub fn status() -> Result<Vec<HostStatus>, LabError> {
    let spec = load_spec()?.ok_or(LabError::NotUp)?;
    Ok(spec
        .hosts
        .iter()
        .map(|host| HostStatus {
            name: host.name.clone(),
            address: host.address,
            running: machine::running_pid(&host.name).is_some(),
            link_up: network::link_is_up(&host.name),
            release: host.release,
        })
        .collect())
}

fn lab_host(name: &str) -> Result<(LabSpec, MachineDirs), LabError> {
    preflight::require_root()?;
    let spec = load_spec()?.ok_or(LabError::NotUp)?;
    spec.host(name)?;
    Ok((spec, MachineDirs::new(&state_dir(), name)))
}

/// Powers a host off, like pulling its power: the others keep running.
pub fn stop(name: &str) -> Result<(), LabError> {
    lab_host(name)?;
    machine::power_off(name, POWER_OFF_GRACE)?;
    Ok(())
}

/// Powers a stopped host on and waits for SSH.
pub fn start(name: &str) -> Result<(), LabError> {
    let (spec, dirs) = lab_host(name)?;
    if machine::running_pid(name).is_none() {
        machine::boot(&dirs, name)?;
    }
    wait_all(&spec, &[name.to_string()])
}

/// Destroys a host as a failed disk would: powers it off and removes its
/// disk (the overlay's changes). It stays in the lab, so the next `up`
/// boots it fresh from the release's root filesystem, with a new host key.
pub fn destroy(name: &str) -> Result<(), LabError> {
    let (_, dirs) = lab_host(name)?;
    machine::power_off(name, POWER_OFF_GRACE)?;
    machine::unmount(name)?;
    std::fs::remove_dir_all(&dirs.base).map_err(|error| LabError::State { path: dirs.base.clone(), error })
}

/// Takes a host's network link down (`up = false`) or back up.
pub fn set_link(name: &str, up: bool) -> Result<(), LabError> {
    lab_host(name)?;
    network::set_link(name, up)?;
    Ok(())
}

/// Whether the lab directory holds what plan and apply need.
pub fn is_up() -> bool {
    Path::new(&known_hosts_path()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, address: &str) -> LabHost {
        LabHost::plain(name, address.parse().expect("address"), Debian::Trixie)
    }

    #[test]
    fn the_gateway_takes_the_highest_free_address() {
        let subnet: IpNet = "10.1.0.10/24".parse().expect("subnet");
        let spec = LabSpec::new(subnet, None, vec![host("a", "10.1.0.254")], &[]).expect("spec");
        assert_eq!(spec.subnet.to_string(), "10.1.0.0/24");
        assert_eq!(spec.gateway.to_string(), "10.1.0.253");
    }

    #[test]
    fn hosts_outside_the_subnet_are_refused() {
        let subnet: IpNet = "10.1.0.0/24".parse().expect("subnet");
        let error = LabSpec::new(subnet, None, vec![host("a", "10.2.0.1")], &[]).expect_err("outside");
        assert!(error.to_string().starts_with("host `a` (10.2.0.1) is outside the lab subnet 10.1.0.0/24"));
    }
}

//! One lab host: an overlay over the shared rootfs, its own identity files,
//! and a `systemd-nspawn -b` container booted inside its network namespace.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use super::LabHost;
use super::network;
use super::system::{self, SystemError};

/// A host's directories under the lab state directory.
pub struct MachineDirs {
    pub base: PathBuf,
}

impl MachineDirs {
    pub fn new(state: &Path, host: &str) -> Self {
        MachineDirs { base: state.join("hosts").join(host) }
    }

    pub fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn upper(&self) -> PathBuf {
        self.base.join("upper")
    }

    fn work(&self) -> PathBuf {
        self.base.join("work")
    }

    pub fn console_log(&self) -> PathBuf {
        self.base.join("console.log")
    }
}

pub fn is_mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let target = path.display().to_string();
    mounts.lines().any(|line| line.split_whitespace().nth(1) == Some(target.as_str()))
}

/// Mounts the host's overlay over `rootfs`, unless it is mounted. A host
/// asked for another root filesystem than its disk was made on (another
/// release, a new recipe) gets a fresh disk, as a reinstalled server would:
/// an overlay's changes only make sense over the lower layer they were
/// made on. A running host is left as it is.
pub fn ensure_overlay(dirs: &MachineDirs, host: &str, rootfs: &Path, running: bool) -> Result<(), SystemError> {
    let lower_record = dirs.base.join("lower");
    let lower = rootfs.display().to_string();
    let same_lower = std::fs::read_to_string(&lower_record).is_ok_and(|recorded| recorded == lower);
    if is_mounted(&dirs.root()) {
        if same_lower || running {
            return Ok(());
        }
        unmount(host)?;
    }
    if !same_lower {
        for directory in [dirs.upper(), dirs.work()] {
            if directory.exists() {
                std::fs::remove_dir_all(&directory)
                    .map_err(|error| SystemError::Write { path: directory.clone(), error })?;
            }
        }
    }
    for directory in [dirs.upper(), dirs.work(), dirs.root()] {
        std::fs::create_dir_all(&directory).map_err(|error| SystemError::Write { path: directory.clone(), error })?;
    }
    let options =
        format!("lowerdir={},upperdir={},workdir={}", rootfs.display(), dirs.upper().display(), dirs.work().display());
    // The mount's source names the lab and host, so `down` finds it by name
    // even when the state directory that holds it is gone.
    let source = network::netns_name(host);
    system::run(Command::new("mount").args(["-t", "overlay", &source, "-o", &options]).arg(dirs.root()))?;
    system::write(lower_record, lower)?;
    Ok(())
}

/// Unmounts every overlay of `host` in this lab, wherever it is mounted.
pub fn unmount(host: &str) -> Result<(), SystemError> {
    let source = network::netns_name(host);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for target in mounts.lines().filter_map(|line| {
        let mut fields = line.split_whitespace();
        (fields.next() == Some(source.as_str())).then(|| fields.next()).flatten()
    }) {
        system::run(Command::new("umount").arg(target))?;
    }
    Ok(())
}

/// The hosts of this lab that still have a mount, found by mount source.
pub fn mounted_hosts() -> Vec<String> {
    let prefix = network::netns_name("");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts.lines().filter_map(|line| line.split_whitespace().next()?.strip_prefix(&prefix).map(String::from)).collect()
}

/// What makes a host itself: name, the lab's addresses, DNS that fails fast,
/// the lab's key, and (once) its own SSH host key. Returns the host key line.
pub struct Identity<'a> {
    pub name: &'a str,
    pub etc_hosts: &'a str,
    pub authorized_key: &'a str,
    /// The cloud-image user SSH logs in as instead of root, if any.
    pub login: Option<&'a str>,
    pub sudo_password: bool,
    /// Whether first boot is a cloud's: unattended-upgrades holding dpkg's
    /// lock while it installs these packages (a reused host's apache2).
    pub first_boot: Option<&'a [String]>,
}

/// The lab's stand-in for unattended-upgrades (its header says how it behaves).
const UNATTENDED_UPGRADES: &str = include_str!("files/unattended-upgrades");
const UNATTENDED_UPGRADES_PATH: &str = "usr/local/lib/infra-lab/unattended-upgrades";

pub fn write_identity(dirs: &MachineDirs, identity: &Identity) -> Result<String, SystemError> {
    let root = dirs.root();
    system::write(root.join("etc/hostname"), format!("{}\n", identity.name))?;
    system::write(root.join("etc/hosts"), identity.etc_hosts)?;
    // Nothing listens on 127.0.0.1:53: every lookup fails at once instead of
    // waiting 10 s on a nameserver the lab cannot reach.
    system::write(root.join("etc/resolv.conf"), "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")?;
    match identity.login {
        None => system::write(root.join("root/.ssh/authorized_keys"), identity.authorized_key)?,
        Some(user) => cloud_login(&root, user, identity)?,
    }
    if let Some(packages) = identity.first_boot {
        first_boot_upgrades(&root, packages)?;
    }
    let host_key = root.join("etc/ssh/ssh_host_ed25519_key");
    if !host_key.exists() {
        system::run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", identity.name, "-f"])
                .arg(&host_key),
        )?;
    }
    let public = host_key.with_extension("pub");
    let line = std::fs::read_to_string(&public).map_err(|error| SystemError::Write { path: public, error })?;
    Ok(line.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

/// A unit that runs the unattended-upgrades stand-in once, at the host's
/// first boot, in the background (SSH answers meanwhile, as on a cloud).
fn first_boot_upgrades(root: &Path, packages: &[String]) -> Result<(), SystemError> {
    let script = root.join(UNATTENDED_UPGRADES_PATH);
    system::write(&script, UNATTENDED_UPGRADES)?;
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|error| SystemError::Write { path: script.clone(), error })?;
    let unit = format!(
        "[Unit]\nDescription=unattended-upgrades at first boot (the lab's stand-in)\nConditionPathExists=!/var/lib/infra-lab/first-boot-done\n\n\
         [Service]\nExecStart=/{UNATTENDED_UPGRADES_PATH}{}\nExecStopPost=/bin/sh -c 'mkdir -p /var/lib/infra-lab && touch /var/lib/infra-lab/first-boot-done'\n\n\
         [Install]\nWantedBy=multi-user.target\n",
        packages.iter().map(|package| format!(" {package}")).collect::<String>()
    );
    let units = root.join("etc/systemd/system");
    system::write(units.join("lab-first-boot.service"), unit)?;
    let wants = units.join("multi-user.target.wants/lab-first-boot.service");
    if !wants.exists() {
        std::fs::create_dir_all(units.join("multi-user.target.wants"))
            .and_then(|()| std::os::unix::fs::symlink("/etc/systemd/system/lab-first-boot.service", &wants))
            .map_err(|error| SystemError::Write { path: wants, error })?;
    }
    Ok(())
}

/// Makes the host come the way Debian's cloud images do: `user` with the
/// lab's key and sudo (passwordless, unless the host is the one whose sudo
/// asks for a password), root's key gone and root login refused by sshd.
fn cloud_login(root: &Path, user: &str, identity: &Identity) -> Result<(), SystemError> {
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    if !passwd.lines().any(|line| line.split(':').next() == Some(user)) {
        system::run(Command::new("useradd").arg("--root").arg(root).args([
            "--create-home",
            "--user-group",
            "--shell",
            "/bin/bash",
            "--",
            user,
        ]))?;
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let ids = passwd.lines().map(|line| line.split(':').collect::<Vec<_>>()).find(|fields| fields[0] == user);
    let (uid, gid) = ids
        .and_then(|fields| Some((fields.get(2)?.parse::<u32>().ok()?, fields.get(3)?.parse::<u32>().ok()?)))
        .ok_or_else(|| SystemError::Write {
            path: root.join("etc/passwd"),
            error: std::io::Error::other(format!("useradd made no `{user}`")),
        })?;
    let ssh_dir = root.join("home").join(user).join(".ssh");
    system::write(ssh_dir.join("authorized_keys"), identity.authorized_key)?;
    for path in [ssh_dir.clone(), ssh_dir.join("authorized_keys")] {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .map_err(|error| SystemError::Write { path: path.clone(), error })?;
    }
    let _ = std::fs::remove_file(root.join("root/.ssh/authorized_keys"));
    let rule = if identity.sudo_password { "ALL=(ALL:ALL) ALL" } else { "ALL=(ALL:ALL) NOPASSWD: ALL" };
    let sudoers = root.join("etc/sudoers.d/90-cloud-init-users");
    system::write(
        &sudoers,
        format!(
            "# as cloud-init writes it
{user} {rule}
"
        ),
    )?;
    std::fs::set_permissions(&sudoers, std::os::unix::fs::PermissionsExt::from_mode(0o440))
        .map_err(|error| SystemError::Write { path: sudoers.clone(), error })?;
    system::write(
        root.join("etc/ssh/sshd_config.d/60-cloudimg-settings.conf"),
        "PermitRootLogin no
",
    )?;
    Ok(())
}

/// The container's nspawn process, if it is running. It is found by its
/// network namespace, which is unique to the lab and host, so a container
/// left by a crashed run with another state directory is found too.
pub fn running_pid(host: &str) -> Option<u32> {
    let wanted = format!("--network-namespace-path=/run/netns/{}", network::netns_name(host));
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        let arguments: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
        let is_nspawn = arguments.first().is_some_and(|program| program.ends_with(b"systemd-nspawn"));
        (is_nspawn && arguments.contains(&wanted.as_bytes())).then_some(pid)
    })
}

/// Boots the container in the background, detached from this process.
pub fn boot(dirs: &MachineDirs, host: &str) -> Result<(), SystemError> {
    let console = std::fs::File::create(dirs.console_log())
        .map_err(|error| SystemError::Write { path: dirs.console_log(), error })?;
    let console_err = console.try_clone().map_err(|error| SystemError::Write { path: dirs.console_log(), error })?;
    let mut command = Command::new("systemd-nspawn");
    command
        .args(["--boot", "--directory"])
        .arg(dirs.root())
        .arg(format!("--network-namespace-path=/run/netns/{}", network::netns_name(host)))
        .args([
            "--register=no",
            "--keep-unit",
            "--console=passive",
            "--resolv-conf=off",
            "--timezone=off",
            "--link-journal=no",
        ])
        // keepalived needs these to add the virtual IP and send VRRP.
        .arg("--capability=CAP_NET_ADMIN,CAP_NET_RAW,CAP_NET_BROADCAST")
        .arg(format!("--machine={}-{host}", network::lab_name()))
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(console_err)
        // Its own process group: a Ctrl-C aimed at infra does not power hosts off.
        .process_group(0);
    command.spawn().map_err(|error| SystemError::Spawn { command: "systemd-nspawn".into(), error })?;
    Ok(())
}

/// Powers a host off: SIGTERM makes nspawn halt the container cleanly; after
/// `grace` the container is killed.
pub fn power_off(host: &str, grace: Duration) -> Result<(), SystemError> {
    let Some(pid) = running_pid(host) else {
        return Ok(());
    };
    // A signal, not the `kill` program: a minimal Debian has no procps.
    let signal = |signal| {
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            // Gone already is the outcome wanted.
            let _ = kill_process(pid, signal);
        }
    };
    signal(Signal::TERM);
    let deadline = Instant::now() + grace;
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        signal(Signal::KILL);
    }
    Ok(())
}

/// Waits until the host accepts the lab key over SSH with strict host-key
/// checking, or `timeout` passes.
pub fn wait_for_ssh(host: &LabHost, via: Option<&Path>, key: &Path, known_hosts: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let mut command = ssh_command(key, known_hosts);
        // Behind a bastion every try comes from one address, and trixie's
        // sshd penalises a source whose connections end before they
        // authenticate (`PerSourcePenalties`): a busy host gets time to
        // answer, and is not asked again at once.
        let patience = if via.is_some() { 10 } else { 2 };
        command.arg("-o").arg(format!("ConnectTimeout={patience}"));
        if let (Some(socket), Some(bastion)) = (via, host.bastion) {
            command.arg("-o").arg(format!(
                "ProxyCommand=ssh -F /dev/null -o BatchMode=yes -S {} -W %h:%p {bastion}",
                socket.display()
            ));
        }
        // A host that comes reused is ready once its packages are in.
        let ready = if host.preinstalled.is_empty() { "true" } else { "test -e /var/lib/infra-lab/preinstalled" };
        let reachable = system::succeeds(command.arg(format!("{}@{}", host.user(), host.address)).arg(ready));
        if reachable {
            return true;
        }
        std::thread::sleep(if via.is_some() { Duration::from_secs(1) } else { Duration::from_millis(250) });
    }
    false
}

/// One connection to a bastion (a ControlMaster at `socket`) that the
/// hosts behind it are reached over while the lab waits for them, as
/// infra reaches them: dozens of connections at once to one sshd would
/// trip its `MaxStartups`.
pub fn open_master(bastion: &LabHost, socket: &Path, key: &Path, known_hosts: &Path) -> Result<(), SystemError> {
    let mut command = ssh_command(key, known_hosts);
    command.args(["-o", "ConnectTimeout=5", "-M", "-f", "-N", "-o", "ControlPersist=yes", "-S"]).arg(socket);
    system::run(command.arg(format!("{}@{}", bastion.user(), bastion.address)))?;
    Ok(())
}

pub fn close_master(socket: &Path) {
    let _ = Command::new("ssh").arg("-S").arg(socket).args(["-O", "exit", "none"]).output();
}

fn ssh_command(key: &Path, known_hosts: &Path) -> Command {
    let mut command = Command::new("ssh");
    command
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-i"])
        .arg(key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()));
    command
}

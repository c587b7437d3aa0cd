//! Bastions: every host behind one is reached over a single SSH
//! connection to it, opened on first use and kept for the run.
//!
//! `ssh -J` would open a new connection to the bastion for each host, and
//! a bastion's sshd throttles many at once from one source (`MaxStartups`
//! 10:30:100 drops connections at random past ten unauthenticated ones;
//! OpenSSH 10's `PerSourcePenalties` then blocks the source). Here each
//! host's ssh gets a `ProxyCommand` that asks the bastion's ControlMaster
//! for a stdio forward (`ssh -S … -W host:port`), so the bastion sees one
//! authenticated connection carrying channels, and at most
//! [`ADMISSION`] hosts behind it authenticate at the same moment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssh::Session;
use tokio::sync::{Mutex, Semaphore};

use super::{Jump, Settings, Target, TransportError, shell_quote};

/// How many hosts behind one bastion may be connecting at once.
pub const ADMISSION: usize = 8;

/// A bastion opened, or why it could not be: shared by its hosts.
type Opened = Result<Arc<Bastion>, Arc<TransportError>>;

/// The bastions a run has opened, by `user@destination:port`.
#[derive(Debug, Default)]
pub struct Bastions {
    open: Mutex<BTreeMap<String, Opened>>,
}

/// One open bastion: its connection, the ssh config that routes hosts
/// through it, and the admission bound. Every connection through it holds
/// it, so it closes (its master exits on drop) after the last of them.
#[derive(Debug)]
pub struct Bastion {
    pub name: String,
    /// Held, never used directly: hosts reach it through its socket.
    _session: Session,
    /// Holds `config`; removed with it.
    _directory: tempfile::TempDir,
    config: PathBuf,
    pub admission: Semaphore,
}

impl Bastion {
    /// The ssh config file (`-F`) for hosts behind this bastion.
    pub fn config(&self) -> &Path {
        &self.config
    }
}

impl Bastions {
    /// The bastion `target` goes through, opening it if this run has not;
    /// a bastion that could not be reached is not dialled again.
    pub async fn of(
        &self,
        target: &Target,
        jump: &Jump,
        settings: &Settings,
    ) -> Result<Arc<Bastion>, Arc<TransportError>> {
        let bastion = bastion_target(target, jump);
        let key = format!("{}@{}:{}", bastion.user, bastion.destination, bastion.port);
        let mut open = self.open.lock().await;
        if let Some(known) = open.get(&key) {
            return known.clone();
        }
        let opened = open_bastion(&bastion, settings).await.map(Arc::new).map_err(Arc::new);
        open.insert(key, opened.clone());
        opened
    }
}

/// The bastion as a target of its own: the jump's user and port, else the
/// host's user and 22; the host's key and known_hosts.
fn bastion_target(target: &Target, jump: &Jump) -> Target {
    Target {
        name: format!("bastion {}", jump.destination),
        destination: jump.destination.clone(),
        user: jump.user.clone().unwrap_or_else(|| target.user.clone()),
        port: jump.port.unwrap_or(22),
        privilege: super::Privilege::Login,
        jump: None,
        ..target.clone()
    }
}

async fn open_bastion(bastion: &Target, settings: &Settings) -> Result<Bastion, TransportError> {
    let session = super::builder(bastion, settings).connect_mux(&bastion.destination).await;
    let session = session.map_err(|error| super::connect_error(bastion, settings, error))?;
    let directory = tempfile::Builder::new().prefix("infra-bastion-").tempdir().map_err(TransportError::Local)?;
    let config = directory.path().join("ssh_config");
    std::fs::write(&config, routed_config(session.control_socket(), &bastion.destination))
        .map_err(TransportError::Local)?;
    Ok(Bastion {
        name: bastion.destination.clone(),
        _session: session,
        _directory: directory,
        config,
        admission: Semaphore::new(ADMISSION),
    })
}

/// The ssh config of a host behind the bastion: the forward through the
/// bastion's master first (ssh takes the first value it reads), then the
/// user's and the system's own files, which `-F` would otherwise skip, so
/// aliases and keys from `~/.ssh/config` still apply. `-F /dev/null` keeps
/// the forward from reading any config that could redirect it.
fn routed_config(control_socket: &Path, bastion: &str) -> String {
    let socket = shell_quote(&control_socket.display().to_string());
    format!(
        "# written by infra: hosts behind {bastion} go over one connection to it\n\
         ProxyCommand ssh -F /dev/null -o BatchMode=yes -o ControlMaster=no -S {socket} -W [%h]:%p {bastion}\n\
         Include ~/.ssh/config\nInclude /etc/ssh/ssh_config\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_behind_a_bastion_ride_its_master_and_keep_the_users_config() {
        let config = routed_config(Path::new("/tmp/.ssh-connection1/master"), "bastion.example.com");
        insta::assert_snapshot!(config, @r"
        # written by infra: hosts behind bastion.example.com go over one connection to it
        ProxyCommand ssh -F /dev/null -o BatchMode=yes -o ControlMaster=no -S '/tmp/.ssh-connection1/master' -W [%h]:%p bastion.example.com
        Include ~/.ssh/config
        Include /etc/ssh/ssh_config
        ");
    }
}

//! The connect → lock runner that every command changing hosts shares
//! (apply, deploy, backup now, restore, rollback): connect to every host
//! the command needs, refuse before anything changes when one does not
//! answer, take the lock on those it changes, run, then release the lock
//! and close the connections whatever happened. The command's own work
//! (reading facts on these connections, planning, converging) is its body.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cli::ConnectionArgs;
use crate::facts::{self, Connected, Unreachable};
use crate::lock::{self, Claim};
use crate::report::Silent;
use crate::transport::{Connection, Target};

/// Who runs what, for the refusals and the lock's holder file.
pub(crate) struct Run<'a> {
    pub connection: &'a ConnectionArgs,
    /// How long to wait for a held lock (`--lock-timeout`).
    pub lock_timeout: u64,
    /// What is run (`apply`, `restore`), said in refusals and in the lock.
    pub command: &'a str,
    /// The inventory's path, recorded in the lock.
    pub inventory: &'a str,
}

/// Runs `body` with every target connected and the lock held on `locked`
/// (a subset of `targets`), then releases it and closes the connections.
pub(crate) async fn under_lock<T>(
    run: Run<'_>,
    locked: &[Target],
    targets: &[Target],
    body: impl AsyncFnOnce(&Connected) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let settings = super::transport_settings(run.connection);
    let mut connected = facts::connect(targets, settings, run.connection.parallel, &Silent).await;
    if !connected.unreachable.is_empty() {
        let error = unreachable(run.command, "reached", &connected.unreachable);
        connected.close().await;
        return Err(error);
    }
    let lockable: BTreeMap<String, Connection> =
        locked.iter().filter_map(|target| connected.connections.remove_entry(&target.name)).collect();
    let claim = Claim::here(run.command, run.inventory);
    let locks = lock::acquire(&lockable, &claim, Duration::from_secs(run.lock_timeout)).await;
    connected.connections.extend(lockable);
    let locks = match locks {
        Ok(locks) => locks,
        Err(error) => {
            connected.close().await;
            return Err(lock_refusal(run.command, error));
        }
    };
    let result = body(&connected).await;
    locks.release().await;
    connected.close().await;
    result
}

/// Why `command` did not take its locks, with what to do about it: wait
/// for a run that holds one, or get root where the lock could not be made.
fn lock_refusal(command: &str, error: lock::LockError) -> anyhow::Error {
    let hinted = match &error {
        lock::LockError::Busy { .. } => super::Hinted {
            message: format!("{command} changed nothing: a host it would touch is locked"),
            hint: "wait for the other run, or pass `--lock-timeout SECONDS` to wait here; `infra lock status -i INVENTORY` shows every holder".into(),
        },
        lock::LockError::Transport { .. } => super::Hinted {
            message: format!("{command} changed nothing: a host's lock could not be taken"),
            hint: "infra needs root on every host: log in as root, or set `ssh.become: sudo` for a user with passwordless sudo".into(),
        },
    };
    anyhow::Error::new(error).context(hinted)
}

/// Prints why each host did not answer and says that `command` changed
/// nothing: the hosts could not be `what` (reached, read).
pub(crate) fn unreachable(command: &str, what: &str, hosts: &[Unreachable]) -> anyhow::Error {
    print_unreachable(hosts);
    let count = super::plural(hosts.len(), "host");
    anyhow::anyhow!("{count} could not be {what}; {command} changes nothing until every host it would touch answers")
}

/// One `error:` line per host that did not answer, then each distinct
/// hint once: five hosts refusing alike get five lines and one hint.
pub(crate) fn print_unreachable(hosts: &[Unreachable]) {
    print_unreachable_as("error", hosts);
}

/// [`print_unreachable`] with another word than `error` (`warning` where
/// the command goes on without the host).
pub(crate) fn print_unreachable_as(severity: &str, hosts: &[Unreachable]) {
    for host in hosts {
        stderrln!("{severity}: {}", crate::sanitize::multiline(&host.error));
    }
    let mut hints: Vec<&str> = Vec::new();
    for hint in hosts.iter().filter_map(|host| host.hint.as_deref()) {
        if !hints.contains(&hint) {
            hints.push(hint);
        }
    }
    for hint in hints {
        stderrln!("hint: {}", crate::sanitize::multiline(hint));
    }
}

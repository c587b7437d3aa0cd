//! One operator at a time: a lock on every host an apply touches, held for
//! the whole run.
//!
//! The lock is `flock(1)` on `/run/infra/lock`, held by a remote process
//! whose stdin is infra's SSH channel ([`Connection::hold`]). Nothing has
//! to clean it up: when infra ends, or dies, or loses the connection, the
//! channel closes, the process ends and the kernel drops the lock. `/run`
//! is a tmpfs, so not even a reboot leaves a stale file that matters. Next
//! to the lock, the holder writes who holds it, from where, since when and
//! for which inventory, which is what a refused operator is shown.
//!
//! Locks are taken without waiting: first on the host whose name sorts
//! first, then on all others at once. Two runs over the same hosts meet at
//! that first host, so one of them wins outright instead of each taking
//! half of the fleet; if any host is busy every lock taken is released, so
//! no run ever waits while holding one. `--lock-timeout` retries that whole
//! attempt until the deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::transport::{Connection, Held, HoldOutcome, TransportError};

pub const LOCK_PATH: &str = "/run/infra/lock";
pub const HOLDER_PATH: &str = "/run/infra/lock.holder";
const READY: &str = "infra-lock-held";

/// Who is asking for the lock, as later shown to anyone refused.
#[derive(Clone, Debug)]
pub struct Claim {
    /// `user@machine` of the operator running infra.
    pub who: String,
    /// The inventory being applied.
    pub inventory: String,
    /// What is being done (`apply`).
    pub command: String,
}

impl Claim {
    /// The claim of this process: the local user and machine names.
    pub fn here(command: &str, inventory: &str) -> Claim {
        Claim { who: operator(), inventory: inventory.to_string(), command: command.to_string() }
    }
}

/// Who runs this process, `user@machine`: the user who ran sudo, if any.
pub fn operator() -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .unwrap_or_else(|| {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata("/proc/self").map(|metadata| metadata.uid()) {
                Ok(0) => "root".into(),
                Ok(uid) => format!("uid {uid}"),
                Err(_) => "unknown".into(),
            }
        });
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".into(), |name| name.trim().to_string());
    format!("{user}@{machine}")
}

/// The holder of a host's lock, as its holder file says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    pub who: String,
    /// The address the holder's SSH connection comes from.
    pub from: String,
    pub since: String,
    pub inventory: String,
    pub command: String,
    /// The remote process that holds the lock (`infra lock break` ends it).
    pub pid: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known = |value: &str| if value.is_empty() { "?".to_string() } else { value.to_string() };
        write!(
            f,
            "`{}` by {} (connected from {}) since {}, inventory `{}`",
            known(&self.command),
            known(&self.who),
            known(&self.from),
            known(&self.since),
            known(&self.inventory)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("host `{host}` is locked by another run: {holder}")]
    Busy { host: String, holder: Holder },
    #[error("cannot take the lock on `{host}`")]
    Transport {
        host: String,
        #[source]
        error: TransportError,
    },
}

/// Locks held on a set of hosts; [`Locks::release`] lets them go.
pub struct Locks {
    held: Vec<Held>,
}

impl Locks {
    pub async fn release(self) {
        futures_util::future::join_all(self.held.into_iter().map(Held::release)).await;
    }
}

/// Takes the lock on every connected host, retrying the whole attempt
/// until `wait` has passed when some host is busy.
pub async fn acquire(
    connections: &BTreeMap<String, Connection>,
    claim: &Claim,
    wait: Duration,
) -> Result<Locks, LockError> {
    let deadline = Instant::now() + wait;
    loop {
        let refusal = match attempt(connections, claim).await {
            Ok(locks) => return Ok(locks),
            Err(refusal) => refusal,
        };
        if matches!(refusal, LockError::Transport { .. }) || Instant::now() >= deadline {
            return Err(refusal);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One attempt: the first host alone, then the rest together; on any
/// refusal, every lock this attempt took is released again.
async fn attempt(connections: &BTreeMap<String, Connection>, claim: &Claim) -> Result<Locks, LockError> {
    let script = acquire_script(claim);
    let mut hosts = connections.iter();
    let first: Vec<_> =
        hosts.next().into_iter().map(|(host, connection)| take_one(host, connection, &script)).collect();
    let rest: Vec<_> = hosts.map(|(host, connection)| take_one(host, connection, &script)).collect();
    let mut held = Vec::new();
    let mut refusal = None;
    for batch in [first, rest] {
        for (host, outcome) in futures_util::future::join_all(batch).await {
            match outcome {
                Ok(HoldOutcome::Held(lock)) => held.push(*lock),
                Ok(HoldOutcome::Ended(said)) => {
                    refusal.get_or_insert(LockError::Busy { host, holder: parse_holder(&said) });
                }
                Err(error) => refusal = Some(LockError::Transport { host, error }),
            }
        }
        if refusal.is_some() {
            break;
        }
    }
    match refusal {
        None => Ok(Locks { held }),
        Some(refusal) => {
            Locks { held }.release().await;
            Err(refusal)
        }
    }
}

async fn take_one(host: &str, connection: &Connection, script: &str) -> (String, Result<HoldOutcome, TransportError>) {
    (host.to_string(), connection.hold(script, READY).await)
}

/// Prints the holder file once the process it names holds the lock: the
/// file of the run before may still be there for the moment between a new
/// holder's `flock` and its rewrite of the file, and must not be shown as
/// the holder. Polls for up to 2 s, then says the holder is unknown.
fn print_current_holder() -> String {
    format!(
        "for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do\n\
         pid=$(sed -n 's/^pid=//p' {HOLDER_PATH} 2>/dev/null)\n\
         if [ -n \"$pid\" ] && [ \"$(readlink \"/proc/$pid/fd/9\" 2>/dev/null)\" = {LOCK_PATH} ]; then cat {HOLDER_PATH}; exit 0; fi\n\
         sleep 0.1\ndone\necho 'who=an unknown process'\n"
    )
}

/// Takes the lock without waiting, writes the holder file, says READY and
/// then holds the lock for as long as its stdin stays open (`cat` inherits
/// the lock's descriptor). A busy lock prints the holder file and ends.
fn acquire_script(claim: &Claim) -> String {
    let quote = crate::transport::shell_quote;
    format!(
        "umask 022\nmkdir -p /run/infra\nexec 9>>{LOCK_PATH}\n\
         if ! flock -n 9; then\n{holder}exit 0\nfi\n\
         {{ printf 'who=%s\\n' {who}; printf 'from=%s\\n' \"${{SSH_CONNECTION%% *}}\"; \
         printf 'since=%s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"; printf 'inventory=%s\\n' {inventory}; \
         printf 'command=%s\\n' {command}; printf 'pid=%s\\n' \"$$\"; }} > {HOLDER_PATH}.new\n\
         mv {HOLDER_PATH}.new {HOLDER_PATH}\necho {READY}\nexec cat > /dev/null\n",
        holder = print_current_holder(),
        who = quote(&claim.who),
        inventory = quote(&claim.inventory),
        command = quote(&claim.command),
    )
}

/// Prints `free`, or `held` and the holder file.
/// Every script this module sends, for the shellcheck test.
#[cfg(test)]
pub(crate) fn scripts() -> Vec<(&'static str, String)> {
    let claim = Claim { who: "tester@here".into(), inventory: "/srv/inventory.yml".into(), command: "apply".into() };
    vec![("the lock", acquire_script(&claim)), ("lock status", status_script()), ("lock break", break_script())]
}

pub fn status_script() -> String {
    format!(
        "if [ ! -e {LOCK_PATH} ]; then echo free; exit 0; fi\nexec 9>>{LOCK_PATH}\n\
         if flock -n 9; then echo free; exit 0; fi\necho held\n{}",
        print_current_holder()
    )
}

/// Ends the process holding the lock, if one does: the way out of a lock
/// whose holder hangs (a connection the host has not yet seen drop).
pub fn break_script() -> String {
    format!(
        "exec 9>>{LOCK_PATH}\nif flock -n 9; then echo free; exit 0; fi\n\
         pid=$(sed -n 's/^pid=//p' {HOLDER_PATH})\n\
         case \"$pid\" in ''|*[!0-9]*) echo 'no holder pid recorded' >&2; exit 1;; esac\n\
         kill \"$pid\"\nflock -w 10 9 && echo broken\n"
    )
}

/// Reads a holder file (`key=value` lines); unknown keys are ignored.
pub fn parse_holder(text: &str) -> Holder {
    let mut holder = Holder::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = crate::sanitize::printable(value);
        match key {
            "who" => holder.who = value,
            "from" => holder.from = value,
            "since" => holder.since = value,
            "inventory" => holder.inventory = value,
            "command" => holder.command = value,
            "pid" => holder.pid = value,
            _ => {}
        }
    }
    holder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_files_are_read_and_shown() {
        let holder = parse_holder(
            "held\nwho=ops@laptop\nfrom=10.20.0.1\nsince=2026-11-23T08:00:00Z\ninventory=/x/lab.yml\ncommand=apply\npid=42\n",
        );
        assert_eq!(holder.pid, "42");
        assert_eq!(
            holder.to_string(),
            "`apply` by ops@laptop (connected from 10.20.0.1) since 2026-11-23T08:00:00Z, inventory `/x/lab.yml`"
        );
    }

    #[test]
    fn a_holder_file_cannot_write_control_characters_to_the_terminal() {
        assert_eq!(parse_holder("who=a\x1b[2Jb\n").who, "a\\u{1b}[2Jb");
    }

    /// The script itself, run by a local sh: it holds until stdin closes,
    /// and a second one is refused with the first one's holder.
    #[test]
    fn the_acquire_script_holds_until_its_stdin_closes() {
        use std::io::{BufRead, Write};
        use std::process::{Command, Stdio};
        let directory = tempfile::tempdir().expect("temp dir");
        let local = |script: String| script.replace("/run/infra", &directory.path().display().to_string());
        let claim = Claim { who: "ops@laptop".into(), inventory: "lab.yml".into(), command: "apply".into() };
        let start =
            || Command::new("sh").arg("-s").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sh runs");
        let mut first = start();
        first.stdin.as_mut().expect("stdin").write_all(local(acquire_script(&claim)).as_bytes()).expect("write");
        let mut line = String::new();
        std::io::BufReader::new(first.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
        assert_eq!(line.trim(), READY);
        let mut second = start();
        second.stdin.take().expect("stdin").write_all(local(acquire_script(&claim)).as_bytes()).expect("write");
        let said = second.wait_with_output().expect("second ends");
        let holder = parse_holder(&String::from_utf8_lossy(&said.stdout));
        assert_eq!(holder.who, "ops@laptop");
        drop(first.stdin.take());
        assert!(first.wait().expect("first ends").success());
        let mut third = start();
        third.stdin.as_mut().expect("stdin").write_all(local(acquire_script(&claim)).as_bytes()).expect("write");
        let mut line = String::new();
        std::io::BufReader::new(third.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
        assert_eq!(line.trim(), READY, "the lock is free again once the first holder's stdin closed");
        drop(third.stdin.take());
        third.wait().expect("third ends");
    }
}

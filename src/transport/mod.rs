//! SSH transport: one multiplexed connection per host, strict host keys.
//!
//! Built on the `openssh` crate, which drives the system `ssh` with a
//! ControlMaster: every command in a run reuses one authenticated
//! connection, and `~/.ssh/config`, ssh-agent and ProxyJump work as they do
//! for `ssh` itself. Host keys are checked strictly against the inventory's
//! known_hosts (or the user's); `--accept-new-host-keys` is ssh's
//! `accept-new`, never "accept anything". Scripts go over stdin, so nothing
//! (a secret least of all) appears on a remote command line.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;

use crate::diagnostic::error_chain;

pub mod bastion;
mod connect_hint;
#[cfg(test)]
pub(crate) mod fake;
pub mod interactive;
mod sudo;
pub mod warm;

pub use sudo::{SudoProblem, SudoRefused};

/// Quotes a string for `sh` with single quotes: every script infra sends
/// is built with this, so no value can end its word.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// How a script run with [`Connection::run`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The exit code; `None` when a signal ended it.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// `exit status: 3`, or what ended it when no code did.
    pub fn status_text(&self) -> String {
        self.status.map_or_else(|| "ended by a signal".to_string(), |code| format!("exit status: {code}"))
    }
}

/// How to reach one host.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    /// The host's inventory address, where its services listen.
    pub address: IpAddr,
    /// What `ssh` dials: the address, or the host's `ssh.host` (a public
    /// address, a DNS name, a `~/.ssh/config` alias).
    pub destination: String,
    pub user: String,
    pub port: u16,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub privilege: Privilege,
    /// The bastion SSH goes through, if any.
    pub jump: Option<Jump>,
}

/// How scripts get root on a host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Privilege {
    /// The login user is root (`become: none`, the default).
    #[default]
    Login,
    /// The login user runs every script through `sudo -n` (`become: sudo`).
    Sudo,
}

/// A bastion, as `ssh -J` takes it: user and port default to the target's
/// user and 22.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jump {
    pub destination: String,
    pub user: Option<String>,
    pub port: Option<u16>,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub accept_new_host_keys: bool,
    pub connect_timeout: Duration,
    /// The run's bastion connections, shared by every host behind them.
    pub jumps: Arc<bastion::Bastions>,
    /// Where warm masters wait between runs, unless they are turned off.
    pub warm: Option<Arc<warm::Pool>>,
    /// Whether this run leaves its fresh masters warm for the next one
    /// (plan does: the apply that follows it needs no handshake).
    pub park: bool,
}

impl Settings {
    pub fn new(accept_new_host_keys: bool, connect_timeout: Duration) -> Settings {
        Settings {
            accept_new_host_keys,
            connect_timeout,
            jumps: Arc::default(),
            warm: warm::Pool::from_env(),
            park: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "the SSH host key of `{host}` ({address}) is not in {known_hosts}; the host offers {fingerprint}\n\nhint: if that is the key you expect, add it (`ssh-keyscan -p {port} {address} >> FILE`) or run again with `--accept-new-host-keys`"
    )]
    HostKeyUnknown { host: String, address: IpAddr, port: u16, known_hosts: String, fingerprint: String },
    #[error(
        "the SSH host key of `{host}` ({address}) has CHANGED: it offers {fingerprint}, which does not match {known_hosts}; this is either a reinstalled host or someone intercepting the connection\n\nhint: if the host was reinstalled, remove the old key with `ssh-keygen -R {address}` (add `-f FILE` for the inventory's known_hosts) and check the new fingerprint"
    )]
    HostKeyChanged { host: String, address: IpAddr, known_hosts: String, fingerprint: String },
    #[error(
        "the known_hosts file `{}` that the inventory names for `{host}` does not exist, so no host key could be checked; nothing was sent to {address}\n\nhint: fill it with the hosts' keys (`ssh-keyscan`), or pass `--accept-new-host-keys` to record them on first contact; a lab inventory's file is written by `infra lab up -i INVENTORY`",
        path.display()
    )]
    KnownHostsMissing { host: String, address: IpAddr, path: PathBuf },
    #[error(transparent)]
    Sudo(#[from] SudoRefused),
    #[error("cannot reach `{host}` through the bastion `{bastion}`")]
    Bastion {
        host: String,
        bastion: String,
        #[source]
        source: Arc<TransportError>,
    },
    #[error("cannot write this machine's ssh config for a bastion")]
    Local(#[source] std::io::Error),
    /// ssh's words are the reason, and the hint what they point at.
    #[error("cannot connect to `{host}` ({address}): {reason}\n\nhint: {hint}")]
    Connect { host: String, address: IpAddr, reason: String, hint: String },
    #[error("`{host}`: the remote script failed ({status}): {stderr}")]
    Script { host: String, status: String, stderr: String },
    #[error("`{host}`: the SSH connection failed while running a command")]
    Run {
        host: String,
        #[source]
        source: ChannelError,
    },
}

/// What went wrong with a remote command's channel, as opposed to the
/// command itself failing.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(transparent)]
    Ssh(#[from] openssh::Error),
    #[error("cannot send the script")]
    Send(#[source] std::io::Error),
    #[error("cannot read the remote output")]
    Receive(#[source] std::io::Error),
    #[error("the remote process has no {0}")]
    NoPipe(&'static str),
}

impl Target {
    /// A target with ssh's own defaults: root on port 22, the user's keys
    /// and known_hosts.
    pub fn with_defaults(name: &str, address: IpAddr) -> Target {
        Target {
            name: name.into(),
            address,
            destination: address.to_string(),
            user: "root".into(),
            port: 22,
            identity: None,
            known_hosts: None,
            privilege: Privilege::Login,
            jump: None,
        }
    }

    fn known_hosts_name(&self) -> String {
        self.known_hosts.as_ref().map_or_else(|| "your known_hosts".to_string(), |path| format!("`{}`", path.display()))
    }
}

/// How apply reaches hosts: open a connection to a target, run scripts on
/// it, close it. [`Ssh`] is the real one; apply's orchestration (stage
/// order, draining, the virtual IP's holder last, rollback, failures) is
/// tested against an in-memory implementation without any host.
pub trait Connector: Send + Sync {
    type Remote: Remote;
    fn open(&self, target: &Target) -> impl Future<Output = Result<Self::Remote, TransportError>> + Send;
}

/// One open connection: runs POSIX sh scripts sent over stdin.
pub trait Remote: Send + Sync {
    /// Runs `script`; its stdout, or the tail of its stderr on failure.
    fn run_script(&self, script: &str) -> impl Future<Output = Result<String, TransportError>> + Send;
    /// Streams what `read` prints here into the stdin of `write` on `to`,
    /// through infra ([`Connection::stream_to`]); the bytes copied.
    fn stream_to(&self, read: &str, to: &Self, write: &str)
    -> impl Future<Output = Result<u64, TransportError>> + Send;
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// The real connector: SSH with the given settings.
#[derive(Clone, Debug)]
pub struct Ssh(pub Settings);

impl Connector for Ssh {
    type Remote = Connection;

    async fn open(&self, target: &Target) -> Result<Connection, TransportError> {
        Connection::open(target, &self.0).await
    }
}

impl Remote for Connection {
    async fn run_script(&self, script: &str) -> Result<String, TransportError> {
        Connection::run_script(self, script).await
    }

    async fn stream_to(&self, read: &str, to: &Connection, write: &str) -> Result<u64, TransportError> {
        Connection::stream_to(self, read, to, write).await
    }

    async fn close(self) {
        Connection::close(self).await
    }
}

/// An open, multiplexed connection to one host.
pub struct Connection {
    pub target: Target,
    session: Arc<Session>,
    /// The bastion this connection rides, kept open while it does.
    _bastion: Option<Arc<bastion::Bastion>>,
    /// What [`Connection::close`] does with the master.
    ending: Ending,
}

/// How a connection ends.
enum Ending {
    /// Shut the master down.
    Close,
    /// Leave the master warm for the next run.
    Park(Arc<warm::Pool>),
    /// A warm master this run resumed: let go of it, leaving it warm. The
    /// session that keeps it busy ends with the connection.
    Release(Box<openssh::Child<Arc<Session>>>),
}

/// A remote process that runs as long as infra holds its stdin open: what
/// a host lock is tied to. Closing stdin (or infra dying, which closes it
/// too) ends the process and with it whatever it holds.
pub struct Held {
    host: String,
    child: openssh::Child<Arc<Session>>,
}

/// What a script started with [`Connection::hold`] said before it either
/// held on or ended.
pub enum HoldOutcome {
    Held(Box<Held>),
    /// The script ended without holding; its output says why.
    Ended(String),
}

impl Held {
    /// Closes the process's stdin and waits for it to end.
    pub async fn release(mut self) {
        drop(self.child.stdin().take());
        if let Err(error) = self.child.wait().await {
            tracing::warn!(host = %self.host, error = %error_chain(&error), "the held remote process did not end cleanly");
        }
    }
}

impl Connection {
    pub async fn open(target: &Target, settings: &Settings) -> Result<Connection, TransportError> {
        // Strict checking against a file that is not there can only fail,
        // after a connection the user did not mean to make (a lab that is
        // down, a mistyped path): refuse before anything leaves.
        if let Some(path) = target.known_hosts.as_ref().filter(|path| !settings.accept_new_host_keys && !path.exists())
        {
            return Err(TransportError::KnownHostsMissing {
                host: target.name.clone(),
                address: target.address,
                path: path.clone(),
            });
        }
        let started = std::time::Instant::now();
        if let Some(pool) = &settings.warm
            && let Some(resumed) = pool.resume(target, settings.connect_timeout).await
        {
            let connection = Connection {
                target: target.clone(),
                session: resumed.session,
                _bastion: None,
                ending: Ending::Release(Box::new(resumed.pin)),
            };
            if target.privilege == Privilege::Sudo {
                connection.check_sudo().await?;
            }
            return Ok(connection);
        }
        // A warm master that never answered spent part of the host's
        // connect timeout: an unreachable host still fails within it.
        let spent = Duration::from_secs(started.elapsed().as_secs());
        let connect_timeout = settings.connect_timeout.saturating_sub(spent).max(Duration::from_secs(1));
        let dial = &Settings { connect_timeout, ..settings.clone() };
        let (session, bastion) = match &target.jump {
            None => (builder(target, dial).connect_mux(&target.destination).await, None),
            Some(jump) => {
                let bastion = settings.jumps.of(target, jump, settings).await.map_err(|source| {
                    TransportError::Bastion { host: target.name.clone(), bastion: jump.destination.clone(), source }
                })?;
                let admitted = bastion.admission.acquire().await;
                let session =
                    builder(target, settings).config_file(bastion.config()).connect_mux(&target.destination).await;
                drop(admitted);
                (session, Some(bastion))
            }
        };
        let session = session.map_err(|error| connect_error(target, settings, error))?;
        let ending = match &settings.warm {
            Some(pool) if settings.park && target.jump.is_none() => Ending::Park(Arc::clone(pool)),
            _ => Ending::Close,
        };
        let connection = Connection { target: target.clone(), session: Arc::new(session), _bastion: bastion, ending };
        if target.privilege == Privilege::Sudo {
            connection.check_sudo().await?;
        }
        Ok(connection)
    }

    /// Refuses a host whose sudo would prompt, before any script runs.
    async fn check_sudo(&self) -> Result<(), TransportError> {
        let run_error = |source: ChannelError| TransportError::Run { host: self.target.name.clone(), source };
        let output = Session::to_raw_command(Arc::clone(&self.session), sudo::CHECK)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|error| run_error(error.into()))?;
        if output.status.success() {
            return Ok(());
        }
        let problem = sudo::classify(output.status.code(), &String::from_utf8_lossy(&output.stderr));
        Err(SudoRefused { host: self.target.name.clone(), user: self.target.user.clone(), problem }.into())
    }

    /// `sh -s` on the host, reading its script from stdin, stdout piped.
    async fn spawn_sh(&self, stderr: Stdio) -> Result<openssh::Child<Arc<Session>>, openssh::Error> {
        let mut command = match self.target.privilege {
            Privilege::Login => Session::to_raw_command(Arc::clone(&self.session), "sh -s"),
            Privilege::Sudo => Session::to_raw_command(Arc::clone(&self.session), sudo::SHELL),
        };
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr).spawn().await
    }

    /// Runs a POSIX sh script sent over stdin; returns its stdout.
    pub async fn run_script(&self, script: &str) -> Result<String, TransportError> {
        let finished = self.run(script).await?;
        if finished.status != Some(0) {
            let tail: Vec<&str> = finished.stderr.lines().rev().take(10).collect();
            return Err(TransportError::Script {
                host: self.target.name.clone(),
                status: finished.status_text(),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            });
        }
        Ok(finished.stdout)
    }

    /// Runs a POSIX sh script sent over stdin and returns how it ended,
    /// whatever its exit status: `infra exec` shows a failing command's output.
    pub async fn run(&self, script: &str) -> Result<Finished, TransportError> {
        let child = self.start_script(script).await?;
        let output = child.wait_with_output().await.map_err(|error| self.run_error(error.into()))?;
        Ok(Finished {
            status: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// `sh -s` on the host, its script sent and stdin closed: what `run`,
    /// `follow` and `stream_to` read the output of.
    async fn start_script(&self, script: &str) -> Result<openssh::Child<Arc<Session>>, TransportError> {
        let mut child = self.spawn_sh(Stdio::piped()).await.map_err(|error| self.run_error(error.into()))?;
        if let Some(mut stdin) = child.stdin().take() {
            stdin.write_all(script.as_bytes()).await.map_err(|error| self.run_error(ChannelError::Send(error)))?;
            stdin.shutdown().await.map_err(|error| self.run_error(ChannelError::Send(error)))?;
        }
        Ok(child)
    }

    fn run_error(&self, source: ChannelError) -> TransportError {
        TransportError::Run { host: self.target.name.clone(), source }
    }

    /// Runs a POSIX sh script and hands each line of its stdout to
    /// `each_line` as it comes (`infra logs --follow`), until it ends.
    pub async fn follow(&self, script: &str, mut each_line: impl FnMut(&str)) -> Result<Finished, TransportError> {
        use tokio::io::AsyncBufReadExt;
        let run_error = |source: ChannelError| self.run_error(source);
        let mut child = self.start_script(script).await?;
        let stdout = child.stdout().take().ok_or_else(|| run_error(ChannelError::NoPipe("stdout")))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.map_err(|error| run_error(ChannelError::Receive(error)))? {
            each_line(&line);
        }
        let output = child.wait_with_output().await.map_err(|error| run_error(error.into()))?;
        Ok(Finished {
            status: output.status.code(),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Starts a POSIX sh script (over stdin) that prints `ready_line` once
    /// it holds something and then keeps running until released; a script
    /// that ends first gives its output back instead.
    pub async fn hold(&self, script: &str, ready_line: &str) -> Result<HoldOutcome, TransportError> {
        use tokio::io::AsyncBufReadExt;
        let host = &self.target.name;
        let run_error = |source: ChannelError| TransportError::Run { host: host.clone(), source };
        let mut child = self.spawn_sh(Stdio::piped()).await.map_err(|error| run_error(error.into()))?;
        let stdin = child.stdin().as_mut().ok_or_else(|| run_error(ChannelError::NoPipe("stdin")))?;
        stdin.write_all(script.as_bytes()).await.map_err(|error| run_error(ChannelError::Send(error)))?;
        stdin.flush().await.map_err(|error| run_error(ChannelError::Send(error)))?;
        let stdout = child.stdout().take().ok_or_else(|| run_error(ChannelError::NoPipe("stdout")))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut said = String::new();
        while let Some(line) = lines.next_line().await.map_err(|error| run_error(ChannelError::Receive(error)))? {
            if line == ready_line {
                return Ok(HoldOutcome::Held(Box::new(Held { host: host.clone(), child })));
            }
            said.push_str(&line);
            said.push('\n');
        }
        drop(child.stdin().take());
        // A script that could not even try (no right to write its files,
        // sudo refusing) must not read as one that found the thing held.
        let output = child.wait_with_output().await.map_err(|error| run_error(error.into()))?;
        if !output.status.success() {
            return Err(TransportError::Script {
                host: host.clone(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(HoldOutcome::Ended(said))
    }

    /// Streams what the script `read` prints on this host into the stdin of
    /// the script `write` on `to`, through infra: the two hosts need no key
    /// to each other and no flow between them. Returns the bytes copied.
    /// `write` travels as `sh -c`'s argument, so it must hold no secret.
    pub async fn stream_to(&self, read: &str, to: &Connection, write: &str) -> Result<u64, TransportError> {
        let (from_host, to_host) = (&self.target.name, &to.target.name);
        let run_error = |host: &String, source: ChannelError| TransportError::Run { host: host.clone(), source };
        let mut reader = self.start_script(read).await?;
        let (program, options): (&str, &[&str]) = match to.target.privilege {
            Privilege::Login => ("sh", &["-c"]),
            Privilege::Sudo => ("sudo", &sudo::SH_C),
        };
        let mut writer = Session::to_command(Arc::clone(&to.session), program)
            .args(options)
            .arg(write)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|error| run_error(to_host, error.into()))?;
        let mut source = reader.stdout().take().ok_or_else(|| run_error(from_host, ChannelError::NoPipe("stdout")))?;
        let mut sink = writer.stdin().take().ok_or_else(|| run_error(to_host, ChannelError::NoPipe("stdin")))?;
        let copied = tokio::io::copy(&mut source, &mut sink).await;
        let closed = sink.shutdown().await;
        drop(sink);
        let read_output = reader.wait_with_output().await.map_err(|error| run_error(from_host, error.into()))?;
        let write_output = writer.wait_with_output().await.map_err(|error| run_error(to_host, error.into()))?;
        for (host, output) in [(from_host, &read_output), (to_host, &write_output)] {
            if !output.status.success() {
                return Err(TransportError::Script {
                    host: host.clone(),
                    status: output.status.to_string(),
                    stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
                });
            }
        }
        closed.map_err(|error| run_error(to_host, ChannelError::Send(error)))?;
        copied.map_err(|error| run_error(to_host, ChannelError::Send(error)))
    }

    pub async fn close(self) {
        match self.ending {
            Ending::Release(pin) => drop(pin),
            Ending::Park(pool) => {
                if let Ok(session) = Arc::try_unwrap(self.session) {
                    pool.park(&self.target, session).await;
                }
            }
            Ending::Close => {
                if let Ok(session) = Arc::try_unwrap(self.session) {
                    let _ = session.close().await;
                }
            }
        }
    }
}

/// The ssh options of one target; a host behind a bastion adds its
/// routed config.
fn builder(target: &Target, settings: &Settings) -> SessionBuilder {
    let mut builder = SessionBuilder::default();
    builder
        .user(target.user.clone())
        .port(target.port)
        .connect_timeout(settings.connect_timeout)
        .server_alive_interval(Duration::from_secs(15))
        .control_directory(
            settings.warm.as_ref().map_or_else(std::env::temp_dir, |pool| pool.directory().to_path_buf()),
        )
        .known_hosts_check(if settings.accept_new_host_keys { KnownHosts::Add } else { KnownHosts::Strict });
    if settings.park && settings.warm.is_some() && target.jump.is_none() {
        // A parked master ends by itself once no run has used it for a while.
        let seconds =
            std::num::NonZeroUsize::new(warm::LIFETIME.as_secs() as usize).unwrap_or(std::num::NonZeroUsize::MIN);
        builder.control_persist(openssh::ControlPersist::IdleFor(seconds));
    }
    if let Some(identity) = &target.identity {
        builder.keyfile(identity);
    }
    if let Some(known_hosts) = &target.known_hosts {
        builder.user_known_hosts_file(known_hosts);
    }
    builder
}

fn connect_error(target: &Target, settings: &Settings, error: openssh::Error) -> TransportError {
    let message = error_chain(&error);
    let host = target.name.clone();
    let (address, known_hosts) = (target.address, target.known_hosts_name());
    if message.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || message.contains("Host key for") && message.contains("has changed")
    {
        TransportError::HostKeyChanged { host, address, known_hosts, fingerprint: offered_fingerprint(target) }
    } else if message.contains("No ") && message.contains("host key is known for")
        || message.contains("Host key verification failed")
    {
        TransportError::HostKeyUnknown {
            host,
            address,
            port: target.port,
            known_hosts,
            fingerprint: offered_fingerprint(target),
        }
    } else {
        let hint = connect_hint::hint(target, settings.connect_timeout, &message);
        TransportError::Connect { host, address, reason: message, hint }
    }
}

/// The fingerprints the host offers, asked separately (only on the error
/// path) so the message can show what to check. A host behind a bastion
/// cannot be asked from here.
fn offered_fingerprint(target: &Target) -> String {
    if target.jump.is_some() {
        return "a key that cannot be read from here (the host is behind a bastion)".to_string();
    }
    let scan = Command::new("ssh-keyscan")
        .args(["-T", "3", "-p", &target.port.to_string(), "--", &target.destination])
        .output();
    let Some(scan) = scan.ok().filter(|output| !output.stdout.is_empty()) else {
        return "a key that could not be read back".to_string();
    };
    let mut keygen = match Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(_) => return "a key that could not be fingerprinted".to_string(),
    };
    if let Some(mut stdin) = keygen.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(&scan.stdout);
    }
    let listed = keygen
        .wait_with_output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    let fingerprints: Vec<String> = listed
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(format!("{} {}", fields.last()?.trim_matches(['(', ')']), fields.get(1)?))
        })
        .collect();
    if fingerprints.is_empty() { "a key that could not be fingerprinted".to_string() } else { fingerprints.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing known_hosts file is refused before any connection (were
    /// the guard gone, this would dial loopback, never another address).
    #[test]
    fn a_missing_known_hosts_file_is_refused_before_connecting() {
        let directory = tempfile::tempdir().expect("tempdir");
        let mut target = Target::with_defaults("db-01", "127.0.0.1".parse().expect("address"));
        target.known_hosts = Some(directory.path().join("absent"));
        let settings = Settings::new(false, Duration::from_millis(1));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let error = runtime.block_on(Connection::open(&target, &settings)).err().expect("refused");
        assert!(matches!(error, TransportError::KnownHostsMissing { .. }), "{error}");
        assert!(error.to_string().contains("nothing was sent to 127.0.0.1"), "{error}");
    }
}

//! Warm connections: `infra plan` leaves each host's SSH master listening
//! for a minute, and any run in that minute (the `apply` that follows the
//! plan it read) goes over it instead of a second handshake.
//!
//! The masters are ssh's own (`ControlPersist=60s`): each exits by itself a
//! minute after the last run stopped using it. Their sockets live in one
//! directory that only this user can enter (`$XDG_RUNTIME_DIR/infra-ssh`,
//! else `/run/user/UID/infra-ssh`, else `infra-ssh-UID` in the temporary
//! directory), checked before every use: owned by this user, mode 0700, not
//! a link. A socket's name is a digest of everything that chose the
//! connection (user, address, port, identity, known_hosts), so a changed
//! inventory never reaches an old master. A resumed master must answer
//! a round trip within [`PROBE_TIMEOUT`] before it is used; one whose host
//! went away or was rebuilt fails that and is replaced by a fresh
//! connection. Hosts behind a bastion always connect afresh: their master
//! rides the bastion's, which ends with the run. `INFRA_SSH_PERSIST=0`
//! turns all of this off.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::time::Duration;

use openssh::{Session, Stdio};
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;

use super::Target;

/// How long an idle master outlives the last run that used it.
pub const LIFETIME: Duration = Duration::from_secs(60);

/// How long a resumed master has to prove it still reaches its host.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the probe prints once it runs on the host.
const PROBED: &str = "infra-warm";

/// The directory of warm masters' sockets.
#[derive(Debug)]
pub struct Pool {
    directory: PathBuf,
    uid: u32,
}

/// A resumed master and the session that keeps it busy: while it is open
/// the master is not idle, however long the run waits between commands.
pub struct Resumed {
    pub session: Arc<Session>,
    pub pin: openssh::Child<Arc<Session>>,
}

impl Pool {
    /// The pool of this user, unless `INFRA_SSH_PERSIST=0` or no directory
    /// that only this user can reach could be made.
    pub fn from_env() -> Option<Arc<Pool>> {
        if std::env::var("INFRA_SSH_PERSIST").is_ok_and(|value| value == "0") {
            return None;
        }
        let uid = std::fs::metadata("/proc/self").ok()?.uid();
        let directory = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            Some(runtime) if runtime.is_absolute() => runtime.join("infra-ssh"),
            _ if Path::new(&format!("/run/user/{uid}")).is_dir() => PathBuf::from(format!("/run/user/{uid}/infra-ssh")),
            _ => std::env::temp_dir().join(format!("infra-ssh-{uid}")),
        };
        let pool = Pool::at(directory, uid);
        if let Err(directory) = &pool {
            tracing::warn!(directory = %directory.display(), "not private to this user: no warm connections");
        }
        pool.ok().map(Arc::new)
    }

    /// The pool in `directory`, made if it is missing, refused (as `Err`
    /// of the directory) unless it is a real directory of `uid` that no one
    /// else may enter: a socket there speaks for the user's connections.
    fn at(directory: PathBuf, uid: u32) -> Result<Pool, PathBuf> {
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&directory);
        let private = std::fs::symlink_metadata(&directory).is_ok_and(|metadata| {
            metadata.is_dir() && metadata.uid() == uid && metadata.permissions().mode() & 0o077 == 0
        });
        if private { Ok(Pool { directory, uid }) } else { Err(directory) }
    }

    /// Where fresh masters make their sockets: here, so parking one is a
    /// rename within one file system.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The socket a warm master for `target` listens on.
    fn socket(&self, target: &Target) -> PathBuf {
        let mut digest = Sha256::new();
        let identity = target.identity.as_ref().map(|path| path.display().to_string()).unwrap_or_default();
        let known_hosts = target.known_hosts.as_ref().map(|path| path.display().to_string()).unwrap_or_default();
        for part in [&target.user, &target.destination, &target.port.to_string(), &identity, &known_hosts] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        let name: String = digest.finalize().iter().take(12).map(|byte| format!("{byte:02x}")).collect();
        self.directory.join(format!("{name}.sock"))
    }

    /// The warm master of `target`, proven to reach its host within the
    /// probe's time (never longer than the run's connect timeout), if
    /// there is one.
    pub async fn resume(&self, target: &Target, connect_timeout: Duration) -> Option<Resumed> {
        if target.jump.is_some() {
            return None;
        }
        let socket = self.socket(target);
        let metadata = std::fs::symlink_metadata(&socket).ok()?;
        if !metadata.file_type().is_socket() || metadata.uid() != self.uid {
            return None;
        }
        let session = Arc::new(Session::resume_mux(socket.clone().into_boxed_path(), None));
        match tokio::time::timeout(PROBE_TIMEOUT.min(connect_timeout), probe(&session)).await {
            Ok(Some(pin)) => {
                tracing::debug!(host = %target.name, "over a warm connection");
                Some(Resumed { session, pin })
            }
            _ => {
                tracing::debug!(host = %target.name, "the warm connection no longer answers: connecting afresh");
                if let Ok(session) = Arc::try_unwrap(session) {
                    let _ = session.close().await;
                }
                let _ = std::fs::remove_file(&socket);
                None
            }
        }
    }

    /// Leaves a fresh master of `target` listening for the next run.
    pub async fn park(&self, target: &Target, session: Session) {
        if target.jump.is_some() {
            let _ = session.close().await;
            return;
        }
        let (control, _log) = session.detach();
        if std::fs::rename(&control, self.socket(target)).is_err() {
            let _ = Session::resume_mux(control.clone(), None).close().await;
        }
        // The master keeps its log open; its directory is no longer needed.
        if let Some(directory) = control.parent().filter(|directory| directory.starts_with(&self.directory)) {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}

/// A session that says [`PROBED`] once it runs on the host and then waits
/// for its stdin to close.
async fn probe(session: &Arc<Session>) -> Option<openssh::Child<Arc<Session>>> {
    let mut pin = Session::to_raw_command(Arc::clone(session), format!("echo {PROBED}; exec cat >/dev/null"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .await
        .ok()?;
    let stdout = pin.stdout().take()?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    (lines.next_line().await.ok()?? == PROBED).then_some(pin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid() -> u32 {
        std::fs::metadata("/proc/self").expect("proc").uid()
    }

    #[test]
    fn only_a_private_directory_of_this_user_holds_warm_masters() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let made = scratch.path().join("made");
        assert!(Pool::at(made.clone(), uid()).is_ok(), "a missing directory is made");
        assert_eq!(std::fs::metadata(&made).expect("made").permissions().mode() & 0o777, 0o700);
        let open = scratch.path().join("open");
        std::fs::create_dir(&open).expect("dir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(Pool::at(open.clone(), uid()).err(), Some(open), "others may enter it");
        let link = scratch.path().join("link");
        std::os::unix::fs::symlink(&made, &link).expect("link");
        assert_eq!(Pool::at(link.clone(), uid()).err(), Some(link), "a link could be moved elsewhere");
        assert!(Pool::at(made.clone(), uid() + 1).is_err(), "another user's directory");
    }

    #[test]
    fn every_part_of_how_a_host_is_reached_names_its_own_master() {
        let scratch = tempfile::tempdir().expect("tempdir");
        let pool = Pool::at(scratch.path().join("pool"), uid()).expect("pool");
        let base = Target::with_defaults("web-01", "10.20.0.21".parse().expect("address"));
        let variants = [
            Target { user: "deploy".into(), ..base.clone() },
            Target { port: 2222, ..base.clone() },
            Target { destination: "web-01.example.test".into(), ..base.clone() },
            Target { identity: Some("/keys/other".into()), ..base.clone() },
            Target { known_hosts: Some("/lab/known_hosts".into()), ..base.clone() },
        ];
        let mut sockets: Vec<PathBuf> = variants.iter().map(|target| pool.socket(target)).collect();
        sockets.push(pool.socket(&base));
        assert_eq!(pool.socket(&base), pool.socket(&base.clone()), "stable across runs");
        sockets.sort();
        sockets.dedup();
        assert_eq!(sockets.len(), variants.len() + 1, "{sockets:?}");
        // A socket's address holds 108 bytes: the name must leave room for
        // the directory.
        let name = sockets[0].file_name().expect("name").len();
        assert!(name <= 32, "{sockets:?}");
    }
}

//! What to check when ssh could not connect: ssh's own words ("Connection
//! refused", "Permission denied") name the cause, and each cause has its own
//! first thing to look at. Read from the message because openssh hands back
//! ssh's stderr, not a code.

use std::time::Duration;

use super::Target;

/// The causes ssh reports that an operator fixes differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    Refused,
    TimedOut,
    NoRoute,
    UnknownName,
    LoginRefused,
    Other,
}

impl Cause {
    pub(super) fn of(message: &str) -> Cause {
        let has = |needle: &str| message.contains(needle);
        if has("Connection refused") {
            Cause::Refused
        } else if has("timed out") || has("Timeout") {
            Cause::TimedOut
        } else if has("No route to host") || has("Network is unreachable") {
            Cause::NoRoute
        } else if has("Could not resolve hostname") || has("Name or service not known") {
            Cause::UnknownName
        } else if has("Permission denied") || has("Too many authentication failures") {
            Cause::LoginRefused
        } else {
            Cause::Other
        }
    }
}

/// The hint for a failed connection to `target`: what the cause points
/// at, then the `ssh -v` command that retraces it. Nothing in it names the
/// host (ssh's message does), so hosts failing alike share one hint.
pub(super) fn hint(target: &Target, timeout: Duration, message: &str) -> String {
    let first = match Cause::of(message) {
        Cause::Refused => {
            "nothing accepts SSH where infra dials: check that sshd runs on the host and that `ssh.port` is its port"
                .to_string()
        }
        Cause::TimedOut => format!(
            "no answer within {} s: check the address and that no firewall drops SSH from here; a slow link needs `--connect-timeout SECONDS`",
            timeout.as_secs()
        ),
        Cause::NoRoute => {
            "this machine has no route to the host: check the address, or set `ssh.jump` for a host only a bastion reaches"
                .to_string()
        }
        Cause::UnknownName => {
            "the name does not resolve here: check `ssh.host` (or the alias in ~/.ssh/config)".to_string()
        }
        Cause::LoginRefused => format!(
            "the host refused the login of `{}`: check `ssh.user` and `ssh.identity` (its public key must be in that user's authorized_keys)",
            target.user
        ),
        Cause::Other => "check the address, sshd on the host and the inventory's `ssh` settings".to_string(),
    };
    format!("{first}; `{}` retraces the connection with ssh's own account", verbose_command(target))
}

/// The `ssh -v` command line that retraces infra's connection, with the
/// host left as `HOST` (what `address`, `public_address` or `ssh.host` says).
fn verbose_command(target: &Target) -> String {
    let mut command = format!("ssh -v -p {}", target.port);
    if let Some(identity) = &target.identity {
        command.push_str(&format!(" -i {}", identity.display()));
    }
    if let Some(jump) = &target.jump {
        let user = jump.user.as_ref().map_or_else(String::new, |user| format!("{user}@"));
        let port = jump.port.map_or_else(String::new, |port| format!(":{port}"));
        command.push_str(&format!(" -J {user}{}{port}", jump.destination));
    }
    command.push_str(&format!(" {}@HOST", target.user));
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            name: "web-01".into(),
            address: "10.0.0.5".parse().expect("address"),
            destination: "10.0.0.5".into(),
            user: "deploy".into(),
            port: 2222,
            identity: None,
            known_hosts: None,
            privilege: super::super::Privilege::Sudo,
            jump: Some(super::super::Jump { destination: "10.0.0.1".into(), user: None, port: None }),
        }
    }

    #[test]
    fn each_cause_is_read_from_ssh_own_words() {
        assert_eq!(Cause::of("connect to host 10.0.0.5 port 22: Connection refused"), Cause::Refused);
        assert_eq!(Cause::of("connect to host 10.0.0.5 port 22: Connection timed out"), Cause::TimedOut);
        assert_eq!(Cause::of("connect to host 10.0.0.5 port 22: No route to host"), Cause::NoRoute);
        assert_eq!(Cause::of("ssh: Could not resolve hostname web: Name or service not known"), Cause::UnknownName);
        assert_eq!(Cause::of("deploy@10.0.0.5: Permission denied (publickey)."), Cause::LoginRefused);
        assert_eq!(Cause::of("kex_exchange_identification: read: Connection reset by peer"), Cause::Other);
    }

    #[test]
    fn the_hint_retraces_the_connection_with_ssh_verbose() {
        let hint = hint(&target(), Duration::from_secs(10), "Connection timed out");
        assert!(hint.starts_with("no answer within 10 s"), "{hint}");
        assert!(hint.contains("`--connect-timeout SECONDS`"), "{hint}");
        assert!(
            hint.ends_with("`ssh -v -p 2222 -J 10.0.0.1 deploy@HOST` retraces the connection with ssh's own account"),
            "{hint}"
        );
    }
}

//! Root through `sudo -n` for hosts whose login user is not root (the
//! `admin` or `debian` user of cloud images, `become: sudo`).
//!
//! `-n` makes sudo fail rather than prompt, so a run never hangs on a
//! password nobody will type; whether sudo works is asked once per
//! connection, before any script runs, and a host where it does not is
//! refused with the sudoers line that fixes it. Scripts still travel over
//! stdin: sudo logs its command line to the journal and auth.log, and that
//! line is only ever `env SSH_CONNECTION=… sh -s`.

use std::fmt;

/// Asked once per connection; `LC_ALL=C` keeps sudo's messages in the
/// English the refusal is matched against.
pub(super) const CHECK: &str = "LC_ALL=C sudo -n -- true";

/// `sh -s` as root. sudo resets the environment, and sshd's
/// `SSH_CONNECTION` is what the firewall check and the host lock read
/// where this machine's connection comes from, so it is handed through.
pub(super) const SHELL: &str = "sudo -n -- env \"SSH_CONNECTION=$SSH_CONNECTION\" sh -s";

/// The program and arguments that run `sh -c SCRIPT` as root.
pub(super) const SH_C: [&str; 4] = ["-n", "--", "sh", "-c"];

/// Why `sudo -n true` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SudoProblem {
    /// sudo wants a password (no `NOPASSWD`).
    Password,
    /// sudo wants a terminal (`Defaults requiretty`).
    Terminal,
    /// The user is not in sudoers, or may not run this.
    NotAllowed,
    /// No sudo on the host.
    Missing,
    /// Anything else, in sudo's words.
    Other(String),
}

/// Reads sudo's refusal from its exit code and stderr.
pub fn classify(exit_code: Option<i32>, stderr: &str) -> SudoProblem {
    let said = stderr.to_ascii_lowercase();
    if said.contains("password is required") || said.contains("to read the password") || said.contains("password for") {
        SudoProblem::Password
    } else if said.contains("terminal is required") || said.contains("must have a tty") {
        SudoProblem::Terminal
    } else if said.contains("not in the sudoers file")
        || said.contains("not allowed to")
        || said.contains("may not run sudo")
    {
        SudoProblem::NotAllowed
    } else if exit_code == Some(127) || said.contains("not found") {
        SudoProblem::Missing
    } else {
        SudoProblem::Other(crate::sanitize::printable(stderr.trim()))
    }
}

/// A host where sudo does not give root without a prompt.
#[derive(Debug)]
pub struct SudoRefused {
    pub host: String,
    pub user: String,
    pub problem: SudoProblem,
}

impl fmt::Display for SudoRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (host, user) = (&self.host, &self.user);
        let what = match &self.problem {
            SudoProblem::Password => {
                format!("sudo asks `{user}` for a password on `{host}`, and infra never types one")
            }
            SudoProblem::Terminal => {
                format!("sudo on `{host}` wants a terminal (`requiretty`), and infra runs without one")
            }
            SudoProblem::NotAllowed => format!("`{user}` may not run commands as root through sudo on `{host}`"),
            SudoProblem::Missing => format!("`{host}` has no sudo, and `{user}` is not root"),
            SudoProblem::Other(said) => format!("`sudo -n true` failed for `{user}` on `{host}`: {said}"),
        };
        write!(f, "{what}; nothing was changed on the host\n\nhint: ")?;
        let line = format!("{user} ALL=(ALL:ALL) NOPASSWD: ALL");
        match self.problem {
            SudoProblem::Terminal => write!(
                f,
                "as root on `{host}`, add `Defaults:{user} !requiretty` to /etc/sudoers.d/90-infra (check with `visudo -c`)"
            ),
            SudoProblem::Missing => write!(
                f,
                "as root on `{host}`, install it (`apt-get install sudo`) and let `{user}` use it: `echo '{line}' > /etc/sudoers.d/90-infra` (check with `visudo -c`)"
            ),
            _ => write!(
                f,
                "as root on `{host}`, let `{user}` run commands as root without a password: `echo '{line}' > /etc/sudoers.d/90-infra` (check with `visudo -c`); or log in as root with `become: none`"
            ),
        }
    }
}

impl std::error::Error for SudoRefused {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_refusals_are_told_apart_by_what_sudo_says() {
        let cases = [
            (1, "sudo: a password is required\n", SudoProblem::Password),
            (1, "sudo: a terminal is required to read the password; either use the -S option", SudoProblem::Password),
            (1, "sudo: sorry, you must have a tty to run sudo\n", SudoProblem::Terminal),
            (1, "admin is not in the sudoers file.\n", SudoProblem::NotAllowed),
            (1, "Sorry, user admin may not run sudo on web-01.\n", SudoProblem::NotAllowed),
            (127, "sh: 1: sudo: not found\n", SudoProblem::Missing),
        ];
        for (code, stderr, expected) in cases {
            assert_eq!(classify(Some(code), stderr), expected, "{stderr}");
        }
        assert_eq!(classify(Some(1), "sudo: \x1b[31mboom"), SudoProblem::Other("sudo: \\u{1b}[31mboom".into()));
    }

    #[test]
    fn each_refusal_names_the_line_that_fixes_it() {
        let refusal = |problem| SudoRefused { host: "web-02".into(), user: "admin".into(), problem }.to_string();
        insta::assert_snapshot!(refusal(SudoProblem::Password));
        insta::assert_snapshot!(refusal(SudoProblem::Terminal));
        insta::assert_snapshot!(refusal(SudoProblem::Missing));
    }
}

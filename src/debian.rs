//! The operating systems infra supports on its hosts.
//!
//! Debian 13 "trixie" is the current stable release and Debian 12
//! "bookworm" the old stable one; both are targets. Facts read each host's
//! release from `/etc/os-release`, plan refuses a host on anything else
//! before changing it, and the lab boots either. A difference between the
//! two that a service needs (a package name, a config group) is written in
//! the catalog, keyed by [`Debian`].

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Debian {
    Bookworm,
    Trixie,
}

impl Debian {
    /// Every supported release, oldest first.
    pub const ALL: [Debian; 2] = [Debian::Bookworm, Debian::Trixie];
    pub const NAMES: [&'static str; 2] = ["bookworm", "trixie"];
    /// What a new lab boots and the README's main command runs on.
    pub const CURRENT_STABLE: Debian = Debian::Trixie;

    pub fn codename(self) -> &'static str {
        Debian::NAMES[self as usize]
    }

    pub fn version(self) -> &'static str {
        match self {
            Debian::Bookworm => "12",
            Debian::Trixie => "13",
        }
    }

    pub fn from_codename(codename: &str) -> Option<Debian> {
        Debian::ALL.into_iter().find(|release| release.codename() == codename)
    }

    /// The release of the machine infra runs on, from its `/etc/os-release`.
    pub fn of_this_machine() -> Option<Debian> {
        Debian::from_os_release_text(&std::fs::read_to_string("/etc/os-release").ok()?)
    }

    /// The release an `os-release` text describes.
    pub fn from_os_release_text(text: &str) -> Option<Debian> {
        let value = |key: &str| {
            text.lines().find_map(|line| line.strip_prefix(key)).map(|value| value.trim().trim_matches('"').to_string())
        };
        Debian::from_os_release(&value("ID=")?, &value("VERSION_CODENAME=")?)
    }

    /// The release `/etc/os-release` describes (its `ID` and
    /// `VERSION_CODENAME`); `None` for anything infra does not support.
    pub fn from_os_release(id: &str, codename: &str) -> Option<Debian> {
        if id == "debian" { Debian::from_codename(codename) } else { None }
    }
}

impl std::fmt::Display for Debian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Debian {} ({})", self.version(), self.codename())
    }
}

/// How long an install waits for another process's dpkg lock (a fresh
/// cloud host's unattended-upgrades run holds it for minutes) before it
/// fails.
pub const DPKG_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_debian_bookworm_and_trixie_are_supported() {
        assert_eq!(Debian::from_os_release("debian", "trixie"), Some(Debian::Trixie));
        assert_eq!(Debian::from_os_release("debian", "bookworm"), Some(Debian::Bookworm));
        assert_eq!(Debian::from_os_release("debian", "bullseye"), None);
        assert_eq!(Debian::from_os_release("ubuntu", "noble"), None);
        assert_eq!(Debian::CURRENT_STABLE.to_string(), "Debian 13 (trixie)");
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
        assert_eq!(Debian::from_os_release_text(text), Some(Debian::Bookworm));
    }
}

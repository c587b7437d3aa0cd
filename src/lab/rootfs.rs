//! The shared Debian root filesystem every lab host boots from.
//!
//! Built once with debootstrap from this machine's own apt mirror, then the
//! packages apply will install are downloaded into its apt cache, so hosts
//! later run a real `apt-get install` with no network. The directory name
//! carries a hash of everything that goes into it: a new package list builds
//! a new rootfs beside the old one, never changing one that hosts may be
//! running on (overlayfs would show them broken entries).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::system::{self, SystemError};
use crate::debian::Debian;

const INCLUDE: &str =
    "systemd,systemd-sysv,dbus,openssh-server,iproute2,python3,ca-certificates,curl,procps,iputils-ping,sudo";
/// Every package apply may install on a lab host: the catalog's (a test
/// holds them to it) and `mariadb-client`, which restore drills add.
pub const PACKAGES: [&str; 9] = [
    "haproxy",
    "keepalived",
    "nginx",
    "gunicorn",
    "python3-flask",
    "python3-pymysql",
    "mariadb-server",
    "mariadb-client",
    "nftables",
];
/// Packages cached to make a host look reused (`lab.preinstalled`:
/// apache2 already on :80).
pub const REUSED_HOST_PACKAGES: [&str; 1] = crate::inventory::LAB_PREINSTALLABLE;
/// Packages cached for app hosts to build wheels from source
/// distributions (`app.build_packages`: a compiler, Python's headers,
/// MariaDB's client library for mysqlclient), and what those wheels link
/// at run time.
pub const BUILD_PACKAGES: [&str; 5] = ["gcc", "python3-dev", "pkg-config", "libmariadb-dev", "libmariadb3"];
/// Bumped when the build steps change in a way the inputs do not show.
const RECIPE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("cannot build the lab root filesystem in `{}`", path.display())]
    Build {
        path: PathBuf,
        #[source]
        error: SystemError,
    },
    #[error("cannot find a Debian mirror in this machine's apt sources; set INFRA_LAB_MIRROR to one")]
    NoMirror,
    #[error("cannot prepare `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

/// Where the cached root filesystems live.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("INFRA_LAB_CACHE").map_or_else(|| PathBuf::from("/var/cache/infra/lab"), PathBuf::from)
}

/// The mirror to bootstrap from: `INFRA_LAB_MIRROR`, else the first Debian
/// mirror in this machine's apt sources.
pub fn mirror() -> Result<String, RootfsError> {
    if let Ok(mirror) = std::env::var("INFRA_LAB_MIRROR") {
        return Ok(mirror);
    }
    let mut sources = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|extension| extension == "sources" || extension == "list") {
                sources.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
                sources.push('\n');
            }
        }
    }
    find_mirror(&sources).ok_or(RootfsError::NoMirror)
}

/// The first `http(s)` URI of a `deb` source that is not a security or
/// updates archive, in either the one-line or the deb822 format.
fn find_mirror(sources: &str) -> Option<String> {
    sources
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let uri = line.strip_prefix("URIs:").map(str::trim).or_else(|| {
                let mut words = line.strip_prefix("deb ")?.split_whitespace().filter(|word| !word.starts_with('['));
                words.next()
            })?;
            uri.split_whitespace().next().map(str::to_string)
        })
        .find(|uri| uri.starts_with("http") && !uri.contains("security"))
}

fn key(release: Debian) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "{RECIPE_VERSION}\n{}\n{INCLUDE}\n{}\n{}\n{}",
        release.codename(),
        PACKAGES.join(","),
        REUSED_HOST_PACKAGES.join(","),
        BUILD_PACKAGES.join(",")
    ));
    hasher.finalize().iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

/// The root filesystem of `release` for the current recipe, built if it
/// is not cached. Returns its path and whether it had to be built.
pub fn ensure(release: Debian) -> Result<(PathBuf, bool), RootfsError> {
    let key = format!("{}-{}", release.codename(), key(release));
    let root = cache_dir().join(format!("rootfs-{key}"));
    if root.join("etc/os-release").is_file() {
        return Ok((root, false));
    }
    let mirror = mirror()?;
    let building = cache_dir().join(format!("rootfs-{key}.building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    std::fs::create_dir_all(&building).map_err(|error| RootfsError::Io { path: building.clone(), error })?;
    let result = build(&building, &mirror, release);
    if let Err(error) = result {
        let _ = std::fs::remove_dir_all(&building);
        return Err(RootfsError::Build { path: root, error });
    }
    std::fs::rename(&building, &root).map_err(|error| RootfsError::Io { path: root.clone(), error })?;
    Ok((root, true))
}

fn build(root: &Path, mirror: &str, release: Debian) -> Result<(), SystemError> {
    tracing::info!(%mirror, "debootstrap {} into {}", release.codename(), root.display());
    system::run(
        Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={INCLUDE}"), release.codename()])
            .arg(root)
            .arg(mirror),
    )?;
    let chroot = |args: &[&str]| {
        system::run(Command::new("chroot").arg(root).args(args).env("DEBIAN_FRONTEND", "noninteractive"))
    };
    chroot(&["apt-get", "update", "-qq"])?;
    let mut download = vec!["apt-get", "install", "-y", "-qq", "--download-only"];
    download.extend(PACKAGES);
    download.extend(REUSED_HOST_PACKAGES);
    download.extend(BUILD_PACKAGES);
    chroot(&download)?;
    // Each host gets its own SSH host keys and machine id at boot time.
    for entry in std::fs::read_dir(root.join("etc/ssh"))
        .map_err(|error| SystemError::Write { path: root.join("etc/ssh"), error })?
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    system::write(root.join("etc/machine-id"), "")?;
    // The host's resolv.conf points at a nameserver lab hosts cannot reach.
    let _ = std::fs::remove_file(root.join("etc/resolv.conf"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mirror_in_both_source_formats() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\nURIs: http://mirror.example/debian-security\n";
        assert_eq!(find_mirror(deb822).as_deref(), Some("http://mirror.example/debian"));
        let one_line = "deb [arch=amd64] http://mirror.example/debian bookworm main\n";
        assert_eq!(find_mirror(one_line).as_deref(), Some("http://mirror.example/debian"));
    }

    /// Lab hosts have no route out: a package the catalog installs that is
    /// not in the lab's cache would fail the first apply on the lab only.
    #[test]
    fn the_lab_caches_every_package_the_catalog_installs() {
        let missing: Vec<&str> = crate::catalog::SERVICES
            .iter()
            .flat_map(|service| service.packages.iter().copied())
            .filter(|package| !PACKAGES.contains(package))
            .collect();
        assert!(missing.is_empty(), "add these to lab::rootfs::PACKAGES: {missing:?}");
    }
}

//! Wheelhouses: the wheels a release's requirements need, for one host
//! Python and machine, downloaded once on this machine (`pip download`,
//! binary wheels only) and kept in a cache, then handed to apply as a tar
//! that travels to the hosts over SSH. Hosts install from it with
//! `--no-index`: they never need the internet. pip, not uv: it is on every
//! machine with Python, it runs on the hosts from its own wheel (so hosts
//! need no Debian package beyond `python3`), and its `download` fetches for
//! another Python and platform; uv installs faster, but has no download.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum WheelsError {
    #[error("cannot run `{program}` on this machine to fetch the app's wheels")]
    Spawn {
        program: String,
        #[source]
        error: std::io::Error,
    },
    #[error("`pip download` could not fetch wheels for Python {python} on {arch}:\n{stderr}")]
    Download { python: String, arch: String, stderr: String },
    #[error("cannot use the wheel cache `{}`", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

/// The manylinux platforms every supported Debian release runs (glibc
/// 2.36 on bookworm, 2.41 on trixie), newest first, and pure wheels.
const MANYLINUX: [&str; 8] = [
    "manylinux_2_35",
    "manylinux_2_34",
    "manylinux_2_31",
    "manylinux_2_28",
    "manylinux_2_27",
    "manylinux_2_24",
    "manylinux_2_17",
    "manylinux2014",
];

/// Where downloaded wheelhouses are kept between runs.
fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    base.unwrap_or_else(std::env::temp_dir).join("infra/wheels")
}

/// The wheelhouse `key` (see `PackagesPlan::wheelhouse_key`) for
/// `requirements`, as a tar archive; downloaded unless cached.
pub fn wheelhouse(key: &str, requirements: &str, python: &str, arch: &str) -> Result<Vec<u8>, WheelsError> {
    let directory = cache_root().join(key);
    if !directory.join(".complete").exists() {
        download(&directory, requirements, python, arch)?;
    }
    let output = Command::new("tar")
        .arg("-C")
        .arg(&directory)
        .args(["--exclude", ".complete", "--exclude", "requirements.txt", "-cf", "-", "."])
        .output()
        .map_err(|error| WheelsError::Spawn { program: "tar".into(), error })?;
    Ok(output.stdout)
}

fn download(directory: &Path, requirements: &str, python: &str, arch: &str) -> Result<(), WheelsError> {
    let cache = |error| WheelsError::Cache { path: directory.to_path_buf(), error };
    let _ = std::fs::remove_dir_all(directory);
    std::fs::create_dir_all(directory).map_err(cache)?;
    let file = directory.join("requirements.txt");
    std::fs::write(&file, requirements).map_err(cache)?;
    let abi = format!("cp{}", python.replace('.', ""));
    let mut command = Command::new("python3");
    command
        .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"])
        .args(["--python-version", python, "--implementation", "cp", "--abi", &abi, "--abi", "abi3", "--abi", "none"])
        .arg("--dest")
        .arg(directory)
        .arg("-r")
        .arg(&file)
        .arg("pip");
    for platform in MANYLINUX {
        command.args(["--platform", &format!("{platform}_{arch}")]);
    }
    command.args(["--platform", "any"]);
    let output = command.output().map_err(|error| WheelsError::Spawn { program: "python3 -m pip".into(), error })?;
    if !output.status.success() {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if stderr.contains("No module named pip") {
            stderr.push_str("\n\nhint: install pip on this machine (`apt-get install python3-pip` on Debian): infra downloads the app's wheels with it");
        }
        return Err(WheelsError::Download { python: python.into(), arch: arch.into(), stderr });
    }
    std::fs::write(directory.join(".complete"), "").map_err(cache)
}

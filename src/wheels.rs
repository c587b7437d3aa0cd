//! Wheelhouses: the wheels a release's requirements need, for one host
//! Python and machine, downloaded once on this machine (`pip download`,
//! binary wheels only, so no distribution's code runs here; one published
//! only as source goes in as its source distribution, fetched as a file
//! ([`crate::sdist`]) with the wheels its build needs, and is built on
//! each app host, which caches the wheel) and kept in a cache, then
//! handed to apply as a tar
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
    #[error("`pip download` could not reach the package index from this machine: {problem}\n\npip said:\n{stderr}")]
    Unreachable { problem: &'static str, stderr: String },
    #[error("`{requirement}` has no wheel for the hosts, and its source distribution cannot be used: {error}")]
    Source {
        requirement: String,
        #[source]
        error: crate::sdist::SdistError,
    },
    #[error(
        "`{requirement}` has no wheel for the hosts, and another distribution depends on it: pin a version with wheels, or name it in the requirements file pinned (`NAME==VERSION`) so infra builds it on the hosts"
    )]
    Dependency { requirement: String },
    #[error("{}", no_wheels_report(refused, python, arch))]
    NoWheels { refused: Vec<(String, WheelsError)>, python: String, arch: String },
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
    let base = base.unwrap_or_else(std::env::temp_dir);
    // Absolute: pip runs in a directory of its own (see `pip_download`).
    // `wheelhouses`, not the `wheels` of infra before source distributions
    // went to the hosts: those hold wheels built on this machine.
    std::path::absolute(&base).unwrap_or(base).join("infra/wheelhouses")
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
        .args(["--exclude", ".complete", "--exclude", "requirements.txt", "--exclude", "build-requirements.in"])
        .args(["-cf", "-", "."])
        .output()
        .map_err(|error| WheelsError::Spawn { program: "tar".into(), error })?;
    Ok(output.stdout)
}

fn download(directory: &Path, requirements: &str, python: &str, arch: &str) -> Result<(), WheelsError> {
    let cache = |error| WheelsError::Cache { path: directory.to_path_buf(), error };
    let _ = std::fs::remove_dir_all(directory);
    let sources = directory.join(SOURCES);
    std::fs::create_dir_all(&sources).map_err(cache)?;
    let file = directory.join("requirements.txt");
    // pip stops at the first distribution without a fitting wheel: each
    // round fetches that one's source distribution, takes it out of the
    // file (its own requirements in) and asks again. One that cannot be
    // fetched is noted and taken out too, so the next round finds the
    // next: every one is reported at once.
    let (mut text, mut tried, mut refused) = (requirements.to_string(), Vec::new(), Vec::new());
    let mut build_requires: Vec<String> = Vec::new();
    loop {
        std::fs::write(&file, &text).map_err(cache)?;
        let stderr = match pip_download(directory, &file, python, arch)? {
            None => break,
            Some(stderr) => stderr,
        };
        // pip ends a failed fetch with "No matching distribution" too: a
        // network failure must not read as a packaging one.
        if let Some(problem) = network_problem(&stderr) {
            return Err(WheelsError::Unreachable { problem, stderr });
        }
        let Some(requirement) = sdist_only(&stderr).filter(|requirement| !tried.contains(requirement)) else {
            if refused.is_empty() {
                return Err(download_error(stderr, python, arch));
            }
            break;
        };
        tried.push(requirement.clone());
        let Some(rest) = crate::requirements::without(&text, &distribution_name(&requirement)) else {
            refused.push((requirement.clone(), WheelsError::Dependency { requirement }));
            break;
        };
        text = rest;
        match fetch_source(&requirement, &sources) {
            Ok(fetched) => {
                for line in fetched.requires {
                    text.push_str(&format!("\n{line}\n"));
                }
                build_requires.extend(fetched.build_requires);
            }
            Err(error) => refused.push((requirement.clone(), WheelsError::Source { requirement, error })),
        }
    }
    if !refused.is_empty() {
        return Err(WheelsError::NoWheels { refused, python: python.into(), arch: arch.into() });
    }
    if !build_requires.is_empty() {
        // What the hosts' builds install first, from the same wheelhouse.
        build_requires.sort();
        build_requires.dedup();
        let build_file = directory.join("build-requirements.in");
        std::fs::write(&build_file, build_requires.join("\n") + "\n").map_err(cache)?;
        std::fs::write(sources.join(BUILD_REQUIREMENTS), build_requires.join("\n") + "\n").map_err(cache)?;
        if let Some(stderr) = pip_download(directory, &build_file, python, arch)? {
            return Err(download_error(stderr, python, arch));
        }
    }
    std::fs::write(directory.join(".complete"), "").map_err(cache)
}

/// The directory of a wheelhouse with the source distributions app hosts
/// build, and the file in it of what their builds need.
pub const SOURCES: &str = "sources";
pub const BUILD_REQUIREMENTS: &str = "build-requirements.txt";

/// The source distribution of a pinned `requirement`, into `sources`.
fn fetch_source(requirement: &str, sources: &Path) -> Result<crate::sdist::Fetched, crate::sdist::SdistError> {
    let (name, version) = crate::sdist::pinned(requirement).ok_or(crate::sdist::SdistError::NotPinned)?;
    crate::sdist::fetch(&name, &version, sources)
}

/// One `pip download` of binary wheels for the host's Python and machine;
/// `Some(stderr)` when it fails.
fn pip_download(
    directory: &Path,
    requirements: &Path,
    python: &str,
    arch: &str,
) -> Result<Option<String>, WheelsError> {
    let abi = format!("cp{}", python.replace('.', ""));
    let mut command = Command::new("python3");
    command
        .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"])
        .args(["--python-version", python, "--implementation", "cp", "--abi", &abi, "--abi", "abi3", "--abi", "none"])
        .arg("--dest")
        .arg(directory)
        .arg("-r")
        .arg(requirements)
        .arg("pip");
    for platform in MANYLINUX {
        command.args(["--platform", &format!("{platform}_{arch}")]);
    }
    command.args(["--platform", "any"]);
    // In an empty directory: pip reads a name that is also a local path
    // (`./app`) as that path, and would build it here.
    let empty = tempfile::tempdir().map_err(|error| WheelsError::Cache { path: directory.to_path_buf(), error })?;
    command.current_dir(empty.path());
    let output = command.output().map_err(|error| WheelsError::Spawn { program: "python3 -m pip".into(), error })?;
    Ok((!output.status.success()).then(|| String::from_utf8_lossy(&output.stderr).trim().to_string()))
}

fn download_error(mut stderr: String, python: &str, arch: &str) -> WheelsError {
    if stderr.contains("No module named pip") {
        stderr.push_str("\n\nhint: install pip on this machine (`apt-get install python3-pip` on Debian): infra downloads the app's wheels with it");
    }
    WheelsError::Download { python: python.into(), arch: arch.into(), stderr }
}

/// A requirement's distribution name, normalised (`MySQLclient` of
/// `MySQLclient[x]==2.2.4`).
fn distribution_name(requirement: &str) -> String {
    let name =
        requirement.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).next().unwrap_or_default();
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// Every distribution that has no wheel infra can use, each with why, and
/// what to do about them.
fn no_wheels_report(refused: &[(String, WheelsError)], python: &str, arch: &str) -> String {
    let mut report = format!(
        "{} of the app's requirements {} no wheel for Python {python} on {arch} that infra can use:",
        refused.len(),
        if refused.len() == 1 { "has" } else { "have" }
    );
    for (requirement, error) in refused {
        let why = match error {
            WheelsError::Source { error, .. } => format!("its source distribution cannot be used: {error}"),
            WheelsError::Dependency { .. } => "another distribution depends on it, and infra builds only the requirements the file names pinned (`NAME==VERSION`)".to_string(),
            other => other.to_string(),
        };
        report.push_str(&format!("\n  - {requirement}: {why}"));
    }
    report.push_str("\n\nhint: a distribution without a wheel for the hosts is built on each app host from its source distribution, fetched from the index: pin it (`NAME==VERSION`) in the requirements file, and name what its build needs in `app.build_packages` (`[gcc, python3-dev, pkg-config, libmariadb-dev]` for mysqlclient) and what it needs at run time in `app.packages`; or pin a version that publishes manylinux wheels");
    report
}

/// What kept pip from the index, in words with the fix, when its error
/// says it never got an answer: a certificate this machine does not trust
/// (a proxy that intercepts TLS), or no connection at all.
fn network_problem(stderr: &str) -> Option<&'static str> {
    const CERTIFICATE: [&str; 3] =
        ["CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "problem confirming the ssl certificate"];
    const CONNECTION: [&str; 7] = [
        "Failed to establish a new connection",
        "Temporary failure in name resolution",
        "Name or service not known",
        "Network is unreachable",
        "Connection refused",
        "Read timed out",
        "ProxyError",
    ];
    if CERTIFICATE.iter().any(|sign| stderr.contains(sign)) {
        return Some(
            "its TLS certificate is not one this machine trusts (a proxy that intercepts TLS?): give pip the proxy's CA with `PIP_CERT=/path/to/ca.pem` (or `pip config set global.cert /path/to/ca.pem`), or install it in this machine's trust store",
        );
    }
    CONNECTION.iter().any(|sign| stderr.contains(sign)).then_some(
        "no connection: check this machine's network and proxy settings (`HTTPS_PROXY`), or point pip at a mirror it can reach (`PIP_INDEX_URL`)",
    )
}

/// The requirement pip found no wheel for (`docopt==0.6.2` of `No
/// matching distribution found for docopt==0.6.2`): perhaps one published
/// only as source.
fn sdist_only(stderr: &str) -> Option<String> {
    let requirement = stderr.lines().find_map(|line| line.split("No matching distribution found for ").nth(1))?.trim();
    let plausible = !requirement.is_empty()
        && !requirement.starts_with('-')
        && requirement.chars().all(|c| c.is_ascii_alphanumeric() || "-_.[],=<>!~*+ ".contains(c));
    plausible.then(|| requirement.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requirement_without_a_wheel_is_read_from_pips_error() {
        let stderr = "ERROR: Could not find a version that satisfies the requirement docopt==0.6.2 (from versions: none)\nERROR: No matching distribution found for docopt==0.6.2";
        assert_eq!(sdist_only(stderr).as_deref(), Some("docopt==0.6.2"));
        assert_eq!(sdist_only("ERROR: No matching distribution found for --evil"), None);
        assert_eq!(sdist_only("ERROR: network unreachable"), None);
    }

    /// Issue 27: every distribution without a usable wheel is named in
    /// one report, each with its reason.
    #[test]
    fn every_distribution_without_a_wheel_is_reported_at_once() {
        let refused = vec![
            (
                "mysqlclient>=2".to_string(),
                WheelsError::Source {
                    requirement: "mysqlclient>=2".into(),
                    error: crate::sdist::SdistError::NotPinned,
                },
            ),
            (
                "lxml==4.9.1".to_string(),
                WheelsError::Source {
                    requirement: "lxml==4.9.1".into(),
                    error: crate::sdist::SdistError::NotOnIndex { version: "4.9.1".into() },
                },
            ),
            ("cffi>=1".to_string(), WheelsError::Dependency { requirement: "cffi>=1".into() }),
        ];
        let error = WheelsError::NoWheels { refused, python: "3.13".into(), arch: "x86_64".into() };
        insta::assert_snapshot!(error.to_string());
        assert_eq!(distribution_name("MySQLclient[x]==2.2.4"), "mysqlclient");
    }

    /// Issue 27: behind a TLS-intercepting proxy pip still ends with "No
    /// matching distribution found", which read as a missing wheel.
    #[test]
    fn a_certificate_or_connection_failure_is_named_as_such() {
        let proxy = "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in certificate chain (_ssl.c:1000)'))': /simple/flask/\nERROR: Could not find a version that satisfies the requirement Flask==3.1.0 (from versions: none)\nERROR: No matching distribution found for Flask==3.1.0";
        assert!(network_problem(proxy).is_some_and(|problem| problem.contains("PIP_CERT")));
        let offline = "WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/flask/\nERROR: No matching distribution found for Flask==3.1.0";
        assert!(network_problem(offline).is_some_and(|problem| problem.contains("HTTPS_PROXY")));
        let missing = "ERROR: Could not find a version that satisfies the requirement docopt==0.6.2 (from versions: none)\nERROR: No matching distribution found for docopt==0.6.2";
        assert_eq!(network_problem(missing), None, "a real missing wheel is not a network failure");
        let error =
            WheelsError::Unreachable { problem: network_problem(proxy).expect("a problem"), stderr: proxy.into() };
        insta::assert_snapshot!(error.to_string());
    }
}

//! Wheelhouses: the wheels a release's requirements need, for one host
//! Python and machine, downloaded once on this machine (`pip download`,
//! binary wheels only; a pure-Python distribution published only as source
//! is built into a wheel here, once, and found like the others) and kept
//! in a cache, then handed to apply as a tar
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
    #[error("`{requirement}` has no wheel, and building one from its source failed:\n{stderr}")]
    Build { requirement: String, stderr: String },
    #[error(
        "`{requirement}` has no wheel for Python {python} on {arch}, and its source builds one for this machine's platform only: pin a version with wheels for the hosts (building on a host of their platform is not supported yet)"
    )]
    NotPure { requirement: String, python: String, arch: String },
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
    std::path::absolute(&base).unwrap_or(base).join("infra/wheels")
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
    let built = cache_root().join("built");
    std::fs::create_dir_all(&built).map_err(|error| WheelsError::Cache { path: built.clone(), error })?;
    // pip stops at the first distribution without a fitting wheel: each
    // round builds that one (when it is pure Python) and asks again. One
    // that cannot be built is noted and taken out of the file, so the next
    // round finds the next: every one is reported at once.
    let (mut text, mut tried, mut refused) = (requirements.to_string(), Vec::new(), Vec::new());
    loop {
        std::fs::write(&file, &text).map_err(cache)?;
        let stderr = match pip_download(directory, &file, &built, python, arch)? {
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
        match build_pure_wheel(&requirement, &built, python, arch) {
            Ok(()) => {}
            Err(error @ (WheelsError::Build { .. } | WheelsError::NotPure { .. })) => {
                let rest = crate::requirements::without(&text, &distribution_name(&requirement));
                refused.push((requirement, error));
                match rest {
                    Some(rest) => text = rest,
                    // Another distribution's dependency: the file cannot go on without it.
                    None => break,
                }
            }
            Err(error) => return Err(error),
        }
    }
    if !refused.is_empty() {
        return Err(WheelsError::NoWheels { refused, python: python.into(), arch: arch.into() });
    }
    std::fs::write(directory.join(".complete"), "").map_err(cache)
}

/// One `pip download` of binary wheels for the host's Python and machine,
/// also finding the wheels built here; `Some(stderr)` when it fails.
fn pip_download(
    directory: &Path,
    requirements: &Path,
    built: &Path,
    python: &str,
    arch: &str,
) -> Result<Option<String>, WheelsError> {
    let abi = format!("cp{}", python.replace('.', ""));
    let mut command = Command::new("python3");
    command
        .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:"])
        .args(["--python-version", python, "--implementation", "cp", "--abi", &abi, "--abi", "abi3", "--abi", "none"])
        .arg("--find-links")
        .arg(built)
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
            WheelsError::NotPure { .. } => "its source builds a wheel for this machine's platform only".to_string(),
            WheelsError::Build { stderr, .. } => {
                format!(
                    "building one from its source failed here: {}",
                    crate::sanitize::printable(&build_cause(stderr))
                )
            }
            other => other.to_string(),
        };
        report.push_str(&format!("\n  - {requirement}: {why}"));
    }
    report.push_str("\n\nhint: pin versions that publish manylinux wheels for the hosts' Python, or use a pure-Python alternative (PyMySQL for mysqlclient); distributions that compile are not built on the hosts yet");
    report
}

/// The line of a failed build that says why: the build's own exception
/// (`Exception: Can not find valid pkg-config name.`), not pip's framing
/// around it; else its last line.
fn build_cause(stderr: &str) -> String {
    let framing =
        ["subprocess-exited-with-error", "originates from a subprocess", "metadata-generation-failed", "See above"];
    let lines: Vec<&str> = stderr
        .lines()
        .map(|line| line.trim_start_matches(|c: char| c.is_whitespace() || "│╰─>".contains(c)).trim_end())
        .filter(|line| !line.is_empty())
        .collect();
    let cause = lines.iter().rev().find(|line| {
        (line.contains("Exception:") || line.contains("Error:") || line.starts_with("error:"))
            && !framing.iter().any(|frame| line.contains(frame))
    });
    cause.or(lines.last()).map_or_else(String::new, |line| line.to_string())
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

/// Builds `requirement` from its source distribution on this machine into
/// `built`, once for every later release and host: only a pure-Python
/// wheel (`-none-any`) fits every host; one that compiles for a platform
/// is refused, as it would have to be built on a host of that platform.
fn build_pure_wheel(requirement: &str, built: &Path, python: &str, arch: &str) -> Result<(), WheelsError> {
    let name =
        requirement.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).next().unwrap_or_default();
    let scratch = tempfile::tempdir().map_err(|error| WheelsError::Cache { path: built.to_path_buf(), error })?;
    let output = Command::new("python3")
        .args(["-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps", "--no-binary", name])
        .arg("--wheel-dir")
        .arg(scratch.path())
        .arg(requirement)
        .current_dir(scratch.path())
        .output()
        .map_err(|error| WheelsError::Spawn { program: "python3 -m pip".into(), error })?;
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if !output.status.success() {
        return Err(WheelsError::Build { requirement: requirement.into(), stderr });
    }
    let wheels: Vec<PathBuf> = std::fs::read_dir(scratch.path())
        .map_err(|error| WheelsError::Cache { path: scratch.path().to_path_buf(), error })?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    let pure = |path: &PathBuf| path.to_string_lossy().ends_with("-none-any.whl");
    match wheels.as_slice() {
        [wheel] if pure(wheel) => {
            let target = built.join(wheel.file_name().unwrap_or_default());
            std::fs::copy(wheel, &target).map_err(|error| WheelsError::Cache { path: target.clone(), error })?;
            Ok(())
        }
        _ => Err(WheelsError::NotPure { requirement: requirement.into(), python: python.into(), arch: arch.into() }),
    }
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
                "mysqlclient==2.2.4".to_string(),
                WheelsError::Build {
                    requirement: "mysqlclient==2.2.4".into(),
                    stderr: "error: subprocess-exited-with-error\n\n  Exception: Can not find valid pkg-config name.\n  Specify MYSQLCLIENT_CFLAGS and MYSQLCLIENT_LDFLAGS env vars manually\n".into(),
                },
            ),
            (
                "lxml==4.9.1".to_string(),
                WheelsError::NotPure { requirement: "lxml==4.9.1".into(), python: "3.13".into(), arch: "x86_64".into() },
            ),
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

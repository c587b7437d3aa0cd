//! Source distributions, for requirements published without a wheel that
//! fits the hosts: fetched from the package index as files (its JSON
//! simple API, PEP 691, and a checked SHA-256), and read as data (their
//! `PKG-INFO` and `pyproject.toml`, for their dependencies and build
//! requirements). Nothing of them runs on this machine: `pip download`
//! and `pip wheel` would run a source distribution's build backend here
//! to learn its metadata, and a requirements file comes from whoever
//! wrote the app. They are built on an app host, which runs the app's code
//! anyway (see `apply::steps::packages`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum SdistError {
    #[error("it is not pinned to one version (`NAME==VERSION`), which a build on the hosts needs")]
    NotPinned,
    #[error("the index has no source distribution (`.tar.gz`) of version {version} either")]
    NotOnIndex { version: String },
    #[error("fetching `{url}` failed: {stderr}")]
    Fetch { url: String, stderr: String },
    #[error("the file fetched from `{url}` does not have the SHA-256 the index lists")]
    Digest { url: String },
    #[error("the index's answer is not the JSON of PEP 691: {0}")]
    Index(String),
    #[error("cannot run `curl` on this machine to fetch source distributions")]
    Spawn(#[source] std::io::Error),
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("its `{file}` names a requirement infra refuses: `{line}`")]
    Requirement { file: &'static str, line: String },
}

/// A source distribution fetched into a wheelhouse.
#[derive(Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Its file name, `NAME-VERSION.tar.gz`, as the index has it.
    pub file: String,
    /// What it needs at run time (`Requires-Dist` of `PKG-INFO`).
    pub requires: Vec<String>,
    /// What building it needs (`[build-system] requires`), setuptools when
    /// it has no `pyproject.toml`.
    pub build_requires: Vec<String>,
}

/// The largest source distribution fetched, and the largest metadata file read.
const MAX_ARCHIVE: u64 = 64 << 20;
const MAX_METADATA: u64 = 1 << 20;

/// `NAME==VERSION` of a requirement pinned to one version, else `None`.
pub fn pinned(requirement: &str) -> Option<(String, String)> {
    let (name, version) = requirement.split_once("==")?;
    let (name, version) = (name.trim(), version.trim());
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let version_ok = !version.is_empty() && version.bytes().all(|b| b.is_ascii_alphanumeric() || b".+!-_".contains(&b));
    (name_ok && version_ok).then(|| (name.to_string(), version.to_string()))
}

/// PEP 503's normalized name: lowercase, each run of `-`, `_`, `.` one `-`.
pub fn normalize(name: &str) -> String {
    let mut normalized = String::with_capacity(name.len());
    for character in name.chars() {
        if "-_.".contains(character) {
            if !normalized.ends_with('-') {
                normalized.push('-');
            }
        } else {
            normalized.push(character.to_ascii_lowercase());
        }
    }
    normalized
}

/// Fetches the source distribution of `name` `version` into `directory`
/// and reads what it needs.
pub fn fetch(name: &str, version: &str, directory: &Path) -> Result<Fetched, SdistError> {
    let index = std::env::var("PIP_INDEX_URL").unwrap_or_else(|_| "https://pypi.org/simple".to_string());
    let page = format!("{}/{}/", index.trim_end_matches('/'), normalize(name));
    let answer = curl(&page, Some("application/vnd.pypi.simple.v1+json"), None)?;
    let (file, url, sha256) = pick(&answer, &page, name, version)?;
    let path = directory.join(&file);
    curl(&url, None, Some(&path))?;
    let bytes = std::fs::read(&path).map_err(|error| SdistError::Write { path: path.clone(), error })?;
    if crate::facts::sha256_hex(&bytes) != sha256 {
        let _ = std::fs::remove_file(&path);
        return Err(SdistError::Digest { url });
    }
    let stem = file.trim_end_matches(".tar.gz");
    let pkg_info = member(&path, &format!("{stem}/PKG-INFO")).unwrap_or_default();
    let pyproject = member(&path, &format!("{stem}/pyproject.toml"));
    let requires = checked(requires_dist(&pkg_info), "PKG-INFO")?;
    let build_requires = checked(build_requires(pyproject.as_deref()), "pyproject.toml")?;
    Ok(Fetched { file, requires, build_requires })
}

/// Requirement lines as infra's own parser accepts them: no option, URL
/// or path that would make pip fetch or build something else.
fn checked(lines: Vec<String>, file: &'static str) -> Result<Vec<String>, SdistError> {
    for line in &lines {
        if crate::requirements::parse(line).is_err() {
            return Err(SdistError::Requirement { file, line: crate::sanitize::printable(line) });
        }
    }
    Ok(lines)
}

/// The `.tar.gz` of `version` on a PEP 691 project page: its file name,
/// absolute URL and SHA-256.
fn pick(answer: &[u8], page: &str, name: &str, version: &str) -> Result<(String, String, String), SdistError> {
    let json: serde_json::Value =
        serde_json::from_slice(answer).map_err(|error| SdistError::Index(error.to_string()))?;
    let files = json["files"].as_array().ok_or_else(|| SdistError::Index("no `files` list".into()))?;
    let wanted = |file: &str| {
        let Some(stem) = file.strip_suffix(".tar.gz") else { return false };
        let Some((file_name, file_version)) = stem.rsplit_once('-') else { return false };
        normalize(file_name) == normalize(name) && file_version == version
    };
    let safe = |file: &str| file.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+!".contains(&b));
    let found = files.iter().find(|entry| entry["filename"].as_str().is_some_and(|file| wanted(file) && safe(file)));
    let entry = found.ok_or_else(|| SdistError::NotOnIndex { version: version.to_string() })?;
    let (Some(file), Some(url), Some(sha256)) =
        (entry["filename"].as_str(), entry["url"].as_str(), entry["hashes"]["sha256"].as_str())
    else {
        return Err(SdistError::Index("a file without its URL or SHA-256".into()));
    };
    let url = url.split('#').next().unwrap_or_default();
    Ok((file.to_string(), absolute(page, url), sha256.to_ascii_lowercase()))
}

/// `url` as the index wrote it, resolved against its `page`.
fn absolute(page: &str, url: &str) -> String {
    if url.starts_with("https://") || url.starts_with("http://") {
        return url.to_string();
    }
    let origin_end = page.find("://").map_or(0, |scheme| scheme + 3);
    let origin = &page[..page[origin_end..].find('/').map_or(page.len(), |path| origin_end + path)];
    if url.starts_with('/') { format!("{origin}{url}") } else { format!("{page}{url}") }
}

/// One GET with curl (this machine's proxy settings, pip's CA file when
/// `PIP_CERT` names one): the body, or written to `to`.
fn curl(url: &str, accept: Option<&str>, to: Option<&Path>) -> Result<Vec<u8>, SdistError> {
    let mut command = Command::new("curl");
    command.args(["-fsSL", "--proto", "=https,http", "--max-time", "300", "--max-filesize"]);
    command.arg(MAX_ARCHIVE.to_string());
    if let Some(accept) = accept {
        command.args(["-H", &format!("Accept: {accept}")]);
    }
    if let Some(certificate) = std::env::var_os("PIP_CERT") {
        command.arg("--cacert").arg(certificate);
    }
    if let Some(to) = to {
        command.arg("-o").arg(to);
    }
    let output = command.arg("--").arg(url).output().map_err(SdistError::Spawn)?;
    if !output.status.success() {
        let stderr = crate::sanitize::printable(String::from_utf8_lossy(&output.stderr).trim());
        return Err(SdistError::Fetch { url: url.to_string(), stderr });
    }
    Ok(output.stdout)
}

/// One member of a `.tar.gz`, at most [`MAX_METADATA`] bytes, written to
/// no file: GNU tar prints it.
fn member(archive: &Path, name: &str) -> Option<String> {
    let mut child = Command::new("tar")
        .arg("-xzOf")
        .arg(archive)
        .arg("--")
        .arg(name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut text = String::new();
    let read = child.stdout.take()?.take(MAX_METADATA).read_to_string(&mut text);
    let _ = child.kill();
    let status = child.wait().ok()?;
    (read.is_ok() && (status.success() || text.len() as u64 == MAX_METADATA)).then_some(text)
}

/// `Requires-Dist` of `PKG-INFO` (headers before the first blank line),
/// without those of an extra: `name>=1; marker`, as pip reads them.
pub fn requires_dist(pkg_info: &str) -> Vec<String> {
    pkg_info
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.strip_prefix("Requires-Dist:"))
        .map(str::trim)
        .filter(|requirement| requirement.split_once(';').is_none_or(|(_, marker)| !marker.contains("extra")))
        .map(|requirement| {
            // `name (>=1.0)`: the old spelling of `name>=1.0`.
            requirement.replacen(" (", "", 1).replacen(')', "", 1)
        })
        .collect()
}

/// `[build-system] requires` of a `pyproject.toml`; what pip assumes
/// without one (or without the table): setuptools.
pub fn build_requires(pyproject: Option<&str>) -> Vec<String> {
    let legacy = vec!["setuptools>=40.8.0".to_string()];
    let Some(text) = pyproject else { return legacy };
    let Ok(table) = text.parse::<toml::Table>() else { return legacy };
    let Some(requires) = table.get("build-system").and_then(|system| system.get("requires")) else { return legacy };
    requires
        .as_array()
        .map_or(legacy, |items| items.iter().filter_map(|item| item.as_str()).map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_requirement_and_its_normalized_name() {
        assert_eq!(pinned("mysqlclient==2.2.7"), Some(("mysqlclient".into(), "2.2.7".into())));
        assert_eq!(pinned("mysqlclient>=2"), None);
        assert_eq!(pinned("x==1; rm -rf /"), None);
        assert_eq!(normalize("Django_Q2..x"), "django-q2-x");
    }

    #[test]
    fn the_index_page_gives_the_source_distribution_of_the_version() {
        let page = "https://pypi.org/simple/mysqlclient/";
        let answer = br#"{"meta": {"api-version": "1.1"}, "files": [
            {"filename": "mysqlclient-2.2.7-cp313-cp313-win_amd64.whl", "url": "https://files/x.whl", "hashes": {"sha256": "aa"}},
            {"filename": "mysqlclient-2.2.6.tar.gz", "url": "https://files/6.tar.gz", "hashes": {"sha256": "bb"}},
            {"filename": "mysqlclient-2.2.7.tar.gz", "url": "/packages/7.tar.gz#sha256=cc", "hashes": {"sha256": "CC"}}]}"#;
        let (file, url, sha256) = pick(answer, page, "MySQLclient", "2.2.7").unwrap();
        assert_eq!(
            (file.as_str(), url.as_str(), sha256.as_str()),
            ("mysqlclient-2.2.7.tar.gz", "https://pypi.org/packages/7.tar.gz", "cc")
        );
        assert!(matches!(pick(answer, page, "mysqlclient", "9.9"), Err(SdistError::NotOnIndex { .. })));
        let hostile = br#"{"files": [{"filename": "../x-1.tar.gz", "url": "https://f", "hashes": {"sha256": "a"}}]}"#;
        assert!(pick(hostile, page, "x", "1").is_err(), "a file name that is not a plain one is never used");
        assert_eq!(
            absolute(page, "../../packages/a.tar.gz"),
            "https://pypi.org/simple/mysqlclient/../../packages/a.tar.gz"
        );
    }

    #[test]
    fn build_and_run_time_requirements_are_read_as_data() {
        let pyproject = "[build-system]\nrequires = [\n  \"setuptools>=61\",\n  'wheel',\n]\nbuild-backend = \"setuptools.build_meta\"\n";
        assert_eq!(build_requires(Some(pyproject)), ["setuptools>=61", "wheel"]);
        assert_eq!(build_requires(None), ["setuptools>=40.8.0"]);
        assert_eq!(build_requires(Some("[project]\nname = 'x'\n")), ["setuptools>=40.8.0"]);
        let pkg_info = "Metadata-Version: 2.1\nName: x\nRequires-Dist: six (>=1.0)\nRequires-Dist: pytest; extra == \"test\"\n\nRequires-Dist: body\n";
        assert_eq!(requires_dist(pkg_info), ["six>=1.0"]);
        assert!(checked(vec!["--index-url https://evil".into()], "PKG-INFO").is_err());
        assert!(checked(vec!["./local".into()], "PKG-INFO").is_err());
    }
}

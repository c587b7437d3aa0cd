//! A release's static files (`app.static`): taken from the release, or
//! built by its own commands on one app host (`collectstatic`), then
//! published to every web host as `STATIC_ROOT/ID/`, before the first app
//! host switches to the release. Each release's files are served at their
//! own URL (`/static/ID/`, which the app reads as `STATIC_URL`), so during
//! a rolling switch the old release's pages and the new one's both find
//! theirs, a rollback finds the old files where they were, and a file the
//! new release deleted is gone from its URL. They are removed from the web
//! hosts with the release.
//!
//! What an app host sends back after a build is data: a listing parsed
//! here with bounds on every part, never a tar unpacked as it came, so a
//! compromised app host can put no file outside its release's directory
//! on a web host, nor anything but plain files in it.

use std::sync::Arc;

use base64::Engine;

use crate::transport::{Connector, Remote, Target, TransportError, shell_quote as quote};

/// Files by their path relative to a release's static directory.
pub type Files = Vec<(String, Arc<[u8]>)>;

/// Where an app host builds a release's static files: beside the releases,
/// never inside one (a release is read-only to the app), emptied first and
/// removed once they are read.
pub fn build_directory(releases: &str, id: &str) -> String {
    let parent = std::path::Path::new(releases).parent().and_then(|parent| parent.to_str()).unwrap_or("/srv/app");
    format!("{parent}/static-build/{id}")
}

#[derive(Debug, thiserror::Error)]
pub enum StaticError {
    #[error("the static files `{host}` sent back are not a listing infra reads: {problem} (line {line})")]
    Listing { host: String, line: usize, problem: String },
    #[error(
        "the build left `{path}`, which is not a plain file or directory, in `$STATIC_ROOT`: copy files there, not links"
    )]
    NotAFile { path: String },
    #[error("the release's static files exceed {limit_mib} MiB")]
    TooLarge { limit_mib: u64 },
}

/// Runs the build `commands` on an app host (a script that runs them as
/// the app with `STATIC_ROOT` set to `directory`, their output on stderr)
/// in an empty `directory`, then lists what they left there as
/// [`parse_listing`] reads it: stdout is the listing alone.
pub fn build_script(directory: &str, commands: &str) -> String {
    let user = crate::catalog::gunicorn::USER;
    let root = quote(directory);
    format!(
        "set -e\nrm -rf {root}\ninstall -d -o {user} -g {user} -m 0755 {root}\n{commands}cd {root}\n{LISTING}echo END\ncd /\nrm -rf {root}\n"
    )
}

/// Lists the files of `directory` (a directory of the release) as
/// [`parse_listing`] reads them.
pub fn listing_script(directory: &str) -> String {
    format!("set -e\ncd {}\n{LISTING}echo END\n", quote(directory))
}

/// Each entry under the current directory as one line: `D PATH` for a
/// directory, `F PATH CONTENT` for a file, `L PATH` for anything else,
/// each field base64 (a name may hold any byte but `/` and NUL).
const LISTING: &str = r#"find . -mindepth 1 -type d -exec sh -c 'for f; do printf "D %s\n" "$(printf %s "${f#./}" | base64 -w0)"; done' sh {} +
find . -mindepth 1 ! -type d ! -type f -exec sh -c 'for f; do printf "L %s\n" "$(printf %s "${f#./}" | base64 -w0)"; done' sh {} +
find . -type f -exec sh -c 'for f; do printf "F %s %s\n" "$(printf %s "${f#./}" | base64 -w0)" "$(base64 -w0 < "$f")"; done' sh {} +
"#;

/// The files a build listing names, checked as data: every line of a kind
/// [`LISTING`] writes, each path relative, in plain components and UTF-8,
/// each file and the whole within [`crate::source::limits`].
pub fn parse_listing(host: &str, output: &str) -> Result<Files, StaticError> {
    use crate::source::limits::{SOURCE_FILE, SOURCE_TREE};
    let refuse = |line: usize, problem: &str| StaticError::Listing {
        host: host.to_string(),
        line: line + 1,
        problem: problem.to_string(),
    };
    let decode = |text: &str| base64::engine::general_purpose::STANDARD.decode(text).ok();
    let mut files = Vec::new();
    let mut total: u64 = 0;
    let mut ended = false;
    for (number, line) in output.lines().enumerate() {
        if ended {
            return Err(refuse(number, "text after the end"));
        }
        let words: Vec<&str> = line.split(' ').collect();
        let path = |encoded: &str| {
            let bytes = decode(encoded).ok_or_else(|| refuse(number, "a name that is not base64"))?;
            let path = String::from_utf8(bytes).map_err(|_| refuse(number, "a name that is not UTF-8"))?;
            if plain_path(&path) { Ok(path) } else { Err(refuse(number, "a name that is not a plain relative path")) }
        };
        match words.as_slice() {
            ["END"] => ended = true,
            ["D", encoded] => {
                path(encoded)?;
            }
            ["L", encoded] => return Err(StaticError::NotAFile { path: crate::sanitize::printable(&path(encoded)?) }),
            ["F", encoded, content] => {
                let path = path(encoded)?;
                let content = if content.is_empty() {
                    Vec::new()
                } else {
                    decode(content).ok_or_else(|| refuse(number, "content that is not base64"))?
                };
                total += content.len() as u64;
                if content.len() as u64 > SOURCE_FILE || total > SOURCE_TREE {
                    return Err(StaticError::TooLarge { limit_mib: SOURCE_TREE >> 20 });
                }
                files.push((path, content.into()));
            }
            _ => return Err(refuse(number, "a line of no kind infra writes")),
        }
    }
    if !ended {
        return Err(refuse(output.lines().count(), "no end marker: the listing was cut short"));
    }
    files.sort();
    Ok(files)
}

/// A path Nginx may serve from under a release's directory: relative,
/// components that are neither empty, `.` nor `..`, no control character.
fn plain_path(path: &str) -> bool {
    (1..=4096).contains(&path.len())
        && !path.chars().any(char::is_control)
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Writes a release's files on a web host (when it `lacks` them) into a
/// hidden directory beside the others and renames it into place once
/// whole: a directory named by a release id is complete (facts list only
/// those). Then removes the releases `prune` names.
pub fn publish_script(root: &str, id: &str, files: &[(String, Arc<[u8]>)], prune: &[String], lacks: bool) -> String {
    let (target, partial) = (quote(&format!("{root}/{id}")), quote(&format!("{root}/.{id}.partial")));
    let mut script = String::from("set -e\n");
    for old in prune.iter().filter(|old| crate::facts::is_release_id(old) && *old != id) {
        script.push_str(&format!("rm -rf {}\n", quote(&format!("{root}/{old}"))));
    }
    if !lacks {
        return script;
    }
    script.push_str(&format!("umask 022\nmkdir -p {}\nrm -rf {partial}\nmkdir {partial}\n", quote(root)));
    for (relative, content) in files {
        let path = format!("{root}/.{id}.partial/{relative}");
        let parent = std::path::Path::new(&path).parent().and_then(|parent| parent.to_str()).unwrap_or("/");
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        script.push_str(&format!(
            "mkdir -p {}\nbase64 -d > {} <<'INFRA_EOF'\n{encoded}\nINFRA_EOF\n",
            quote(parent),
            quote(&path)
        ));
    }
    // Published already (by a run that failed later): the files are the
    // release's, the same.
    script.push_str(&format!("if [ -d {target} ]; then rm -rf {partial}; else mv -T {partial} {target}; fi\n"));
    script
}

/// One web host's part of a publication: its connection, whether it
/// lacks the release's files, and the releases' files it removes.
pub struct WebHost<'a> {
    pub target: &'a Target,
    pub lacks: bool,
    pub prune: &'a [String],
}

/// Publishes release `id`'s `files` under `root` on each web host that
/// lacks them, and prunes each one's old releases, all at once, each over
/// its own connection; the first failure is returned.
pub async fn publish<C: Connector>(
    connector: &C,
    (root, id): (&str, &str),
    files: &[(String, Arc<[u8]>)],
    hosts: &[WebHost<'_>],
) -> Result<(), TransportError> {
    let scripts = hosts.iter().map(|host| {
        let written = if host.lacks { files } else { &[] };
        (host.target, publish_script(root, id, written, host.prune, host.lacks))
    });
    let runs = scripts.map(|(target, script)| run_on(connector, target, script));
    futures_util::future::join_all(runs).await.into_iter().collect()
}

async fn run_on<C: Connector>(connector: &C, target: &Target, script: String) -> Result<(), TransportError> {
    let connection = connector.open(target).await?;
    let result = connection.run_script(&format!("# infra step: publishing static files\n{script}")).await;
    connection.close().await;
    result.map(|_| ())
}

#[cfg(test)]
mod tests;

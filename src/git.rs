//! Git sources: the app's code read from one commit of a repository on
//! this machine (`app.source: {git: PATH, ref: REF}`), the same files a
//! directory source gives, so a release id is a digest of the commit's
//! tree and a deploy of a tag names exactly what it ships.
//!
//! Only git's plumbing is used (`rev-parse`, `ls-tree`, `cat-file`), which
//! never runs hooks, filters or a checkout: reading a revision changes
//! nothing in the repository and executes nothing from it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::source::limits;

/// One commit's files: paths relative to the repository root, and contents.
#[derive(Debug)]
pub struct Revision {
    /// The full commit id the revision named when it was read.
    pub commit: String,
    pub files: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run `git`")]
    Spawn(#[source] std::io::Error),
    #[error("`{repository}` is not a git repository on this machine: {stderr}")]
    NotARepository { repository: PathBuf, stderr: String },
    #[error("`{repository}` has no commit named `{revision}`")]
    UnknownRevision { repository: PathBuf, revision: String },
    #[error("`git {command}` failed in `{repository}`: {stderr}")]
    Failed { repository: PathBuf, command: &'static str, stderr: String },
    #[error("`{path}` in commit {commit} is a {kind}: infra deploys regular files only")]
    NotAFile { path: String, commit: String, kind: &'static str },
    #[error("the files of commit {commit} take more than {limit_mib} MiB")]
    TooLarge { commit: String, limit_mib: u64 },
    #[error("git printed something infra does not understand while reading commit {commit}")]
    Unexpected { commit: String },
}

/// Reads the files of `revision` (already grammar-checked: one branch, tag
/// or commit name) in `repository`: [`list`], then every file's content.
pub fn read(repository: &Path, revision: &str) -> Result<Revision, GitError> {
    let (commit, wanted) = list(repository, revision)?;
    let files = contents(repository, &commit, wanted)?;
    Ok(Revision { commit, files })
}

/// The commit `revision` names and the files a release of it holds (path,
/// object id), without reading their contents: what `validate` needs.
/// Hidden files and `__pycache__` are left out, as from a directory
/// source; links and submodules are refused.
pub fn list(repository: &Path, revision: &str) -> Result<(String, Vec<(String, String)>), GitError> {
    let commit = resolve(repository, revision)?;
    let listing = git(repository, "ls-tree", &["ls-tree", "-r", "-z", "--full-tree", &commit], None)?;
    let mut wanted = Vec::new();
    for entry in listing.split(|byte| *byte == 0).filter(|entry| !entry.is_empty()) {
        let entry = std::str::from_utf8(entry).map_err(|_| GitError::Unexpected { commit: commit.clone() })?;
        let (meta, path) = entry.split_once('\t').ok_or_else(|| GitError::Unexpected { commit: commit.clone() })?;
        let fields: Vec<&str> = meta.split(' ').collect();
        let [mode, _, object] = fields.as_slice() else { return Err(GitError::Unexpected { commit }) };
        if path.split('/').any(crate::source::left_out_of_sources) {
            continue;
        }
        let kind = match *mode {
            "100644" | "100755" => None,
            "120000" => Some("symbolic link"),
            "160000" => Some("submodule"),
            _ => Some("special file"),
        };
        if let Some(kind) = kind {
            return Err(GitError::NotAFile { path: path.to_string(), commit, kind });
        }
        wanted.push((path.to_string(), object.to_string()));
    }
    Ok((commit, wanted))
}

/// The full commit id `revision` names; the error says which part is wrong.
fn resolve(repository: &Path, revision: &str) -> Result<String, GitError> {
    let probe = git(repository, "rev-parse", &["rev-parse", "--git-dir"], None);
    if let Err(GitError::Failed { stderr, .. }) = probe {
        return Err(GitError::NotARepository { repository: repository.to_path_buf(), stderr });
    }
    probe?;
    let spec = format!("{revision}^{{commit}}");
    let unknown = || GitError::UnknownRevision { repository: repository.to_path_buf(), revision: revision.to_string() };
    let output = git(repository, "rev-parse", &["rev-parse", "--verify", "--quiet", "--end-of-options", &spec], None)
        .map_err(|_| unknown())?;
    let commit = String::from_utf8_lossy(&output).trim().to_string();
    if commit.len() < 40 || !commit.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    Ok(commit)
}

/// The blobs' contents, in one `git cat-file --batch`: `<id> blob <size>`,
/// the bytes, a newline, per object asked for.
fn contents(
    repository: &Path,
    commit: &str,
    wanted: Vec<(String, String)>,
) -> Result<Vec<(String, Vec<u8>)>, GitError> {
    let request: String = wanted.iter().map(|(_, object)| format!("{object}\n")).collect();
    let output = git(repository, "cat-file", &["cat-file", "--batch"], Some(request.as_bytes()))?;
    let unexpected = || GitError::Unexpected { commit: commit.to_string() };
    let mut rest = output.as_slice();
    let mut files = Vec::with_capacity(wanted.len());
    let mut total: u64 = 0;
    for (path, _) in wanted {
        let newline = rest.iter().position(|byte| *byte == b'\n').ok_or_else(unexpected)?;
        let header = std::str::from_utf8(&rest[..newline]).map_err(|_| unexpected())?;
        let size: usize = match header.split(' ').collect::<Vec<_>>().as_slice() {
            [_, "blob", size] => size.parse().map_err(|_| unexpected())?,
            _ => return Err(unexpected()),
        };
        total += size as u64;
        if size as u64 > limits::SOURCE_FILE || total > limits::SOURCE_TREE {
            return Err(GitError::TooLarge { commit: commit.to_string(), limit_mib: limits::SOURCE_TREE >> 20 });
        }
        let body = rest.get(newline + 1..newline + 1 + size).ok_or_else(unexpected)?;
        files.push((path, body.to_vec()));
        rest = rest.get(newline + 2 + size..).ok_or_else(unexpected)?;
    }
    files.sort();
    Ok(files)
}

/// Runs one git command in `repository` with no user or system
/// configuration that could change its output, and returns its stdout.
fn git(repository: &Path, command: &'static str, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, GitError> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repository)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LC_ALL", "C")
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(GitError::Spawn)?;
    let writer = match (input, child.stdin.take()) {
        (Some(input), Some(mut stdin)) => {
            let input = input.to_vec();
            Some(std::thread::spawn(move || stdin.write_all(&input)))
        }
        _ => None,
    };
    let output = child.wait_with_output().map_err(GitError::Spawn)?;
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(GitError::Failed { repository: repository.to_path_buf(), command, stderr });
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(directory: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(directory)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.test")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.test")
            .output()
            .expect("git runs");
        assert!(status.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&status.stderr));
    }

    fn repository() -> tempfile::TempDir {
        let directory = tempfile::tempdir().expect("temp dir");
        run(directory.path(), &["init", "-q", "-b", "main"]);
        std::fs::write(directory.path().join("app.py"), "v1\n").expect("write");
        std::fs::create_dir(directory.path().join("pkg")).expect("mkdir");
        std::fs::write(directory.path().join("pkg/__init__.py"), "").expect("write");
        std::fs::write(directory.path().join(".gitignore"), "*.pyc\n").expect("write");
        run(directory.path(), &["add", "-A"]);
        run(directory.path(), &["commit", "-q", "-m", "v1"]);
        run(directory.path(), &["tag", "v1"]);
        std::fs::write(directory.path().join("app.py"), "v2, not committed\n").expect("write");
        directory
    }

    #[test]
    fn a_revision_gives_its_committed_files_not_the_working_tree() {
        let repository = repository();
        let revision = read(repository.path(), "v1").expect("v1 reads");
        let paths: Vec<&str> = revision.files.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(paths, ["app.py", "pkg/__init__.py"]);
        assert_eq!(revision.files[0].1, b"v1\n");
        assert_eq!(revision.commit.len(), 40);
        assert_eq!(read(repository.path(), "main").expect("main reads").commit, revision.commit);
    }

    #[test]
    fn an_unknown_revision_or_a_plain_directory_is_named() {
        let repository = repository();
        let error = read(repository.path(), "v9").expect_err("no v9").to_string();
        assert!(error.contains("has no commit named `v9`"), "{error}");
        let plain = tempfile::tempdir().expect("temp dir");
        let error = read(plain.path(), "main").expect_err("not a repository").to_string();
        assert!(error.contains("is not a git repository"), "{error}");
    }

    #[test]
    fn links_are_refused() {
        let repository = repository();
        std::os::unix::fs::symlink("/etc/shadow", repository.path().join("shadow")).expect("symlink");
        run(repository.path(), &["add", "shadow"]);
        run(repository.path(), &["commit", "-q", "-m", "link"]);
        let error = read(repository.path(), "main").expect_err("a link").to_string();
        assert!(error.contains("`shadow`") && error.contains("symbolic link"), "{error}");
    }
}

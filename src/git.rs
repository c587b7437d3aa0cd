//! Git sources: the app's code read from one commit of a repository on
//! this machine (`app.source: {git: PATH, ref: REF}`), the same files a
//! directory source gives, so a release id is a digest of the commit's
//! tree and a deploy of a tag names exactly what it ships.
//!
//! The repository may come from a hostile pull request, and git obeys a
//! repository's own configuration: a promisor remote makes a missing
//! object run `uploadpack`, `include.path` pulls in any file, fsmonitor,
//! filters and `sshCommand` are commands. So git never reads that
//! configuration at all: each command runs against a scratch git
//! directory of infra's making (an empty config, a copy of the
//! repository's refs) whose objects are the repository's
//! (`GIT_OBJECT_DIRECTORY`), with every `GIT_*` variable of the caller
//! removed and lazy fetching off. An object that is missing is an error,
//! never a fetch. Alternates (objects from elsewhere on this machine) are
//! refused. Only plumbing runs (`rev-parse`, `ls-tree`, `cat-file`),
//! which has no hooks, filters or checkout. This needs no new crate
//! (gitoxide would be about sixty) and removes the whole class rather
//! than disabling the dangerous keys one by one.

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
    #[error("cannot prepare a scratch git directory for reading `{repository}`")]
    Scratch { repository: PathBuf, source: std::io::Error },
    #[error("`{repository}` is not a git repository on this machine: {stderr}")]
    NotARepository { repository: PathBuf, stderr: String },
    #[error("`{repository}` has no commit named `{revision}`")]
    UnknownRevision { repository: PathBuf, revision: String },
    #[error("`git {command}` failed in `{repository}`: {stderr}")]
    Failed { repository: PathBuf, command: &'static str, stderr: String },
    #[error("`{path}` in commit {commit} is a {kind}: infra deploys regular files only")]
    NotAFile { path: String, commit: String, kind: &'static str },
    #[error(
        "`{path}` of commit {commit} is not in the repository (a partial clone?): infra never fetches a missing object"
    )]
    Missing { path: String, commit: String },
    #[error("the files of commit {commit} take more than {limit_mib} MiB")]
    TooLarge { commit: String, limit_mib: u64 },
    #[error("git printed something infra does not understand while reading commit {commit}")]
    Unexpected { commit: String },
}

/// Reads the files of `revision` (already grammar-checked: one branch, tag
/// or commit name) in `repository`: [`list`], then every file's content.
pub fn read(repository: &Path, revision: &str) -> Result<Revision, GitError> {
    let scratch = Scratch::open(repository)?;
    let (commit, wanted) = scratch.list(revision)?;
    let files = scratch.contents(&commit, wanted)?;
    Ok(Revision { commit, files })
}

/// The commit `revision` names and the files a release of it holds (path,
/// object id), without reading their contents: what `validate` needs.
/// Hidden files and `__pycache__` are left out, as from a directory
/// source; links, submodules and names a directory source would refuse
/// (control characters, not UTF-8) are refused.
pub fn list(repository: &Path, revision: &str) -> Result<(String, Vec<(String, String)>), GitError> {
    Scratch::open(repository)?.list(revision)
}

/// A git directory of infra's own making whose objects are the
/// repository's: the only configuration git reads is the one written here.
struct Scratch {
    repository: PathBuf,
    objects: PathBuf,
    directory: tempfile::TempDir,
}

/// Bounds on the refs copied into a [`Scratch`] (a repository with a
/// hundred thousand tags is refused rather than copied).
const MAX_REF_FILES: usize = 100_000;
const MAX_REF_FILE: u64 = 4 << 10;
const MAX_PACKED_REFS: u64 = 64 << 20;

impl Scratch {
    fn open(repository: &Path) -> Result<Scratch, GitError> {
        let not_a_repository = |reason: &str| GitError::NotARepository {
            repository: repository.to_path_buf(),
            stderr: reason.to_string(),
        };
        let dot_git = repository.join(".git");
        let git_dir = match std::fs::symlink_metadata(&dot_git) {
            Ok(metadata) if metadata.is_dir() => dot_git,
            Ok(_) => {
                return Err(not_a_repository(
                    "its `.git` is not a directory (a worktree, a submodule or a link): name the repository itself",
                ));
            }
            Err(_) if is_real_directory(&repository.join("objects")) => repository.to_path_buf(),
            Err(_) => return Err(not_a_repository("it has no `.git` directory")),
        };
        let objects = git_dir.join("objects");
        if !is_real_directory(&objects) {
            return Err(not_a_repository("its `objects` is not a directory"));
        }
        for alternates in ["info/alternates", "info/http-alternates"] {
            if std::fs::symlink_metadata(objects.join(alternates)).is_ok() {
                return Err(not_a_repository(
                    "it borrows objects from another repository (`objects/info/alternates`), which infra does not read",
                ));
            }
        }
        let scratch_error = |source| GitError::Scratch { repository: repository.to_path_buf(), source };
        let directory = tempfile::Builder::new().prefix("infra-git-").tempdir().map_err(scratch_error)?;
        let scratch = Scratch { repository: repository.to_path_buf(), objects, directory };
        scratch.copy_refs(&git_dir)?;
        Ok(scratch)
    }

    /// `HEAD`, `packed-refs` and every loose ref, regular files only:
    /// what `rev-parse` needs to find a branch, tag or `HEAD`.
    fn copy_refs(&self, git_dir: &Path) -> Result<(), GitError> {
        let target = self.directory.path();
        let io = |source| GitError::Scratch { repository: self.repository.clone(), source };
        std::fs::write(target.join("config"), "[core]\n\trepositoryformatversion = 0\n\tbare = true\n").map_err(io)?;
        let head = crate::source::read_bounded(&git_dir.join("HEAD"), MAX_REF_FILE)
            .unwrap_or_else(|_| b"ref: refs/heads/main\n".to_vec());
        std::fs::write(target.join("HEAD"), head).map_err(io)?;
        if let Ok(packed) = crate::source::read_bounded(&git_dir.join("packed-refs"), MAX_PACKED_REFS) {
            std::fs::write(target.join("packed-refs"), packed).map_err(io)?;
        }
        let mut copied = 0;
        let mut pending = vec![PathBuf::from("refs")];
        std::fs::create_dir(target.join("refs")).map_err(io)?;
        while let Some(relative) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(git_dir.join(&relative)) else { continue };
            for entry in entries.flatten() {
                let (Ok(kind), name) = (entry.file_type(), relative.join(entry.file_name())) else { continue };
                if kind.is_dir() {
                    std::fs::create_dir(target.join(&name)).map_err(io)?;
                    pending.push(name);
                } else if kind.is_file() {
                    copied += 1;
                    if copied > MAX_REF_FILES {
                        return Err(GitError::Failed {
                            repository: self.repository.clone(),
                            command: "refs",
                            stderr: format!("more than {MAX_REF_FILES} refs"),
                        });
                    }
                    if let Ok(content) = crate::source::read_bounded(&entry.path(), MAX_REF_FILE) {
                        std::fs::write(target.join(&name), content).map_err(io)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn list(&self, revision: &str) -> Result<(String, Vec<(String, String)>), GitError> {
        let commit = self.resolve(revision)?;
        let listing = self.git("ls-tree", &["ls-tree", "-r", "-z", "--full-tree", &commit], None)?;
        let mut wanted = Vec::new();
        for entry in listing.split(|byte| *byte == 0).filter(|entry| !entry.is_empty()) {
            let Some(tab) = entry.iter().position(|byte| *byte == b'\t') else {
                return Err(GitError::Unexpected { commit });
            };
            let meta =
                std::str::from_utf8(&entry[..tab]).map_err(|_| GitError::Unexpected { commit: commit.clone() })?;
            let path = std::str::from_utf8(&entry[tab + 1..]).map_err(|_| GitError::NotAFile {
                path: String::from_utf8_lossy(&entry[tab + 1..]).escape_debug().to_string(),
                commit: commit.clone(),
                kind: "file whose name is not UTF-8",
            })?;
            let fields: Vec<&str> = meta.split(' ').collect();
            let [mode, _, object] = fields.as_slice() else { return Err(GitError::Unexpected { commit }) };
            if path.split('/').any(crate::source::left_out_of_sources) {
                continue;
            }
            let kind = match *mode {
                _ if path.chars().any(char::is_control) => Some("file whose name has control characters"),
                "100644" | "100755" => None,
                "120000" => Some("symbolic link"),
                "160000" => Some("submodule"),
                _ => Some("special file"),
            };
            if let Some(kind) = kind {
                return Err(GitError::NotAFile { path: path.escape_debug().to_string(), commit, kind });
            }
            wanted.push((path.to_string(), object.to_string()));
        }
        Ok((commit, wanted))
    }

    /// The full commit id `revision` names; the error says which part is wrong.
    fn resolve(&self, revision: &str) -> Result<String, GitError> {
        let spec = format!("{revision}^{{commit}}");
        let unknown =
            || GitError::UnknownRevision { repository: self.repository.clone(), revision: revision.to_string() };
        let output = self
            .git("rev-parse", &["rev-parse", "--verify", "--quiet", "--end-of-options", &spec], None)
            .map_err(|_| unknown())?;
        let commit = String::from_utf8_lossy(&output).trim().to_string();
        if commit.len() < 40 || !commit.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        Ok(commit)
    }

    /// The blobs' contents, in one `git cat-file --batch`: `<id> blob <size>`,
    /// the bytes, a newline, per object asked for.
    fn contents(&self, commit: &str, wanted: Vec<(String, String)>) -> Result<Vec<(String, Vec<u8>)>, GitError> {
        let request: String = wanted.iter().map(|(_, object)| format!("{object}\n")).collect();
        let output = self.git("cat-file", &["cat-file", "--batch"], Some(request.as_bytes()))?;
        let unexpected = || GitError::Unexpected { commit: commit.to_string() };
        let mut rest = output.as_slice();
        let mut files = Vec::with_capacity(wanted.len());
        let mut total: u64 = 0;
        for (path, _) in wanted {
            let newline = rest.iter().position(|byte| *byte == b'\n').ok_or_else(unexpected)?;
            let header = std::str::from_utf8(&rest[..newline]).map_err(|_| unexpected())?;
            let size: usize = match header.split(' ').collect::<Vec<_>>().as_slice() {
                [_, "blob", size] => size.parse().map_err(|_| unexpected())?,
                [_, "missing"] => return Err(GitError::Missing { path, commit: commit.to_string() }),
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

    /// Runs one git command against the scratch directory, with nothing of
    /// the caller's environment but `PATH`, and returns its stdout.
    fn git(&self, command: &'static str, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, GitError> {
        let scratch = self.directory.path();
        let mut child = Command::new("git")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
            .env("LC_ALL", "C")
            .env("HOME", scratch)
            .env("XDG_CONFIG_HOME", scratch)
            .env("GIT_DIR", scratch)
            .env("GIT_OBJECT_DIRECTORY", &self.objects)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            .env("GIT_NO_LAZY_FETCH", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .args(["-c", "protocol.allow=never", "-c", "core.hooksPath=/dev/null"])
            .args(args)
            .current_dir(scratch)
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
            return Err(GitError::Failed { repository: self.repository.clone(), command, stderr });
        }
        Ok(output.stdout)
    }
}

fn is_real_directory(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir())
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

    /// A repository whose own configuration would run `touch MARKER` if
    /// git honoured it: a promisor remote for a missing object, fsmonitor,
    /// an included file, an ssh command and a filter.
    fn hostile_repository(marker: &Path) -> tempfile::TempDir {
        let repository = repository();
        let directory = repository.path();
        std::fs::write(directory.join("big.py"), "print('lazy')\n").expect("write");
        run(directory, &["add", "big.py"]);
        run(directory, &["commit", "-q", "-m", "big"]);
        let object = Command::new("git").arg("-C").arg(directory).args(["rev-parse", "HEAD:big.py"]).output();
        let object = String::from_utf8(object.expect("git runs").stdout).expect("utf-8").trim().to_string();
        std::fs::remove_file(directory.join(".git/objects").join(&object[..2]).join(&object[2..])).expect("drop blob");
        let touch = format!("touch {}", marker.display());
        let included = directory.join("included.cfg");
        std::fs::write(&included, format!("[core]\n\tsshCommand = {touch}\n")).expect("write");
        for (key, value) in [
            ("extensions.partialClone", "origin".to_string()),
            ("remote.origin.url", directory.display().to_string()),
            ("remote.origin.promisor", "true".to_string()),
            ("remote.origin.uploadpack", format!("{touch}; false")),
            ("core.fsmonitor", touch.clone()),
            ("filter.evil.smudge", touch.clone()),
            ("include.path", included.display().to_string()),
        ] {
            run(directory, &["config", key, &value]);
        }
        repository
    }

    #[test]
    fn a_hostile_repository_configuration_runs_nothing() {
        let marker_directory = tempfile::tempdir().expect("temp dir");
        let marker = marker_directory.path().join("ran");
        let repository = hostile_repository(&marker);
        let plain_git = Command::new("git")
            .arg("-C")
            .arg(repository.path())
            .args(["cat-file", "-p", "HEAD:big.py"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        assert!(!plain_git.status.success());
        assert!(marker.exists(), "the repository is hostile: plain git runs its command");
        std::fs::remove_file(&marker).expect("remove marker");
        let listed = list(repository.path(), "main").expect("the listing needs no missing object");
        assert!(listed.1.iter().any(|(path, _)| path == "big.py"));
        let error = read(repository.path(), "main").expect_err("a missing object is an error, not a fetch");
        assert!(matches!(error, GitError::Missing { ref path, .. } if path == "big.py"), "{error}");
        assert!(read(repository.path(), "v1").is_ok(), "v1 has every object");
        assert!(!marker.exists(), "git ran a command from the repository's configuration");
    }

    #[test]
    fn objects_borrowed_from_elsewhere_are_refused() {
        let repository = repository();
        let other = tempfile::tempdir().expect("temp dir");
        std::fs::write(repository.path().join(".git/objects/info/alternates"), format!("{}\n", other.path().display()))
            .expect("write");
        let error = read(repository.path(), "v1").expect_err("alternates").to_string();
        assert!(error.contains("alternates"), "{error}");
    }

    #[test]
    fn names_with_control_characters_are_refused() {
        let repository = repository();
        std::fs::write(repository.path().join("evil\u{1b}[2J.py"), "x\n").expect("write");
        run(repository.path(), &["add", "-A"]);
        run(repository.path(), &["commit", "-q", "-m", "escape"]);
        let error = list(repository.path(), "main").expect_err("a control character").to_string();
        assert!(error.contains("control characters") && !error.contains('\u{1b}'), "{error}");
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

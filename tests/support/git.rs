//! Git repositories for tests that deploy from one: `git` run with no
//! user or system configuration and a fixed author.

use std::path::Path;
use std::process::Command;

/// Runs `git -C repository ARGS`; panics with git's stderr on failure.
pub fn git(repository: &Path, args: &[&str]) {
    let output = Command::new("git")
        .arg("-C")
        .arg(repository)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Ana Operator")
        .env("GIT_AUTHOR_EMAIL", "ana@example.test")
        .env("GIT_COMMITTER_NAME", "Ana Operator")
        .env("GIT_COMMITTER_EMAIL", "ana@example.test")
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

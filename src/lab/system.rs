//! Running the host's own tools (`ip`, `mount`, `debootstrap`, …) with errors
//! that say which command failed and what it printed.

use std::path::PathBuf;
use std::process::{Command, Output};

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("cannot run `{command}`")]
    Spawn {
        command: String,
        #[source]
        error: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for argument in command.get_args() {
        text.push(' ');
        text.push_str(&argument.to_string_lossy());
    }
    text
}

/// Runs a command to completion; non-zero exit is an error with its stderr.
pub fn run(command: &mut Command) -> Result<Output, SystemError> {
    let output = command.output().map_err(|error| SystemError::Spawn { command: describe(command), error })?;
    if output.status.success() {
        return Ok(output);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let detail = if stderr.trim().is_empty() { stdout } else { stderr };
    let tail: Vec<&str> = detail.lines().rev().take(12).collect();
    Err(SystemError::Failed {
        command: describe(command),
        status: output.status.to_string(),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

/// Runs a command and reports only whether it succeeded (for probes).
pub fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|output| output.status.success())
}

/// `ip ARGS…`
pub fn ip(args: &[&str]) -> Result<Output, SystemError> {
    run(Command::new("ip").args(args))
}

pub fn write(path: impl Into<PathBuf>, content: impl AsRef<[u8]>) -> Result<(), SystemError> {
    let path = path.into();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| SystemError::Write { path: parent.to_path_buf(), error })?;
    }
    std::fs::write(&path, content).map_err(|error| SystemError::Write { path, error })
}

/// Finds a program on `PATH` (and the sbin directories, which root's PATH
/// may lack on some systems).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|directory| directory.join(name)).find(|candidate| candidate.is_file())
}

//! Writing to stdout and stderr without panicking when the reader goes away.
//!
//! `println!` panics when stdout is a pipe whose reader has exited
//! (`infra plan | head -1`), and `eprintln!` when stderr is. The usual cure,
//! restoring SIGPIPE's default action, is wrong for a tool that writes to
//! ssh's pipes and sockets in the middle of an apply: one ssh that dies would
//! kill infra between two steps of a host's transaction. So the signal stays
//! ignored and every line infra prints goes through [`write_stdout`] or
//! [`write_stderr`] (the `stdout!`, `stdoutln!`, `stderr!` and `stderrln!`
//! macros): a closed pipe drops the rest of the output, the command runs to
//! its end, and its exit code says what happened to the hosts.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout; once a write failed (the reader left), nothing more is tried.
pub fn write_stdout(text: Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if stdout.write_fmt(text).and_then(|()| stdout.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes raw bytes to stdout (a man page, a completion script), as [`write_stdout`].
pub fn write_stdout_bytes(bytes: &[u8]) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(bytes).and_then(|()| stdout.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes `text` to stderr; a failure is dropped, as there is nowhere left to say it.
pub fn write_stderr(text: Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(text);
}

/// `print!` that survives a closed stdout.
#[macro_export]
macro_rules! stdout {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}

/// `println!` that survives a closed stdout.
#[macro_export]
macro_rules! stdoutln {
    () => { $crate::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that survives a closed stderr.
#[macro_export]
macro_rules! stderr {
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!($($arg)*)) };
}

/// `eprintln!` that survives a closed stderr.
#[macro_export]
macro_rules! stderrln {
    () => { $crate::output::write_stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

//! How infra writes to its streams when they are not what it expects: a
//! reader that leaves early (`| head`), stdout redirected from a terminal,
//! and `--color never` with log lines. Each is a bug that shipped once.

use std::io::Read;
use std::process::Stdio;

#[path = "support/cli.rs"]
mod cli_support;
#[path = "support/git.rs"]
mod support;

use cli_support::*;

/// A pipe whose reading end is already closed: every write to it fails
/// with EPIPE, at once and every time.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer
}

/// A copy of the five-server inventory whose hosts are all dialled at a
/// loopback port nothing listens on: every connection is refused at once.
fn refusing_inventory(directory: &std::path::Path) -> std::path::PathBuf {
    five_server_copy(directory, |text| {
        text.replace("  port: 22\n", "  port: 1\n").replace("    roles: [", "    ssh: {host: 127.0.0.1}\n    roles: [")
    })
}

fn with_secrets(command: &mut std::process::Command) -> &mut std::process::Command {
    command.env("INFRA_VRRP_SECRET", "vrrp-pw1").env("INFRA_DB_PASSWORD", "db-pw")
}

#[test]
fn a_reader_that_leaves_early_ends_the_output_quietly() {
    let output = infra().arg("man").stdout(closed_pipe()).stderr(Stdio::piped()).output().expect("infra runs");
    assert!(output.status.success(), "{:?}: {}", output.status, String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "nothing about the closed pipe");

    let output =
        infra().args(["completions", "bash"]).stdout(closed_pipe()).stderr(Stdio::piped()).output().expect("runs");
    assert!(output.status.success(), "{:?}: {}", output.status, String::from_utf8_lossy(&output.stderr));
}

#[test]
fn plan_into_a_closed_pipe_exits_with_its_own_code_not_a_panic() {
    let directory = tempfile::tempdir().expect("tempdir");
    let inventory = refusing_inventory(directory.path());
    let pipe = closed_pipe();
    let status = with_secrets(infra().arg("plan").arg("-i").arg(&inventory))
        .stdout(pipe.try_clone().expect("clone"))
        .stderr(pipe)
        .status()
        .expect("infra runs");
    // 1: the hosts did not answer; 101 would be a panic on the closed pipe.
    assert_eq!(status.code(), Some(1));
}

#[test]
fn unreachable_hosts_are_reported_once_each_with_one_hint() {
    let directory = tempfile::tempdir().expect("tempdir");
    let inventory = refusing_inventory(directory.path());
    let output = with_secrets(infra().arg("plan").arg("-i").arg(&inventory)).output().expect("infra runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout.trim_end(),
        "Plan: 5 hosts (0 changing, 5 unreachable: db-01, app-01, web-01, lb-01, lb-02), 0 files to create, 0 to change, 0 packages to install, 0 services to reload, 0 to restart, 0 to start"
    );
    for host in ["db-01", "app-01", "web-01", "lb-01", "lb-02"] {
        assert_eq!(stderr.matches(&format!("`{host}`")).count(), 1, "{host} once:\n{stderr}");
    }
    assert_eq!(stderr.lines().count(), 6, "five errors and one hint:\n{stderr}");
    let hint = stderr.lines().last().unwrap_or_default();
    assert!(hint.starts_with("hint: nothing accepts SSH where infra dials"), "{stderr}");
    assert!(hint.contains("`ssh -v -p 1 root@HOST`"), "{stderr}");
}

/// Runs `shell_command` under `script`, so it has a terminal for stdin,
/// stdout and stderr unless it redirects them; returns what the terminal showed.
fn on_a_terminal(shell_command: &str, directory: &std::path::Path) -> String {
    let mut child = with_secrets(&mut std::process::Command::new("script"))
        .args(["-qec", shell_command, "/dev/null"])
        .current_dir(directory)
        .env_remove("NO_COLOR")
        .env("PATH", format!("{}:/usr/bin:/bin", infra_directory()))
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("script runs");
    let mut shown = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut shown).expect("readable");
    child.wait().expect("script ends");
    shown
}

fn infra_directory() -> String {
    let binary = assert_cmd::cargo::cargo_bin("infra");
    binary.parent().expect("a directory").display().to_string()
}

#[test]
fn stdout_redirected_from_a_terminal_gets_no_colour() {
    if !which("script") {
        panic!("`script` (util-linux) is needed: .ci/run installs it");
    }
    let directory = tempfile::tempdir().expect("tempdir");
    let inventory = refusing_inventory(directory.path());
    let shown = on_a_terminal(&format!("infra plan -i {} > plan.txt", inventory.display()), directory.path());
    let file = std::fs::read_to_string(directory.path().join("plan.txt")).expect("plan.txt");
    assert!(file.starts_with("Plan: 5 hosts"), "{file}");
    assert!(!file.contains('\x1b'), "no escape in the file: {file:?}");
    assert!(shown.contains("error: cannot connect"), "the errors still reach the terminal: {shown}");
    // The same command with `--color always` does colour the file: the
    // test above would have seen the bug.
    on_a_terminal(&format!("infra plan --color always -i {} > plan.txt", inventory.display()), directory.path());
    let file = std::fs::read_to_string(directory.path().join("plan.txt")).expect("plan.txt");
    assert!(file.contains("\x1b[1mPlan:"), "{file:?}");
}

#[test]
fn color_never_also_keeps_log_lines_plain() {
    let directory = tempfile::tempdir().expect("tempdir");
    let inventory = refusing_inventory(directory.path());
    let plan = |color: &str| {
        on_a_terminal(
            &format!("infra -v --color {color} plan --no-progress -i {}", inventory.display()),
            directory.path(),
        )
    };
    let plain = plan("never");
    assert!(plain.contains("INFO") && plain.contains("connecting"), "an info line is logged: {plain}");
    assert!(!plain.contains('\x1b'), "no escape with --color never: {plain:?}");
    assert!(plan("auto").contains('\x1b'), "a terminal gets colour by default");
}

#[test]
fn timings_break_a_plan_down_by_phase_and_host() {
    let directory = tempfile::tempdir().expect("tempdir");
    let inventory = refusing_inventory(directory.path());
    let output = with_secrets(infra().args(["plan", "--timings", "--no-progress", "-i"]).arg(&inventory))
        .output()
        .expect("infra runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let timings = stderr.split("timings: ").nth(1).expect("a breakdown after the plan");
    for phase in ["s in all\n", "\n  load, check and render ", "\n  connect and read facts ", "\n  plan "] {
        assert!(timings.contains(phase), "{phase:?} in:\n{timings}");
    }
    assert!(timings.contains("\n  host (s)         connecting\n"), "one column per step:\n{timings}");
    for host in ["db-01", "app-01", "web-01", "lb-01", "lb-02", "slowest"] {
        assert!(timings.lines().any(|line| line.trim_start().starts_with(host)), "{host} in:\n{timings}");
    }
    let plain = with_secrets(infra().args(["plan", "--no-progress", "-i"]).arg(&inventory)).output().expect("runs");
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("timings:"), "only when asked");
}

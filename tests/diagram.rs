//! `infra diagram`, completions and the man page, through the binary: no
//! host needed (the live diagram is in the lab suite; here, only hosts
//! that refuse at once on loopback).

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

#[path = "support/git.rs"]
#[allow(dead_code)]
mod support;
#[path = "support/cli.rs"]
mod support_cli;

fn infra() -> Command {
    let mut command = Command::cargo_bin("infra").expect("the infra binary is built");
    command.current_dir(env!("CARGO_MANIFEST_DIR")).env("NO_COLOR", "1");
    command
}

fn stdout_of(command: &mut Command) -> String {
    let output = command.output().expect("infra runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn mermaid_of_both_example_inventories() {
    for inventory in ["five-server", "scaled"] {
        let path = format!("inventories/{inventory}.yml");
        let text = stdout_of(infra().args(["diagram", "-i", &path, "--format", "mermaid"]));
        insta::assert_snapshot!(format!("mermaid__{inventory}"), text);
    }
}

/// Graphviz lays the SVG out (`.ci/run` installs it): every host and the
/// virtual IP are in it, and nothing in it points outside the file.
#[test]
fn the_svg_names_every_host_and_the_virtual_ip_and_fetches_nothing() {
    let svg = stdout_of(infra().args(["diagram", "-i", "inventories/scaled.yml"]));
    assert!(svg.contains("<svg"), "{svg}");
    // Graphviz writes `-` in text as a character reference.
    let svg = svg.replace("&#45;", "-");
    for name in ["lb-01", "lb-02", "web-01", "web-02", "app-01", "app-02", "db-01", "10.30.0.10"] {
        assert!(svg.contains(name), "{name} missing");
    }
    assert!(!svg.contains("<!DOCTYPE") && !svg.contains("href=\"http"), "the SVG refers outside itself");
}

#[test]
fn dot_output_needs_no_graphviz() {
    let dot =
        stdout_of(infra().args(["diagram", "-i", "inventories/five-server.yml", "--format", "dot"]).env("PATH", ""));
    assert!(dot.starts_with("digraph infra {"), "{dot}");
}

#[test]
fn svg_without_graphviz_says_what_to_install() {
    let output = infra().args(["diagram", "-i", "inventories/scaled.yml"]).env("PATH", "").output().expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("apt-get install graphviz") && stderr.contains("--format mermaid"), "{stderr}");
}

/// The bash completion loads: after sourcing it, bash has a completion for `infra`.
#[test]
fn bash_completion_loads() {
    let script = stdout_of(infra().args(["completions", "bash"]));
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("infra.bash");
    std::fs::write(&path, script).expect("write");
    let output = Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(format!("source {} && complete -p infra", path.display()))
        .output()
        .expect("bash runs");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && shown.contains("complete") && shown.trim_end().ends_with(" infra"), "{shown}");
}

/// zsh and fish register the same dynamic completer: the shell asks infra.
#[test]
fn zsh_and_fish_completions_are_generated() {
    assert!(stdout_of(infra().args(["completions", "zsh"])).starts_with("#compdef infra"));
    let fish = stdout_of(infra().args(["completions", "fish"]));
    assert!(fish.contains("complete --keep-order --exclusive --command infra") && fish.contains("INFRA_COMPLETE=fish"));
}

#[test]
fn the_man_page_lists_the_subcommands() {
    let page = stdout_of(infra().arg("man"));
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH infra"), "{page}");
    for subcommand in ["validate", "plan", "apply", "diagram", "completions"] {
        assert!(page.contains(subcommand), "{subcommand} missing from the man page");
    }
}

/// The picture in the README is the one `infra diagram` draws today.
#[test]
fn the_readme_shows_the_current_diagram() {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README is readable");
    let block = readme.split("```mermaid\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a mermaid block");
    let drawn = stdout_of(infra().args(["diagram", "-i", "inventories/five-server.yml", "--format", "mermaid"]));
    assert_eq!(block, drawn, "update the README's diagram");
}

/// `--live` with no host answering still draws the inventory, marks every
/// host unreachable, says the balancers' state is unknown, and exits 1.
#[test]
fn live_with_no_host_answering_fails_and_says_unknown() {
    let directory = tempfile::tempdir().expect("tempdir");
    let inventory = support_cli::five_server_copy(directory.path(), |text| {
        text.replace("  port: 22\n", "  port: 1\n").replace("    roles: [", "    ssh: {host: 127.0.0.1}\n    roles: [")
    });
    let output = infra()
        .args(["diagram", "--live", "--format", "mermaid", "-i"])
        .arg(&inventory)
        .env("INFRA_VRRP_SECRET", "x")
        .env("INFRA_DB_PASSWORD", "y")
        .output()
        .expect("infra runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("unknown (unreachable), priority 150") && !stdout.contains("does not hold it"), "{stdout}");
    assert!(stderr.ends_with("error: no host answered, so nothing in the picture is live\n"), "{stderr}");
}

/// The SVG scales to the window instead of a fixed width of points.
#[test]
fn the_svg_scales_to_the_window() {
    let svg = stdout_of(infra().args(["diagram", "-i", "inventories/scaled.yml"]));
    let tag = svg.split("<svg ").nth(1).and_then(|rest| rest.split('>').next()).expect("an svg tag");
    assert!(tag.starts_with("width=\"100%\" style=\"max-width: ") && !tag.contains("height="), "{tag}");
}

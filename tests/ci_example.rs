//! The CI example in examples/ci runs as written: the validate command its
//! workflow contains passes on the example inventories and fails on a
//! broken one.

use std::path::Path;
use std::process::Command;

/// The `run:` line of the workflow that validates the inventories.
fn validate_command() -> String {
    let workflow = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/infra.yml"))
        .expect("the workflow is readable");
    workflow
        .lines()
        .find_map(|line| line.trim().strip_prefix("run: ").filter(|run| run.contains("validate-inventories.sh")))
        .expect("the workflow validates the inventories")
        .to_string()
}

fn run(command: &str, reports: &Path) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(command)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("INFRA", env!("CARGO_BIN_EXE_infra"))
        .env("REPORTS", reports)
        .env_remove("INFRA_VRRP_SECRET")
        .env_remove("INFRA_DB_PASSWORD")
        .output()
        .expect("bash runs")
}

#[test]
fn the_workflow_validates_the_example_inventories() {
    let reports = tempfile::tempdir().expect("tempdir");
    // inventories/lab.yml names the certificate `infra lab up` makes on this
    // machine: valid only where a lab has been up, so not on a fresh one.
    let command = validate_command().replace("inventories/*.yml", "inventories/five-server.yml inventories/scaled.yml");
    let output = run(&command, reports.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for inventory in ["five-server", "scaled"] {
        assert!(stderr.contains(&format!("valid: inventories/{inventory}.yml")), "{stderr}");
        let report = std::fs::read_to_string(reports.path().join(format!("{inventory}.json"))).expect("report");
        let report: serde_json::Value = serde_json::from_str(&report).expect("JSON");
        assert_eq!(report["valid"], true);
    }
}

#[test]
fn the_workflow_fails_on_a_broken_inventory() {
    let reports = tempfile::tempdir().expect("tempdir");
    let command = validate_command().replace("inventories/*.yml", "tests/fixtures/broken/duplicate-address.yml");
    let output = run(&command, reports.path());
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("INVALID: tests/fixtures/broken/duplicate-address.yml"));
}

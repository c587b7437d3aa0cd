//! What the binary's host-free tests share: the `infra` command with a
//! clean environment, transcripts for snapshots, and copies of the
//! five-server inventory to break.
#![allow(dead_code)] // each test binary uses its own part

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

pub fn infra() -> Command {
    let mut command = Command::cargo_bin("infra").expect("the infra binary is built");
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("INFRA_VRRP_SECRET")
        .env_remove("INFRA_DB_PASSWORD")
        .env("NO_COLOR", "1");
    command
}

/// Exit code, stdout and stderr as one text, for snapshots; the checkout's
/// own directory is `[repository]`, wherever it was cloned.
pub fn transcript(command: &mut Command) -> String {
    let output = command.output().expect("infra runs");
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
    .replace(env!("CARGO_MANIFEST_DIR"), "[repository]")
}

/// Extra arguments a fixture asks for on a `# args:` line.
pub fn fixture_args(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    text.lines()
        .find_map(|line| line.strip_prefix("# args: "))
        .map(|args| args.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// A copy of the five-server inventory in `directory` whose `templates:`
/// directory holds one override file; returns the inventory's path.
pub fn five_server_with_override(directory: &Path, name: &str, content: &str) -> std::path::PathBuf {
    let templates = directory.join("templates");
    std::fs::create_dir(&templates).expect("create");
    std::fs::write(templates.join(name), content).expect("write");
    five_server_copy(directory, |text| text.replace("ssh:\n", &format!("templates: {}\nssh:\n", templates.display())))
}

/// A copy of the five-server inventory, changed by `edit`, written to
/// `directory` beside a copy of examples/ (local paths may not leave the
/// inventory's directory); returns its path.
pub fn five_server_copy(directory: &Path, edit: impl FnOnce(String) -> String) -> std::path::PathBuf {
    let text = std::fs::read_to_string("inventories/five-server.yml").expect("readable");
    let examples = directory.join("examples");
    if !examples.exists() {
        let copied = Command::new("cp").arg("-rT").arg("examples").arg(&examples).status().expect("cp runs");
        assert!(copied.success());
    }
    let inventory = edit(text).replace("../examples", "examples");
    let path = directory.join("inventory.yml");
    std::fs::write(&path, inventory).expect("write");
    path
}

/// `infra render` of `inventory` into `tree` with every secret set; the
/// database password has quotes in it so the snapshots show they are escaped.
pub fn render_with_secrets(inventory: &Path, tree: &Path) {
    let output = render_output(inventory, tree, "db'pass\"word");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

pub fn which(program: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().any(|directory| Path::new(directory).join(program).exists())
}

pub fn files_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() { pending.push(path) } else { files.push(path) }
        }
    }
    files.sort();
    files
}

/// `infra render` of `inventory` into `tree` with every secret set.
pub fn render_output(inventory: &Path, tree: &Path, db_password: &str) -> std::process::Output {
    infra()
        .args(["render", "--out"])
        .arg(tree)
        .arg("-i")
        .arg(inventory)
        .env("INFRA_VRRP_SECRET", "vrrp-pw1")
        .env("INFRA_DB_PASSWORD", db_password)
        .output()
        .expect("infra runs")
}

/// A git repository with the example app committed and tagged `v1`.
pub fn example_app_repository(directory: &Path) -> std::path::PathBuf {
    let repository = directory.join("app-repository");
    let copied = Command::new("cp").arg("-rT").arg("examples/app").arg(&repository).status().expect("cp runs");
    assert!(copied.success());
    for args in [&["init", "-q", "-b", "main"][..], &["add", "-A"], &["commit", "-q", "-m", "v1"], &["tag", "v1"]] {
        super::support::git(&repository, args);
    }
    repository
}

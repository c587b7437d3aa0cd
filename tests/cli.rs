//! End-to-end tests of the `infra` binary that need no host: exact error
//! output for broken inventories, the rendered tree of every example
//! inventory, and the exit codes CI relies on.

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

#[path = "support/git.rs"]
mod support;

fn infra() -> Command {
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
fn transcript(command: &mut Command) -> String {
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
fn fixture_args(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("fixture is readable");
    text.lines()
        .find_map(|line| line.strip_prefix("# args: "))
        .map(|args| args.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

#[test]
fn broken_inventories_fail_with_located_errors() {
    insta::glob!("fixtures/broken/*.yml", |path| {
        let relative = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).expect("inside the crate");
        let output =
            transcript(infra().arg("validate").arg("--no-checkers").arg("-i").arg(relative).args(fixture_args(path)));
        insta::assert_snapshot!(output);
    });
}

#[test]
fn example_inventories_validate_with_the_real_checkers() {
    for inventory in ["inventories/five-server.yml", "inventories/scaled.yml"] {
        let output = infra().args(["validate", "-i", inventory]).output().expect("infra runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{inventory}:\n{stderr}");
        if std::env::var_os("CI").is_some() {
            for checker in ["haproxy", "nginx", "keepalived"] {
                assert!(
                    stderr.contains(&format!("checker {checker:<16}"))
                        && !stderr.contains(&format!("{checker}` is not installed")),
                    "{checker} did not run:\n{stderr}"
                );
            }
        }
    }
}

#[test]
fn validate_json_is_versioned_and_located() {
    let output = infra()
        .args(["validate", "--no-checkers", "--format", "json", "-i", "tests/fixtures/broken/unknown-key.yml"])
        .output()
        .expect("infra runs");
    assert_eq!(output.status.code(), Some(1));
    let mut document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    // The release of the machine the tests run on, not of the document.
    assert!(document["checkers_release"].is_string() || document["checkers_release"].is_null());
    document["checkers_release"] = "(this machine's release)".into();
    insta::assert_json_snapshot!(document);
}

#[test]
fn render_refuses_missing_secrets() {
    let out = tempfile::tempdir().expect("temp dir");
    let output =
        transcript(infra().args(["render", "-i", "inventories/five-server.yml", "--out"]).arg(out.path().join("tree")));
    insta::assert_snapshot!(output);
    assert!(!out.path().join("tree").exists(), "nothing is written when a secret is missing");
}

#[test]
fn rendered_files_of_the_example_inventories() {
    for inventory in ["five-server", "scaled"] {
        let out = tempfile::tempdir().expect("temp dir");
        let tree = out.path().join("tree");
        render_with_secrets(Path::new(&format!("inventories/{inventory}.yml")), &tree);
        for file in files_under(&tree) {
            let relative = file.strip_prefix(&tree).expect("inside the tree").display().to_string();
            if relative.contains("/srv/app/") || relative.contains("/var/www/") {
                continue; // copied verbatim from examples/, not rendered
            }
            let content = std::fs::read_to_string(&file).expect("rendered files are text");
            insta::assert_snapshot!(format!("{inventory}__{}", relative.replace('/', "__")), content);
        }
    }
}

#[test]
fn sensitive_files_are_written_private() {
    use std::os::unix::fs::PermissionsExt;
    let out = tempfile::tempdir().expect("temp dir");
    let tree = out.path().join("tree");
    render_with_secrets(Path::new("inventories/five-server.yml"), &tree);
    let mode = |path: &str| std::fs::metadata(tree.join(path)).expect("rendered").permissions().mode() & 0o777;
    assert_eq!(mode("db-01/etc/infra/database.sql"), 0o600);
    assert_eq!(mode("app-01/etc/infra/app.env"), 0o600);
    assert_eq!(mode("lb-01/etc/keepalived/keepalived.conf"), 0o600);
    assert_eq!(mode("lb-01/etc/haproxy/haproxy.cfg"), 0o644);
}

#[test]
fn stages_are_in_dependency_order() {
    insta::assert_snapshot!(transcript(infra().args(["stages", "-i", "inventories/scaled.yml"])));
}

#[test]
fn a_template_override_replaces_the_built_in_one() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = five_server_with_override(directory.path(), "haproxy.cfg.j2", "global\n    this-is-not-a-keyword\n");
    let output = infra().args(["validate", "-i"]).arg(&path).output().expect("infra runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    if which("haproxy") {
        assert!(stderr.contains("`haproxy` rejected /etc/haproxy/haproxy.cfg"), "{stderr}");
        assert!(stderr.contains("this-is-not-a-keyword"), "haproxy's own message is shown: {stderr}");
    }
}

#[test]
fn an_unknown_template_override_is_an_error() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = five_server_with_override(directory.path(), "haproxy.conf.j2", "x");
    let output = infra().args(["validate", "--no-checkers", "-i"]).arg(&path).output().expect("infra runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("haproxy.conf.j2` in the template overrides is not a template infra knows"), "{stderr}");
}

#[test]
fn an_ipv6_admin_network_gets_its_own_ssh_rule() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = five_server_copy(directory.path(), |text| {
        text.replace("admin_cidrs: [10.20.0.250/32]", "admin_cidrs: [10.20.0.250/32, \"2001:db8:1::/64\"]")
    });
    let tree = directory.path().join("tree");
    render_with_secrets(&path, &tree);
    let rules = std::fs::read_to_string(tree.join("db-01/etc/infra/firewall.nft")).expect("rendered");
    assert!(rules.contains("ip saddr { 10.20.0.250/32 } tcp dport 22 accept"), "{rules}");
    assert!(rules.contains("ip6 saddr { 2001:db8:1::/64 } tcp dport 22 accept"), "{rules}");
    // nft itself accepts the ruleset where it is installed (CI installs it).
    let output = infra().args(["validate", "-i"]).arg(&path).output().expect("infra runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    if std::env::var_os("CI").is_some() {
        assert!(stderr.contains("checker nft") && !stderr.contains("`nft` is not installed"), "{stderr}");
    }
}

/// A copy of the five-server inventory in `directory` whose `templates:`
/// directory holds one override file; returns the inventory's path.
fn five_server_with_override(directory: &Path, name: &str, content: &str) -> std::path::PathBuf {
    let templates = directory.join("templates");
    std::fs::create_dir(&templates).expect("create");
    std::fs::write(templates.join(name), content).expect("write");
    five_server_copy(directory, |text| text.replace("ssh:\n", &format!("templates: {}\nssh:\n", templates.display())))
}

/// A copy of the five-server inventory, changed by `edit`, written to
/// `directory` beside a copy of examples/ (local paths may not leave the
/// inventory's directory); returns its path.
fn five_server_copy(directory: &Path, edit: impl FnOnce(String) -> String) -> std::path::PathBuf {
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
fn render_with_secrets(inventory: &Path, tree: &Path) {
    let output = render_output(inventory, tree, "db'pass\"word");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

fn which(program: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().any(|directory| Path::new(directory).join(program).exists())
}

fn files_under(root: &Path) -> Vec<std::path::PathBuf> {
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

/// Issue 13: hostile host names are refused, and render writes nothing at
/// all, inside `--out` or beside it.
#[test]
fn render_with_hostile_names_writes_nothing() {
    let directory = tempfile::tempdir().expect("temp dir");
    let out = directory.path().join("out");
    let output = render_output(Path::new("tests/fixtures/broken/hostile-host-names.yml"), &out, "s3cret");
    assert_eq!(output.status.code(), Some(1));
    let left: Vec<_> = std::fs::read_dir(directory.path()).expect("readable").collect();
    assert!(left.is_empty(), "render wrote {left:?}");
}

/// Issue 13: a symlink in a source tree that leads outside it is refused,
/// naming the link and its target.
#[test]
fn a_symlink_out_of_the_static_source_is_refused() {
    let directory = tempfile::tempdir().expect("temp dir");
    let site = directory.path().join("site");
    std::fs::create_dir(&site).expect("create");
    std::fs::write(site.join("index.html"), "<p>hi</p>\n").expect("write");
    std::os::unix::fs::symlink("/etc/passwd", site.join("passwd")).expect("symlink");
    let path = five_server_copy(directory.path(), |text| {
        text.replace("static_source: ../examples/static", &format!("static_source: {}", site.display()))
    });
    let output = render_output(&path, &directory.path().join("tree"), "s3cret");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is a symlink to `/etc/passwd`, which is not a regular file inside the source tree"),
        "{stderr}"
    );
    assert!(!directory.path().join("tree").exists());
}

/// Issue 22: a link to a hidden file inside the tree (`.env`, never
/// deployed itself) and a hard link (another name of a file that may be
/// anywhere) are refused, not deployed under an innocent name.
#[test]
fn a_link_to_a_hidden_file_and_a_hard_link_are_refused() {
    for (name, link) in [("hidden", true), ("hard", false)] {
        let directory = tempfile::tempdir().expect("temp dir");
        let site = directory.path().join("site");
        std::fs::create_dir(&site).expect("create");
        std::fs::write(site.join(".env"), "SECRET_KEY=s3cret\n").expect("write");
        if link {
            std::os::unix::fs::symlink(".env", site.join("env.txt")).expect("symlink");
        } else {
            std::fs::hard_link(site.join(".env"), site.join("env.txt")).expect("hard link");
        }
        let path = five_server_copy(directory.path(), |text| {
            text.replace("static_source: ../examples/static", "static_source: site")
        });
        let output = render_output(&path, &directory.path().join("tree"), "s3cret");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        let expected = if link { "that would be deployed itself (hidden files are not)" } else { "is a hard link" };
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!directory.path().join("tree").exists());
    }
}

/// Issue 13: a file of one source tree landing on the path of another
/// (here the static site and the app share a directory on a host with
/// both roles, and the site has a file named like the app's release link)
/// is refused with both origins, never silently replaced.
#[test]
fn two_files_for_one_path_are_refused() {
    let directory = tempfile::tempdir().expect("temp dir");
    let site = directory.path().join("site");
    std::fs::create_dir_all(&site).expect("create");
    std::fs::write(site.join("index.html"), "the site\n").expect("write");
    std::fs::write(site.join("current"), "not a release\n").expect("write");
    let path = five_server_copy(directory.path(), |text| {
        text.replacen("roles: [web]", "roles: [web, app]", 1)
            .replace("static_source: ../examples/static", &format!("static_source: {}", site.display()))
            .replace("directory: /srv/app", "directory: /var/www/infra")
    });
    let output = render_output(&path, &directory.path().join("tree"), "s3cret");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("would get two files at `/var/www/infra/current`"), "{stderr}");
    assert!(stderr.contains("the app's releases"), "{stderr}");
    assert!(!directory.path().join("tree").exists());
}

/// Issue 13: a file is sensitive because its template reads a secret, so a
/// password full of quoting characters is still kept out of sight.
#[test]
fn files_that_read_a_secret_are_sensitive_however_it_is_escaped() {
    let directory = tempfile::tempdir().expect("temp dir");
    let tree = directory.path().join("tree");
    let output = render_output(Path::new("inventories/five-server.yml"), &tree, r#"a'b"c$d\e"#);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tree.join("db-01/host.json")).expect("manifest")).expect("JSON");
    let sql =
        manifest["files"].as_array().expect("files").iter().find(|file| file["path"] == "/etc/infra/database.sql");
    assert_eq!(sql.expect("database.sql")["sensitive"], true);
}

/// Issue 22: an override cannot reach a secret the analysis does not see:
/// through another template (`include`, `extends`, `import`, `from`) or
/// the whole context (`debug()`). Whatever each construct does, no
/// world-readable file holds the password.
#[test]
fn no_template_construct_puts_a_secret_in_a_world_readable_file() {
    use std::os::unix::fs::PermissionsExt;
    let password = "pw-seen-nowhere-7f3a";
    for construct in [
        r#"{% include "database.sql.j2" %}"#,
        r#"{% extends "database.sql.j2" %}"#,
        r#"{% import "database.sql.j2" as db %}{{ db }}"#,
        r#"{% from "database.sql.j2" import grants %}"#,
        "{{ debug() }}",
        "{% for x in range(100000) %}{% for y in range(100000) %}{% for z in range(100000) %}.{% endfor %}{% endfor %}{% endfor %}",
    ] {
        for template in ["haproxy.cfg.j2", "nginx-site.conf.j2", "keepalived.conf.j2"] {
            let directory = tempfile::tempdir().expect("temp dir");
            let inventory = five_server_with_override(directory.path(), template, construct);
            let tree = directory.path().join("tree");
            let output = render_output(&inventory, &tree, password);
            let written = if tree.exists() { files_under(&tree) } else { Vec::new() };
            for file in written {
                let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
                let text = std::fs::read(&file).expect("read");
                let leaked = text.windows(password.len()).any(|window| window == password.as_bytes());
                assert!(
                    !(leaked && mode & 0o004 != 0),
                    "{construct} in {template}: {} holds the password",
                    file.display()
                );
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!stderr.contains(password), "{construct}: {stderr}");
        }
    }
}

/// `infra render` of `inventory` into `tree` with every secret set.
fn render_output(inventory: &Path, tree: &Path, db_password: &str) -> std::process::Output {
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
/// Issue 13: CI reads stdout as JSON even when the inventory cannot be read
/// at all (missing, a device, too large).
#[test]
fn validate_json_reports_an_unreadable_inventory() {
    for (path, reason) in [("tests/fixtures/no-such-file.yml", "No such file"), ("/dev/zero", "not a regular file")] {
        let output = infra().args(["validate", "--format", "json", "-i", path]).output().expect("infra runs");
        assert_eq!(output.status.code(), Some(1));
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
        assert_eq!(document["valid"], false);
        let diagnostic = &document["diagnostics"][0];
        assert_eq!(diagnostic["code"], "inventory-unreadable");
        assert!(diagnostic["message"].as_str().is_some_and(|message| message.contains(reason)), "{document}");
    }
}

/// Issue 13: every command asked for JSON prints a document on stdout even
/// when it cannot read its inventory.
#[test]
fn json_commands_print_a_document_when_the_inventory_is_unreadable() {
    for command in [&["stages"][..], &["plan"][..]] {
        let output = infra().args(command).args(["--format", "json", "-i", "/dev/zero"]).output().expect("infra runs");
        assert_eq!(output.status.code(), Some(1));
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
        assert!(
            document["error"]["message"].as_str().is_some_and(|message| message.contains("/dev/zero")),
            "{document}"
        );
        assert!(
            document["error"]["causes"][0].as_str().is_some_and(|cause| cause.contains("not a regular file")),
            "{document}"
        );
    }
}

/// `--target-release` notes when this machine's checkers are another
/// release's, and stays quiet when they are the target's own.
#[test]
fn validate_notes_checkers_of_another_release() {
    let here = infra::release::Release::of_this_machine();
    for release in infra::release::Release::ALL {
        let output = infra()
            .args(["validate", "-i", "inventories/five-server.yml", "--target-release", release.codename()])
            .output()
            .expect("infra runs");
        assert!(output.status.success());
        let noted = String::from_utf8_lossy(&output.stderr).contains("note[checkers-of-another-release]");
        assert_eq!(noted, here != Some(release), "target {release}, this machine {here:?}");
    }
}

/// Issue 15: `app.env` adds plain values and secrets to the app's
/// environment file, each in systemd's quoting, the file kept private; a
/// name infra writes itself is refused.
#[test]
fn app_env_lands_quoted_in_the_private_environment_file() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = five_server_copy(directory.path(), |text| {
        text.replacen(
            "  directory: /srv/app\n",
            "  directory: /srv/app\n  env:\n    GREETING: 'say \"hi\" for $5 \\\\ 100%'\n    WORKERS_HINT: 4\n    SECRET_KEY: {env: INFRA_TEST_SECRET_KEY}\n",
            1,
        )
    });
    let tree = directory.path().join("tree");
    let output = infra()
        .args(["render", "--out"])
        .arg(&tree)
        .arg("-i")
        .arg(&path)
        .env("INFRA_VRRP_SECRET", "vrrp-pw1")
        .env("INFRA_DB_PASSWORD", "db-pw-1")
        .env("INFRA_TEST_SECRET_KEY", "k3y'with\"quotes")
        .output()
        .expect("infra runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let file = tree.join("app-01/etc/infra/app.env");
    let text = std::fs::read_to_string(&file).expect("app.env");
    assert!(text.contains(r#"GREETING="say \"hi\" for \$5 \\\\ 100%""#), "{text}");
    assert!(text.contains("WORKERS_HINT=\"4\"") || text.contains("WORKERS_HINT=4"), "{text}");
    assert!(text.contains(r#"SECRET_KEY="k3y'with\"quotes""#), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777, 0o600);

    let refused = five_server_copy(directory.path(), |text| {
        text.replacen("  directory: /srv/app\n", "  directory: /srv/app\n  env: {DATABASE_HOST: elsewhere}\n", 1)
    });
    let output = infra().args(["validate", "-i"]).arg(&refused).output().expect("infra runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid-env-name"));
}

/// A git repository with the example app committed and tagged `v1`.
fn example_app_repository(directory: &Path) -> std::path::PathBuf {
    let repository = directory.join("app-repository");
    let copied = Command::new("cp").arg("-rT").arg("examples/app").arg(&repository).status().expect("cp runs");
    assert!(copied.success());
    for args in [&["init", "-q", "-b", "main"][..], &["add", "-A"], &["commit", "-q", "-m", "v1"], &["tag", "v1"]] {
        support::git(&repository, args);
    }
    repository
}

/// `app.source: {git, ref}`: a tag deploys the commit's files (the same
/// release id as the directory it was committed from); a ref that is not
/// in the repository, or is not a ref at all, is an error at its place.
#[test]
fn a_git_source_renders_its_commit_and_a_bad_ref_is_located() {
    let directory = tempfile::tempdir().expect("temp dir");
    let repository = example_app_repository(directory.path());
    let with_ref = |reference: &str| {
        let reference = reference.to_string();
        let repository = repository.display().to_string();
        five_server_copy(directory.path(), move |text| {
            text.replace("source: ../examples/app", &format!("source: {{git: {repository}, ref: \"{reference}\"}}"))
        })
    };
    let tree = directory.path().join("tree");
    render_with_secrets(&with_ref("v1"), &tree);
    let host = std::fs::read_to_string(tree.join("app-01/host.json")).expect("host.json");
    let host: serde_json::Value = serde_json::from_str(&host).expect("JSON");
    assert_eq!(host["releases"]["origin"]["revision"], "v1");
    assert_eq!(host["releases"]["origin"]["commit"].as_str().map(str::len), Some(40));
    let plain_directory = directory.path().join("plain");
    std::fs::create_dir(&plain_directory).expect("create");
    let plain = five_server_copy(&plain_directory, |text| text);
    let plain_tree = directory.path().join("plain-tree");
    render_with_secrets(&plain, &plain_tree);
    let plain_host: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(plain_tree.join("app-01/host.json")).expect("host.json"))
            .expect("JSON");
    assert_eq!(host["releases"]["id"], plain_host["releases"]["id"], "the commit's files are the directory's");

    for (reference, expected) in [
        ("v9", "has no commit named `v9`"),
        (
            "--upload-pack=touch /tmp/x",
            "`ref` of `app.source` `--upload-pack=touch /tmp/x` is not a branch, tag or commit",
        ),
    ] {
        let output = infra().args(["validate", "--no-checkers", "-i"]).arg(with_ref(reference)).output().expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected) && stderr.contains("inventory.yml:"), "{stderr}");
    }
}

/// `infra deploy --source REF` needs a git source; with a directory it
/// says so, and how to change that, before anything connects.
#[test]
fn deploy_from_a_revision_needs_a_git_source() {
    let output = infra().args(["deploy", "--source", "v2", "--yes", "-i", "inventories/five-server.yml"]).output();
    let stderr = String::from_utf8_lossy(&output.expect("infra runs").stderr).into_owned();
    assert!(
        stderr.contains("`--source v2` names a git revision, but `app.source` is the directory `../examples/app`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: deploy from a repository with `source: {git: ../examples/app, ref: main}`"),
        "{stderr}"
    );
    let output = infra().args(["deploy", "--source=-x", "--yes", "-i", "inventories/five-server.yml"]).output();
    let stderr = String::from_utf8_lossy(&output.expect("infra runs").stderr).into_owned();
    assert!(stderr.contains("is not a branch, tag or commit"), "{stderr}");
}

/// Issue 22: a git source is a directory a pull request controls; its own
/// configuration (a promisor remote whose upload-pack runs for a missing
/// object, fsmonitor) must run nothing when `validate` reads it.
#[test]
fn validate_of_a_hostile_git_repository_runs_nothing() {
    let directory = tempfile::tempdir().expect("temp dir");
    let repository = example_app_repository(directory.path());
    let marker = directory.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let blob = Command::new("git").arg("-C").arg(&repository).args(["rev-parse", "HEAD:app.py"]).output();
    let blob = String::from_utf8(blob.expect("git runs").stdout).expect("utf-8").trim().to_string();
    std::fs::remove_file(repository.join(".git/objects").join(&blob[..2]).join(&blob[2..])).expect("drop a blob");
    let url = repository.display().to_string();
    for (key, value) in [
        ("extensions.partialClone", "origin"),
        ("remote.origin.url", url.as_str()),
        ("remote.origin.promisor", "true"),
        ("remote.origin.uploadpack", &format!("{touch}; false")),
        ("core.fsmonitor", &touch),
    ] {
        support::git(&repository, &["config", key, value]);
    }
    let inventory = five_server_copy(directory.path(), |text| {
        text.replace("source: ../examples/app", "source: {git: app-repository, ref: v1}")
    });
    let output = infra().args(["validate", "--no-checkers", "-i"]).arg(&inventory).output().expect("infra runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`app.py` of commit") && stderr.contains("infra never fetches"), "{stderr}");
    assert!(!marker.exists(), "validate ran a command from the repository's configuration");
}

/// Issue 22: a FIFO (inside the repository) or `/dev/zero` (allowed by the
/// operator) named as a secret file or a certificate ends in an error
/// within a second, never a hang or a read without end; an override
/// template that is a link is refused, wherever it points.
#[test]
fn a_fifo_or_a_device_is_refused_within_a_second() {
    let directory = tempfile::tempdir().expect("temp dir");
    let fifo = directory.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    for special in [fifo.display().to_string(), "/dev/zero".to_string()] {
        let as_secret = format!("password: {{file: {special}}}");
        let as_certificate = format!(
            "vrrp_secret: {{env: INFRA_VRRP_SECRET}}\n  tls:\n    certificate: {special}\n    key: {{env: INFRA_DB_PASSWORD}}"
        );
        for (what, from, to) in [
            ("secret", "password: {env: INFRA_DB_PASSWORD}", as_secret),
            ("certificate", "vrrp_secret: {env: INFRA_VRRP_SECRET}", as_certificate),
        ] {
            let inventory = five_server_copy(directory.path(), |text| text.replacen(from, &to, 1));
            let started = std::time::Instant::now();
            let output = infra()
                .args(["validate", "--no-checkers", "-i"])
                .arg(&inventory)
                .env("INFRA_ALLOW_PATHS", "/dev")
                .env("INFRA_DB_PASSWORD", "pw")
                .output()
                .expect("infra runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{what} {special}: {stderr}");
            assert!(stderr.contains("not a regular file"), "{what} {special}: {stderr}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1), "{what} {special}: {:?}", started.elapsed());
        }
    }
    let linked = tempfile::tempdir().expect("temp dir");
    let inventory = five_server_with_override(linked.path(), "haproxy.cfg.j2", "");
    let override_file = linked.path().join("templates/haproxy.cfg.j2");
    std::fs::remove_file(&override_file).expect("remove");
    std::fs::write(linked.path().join("elsewhere.j2"), "{# inside the repository #}\n").expect("write");
    std::os::unix::fs::symlink(linked.path().join("elsewhere.j2"), &override_file).expect("symlink");
    let output = infra().args(["validate", "--no-checkers", "-i"]).arg(&inventory).output().expect("infra runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a symbolic link, which infra does not follow here"), "{stderr}");
}

/// Issue 22: `render --out` never writes through a link at `--out`: one
/// there before is refused, and one planted after the check makes the
/// final rename fail, as the tree is written into a directory of infra's
/// own beside it and renamed into place.
#[test]
fn render_never_writes_through_a_link_at_its_output() {
    let directory = tempfile::tempdir().expect("temp dir");
    let victim = directory.path().join("victim");
    std::fs::create_dir(&victim).expect("create");
    let out = directory.path().join("out");
    std::os::unix::fs::symlink(&victim, &out).expect("symlink");
    let output = render_output(Path::new("inventories/five-server.yml"), &out, "s3cret");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_dir(&victim).expect("readable").count(), 0, "render wrote through the link");
    std::fs::remove_file(&out).expect("remove the link");
    let output = render_output(Path::new("inventories/five-server.yml"), &out, "s3cret");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(out.join("db-01/host.json").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(directory.path())
        .expect("readable")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(".infra-render-"))
        .collect();
    assert!(leftovers.is_empty(), "the staging directory is gone");
}

/// Issue 22: requirement lines pip would read as a local archive (and
/// build here) or expand a variable in (and print it) are refused by
/// `validate`, which names the file, line and column.
#[test]
fn requirements_that_would_run_or_leak_are_refused() {
    for (line, expected) in [
        ("evil-1.0.tar.gz", "requirements.txt:2:1: `evil-1.0.tar.gz` names a file"),
        (
            "flask==3.1.0 ; ${INFRA_DB_PASSWORD}",
            "requirements.txt:2:16: `${INFRA_DB_PASSWORD}` is not an environment marker",
        ),
    ] {
        let directory = tempfile::tempdir().expect("temp dir");
        let inventory = five_server_copy(directory.path(), |text| text);
        let requirements = directory.path().join("examples/app/requirements.txt");
        let text = std::fs::read_to_string(&requirements).expect("requirements");
        let first = text.lines().next().expect("a first line");
        std::fs::write(&requirements, format!("{first}\n{line}\n")).expect("write");
        let output = infra()
            .args(["validate", "--no-checkers", "-i"])
            .arg(&inventory)
            .env("INFRA_DB_PASSWORD", "pw-never-shown")
            .output()
            .expect("infra runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{line}: {stderr}");
        assert!(!stderr.contains("pw-never-shown"));
    }
}

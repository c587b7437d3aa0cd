//! End-to-end tests of the `infra` binary that need no host: exact error
//! output for broken inventories, the rendered tree of every example
//! inventory, and the exit codes CI relies on.

use std::path::Path;

#[path = "support/cli.rs"]
mod cli_support;
#[path = "support/git.rs"]
mod support;

use cli_support::*;

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
    // The mode the manifest says, the host gets, and render writes.
    assert_eq!(mode("db-01/usr/local/sbin/infra-backup"), 0o755);
    let manifest = std::fs::read_to_string(tree.join("db-01/host.json")).expect("host.json");
    assert!(manifest.contains("\"path\": \"/usr/local/sbin/infra-backup\",\n      \"mode\": \"0755\""), "{manifest}");
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
    let here = infra::debian::Debian::of_this_machine();
    for release in infra::debian::Debian::ALL {
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
    // `plan --source` previews a deploy, under the same rules.
    let output = infra().args(["plan", "--source", "v2", "-i", "inventories/five-server.yml"]).output();
    let stderr = String::from_utf8_lossy(&output.expect("infra runs").stderr).into_owned();
    assert!(stderr.contains("`--source v2` names a git revision"), "{stderr}");
    let output =
        infra().args(["plan", "--source", "v2", "--out", "p.json", "-i", "inventories/five-server.yml"]).output();
    let stderr = String::from_utf8_lossy(&output.expect("infra runs").stderr).into_owned();
    assert!(stderr.contains("`--out` cannot save the plan of a deploy yet"), "{stderr}");
}

#[test]
fn init_writes_an_inventory_that_validates_without_i() {
    let directory = tempfile::tempdir().expect("tempdir");
    let init = infra().current_dir(directory.path()).arg("init").output().expect("infra runs");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let nested = directory.path().join("deploy/notes");
    std::fs::create_dir_all(&nested).expect("dirs");
    let validate = infra().current_dir(&nested).args(["validate", "--no-checkers", "--strict"]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&validate.stderr);
    assert!(validate.status.success(), "{stderr}");
    assert!(stderr.starts_with("inventory: ../../infra.yml\n"), "says which file it read:\n{stderr}");
    assert!(stderr.contains("`../../infra.yml` is valid: 5 hosts, 0 errors, 0 warnings"), "{stderr}");

    // Never over an existing file: a second init writes nothing.
    let before = std::fs::read_to_string(directory.path().join("infra.yml")).expect("written");
    std::fs::write(directory.path().join("app/app.py"), "mine").expect("write");
    let again = transcript(infra().current_dir(directory.path()).args(["init", "--out", "other.yml"]));
    insta::assert_snapshot!(again, @r"
    exit: 1
    --- stdout
    --- stderr
    error: `app/app.py` exists, and infra init never overwrites a file: nothing was written

    hint: run it in a new directory, or choose another name with `--out FILE`
    ");
    assert!(!directory.path().join("other.yml").exists());
    assert_eq!(std::fs::read_to_string(directory.path().join("infra.yml")).expect("kept"), before);
}

#[test]
fn init_counts_and_subnet_validate_too() {
    let directory = tempfile::tempdir().expect("tempdir");
    let args = ["init", "--subnet", "192.168.50.0/24", "--load-balancers", "3", "--web", "2", "--app", "4", "--lab"];
    let init = infra().current_dir(directory.path()).args(args).output().expect("infra runs");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let validate = infra()
        .current_dir(directory.path())
        .args(["validate", "--no-checkers"])
        .env("INFRA_ALLOW_PATHS", "/var/lib/infra/lab")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&validate.stderr);
    assert!(stderr.contains("is valid: 10 hosts, 0 errors, 0 warnings"), "{stderr}");
    let refused = transcript(infra().current_dir(directory.path()).args(["init", "--web", "12", "--out", "x.yml"]));
    assert!(refused.contains("`--web 12`: a tier has 1 to 9 hosts"), "{refused}");
}

#[test]
fn no_inventory_anywhere_says_every_way_to_name_one() {
    let directory = tempfile::tempdir().expect("tempdir");
    let output = transcript(infra().current_dir(directory.path()).env_remove("INFRA_INVENTORY").arg("stages"));
    let output = output.replace(&directory.path().display().to_string(), "[directory]");
    insta::assert_snapshot!(output, @r"
    exit: 1
    --- stdout
    --- stderr
    error: no inventory: `-i FILE` was not given, `INFRA_INVENTORY` is not set, and there is no `infra.yml` in `[directory]` or any directory above it

    hint: `infra init` writes a starter `infra.yml` here; or pass `-i FILE`, or `export INFRA_INVENTORY=FILE`
    ");
    let named = transcript(infra().current_dir(directory.path()).env("INFRA_INVENTORY", "elsewhere.yml").arg("stages"));
    assert!(
        named.contains("inventory: elsewhere.yml (from INFRA_INVENTORY)\nerror: cannot read inventory `elsewhere.yml`"),
        "{named}"
    );
}

/// What bash's completion of `words` offers, through the script
/// `infra completions bash` prints.
fn bash_completes(directory: &Path, words: &[&str]) -> Vec<String> {
    let binary = assert_cmd::cargo::cargo_bin("infra");
    let quoted: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
    let script = format!(
        "source <(infra completions bash)\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_TYPE=9\n_clap_complete_infra infra '{}' x\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        quoted.join(" "),
        words.len() - 1,
        words.last().copied().unwrap_or_default()
    );
    let path = format!("{}:/usr/bin:/bin", binary.parent().expect("directory").display());
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(directory)
        .env("PATH", path)
        .env_remove("INFRA_INVENTORY")
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
}

#[test]
fn completion_offers_the_inventorys_hosts_for_limit_and_ssh() {
    let directory = tempfile::tempdir().expect("tempdir");
    let init = infra().current_dir(directory.path()).args(["init", "--web", "2"]).output().expect("infra runs");
    assert!(init.status.success());
    assert_eq!(bash_completes(directory.path(), &["infra", "ssh", "web"]), ["web-01", "web-02"]);
    let limits = bash_completes(directory.path(), &["infra", "plan", "--limit", ""]);
    assert_eq!(
        limits,
        ["lb-01", "lb-02", "web-01", "web-02", "app-01", "db-01", "database", "app", "web", "load_balancer", "all"]
    );
    // The inventory `-i` names on the line is the one completed from.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scaled = root.join("inventories/scaled.yml").display().to_string();
    let hosts = bash_completes(directory.path(), &["infra", "exec", "-i", &scaled, "app-0"]);
    assert!(hosts.len() >= 2 && hosts.iter().all(|host| host.starts_with("app-0")), "{hosts:?}");
}

#[test]
fn man_pages_per_subcommand_say_exit_status_environment_and_examples() {
    let page = infra().args(["man", "plan"]).output().expect("infra runs");
    let page = String::from_utf8_lossy(&page.stdout);
    for section in
        [".SH NAME\ninfra\\-plan", ".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH EXAMPLES", "INFRA_INVENTORY"]
    {
        assert!(page.contains(section), "{section} in:\n{page}");
    }
    let directory = tempfile::tempdir().expect("tempdir");
    let written = infra().args(["man", "--out"]).arg(directory.path()).output().expect("runs");
    assert!(written.status.success());
    // Every page the main page refers to exists.
    let main = std::fs::read_to_string(directory.path().join("infra.1")).expect("infra.1");
    for referred in main.split("infra\\-").skip(1).filter_map(|rest| rest.split('(').next()) {
        if referred.chars().all(|c| c.is_ascii_lowercase()) {
            let page = directory.path().join(format!("infra-{referred}.1"));
            assert!(page.exists(), "infra.1 refers to {}", page.display());
        }
    }
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let output = infra().arg("--version").output().expect("infra runs");
    let version = String::from_utf8_lossy(&output.stdout);
    let (_, rest) = version.trim().split_once(" (").expect("infra X.Y.Z (commit date, built date)");
    let words: Vec<&str> = rest.trim_end_matches(')').split([' ', ',']).filter(|word| !word.is_empty()).collect();
    assert_eq!(words.len(), 4, "{version}");
    assert!(words[0] == "unknown" || words[0].len() == 12, "a commit: {version}");
    assert_eq!(words[2], "built", "{version}");
    assert_eq!(words[3].len(), 10, "a date: {version}");
}

#[test]
fn a_limit_that_selects_nothing_suggests_the_nearest_name() {
    let output = transcript(
        infra()
            .args(["plan", "-i", "inventories/five-server.yml", "--limit", "web-1"])
            .env("INFRA_VRRP_SECRET", "x")
            .env("INFRA_DB_PASSWORD", "y"),
    );
    assert!(output.contains("(did you mean `web-01`?)"), "{output}");
}

#[test]
fn destructive_commands_refuse_without_a_terminal_or_yes() {
    let output = transcript(
        infra()
            .args(["restore", "-i", "inventories/five-server.yml"])
            .env("INFRA_VRRP_SECRET", "x")
            .env("INFRA_DB_PASSWORD", "y")
            .stdin(std::process::Stdio::null()),
    );
    assert!(output.contains("error: refusing to restore without confirmation: stdin is not a terminal"), "{output}");
    assert!(output.contains("hint: run again with `--yes`"), "{output}");
}

#[test]
fn lock_break_of_an_unknown_host_suggests_one() {
    let output = transcript(infra().args(["lock", "break", "-i", "inventories/five-server.yml", "web-99"]));
    insta::assert_snapshot!(output, @r"
    exit: 1
    --- stdout
    --- stderr
    error: `web-99` is neither a host nor a role of the inventory (did you mean `web-01`?); its hosts are `lb-01`, `lb-02`, `web-01`, `app-01`, `db-01`
    ");
}

/// A validator as an editor runs one, over the schema `infra schema` prints.
struct SchemaCheck {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl SchemaCheck {
    fn new() -> SchemaCheck {
        let printed = infra().arg("schema").output().expect("infra runs");
        assert!(printed.status.success());
        let schema: serde_json::Value = serde_json::from_slice(&printed.stdout).expect("the schema is JSON");
        let mut compiler = boon::Compiler::new();
        compiler.add_resource("file:///infra.schema.json", schema).expect("a resource");
        let mut schemas = boon::Schemas::new();
        let index = compiler.compile("file:///infra.schema.json", &mut schemas).expect("a valid JSON schema");
        SchemaCheck { schemas, index }
    }

    fn errors(&self, yaml: &str) -> Option<String> {
        let document: serde_json::Value = serde_saphyr::from_str(yaml).expect("YAML");
        self.schemas.validate(&document, self.index).err().map(|error| format!("{error:#}"))
    }
}

#[test]
fn every_example_inventory_validates_against_the_schema_and_a_typo_does_not() {
    let check = SchemaCheck::new();
    let mut inventories: Vec<std::path::PathBuf> = files_under(Path::new("inventories"))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|e| e == "yml"))
        .collect();
    inventories.extend(["tests/fixtures/minimal.yml", "tests/fixtures/every-key.yml"].map(Into::into));
    let directory = tempfile::tempdir().expect("tempdir");
    assert!(infra().current_dir(directory.path()).args(["init", "--lab"]).status().expect("runs").success());
    inventories.push(directory.path().join("infra.yml"));
    for path in &inventories {
        let text = std::fs::read_to_string(path).expect("readable");
        assert_eq!(check.errors(&text), None, "{} against the schema", path.display());
    }
    let text = std::fs::read_to_string("inventories/five-server.yml").expect("readable");
    let typo = check.errors(&text.replacen("    address: 10.20.0.21", "    adress: 10.20.0.21", 1));
    assert!(typo.is_some_and(|errors| errors.contains("adress")), "a misspelt key fails");
    let unknown = check.errors(&format!("{text}\nloadbalancer: {{}}\n"));
    assert!(unknown.is_some_and(|errors| errors.contains("loadbalancer")), "an unknown section fails");
    let wrong = check.errors(&text.replacen("frontend_port: 80", "frontend_port: eighty", 1));
    assert!(wrong.is_some(), "a string where a port goes fails");
}

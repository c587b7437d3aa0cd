//! Hostile input (issues 13 and 22): inventories, templates, sources and
//! git repositories written to make `validate` or `render` run code, leak a
//! secret, or write or read outside where they may. None of them may.

use std::path::Path;
use std::process::Command;

#[path = "support/cli.rs"]
mod cli_support;
#[path = "support/git.rs"]
mod support;

use cli_support::*;

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

/// Issue 26: what SSH dials comes from the inventory, and ssh reads a
/// destination or jump that starts with `-` as an option
/// (`-oProxyCommand=…` runs a program here). Each is refused by its
/// grammar, by validate, and plan never gets to run ssh with it.
#[test]
fn an_ssh_destination_or_jump_that_is_an_option_is_refused() {
    let directory = tempfile::tempdir().expect("temp dir");
    let planted = directory.path().join("pwned");
    for (key, value) in [("host", "-oProxyCommand=touch"), ("jump", "-oProxyCommand=touch"), ("jump", "admin@-J")] {
        let path = five_server_copy(directory.path(), |text| {
            text.replacen(
                "ssh:\n  user: root\n",
                &format!("ssh:\n  user: root\n  {key}: '{value} {}'\n", planted.display()),
                1,
            )
            .replacen(
                "    roles: [database]\n",
                &format!("    roles: [database]\n    ssh: {{{key}: '{value}'}}\n"),
                1,
            )
        });
        for command in ["validate", "plan"] {
            let output = infra()
                .args([command, "-i"])
                .arg(&path)
                .env("INFRA_VRRP_SECRET", "x")
                .env("INFRA_DB_PASSWORD", "y")
                .output()
                .expect("infra runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{command} with {key}: {value}: {stderr}");
            assert!(stderr.contains("not starting with `-`") || stderr.contains("is not a jump host"), "{stderr}");
        }
        assert!(!planted.exists(), "{key}: {value} ran a program on this machine");
    }
}

/// Issue 27: `app.shared` names links the unpack script makes in each
/// release as root: a path out of the release, a hidden one (the
/// release's `.venv` and marks) or two that overlap are refused by
/// validate at their line.
#[test]
fn shared_directories_out_of_the_release_hidden_or_overlapping_are_refused() {
    for (shared, expected) in [
        ("[../../etc]", "a directory of `app.shared`"),
        ("[/etc/cron.d]", "a directory of `app.shared`"),
        ("[.venv]", "a directory of `app.shared`"),
        ("[media, media/avatars]", "`media` and `media/avatars` overlap in `app.shared`"),
    ] {
        let directory = tempfile::tempdir().expect("temp dir");
        let inventory = five_server_copy(directory.path(), |text| {
            text.replacen("  shared: [media]\n", &format!("  shared: {shared}\n"), 1)
        });
        let output = infra()
            .args(["validate", "--no-checkers", "-i"])
            .arg(&inventory)
            .env("INFRA_DB_PASSWORD", "pw")
            .env("INFRA_VRRP_SECRET", "secret")
            .output()
            .expect("infra runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{shared}: {stderr}");
        assert!(stderr.contains(expected), "{shared}: {stderr}");
    }
}

//! The transaction scripts, run by the real `sh` on files in a temporary
//! directory (the journal path and systemctl are redirected there too).

use std::process::{Command, Stdio};

use super::*;
use crate::desired::{HostState, ManagedFile, ManagedService};
use crate::facts::HostFacts;
use crate::plan::plan_host;

fn file(path: String, content: &str) -> ManagedFile {
    ManagedFile {
        path,
        content: content.as_bytes().into(),
        mode: 0o640,
        owner: "root".into(),
        group: "root".into(),
        sensitive: false,
        checker: None,
        origin: "test".into(),
    }
}

fn host(directory: &std::path::Path) -> HostState {
    HostState {
        name: "web-01".into(),
        address: "10.0.0.21".parse().expect("address"),
        target: crate::transport::Target::with_defaults("web-01", "10.0.0.21".parse().expect("address")),
        roles: vec![],
        stage: crate::topology::Role::Web,
        packages: vec![],
        files: vec![
            file(directory.join("existing.conf").display().to_string(), "new content\n"),
            file(directory.join("sub/created.conf").display().to_string(), "created\n"),
        ],
        services: vec![ManagedService {
            name: "demo".into(),
            reload_on: vec![directory.join("existing.conf").display().to_string()],
            restart_on: vec![],
            enabled: false,
        }],
        hooks: vec![],
        health_checks: vec![],
        ssh_guard: None,
        ports: Vec::new(),
        interfaces: Vec::new(),
        backups: None,
        releases: None,
        static_releases: None,
    }
}

/// Runs a script with the journal and systemctl redirected into `directory`.
fn run(script: &str, directory: &std::path::Path) -> std::process::Output {
    use std::io::Write;
    let journal = directory.join("pending").display().to_string();
    let step_lock = directory.join("release-step.lock").display().to_string();
    let script = script
        .replace(PENDING_JOURNAL, &journal)
        .replace("mkdir -p /var/lib/infra", "true")
        .replace("/var/lib/infra/release-step.lock", &step_lock)
        .replace("systemctl", "echo systemctl");
    let mut child = Command::new("sh")
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("script");
    child.wait_with_output().expect("sh finishes")
}

#[test]
fn upload_swap_and_rollback_leave_the_old_files_exactly() {
    let directory = tempfile::tempdir().expect("temp dir");
    let existing = directory.path().join("existing.conf");
    std::fs::write(&existing, "old content\n").expect("write");
    let host = host(directory.path());
    let mut facts = HostFacts::default();
    facts.services.insert("demo".into(), crate::facts::ServiceFact { active: true, enabled: false });
    facts.files.insert(
        existing.display().to_string(),
        crate::facts::FileFact::Present {
            sha256: crate::facts::sha256_hex(b"old content\n"),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            content: None,
        },
    );
    let plan = plan_host(&host, &facts);
    let files = content_changes(&plan, &host);
    assert_eq!(files.len(), 2);

    assert!(run(&upload(&files), directory.path()).status.success());
    assert_eq!(std::fs::read_to_string(&existing).expect("read"), "old content\n", "upload never touches the target");
    assert!(run(&swap(&plan, &files, &host), directory.path()).status.success());
    assert_eq!(std::fs::read_to_string(&existing).expect("read"), "new content\n");
    assert_eq!(std::fs::read_to_string(directory.path().join("pending")).expect("journal"), "reload demo\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&existing).expect("meta").permissions().mode() & 0o777, 0o640);

    let rolled_back = run(&rollback(&plan, &files), directory.path());
    assert!(rolled_back.status.success());
    assert!(String::from_utf8_lossy(&rolled_back.stdout).contains("systemctl restart demo"));
    assert_eq!(std::fs::read_to_string(&existing).expect("read"), "old content\n");
    assert!(!directory.path().join("sub/created.conf").exists(), "a file the apply created is removed again");
    assert!(!directory.path().join("pending").exists());
    let leftovers: Vec<_> = std::fs::read_dir(directory.path())
        .expect("dir")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".infra-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn commit_forgets_backups_and_the_journal() {
    let directory = tempfile::tempdir().expect("temp dir");
    std::fs::write(directory.path().join("existing.conf"), "old\n").expect("write");
    let host = host(directory.path());
    let plan = plan_host(&host, &HostFacts::default());
    let files = content_changes(&plan, &host);
    for script in [upload(&files), swap(&plan, &files, &host), commit(&plan, &files)] {
        assert!(run(&script, directory.path()).status.success());
    }
    let names: Vec<String> = std::fs::read_dir(directory.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|name| !name.contains(".infra-")), "{names:?}");
    assert!(!directory.path().join("pending").exists());
}

#[test]
fn secrets_travel_in_the_script_body_not_a_command_line() {
    let mut secret = file("/etc/infra/app.env".into(), "DATABASE_PASSWORD=\"s3cret\"\n");
    secret.sensitive = true;
    let script = upload(&[&secret]);
    assert!(!script.contains("s3cret"), "content is base64 inside a here-document");
    assert!(script.contains("<<'INFRA_EOF'"));
}

#[test]
fn health_needs_consecutive_passes_and_reports_the_failing_check() {
    let directory = tempfile::tempdir().expect("temp dir");
    let flag = directory.path().join("healthy");
    let mut host = host(directory.path());
    host.health_checks = vec![crate::desired::HealthCheck {
        description: "the flag exists".into(),
        command: format!("test -e {}", flag.display()),
    }];
    let script = health(&host, 2).expect("a script");
    let failed = run(&script, directory.path());
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("health check failed: the flag exists"));
    // A check that fails and passes by turns (a worker still draining) is
    // reported with the failure it showed, never a pass seen afterwards.
    let turns = directory.path().join("turns");
    host.health_checks[0].command = format!(
        "if [ -e {turns} ]; then rm {turns}; else touch {turns}; echo 'HTTP 500: app broken' >&2; exit 1; fi",
        turns = turns.display()
    );
    let flapping = run(&health(&host, 2).expect("a script"), directory.path());
    let stderr = String::from_utf8_lossy(&flapping.stderr);
    assert!(!flapping.status.success());
    assert!(
        stderr.contains("health check failed: the flag exists") && stderr.contains("HTTP 500: app broken"),
        "{stderr}"
    );
    host.health_checks[0].command = format!("test -e {}", flag.display());
    std::fs::write(&flag, "").expect("write");
    let started = std::time::Instant::now();
    assert!(run(&script, directory.path()).status.success());
    assert!(started.elapsed() >= std::time::Duration::from_millis(900), "three passes half a second apart");
}

/// The catalog's check plans read by the remote interpreter: the validate
/// script of every host of a rendered inventory, its `.infra-new` paths
/// pointed into a temporary directory, run by the real `sh` with the real
/// checkers (the local interpreter is run on the same plans by `validate`'s
/// tests). Checkers not installed here are left out, as `validate` does.
#[test]
fn the_remote_checks_of_every_service_pass_on_rendered_files() {
    let stack = crate::rules::test_support::stack(crate::rules::test_support::VALID);
    let state = crate::render::render(&stack, crate::render::SecretMode::Placeholder).expect("renders").state;
    let installed = |program: &str| {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .any(|directory| std::path::Path::new(directory).join(program).exists())
    };
    let mut checked = std::collections::BTreeSet::new();
    for host in &state.hosts {
        let directory = tempfile::tempdir().expect("temp dir");
        let files: Vec<&ManagedFile> = host
            .files
            .iter()
            .filter(|file| {
                file.checker.is_some_and(|checker| crate::catalog::check_plan(checker, host).programs().all(installed))
            })
            .collect();
        let Some(mut script) = validate(host, &files) else { continue };
        for file in &files {
            let new = directory.path().join(format!("{}{NEW}", file.path.trim_start_matches('/')));
            std::fs::create_dir_all(new.parent().expect("parent")).expect("create");
            std::fs::write(&new, &file.content[..]).expect("write");
            script = script.replace(&quote(&format!("{}{NEW}", file.path)), &quote(&new.display().to_string()));
            checked.insert(file.checker.map(|checker| checker.name()));
        }
        let output = Command::new("sh").arg("-c").arg(&script).output().expect("sh runs");
        assert!(
            output.status.success(),
            "{}: the remote check failed:\n{}\n{script}",
            host.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    if std::env::var_os("CI").is_some() {
        let checkers: std::collections::BTreeSet<_> =
            state.hosts.iter().flat_map(|host| &host.files).filter_map(|file| file.checker).collect();
        assert_eq!(checked.len(), checkers.len(), "every checker ran in CI: {checked:?}");
    }
}

#[test]
fn a_backup_comes_first_only_before_a_restart_or_sql_on_a_host_that_asks() {
    use crate::desired::Backups;
    use crate::plan::ServiceChange;
    let directory = tempfile::tempdir().expect("temp dir");
    let mut host = host(directory.path());
    let mut plan = plan_host(&host, &HostFacts::default());
    plan.restart = vec![ServiceChange { name: catalog::MARIADB.unit.into(), because: vec![] }];
    assert_eq!(backup_first(&plan, &host), None, "a host without backups");
    host.backups =
        Some(Backups { directory: "/var/backups/infra".into(), on_calendar: "daily".into(), before_apply: true });
    let script = backup_first(&plan, &host).expect("a restart of MariaDB");
    assert!(script.contains("/usr/local/sbin/infra-backup now"), "{script}");
    plan.restart.clear();
    assert_eq!(backup_first(&plan, &host), None, "nothing risky");
    plan.hooks = vec![ServiceChange { name: "database SQL".into(), because: vec![] }];
    assert!(backup_first(&plan, &host).is_some(), "SQL fed to MariaDB");
    host.backups.as_mut().expect("backups").before_apply = false;
    assert_eq!(backup_first(&plan, &host), None, "`before_apply: false`");
}

/// A new release `aaaaaaaaaaaa` in `/srv/app` whose migration is `words`.
fn migrating(words: &[&str]) -> ReleasePlan {
    ReleasePlan {
        directory: "/srv/app/releases".into(),
        link: "/srv/app/current".into(),
        current: None,
        switch_to: Some("aaaaaaaaaaaa".into()),
        target: "releases/aaaaaaaaaaaa".into(),
        prune: vec![],
        new: true,
        files: 1,
        migrate: Some(words.iter().map(|word| word.to_string()).collect()),
        packages: None,
        record_migrations: vec!["aaaaaaaaaaaa".into()],
        choice: Default::default(),
        change: None,
        shared: vec![],
        before_switch: vec![],
        after_switch: vec![],
        server: None,
        publish: None,
    }
}

#[test]
fn a_failing_app_command_says_which_and_how_it_exited() {
    let directory = tempfile::tempdir().expect("temp dir");
    let release = migrating(&["python3", "-m", "alembic", "upgrade", "`touch x`"]);
    let bin = directory.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::write(bin.join("systemd-run"), "#!/bin/sh\nexit 255\n").expect("fake");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("systemd-run"), std::fs::Permissions::from_mode(0o755)).expect("mode");
    let script = format!("PATH={}:$PATH\n{}", bin.display(), migrate(&release).expect("a migration"));
    let output = run(&script, directory.path());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`python3 -m alembic upgrade `touch x`` exited with status 255"), "{stderr}");
    assert!(!directory.path().join("x").exists(), "nothing in the command's words runs in the message");
}

/// Issue 22: the service manager expands `${NAME}` in the command
/// systemd-run hands it, which would put the environment file's secrets
/// on a command line: each `$` reaches it doubled, read back as one.
#[test]
fn a_dollar_in_an_app_command_reaches_systemd_doubled() {
    let release = migrating(&["echo", "${INFRA_DB_PASSWORD}", "$$"]);
    let script = migrate(&release).expect("a migration");
    assert!(script.contains("app 'echo' '$${INFRA_DB_PASSWORD}' '$$$$' <"), "{script}");
    assert!(script.contains("'`echo ${INFRA_DB_PASSWORD} $$`'\" exited"), "the message shows the words as written");
}

/// Issue 27: a new release links each shared directory in place of what
/// its source had there, after making the directory (owned by the app's
/// user) if it is missing; it never empties one.
#[test]
fn an_unpacked_release_links_its_shared_directories() {
    let mut release = migrating(&["true"]);
    release.shared = vec!["media".into(), "var/log".into()];
    let files = vec![("media/README".to_string(), std::sync::Arc::<[u8]>::from(&b"from git"[..]))];
    let script =
        unpack(&release, &files, "INFRA_RELEASE=x\n", &ReleaseRecord::default()).expect("a new release unpacks");
    let partial = "'/srv/app/releases/.aaaaaaaaaaaa.partial";
    for expected in [
        "install -d -o www-data -g www-data -m 0750 '/srv/app/shared/media'\n".to_string(),
        format!("rm -rf {partial}/media'\nln -s '/srv/app/shared/media' {partial}/media'\n"),
        "mkdir -p '/srv/app/shared/var'\ninstall -d -o www-data -g www-data -m 0750 '/srv/app/shared/var/log'\n".into(),
        format!(
            "mkdir -p {partial}/var'\nrm -rf {partial}/var/log'\nln -s '/srv/app/shared/var/log' {partial}/var/log'\n"
        ),
    ] {
        assert!(script.contains(&expected), "{expected:?} in {script}");
    }
    let linked = script.find("ln -s '/srv/app/shared/media'").expect("linked");
    assert!(script.find("media/README").expect("unpacked") < linked, "the link replaces the source's directory");
    assert!(!script.contains("rm -rf '/srv/app/shared"), "a shared directory is never emptied");
}

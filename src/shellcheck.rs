//! Every shell script infra sends to a host, checked by shellcheck as the
//! POSIX sh that runs it (files with a shebang as what it names): the facts script, each apply step of a full
//! converge of the test inventory (recorded on the fake transport), the
//! lock's and the backup subsystem's scripts and the rendered backup
//! script. Quoting is where a hostile value would become code, so findings
//! down to `info` (SC2086, an unquoted expansion) fail the test.
//!
//! shellcheck is a Debian package (`.ci/run` installs it); where it is
//! missing the test says so and passes, unless `INFRA_REQUIRE_SHELLCHECK`
//! is set, as `.ci/run` does.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use crate::facts::HostFacts;
use crate::transport::fake::Fake;

/// shellcheck's findings on `script` (as `sh`), or `None` when it is not installed.
pub(crate) fn findings(script: &str) -> Option<String> {
    use std::io::Write;
    // A file with a shebang is checked as what it names; a script sent to
    // a host is run by `sh`.
    let shell = if script.starts_with("#!") { None } else { Some("--shell=sh") };
    let spawned = Command::new("shellcheck")
        .args(shell)
        .args(["--severity=info", "--format=gcc", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => panic!("shellcheck does not start: {error}"),
    };
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("shellcheck reads the script");
    let output = child.wait_with_output().expect("shellcheck runs");
    Some(String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr))
}

/// Fails with shellcheck's findings on each script, named by `what`.
pub(crate) fn assert_clean(scripts: &[(String, String)]) {
    let mut report = String::new();
    for (what, script) in scripts {
        let Some(found) = findings(script) else {
            assert!(
                std::env::var_os("INFRA_REQUIRE_SHELLCHECK").is_none(),
                "shellcheck is required here (INFRA_REQUIRE_SHELLCHECK) but not installed"
            );
            stderrln!("SKIPPED shellcheck: not installed (apt-get install shellcheck)");
            return;
        };
        if !found.trim().is_empty() {
            let numbered: String =
                script.lines().enumerate().map(|(index, line)| format!("{:4} {line}\n", index + 1)).collect();
            report.push_str(&format!("--- {what}\n{found}{numbered}\n"));
        }
    }
    assert!(report.is_empty(), "shellcheck finds problems in scripts infra sends:\n{report}");
}

/// The desired state of the test inventory, with a migration and static
/// files to build, secrets as placeholders.
fn desired() -> crate::desired::DesiredState {
    let text = crate::rules::test_support::broken(
        "  source: app\n",
        "  source: app\n  migrate: [python3, -m, alembic, upgrade, head]\n  static: {build: [[python3, manage.py, collectstatic, --noinput]]}\n",
    );
    let stack = crate::rules::test_support::stack(&text);
    crate::render::render(&stack, crate::render::SecretMode::Placeholder).expect("the test inventory renders").state
}

/// Every script a first converge of fresh hosts runs, by host and step,
/// when the scripts for which `fails(host, script)` holds fail.
fn converge_scripts(
    desired: &crate::desired::DesiredState,
    fails: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
) -> Vec<(String, String)> {
    let facts: BTreeMap<String, HostFacts> =
        desired.hosts.iter().map(|host| (host.name.clone(), HostFacts::default())).collect();
    let plan = crate::plan::plan(desired, &facts, Vec::new());
    let fake = Fake::new(move |host, script| {
        if fails(host, script) {
            return Err("failed".into());
        }
        Ok(if script == crate::catalog::keepalived::ADDRESSES_SCRIPT && host == "lb-01" {
            "V 10.20.0.10\n"
        } else if script.starts_with("# infra step: building the release's static files") {
            // One file, so the publication's script writes one too.
            "F c2l0ZS5jc3M= Ym9keSB7fQo=\nEND\n"
        } else {
            ""
        }
        .to_string())
    });
    let context = crate::apply::Context {
        desired,
        connector: &fake,
        settings: crate::apply::ApplySettings { serial: 1, health_seconds: 1 },
        reporter: &crate::report::Silent,
        wheelhouses: &BTreeMap::new(),
        migrated: Default::default(),
        operator: "tester@here".into(),
        started: "20261203T070000Z".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(crate::apply::apply(&plan, &context));
    fake.scripts()
        .into_iter()
        .map(|(host, script)| {
            let step = script.lines().next().unwrap_or_default().trim_start_matches("# infra step: ").to_string();
            (format!("{host}: {step}"), script)
        })
        .collect()
}

#[test]
fn every_script_infra_sends_passes_shellcheck() {
    let desired = desired();
    let mut scripts = converge_scripts(&desired, |_, _| false);
    // A failed health check rolls its host back: the rollback's scripts.
    scripts.extend(converge_scripts(&desired, |host, script| {
        host == "app-01" && script.starts_with("# infra step: health checks")
    }));
    for host in &desired.hosts {
        scripts.push((format!("{}: the facts script", host.name), crate::facts::script(host)));
        for file in host.files.iter().filter(|file| file.content.starts_with(b"#!/bin/")) {
            scripts.push((format!("{}: {}", host.name, file.path), String::from_utf8_lossy(&file.content).into()));
        }
    }
    scripts.push(("the restore drill".into(), crate::backup::drill_script("/var/backups/infra", "app")));
    scripts.extend(crate::lock::scripts().into_iter().map(|(what, script)| (what.to_string(), script)));
    for (what, _) in &scripts {
        stderrln!("checked: {}", what.lines().next().unwrap_or_default());
    }
    assert_clean(&scripts);
}

#[test]
fn a_planted_quoting_bug_is_found() {
    let Some(found) = findings("#!/bin/sh\ndirectory=$1\nrm -rf $directory/releases\n") else { return };
    assert!(found.contains("SC2086"), "{found}");
}

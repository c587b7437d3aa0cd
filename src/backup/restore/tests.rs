//! A restore on the fake transport: the order of its phases, the app tier
//! started again after a failed load, the choice of backup, and a copy on
//! the destination fetched only with the right seal.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::backup::store::tests::{KEY, listing, manifest, stores};
use crate::transport::fake::Fake;

const A: &str = "20261123T100000Z";
const B: &str = "20261123T110000Z";
const C: &str = "20261123T120000Z";

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

fn apps() -> Vec<App> {
    ["app-01", "app-02"]
        .map(|name| App { name: name.into(), probe: format!("curl -fsS http://{name}/"), processes: vec![] })
        .into()
}

/// Each script as a phase: `check`, `stop`, `restore`, `start`, `wait`.
fn phase(script: &str) -> &'static str {
    if script.contains("infra-backup check") {
        "check"
    } else if script.contains("infra-backup restore") {
        "restore"
    } else if script.starts_with("systemctl stop") {
        "stop"
    } else if script.starts_with("systemctl start") {
        "start"
    } else if script.contains("curl -fsS") {
        "wait"
    } else {
        "other"
    }
}

fn load_on_fake(load_fails: bool) -> (Result<(), RestoreError>, Vec<(String, &'static str)>) {
    let fake = Fake::new(move |_, script| {
        if load_fails && script.contains("infra-backup restore") {
            return Err("ERROR 1064 (42000) at line 12".into());
        }
        Ok(String::new())
    });
    let remotes: BTreeMap<String, _> =
        ["db-01", "app-01", "app-02"].map(|host| (host.to_string(), fake.remote(host))).into();
    let outcome = run(load(&remotes, &stores().database, &apps(), (A, Some("2026-11-23 10:30:00")), |_| {}));
    let phases = fake.scripts().into_iter().map(|(host, script)| (host, phase(&script))).collect();
    (outcome, phases)
}

#[test]
fn the_app_tier_is_stopped_while_the_backup_loads_and_waited_for_after() {
    let (outcome, phases) = load_on_fake(false);
    assert!(outcome.is_ok(), "{outcome:?}");
    let expected = [
        ("db-01", "check"),
        ("app-01", "stop"),
        ("app-02", "stop"),
        ("db-01", "restore"),
        ("app-01", "start"),
        ("app-02", "start"),
        ("app-01", "wait"),
        ("app-02", "wait"),
    ];
    let phases: Vec<(&str, &str)> = phases.iter().map(|(host, phase)| (host.as_str(), *phase)).collect();
    assert_eq!(phases, expected);
}

#[test]
fn a_failed_load_still_starts_the_app_tier_and_says_why() {
    let (outcome, phases) = load_on_fake(true);
    let error = outcome.expect_err("the load failed");
    assert!(crate::diagnostic::error_chain(&error).contains("ERROR 1064"), "{error:?}");
    let started: Vec<&str> =
        phases.iter().filter(|(_, phase)| *phase == "start").map(|(host, _)| host.as_str()).collect();
    assert_eq!(started, ["app-01", "app-02"]);
}

#[test]
fn a_point_in_time_picks_the_newest_backup_before_it_with_a_log_position() {
    let (a, mut b, c) = (manifest(A), manifest(B), manifest(C));
    b.binlog_file.clear();
    let every = [&a, &b, &c];
    let at = |until: &str| Wanted { id: None, until: Some(until.into()) };
    assert_eq!(choose(&every, &at("2026-11-23 11:30:00")).expect("found").id, A);
    assert_eq!(choose(&every, &at("2026-11-23 12:00:00")).expect("found").id, C);
    assert!(matches!(choose(&every, &at("2026-11-23 09:00:00")), Err(RestoreError::NoneBefore(_))));
    assert_eq!(choose(&every, &Wanted::default()).expect("newest").id, C);
    let named = Wanted { id: Some(B.into()), until: None };
    assert_eq!(choose(&every, &named).expect("named").id, B);
}

/// A fetch of `wanted` where db-01 holds `local` and web-01 holds `remote`
/// sealed with `sealed_with`; the outcome and whether a dump was copied.
fn fetch_on_fake(
    local: &'static [&'static str],
    remote: &'static [&'static str],
    sealed_with: &'static str,
    wanted: Wanted,
    key: Option<&str>,
) -> (Result<String, RestoreError>, bool) {
    let fake = Fake::new(move |host, script| {
        Ok(match (host, script.starts_with("for m in")) {
            ("db-01", true) => listing(local, KEY),
            (_, true) => listing(remote, sealed_with),
            _ => String::new(),
        })
    });
    let remotes: BTreeMap<String, _> = ["db-01", "web-01"].map(|host| (host.to_string(), fake.remote(host))).into();
    let copies = Mutex::new(0);
    let outcome = run(fetch(&remotes, &stores(), &wanted, key, |_, _| *copies.lock().expect("copies") += 1));
    let copied = fake.scripts().iter().any(|(host, script)| host == "db-01" && script.contains("sha256sum <"));
    assert_eq!(*copies.lock().expect("copies") > 0, copied);
    (outcome, copied)
}

#[test]
fn the_database_hosts_own_backup_is_loaded_without_a_copy() {
    let (outcome, copied) = fetch_on_fake(&[A, B], &[A, B, C], KEY, Wanted::default(), Some(KEY));
    // The destination's newer, sealed C is trusted and newest: copied back.
    assert_eq!(outcome.expect("fetched"), C);
    assert!(copied);
    let (outcome, copied) = fetch_on_fake(&[A, B], &[A], KEY, Wanted::default(), Some(KEY));
    assert_eq!(outcome.expect("fetched"), B);
    assert!(!copied);
}

#[test]
fn a_copy_on_the_destination_needs_the_right_seal() {
    // Planted on the destination with another key: never the newest, and an error when named.
    let (outcome, copied) = fetch_on_fake(&[A], &[C], "a forger's key", Wanted::default(), Some(KEY));
    assert_eq!(outcome.expect("fetched"), A);
    assert!(!copied);
    let named = Wanted { id: Some(C.into()), until: None };
    let (outcome, copied) = fetch_on_fake(&[A], &[C], "a forger's key", named.clone(), Some(KEY));
    assert!(matches!(outcome, Err(RestoreError::Unsealed { .. })), "{outcome:?}");
    assert!(!copied);
    // Without the key no copy elsewhere can be checked: said, not guessed.
    let (outcome, _) = fetch_on_fake(&[], &[C], KEY, Wanted::default(), None);
    assert!(matches!(outcome, Err(RestoreError::NeedsKey { .. })), "{outcome:?}");
}

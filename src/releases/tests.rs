//! Rollback on the fake transport: which release it goes back to, and the
//! host-by-host switch that stops, switched back, at the first unhealthy
//! host. No host, no root, well under a second.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::facts::HostFacts;
use crate::transport::fake::Fake;

const OLD: &str = "111111111111";
const MIDDLE: &str = "222222222222";
const NEW: &str = "333333333333";

/// Two app hosts as render makes them from the test inventory.
fn app_hosts() -> Vec<HostState> {
    let stack = crate::rules::test_support::stack(crate::rules::test_support::VALID);
    let rendered = crate::render::render(&stack, crate::render::SecretMode::Placeholder).expect("renders");
    let first = rendered.state.hosts.into_iter().find(|host| host.releases.is_some()).expect("an app host");
    let mut second = first.clone();
    second.name = "app-02".into();
    second.target.name = "app-02".into();
    vec![first, second]
}

/// Facts of a host with `releases` (id, unpacked at), serving `current`,
/// of which `healthy` passed their checks.
fn facts(releases: &[(&str, i64)], current: &str, healthy: &[&str]) -> HostFacts {
    HostFacts {
        release_link: Some(LinkFact::Link(format!("releases/{current}"))),
        releases: releases.iter().map(|(id, at)| (id.to_string(), *at)).collect(),
        healthy: healthy.iter().map(|id| id.to_string()).collect(),
        ..HostFacts::default()
    }
}

fn fleet(each: HostFacts) -> (Vec<HostState>, BTreeMap<String, HostFacts>) {
    let hosts = app_hosts();
    let facts = hosts.iter().map(|host| (host.name.clone(), each.clone())).collect();
    (hosts, facts)
}

#[test]
fn the_target_is_the_newest_healthy_release_before_the_current_one() {
    let three = [(OLD, 100), (MIDDLE, 200), (NEW, 300)];
    let (hosts, all) = fleet(facts(&three, NEW, &[OLD, MIDDLE, NEW]));
    assert_eq!(rollback_target(&hosts, &all, None).expect("a target"), MIDDLE);
    // A release that never passed its checks is skipped.
    let (hosts, all) = fleet(facts(&three, NEW, &[OLD, NEW]));
    assert_eq!(rollback_target(&hosts, &all, None).expect("a target"), OLD);
    // Serving the middle one (after a rollback), the newer one is not "earlier".
    let (hosts, all) = fleet(facts(&three, MIDDLE, &[OLD, MIDDLE, NEW]));
    assert_eq!(rollback_target(&hosts, &all, None).expect("a target"), OLD);
}

#[test]
fn a_target_must_exist_be_an_id_and_be_on_every_host() {
    let (hosts, all) = fleet(facts(&[(NEW, 300)], NEW, &[NEW]));
    assert!(matches!(rollback_target(&hosts, &all, None), Err(RollbackError::NoEarlierHealthy)));
    assert!(matches!(rollback_target(&hosts, &all, Some("../etc")), Err(RollbackError::NotAnId(_))));
    let (hosts, mut all) = fleet(facts(&[(OLD, 100), (NEW, 300)], NEW, &[OLD, NEW]));
    all.insert("app-02".into(), facts(&[(NEW, 300)], NEW, &[NEW]));
    let refused = rollback_target(&hosts, &all, Some(OLD));
    assert!(matches!(&refused, Err(RollbackError::NotOnHost { host, .. }) if host == "app-02"), "{refused:?}");
    assert!(matches!(rollback_target(&hosts, &all, None), Err(RollbackError::NotOnHost { .. })));
}

/// What a rollback on the fake did: its outcome, every (host, script) in
/// order, and the hosts reported switched.
type Ran = (Result<(), RollbackError>, Vec<(String, String)>, Vec<String>);

/// Runs a rollback to OLD on the fake; the host named `fails` fails its
/// probe; every host's OLD and NEW serve with Gunicorn `servers`.
fn roll_back_on_fake(fails: &'static str, servers: [&str; 2]) -> Ran {
    let hosts = app_hosts();
    let mut each = facts(&[(OLD, 100), (NEW, 300)], NEW, &[OLD, NEW]);
    each.servers = [(OLD, servers[0]), (NEW, servers[1])].map(|(id, server)| (id.into(), server.into())).into();
    let all: BTreeMap<String, HostFacts> = hosts.iter().map(|host| (host.name.clone(), each.clone())).collect();
    let fake = Fake::new(move |host, script| {
        if script.starts_with("set -e\nold=$(readlink") {
            return Ok(format!("releases/{NEW}\n"));
        }
        if host == fails && script.contains(".infra-healthy") {
            return Err("the probe never passed".into());
        }
        Ok(String::new())
    });
    let remotes: BTreeMap<String, _> = hosts.iter().map(|host| (host.name.clone(), fake.remote(&host.name))).collect();
    let switched = Mutex::new(Vec::new());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let outcome = runtime.block_on(roll_back(&remotes, &hosts, &all, OLD, None, |host, _| {
        switched.lock().expect("switched").push(host.to_string());
    }));
    (outcome, fake.scripts(), switched.into_inner().expect("switched"))
}

#[test]
fn hosts_switch_one_at_a_time_each_healthy_before_the_next() {
    let (outcome, scripts, switched) = roll_back_on_fake("none", ["23.0.0", "23.0.0"]);
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(switched, ["app-01", "app-02"]);
    let steps: Vec<(&str, bool)> =
        scripts.iter().map(|(host, script)| (host.as_str(), script.contains(&format!("releases/{OLD}")))).collect();
    // app-01: switch, wait, settle its choice; then app-02 the same.
    let hosts: Vec<&str> = steps.iter().map(|(host, _)| *host).collect();
    assert_eq!(hosts, ["app-01", "app-01", "app-01", "app-02", "app-02", "app-02"]);
    assert!(scripts[2].1.contains(crate::desired::release_marks::CHOICE), "the choice is settled: {}", scripts[2].1);
    let switch = &scripts[0].1;
    assert!(switch.contains(&format!("releases/{OLD}")) && switch.contains("systemctl reload infra-app"), "{switch}");
    assert!(scripts[1].1.contains(&format!("/{OLD}/.infra-healthy")), "the mark goes on the release: {}", scripts[1].1);
}

#[test]
fn an_unhealthy_host_is_switched_back_and_the_next_is_not_touched() {
    let (outcome, scripts, switched) = roll_back_on_fake("app-01", ["23.0.0", "23.0.0"]);
    assert!(matches!(&outcome, Err(RollbackError::Unhealthy { host, .. }) if host == "app-01"), "{outcome:?}");
    assert!(switched.is_empty());
    assert_eq!(scripts.len(), 3, "switch, wait, switch back: {scripts:?}");
    let back = &scripts[2].1;
    assert!(back.contains(&format!("releases/{NEW}")) && back.contains("systemctl reload infra-app"), "{back}");
    assert!(scripts.iter().all(|(host, _)| host == "app-01"), "app-02 was touched: {scripts:?}");
}

/// Issue 27: a release that serves with another Gunicorn than the running
/// one is switched to with a restart, and switched back the same way (a
/// reload would keep the master's own code).
#[test]
fn another_gunicorn_is_restarted_into_both_ways() {
    let (outcome, scripts, _) = roll_back_on_fake("app-01", ["22.0.0", "23.0.0"]);
    assert!(outcome.is_err());
    for script in [&scripts[0].1, &scripts[2].1] {
        assert!(script.contains("systemctl restart infra-app") && !script.contains("reload"), "{script}");
    }
}

//! Apply's orchestration on an in-memory transport: stage order, serial
//! web hosts drained on every balancer, the virtual IP's holder last,
//! rollback at every step after the swap, and every failure of a stage
//! kept with its host's output, and the run after an interrupted one
//! resuming what it owed. No host, no root, well under a second.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::desired::{HealthCheck, ManagedFile, ManagedService};
use crate::facts::HostFacts;
use crate::transport::Target;
use crate::transport::fake::Fake;

/// Records the reporter's events as text, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn stage(&self, role: &str, hosts: &[String]) {
        self.0.lock().expect("events").push(format!("stage {role}: {}", hosts.join(", ")));
    }
    fn step(&self, _: &str, _: &str) {}
    fn done(&self, host: &str, _: &str) {
        self.0.lock().expect("events").push(format!("done {host}"));
    }
    fn failed(&self, host: &str, step: &str, _: &str) {
        self.0.lock().expect("events").push(format!("failed {host} at {step}"));
    }
}

const HOSTS: [(&str, Role); 6] = [
    ("db-01", Role::Database),
    ("app-01", Role::App),
    ("web-01", Role::Web),
    ("web-02", Role::Web),
    ("lb-01", Role::LoadBalancer),
    ("lb-02", Role::LoadBalancer),
];

/// One config file, one service reloaded by it and one health check per host.
fn host(index: usize, name: &str, role: Role) -> HostState {
    let path = format!("/etc/{name}.conf");
    HostState {
        name: name.into(),
        address: format!("10.0.0.{}", index + 1).parse().expect("address"),
        target: Target::with_defaults(name, format!("10.0.0.{}", index + 1).parse().expect("address")),
        roles: vec![role],
        stage: role,
        packages: vec![],
        files: vec![ManagedFile {
            path: path.clone(),
            content: b"setting\n".as_slice().into(),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            sensitive: false,
            checker: None,
            origin: "test".into(),
        }],
        services: vec![ManagedService {
            name: format!("svc-{name}"),
            reload_on: vec![path],
            restart_on: vec![],
            enabled: true,
        }],
        hooks: vec![],
        health_checks: vec![HealthCheck { description: "answers".into(), command: "true".into() }],
        ssh_guard: None,
        ports: Vec::new(),
        interfaces: Vec::new(),
        backups: None,
        releases: None,
        static_releases: None,
    }
}

/// Runs apply of fresh hosts on the fake; `lb-01` holds the virtual IP and
/// `fail(host, step)` says which scripts fail.
fn run(
    serial: usize,
    fail: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
) -> (Outcome, Vec<(String, String)>, Vec<String>) {
    run_from(serial, |_| HostFacts::default(), fail)
}

/// [`run`] on hosts whose facts `facts_of(host)` gives.
fn run_from(
    serial: usize,
    facts_of: impl Fn(&HostState) -> HostFacts,
    fail: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
) -> (Outcome, Vec<(String, String)>, Vec<String>) {
    let desired = DesiredState {
        hosts: HOSTS.iter().enumerate().map(|(index, (name, role))| host(index, name, *role)).collect(),
        virtual_ip: Some("10.0.0.100".parse().expect("address")),
        witnesses: Vec::new(),
    };
    let facts: BTreeMap<String, HostFacts> =
        desired.hosts.iter().map(|host| (host.name.clone(), facts_of(host))).collect();
    let plan = crate::plan::plan(&desired, &facts, Vec::new());
    let connector = Fake::new(move |host: &str, script: &str| {
        let step = script.lines().next().and_then(|line| line.strip_prefix("# infra step: ")).unwrap_or_default();
        if fail(host, step) {
            return Err(format!("{step} failed on {host}\nthe service said why"));
        }
        Ok(if script == crate::catalog::keepalived::ADDRESSES_SCRIPT && host == "lb-01" {
            "V 10.0.0.100\n"
        } else {
            ""
        }
        .to_string())
    });
    let recorder = Recorder::default();
    let context = Context {
        desired: &desired,
        connector: &connector,
        settings: ApplySettings { serial, health_seconds: 1 },
        reporter: &recorder,
        wheelhouses: &std::collections::BTreeMap::new(),
        migrated: Default::default(),
        operator: "tester@here".into(),
        started: "20261203T070000Z".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let outcome = runtime.block_on(apply(&plan, &context));
    let scripts = connector.steps();
    let events = recorder.0.lock().expect("events").clone();
    (outcome, scripts, events)
}

/// Where `host` ran `what` first, in the order of all scripts.
fn position(scripts: &[(String, String)], host: &str, what: &str) -> usize {
    scripts
        .iter()
        .position(|(on, step)| on == host && step.contains(what))
        .unwrap_or_else(|| panic!("`{host}` never ran `{what}`: {scripts:?}"))
}

fn ran(scripts: &[(String, String)], host: &str, what: &str) -> bool {
    scripts.iter().any(|(on, step)| on == host && step.contains(what))
}

#[test]
fn stages_follow_the_dependency_order() {
    let (outcome, _, events) = run(1, |_, _| false);
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    let stages: Vec<&String> = events.iter().filter(|event| event.starts_with("stage")).collect();
    assert_eq!(
        stages,
        [
            "stage database: db-01",
            "stage app: app-01",
            "stage web: web-01, web-02",
            "stage load_balancer: lb-02, lb-01"
        ]
    );
    assert_eq!(outcome.changed.len(), HOSTS.len());
}

#[test]
fn web_hosts_go_one_at_a_time_drained_on_every_balancer() {
    let (_, scripts, _) = run(1, |_, _| false);
    for web in ["web-01", "web-02"] {
        let first_step = position(&scripts, web, "uploading files");
        let committed = position(&scripts, web, "committing");
        for balancer in ["lb-01", "lb-02"] {
            let drained =
                scripts.iter().position(|(on, step)| on == balancer && step.contains(web) && step.contains("drain"));
            let drained = drained.unwrap_or_else(|| panic!("{web} never drained on {balancer}: {scripts:?}"));
            let ready = scripts
                .iter()
                .rposition(|(on, step)| on == balancer && step.contains(web) && step.contains("ready"))
                .unwrap_or_else(|| panic!("{web} never put back on {balancer}"));
            assert!(drained < first_step && committed < ready, "{web} on {balancer}: {scripts:?}");
        }
    }
    assert!(position(&scripts, "web-01", "committing") < position(&scripts, "web-02", "uploading files"));
}

#[test]
fn the_virtual_ip_holder_is_changed_last() {
    let (_, scripts, _) = run(1, |_, _| false);
    assert!(position(&scripts, "lb-02", "committing") < position(&scripts, "lb-01", "uploading files"));
}

#[test]
fn a_failure_after_the_swap_rolls_the_host_back_and_stops_the_run() {
    for failing in ["swapping files in", "reloading services", "health checks", "committing"] {
        let (outcome, scripts, events) = run(1, move |host, step| host == "app-01" && step == failing);
        assert_eq!(outcome.failures.len(), 1, "{failing}");
        assert_eq!((outcome.failures[0].host.as_str(), outcome.failures[0].step.as_str()), ("app-01", failing));
        assert!(outcome.failures[0].error.contains("the service said why"), "the host's output is kept");
        assert!(ran(&scripts, "app-01", "rolling back"), "{failing}: no rollback: {scripts:?}");
        assert_eq!(outcome.changed, ["db-01"], "{failing}");
        assert!(!scripts.iter().any(|(host, _)| host.starts_with("web") || host.starts_with("lb")), "{failing}");
        assert!(events.contains(&format!("failed app-01 at {failing}")));
    }
}

#[test]
fn a_failed_upload_changes_nothing_and_needs_no_rollback() {
    let (outcome, scripts, _) = run(1, |host, step| host == "db-01" && step == "uploading files");
    assert_eq!(outcome.failures.len(), 1);
    assert!(!ran(&scripts, "db-01", "swapping files in") && !ran(&scripts, "db-01", "rolling back"));
    assert!(outcome.changed.is_empty());
}

#[test]
fn every_failure_of_a_stage_is_kept() {
    let (outcome, scripts, _) = run(2, |host, step| host.starts_with("web") && step == "health checks");
    let failed: Vec<&str> = outcome.failures.iter().map(|failure| failure.host.as_str()).collect();
    assert_eq!(failed, ["web-01", "web-02"]);
    assert!(ran(&scripts, "web-01", "rolling back") && ran(&scripts, "web-02", "rolling back"));
    assert!(!ran(&scripts, "lb-01", "uploading files"), "the next stage must not start");
    // Both rolled-back web servers go back into rotation.
    for web in ["web-01", "web-02"] {
        assert!(scripts.iter().any(|(on, step)| on == "lb-01" && step.contains(web) && step.contains("ready")));
    }
}

/// A host lost mid-transaction (the reload and then the rollback fail):
/// the failure says both, nothing after it starts, and the journal the swap
/// wrote is what the next plan picks the owed actions up from (plan's own
/// tests cover that carry-over).
#[test]
fn a_host_lost_during_its_transaction_reports_the_failed_rollback_too() {
    let (outcome, scripts, _) =
        run(1, |host, step| host == "web-01" && (step == "reloading services" || step == "rolling back"));
    assert_eq!(outcome.failures.len(), 1);
    let failure = &outcome.failures[0];
    assert_eq!((failure.host.as_str(), failure.step.as_str()), ("web-01", "reloading services"));
    assert!(failure.error.contains("the rollback failed too"), "{}", failure.error);
    assert!(ran(&scripts, "web-01", "swapping files in"), "the swap journaled what is owed");
    assert!(!ran(&scripts, "web-02", "uploading files") && !ran(&scripts, "lb-01", "uploading files"));
}

/// A host already converged: its file as desired, its service running.
fn converged(host: &HostState) -> HostFacts {
    let mut facts = HostFacts::default();
    for file in &host.files {
        let sha256 = crate::facts::sha256_hex(&file.content);
        let present = crate::facts::FileFact::Present {
            sha256,
            mode: file.mode,
            owner: file.owner.clone(),
            group: file.group.clone(),
            content: None,
        };
        facts.files.insert(file.path.clone(), present);
    }
    for service in &host.services {
        facts.services.insert(service.name.clone(), crate::facts::ServiceFact { active: true, enabled: true });
    }
    facts
}

/// The run after a host was lost between its swap and its reload: the
/// files are already in place, the journal owes the reload. The next run
/// touches that host alone, and only to reload, check and commit (which
/// clears the journal); every other host is left alone.
#[test]
fn the_next_run_resumes_what_an_interrupted_one_owed() {
    let facts_of = |host: &HostState| {
        let mut facts = converged(host);
        if host.name == "web-01" {
            facts.pending.push(("reload".into(), "svc-web-01".into()));
        }
        facts
    };
    let (outcome, scripts, _) = run_from(1, facts_of, |_, _| false);
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert_eq!(outcome.changed, ["web-01"]);
    let steps: Vec<&str> = scripts.iter().filter(|(host, _)| host == "web-01").map(|(_, step)| step.as_str()).collect();
    assert!(!steps.iter().any(|step| step.contains("uploading files")), "{steps:?}");
    for expected in ["reloading services", "health checks", "committing"] {
        assert!(steps.contains(&expected), "{expected} missing: {steps:?}");
    }
    assert!(scripts.iter().all(|(host, step)| host == "web-01" || !step.starts_with("reloading")));
}

//! Plan decisions, one by one, without hosts.

use super::*;
use crate::desired::{Hook, ManagedService};
use crate::facts::ServiceFact;

fn file(path: &str, content: &str, sensitive: bool) -> ManagedFile {
    ManagedFile {
        path: path.into(),
        content: content.as_bytes().into(),
        mode: 0o644,
        owner: "root".into(),
        group: "root".into(),
        sensitive,
        checker: None,
        origin: "test".into(),
    }
}

fn host() -> HostState {
    HostState {
        name: "web-01".into(),
        address: "10.0.0.21".parse().expect("address"),
        target: crate::transport::Target::with_defaults("web-01", "10.0.0.21".parse().expect("address")),
        roles: vec![crate::topology::Role::Web],
        stage: crate::topology::Role::Web,
        packages: vec!["nginx".into()],
        files: vec![file("/etc/nginx/nginx.conf", "main\n", false), file("/etc/app.env", "PASSWORD=s3cret\n", true)],
        services: vec![ManagedService {
            name: "nginx".into(),
            reload_on: vec!["/etc/nginx/nginx.conf".into()],
            restart_on: vec!["/etc/app.env".into()],
            enabled: true,
        }],
        hooks: vec![Hook {
            name: "apply sql".into(),
            command: "true".into(),
            triggered_by: vec!["/etc/app.env".into()],
        }],
        health_checks: vec![],
        ssh_guard: None,
        ports: Vec::new(),
        interfaces: Vec::new(),
        backups: None,
        releases: None,
        static_releases: None,
    }
}

fn present(content: &str, mode: u32) -> FileFact {
    FileFact::Present {
        sha256: crate::facts::sha256_hex(content.as_bytes()),
        mode,
        owner: "root".into(),
        group: "root".into(),
        content: Some(content.as_bytes().to_vec()),
    }
}

/// Facts of a host that already matches `host()`.
fn converged() -> HostFacts {
    let mut facts = HostFacts::default();
    facts.packages.insert("nginx".into(), Some("1.22".into()));
    facts.files.insert("/etc/nginx/nginx.conf".into(), present("main\n", 0o644));
    facts.files.insert("/etc/app.env".into(), present("PASSWORD=s3cret\n", 0o644));
    facts.services.insert("nginx".into(), ServiceFact { active: true, enabled: true });
    facts
}

#[test]
fn a_fresh_host_gets_everything() {
    let plan = plan_host(&host(), &HostFacts::default());
    assert_eq!(plan.install, ["nginx"]);
    assert_eq!(plan.files.len(), 2);
    assert!(plan.files.iter().all(|file| file.action == FileAction::Create));
    assert_eq!(plan.start, ["nginx"]);
    assert_eq!(plan.enable, ["nginx"]);
    assert!(plan.reload.is_empty() && plan.restart.is_empty(), "a stopped service is started, not reloaded");
    assert_eq!(plan.hooks.len(), 1);
}

#[test]
fn a_converged_host_has_no_changes() {
    assert!(plan_host(&host(), &converged()).is_empty());
}

#[test]
fn a_changed_config_reloads_with_its_reason_and_diff() {
    let mut facts = converged();
    facts.files.insert("/etc/nginx/nginx.conf".into(), present("old main\n", 0o644));
    let plan = plan_host(&host(), &facts);
    assert_eq!(plan.reload, [ServiceChange { name: "nginx".into(), because: vec!["/etc/nginx/nginx.conf".into()] }]);
    assert!(plan.restart.is_empty() && plan.hooks.is_empty());
    let diff = plan.files[0].diff.as_deref().expect("a diff");
    assert!(diff.contains("-old main") && diff.contains("+main"), "{diff}");
}

#[test]
fn a_sensitive_change_restarts_and_never_shows_the_value() {
    let mut facts = converged();
    facts.files.insert("/etc/app.env".into(), present("PASSWORD=old\n", 0o644));
    let plan = plan_host(&host(), &facts);
    assert_eq!(plan.restart[0].because, ["/etc/app.env"]);
    assert!(plan.reload.is_empty(), "a restart covers a reload");
    assert_eq!(plan.files[0].diff, None);
    let text = render_text(
        &Plan {
            version: SCHEMA_VERSION,
            inventory: None,
            hosts: vec![plan.clone()],
            unreachable: vec![],
            warnings: vec![],
        },
        Palette::PLAIN,
    );
    let json = serde_json::to_string(&plan).expect("json");
    for output in [&text, &json] {
        assert!(!output.contains("s3cret") && !output.contains("PASSWORD=old"), "{output}");
    }
    assert!(text.contains("(sensitive content changed)"), "{text}");
}

#[test]
fn a_mode_change_alone_touches_no_service() {
    let mut facts = converged();
    facts.files.insert("/etc/nginx/nginx.conf".into(), present("main\n", 0o600));
    let plan = plan_host(&host(), &facts);
    assert_eq!(plan.files[0].action, FileAction::Metadata);
    assert_eq!(plan.files[0].metadata, ["mode 0600 -> 0644"]);
    assert!(plan.reload.is_empty() && plan.restart.is_empty());
}

#[test]
fn a_directory_in_the_way_is_shown() {
    let mut facts = converged();
    facts.files.insert("/etc/nginx/nginx.conf".into(), FileFact::NotAFile { kind: "directory".into() });
    assert_eq!(plan_host(&host(), &facts).files[0].action, FileAction::Replace);
}

#[test]
fn summary_counts_every_kind_of_change() {
    let plan = plan(
        &DesiredState { hosts: vec![host()], virtual_ip: None, witnesses: Vec::new() },
        &[("web-01".to_string(), HostFacts::default())].into(),
        vec![],
    );
    let summary = plan.summary();
    assert_eq!((summary.hosts, summary.create, summary.install, summary.start), (1, 2, 1, 1));
    assert!(plan.has_changes());
}

#[test]
fn an_interrupted_apply_leaves_its_reloads_owed() {
    let mut facts = converged();
    facts.pending.push(("reload".into(), "nginx".into()));
    facts.pending.push(("hook".into(), "apply sql".into()));
    let plan = plan_host(&host(), &facts);
    assert_eq!(plan.reload, [ServiceChange { name: "nginx".into(), because: vec!["an interrupted apply".into()] }]);
    assert_eq!(plan.hooks[0].name, "apply sql");
    assert!(!plan.is_empty(), "the host is not converged until the owed reload ran");
}

fn guarded(admin: &str) -> HostState {
    let mut host = host();
    host.ssh_guard = Some(crate::firewall::SshGuard {
        ruleset: "/etc/nginx/nginx.conf".into(),
        port: 22,
        admin: vec![admin.parse().expect("cidr")],
    });
    host
}

#[test]
fn a_ruleset_that_would_cut_infras_ssh_connection_is_refused() {
    let mut facts = converged();
    facts.files.insert("/etc/nginx/nginx.conf".into(), present("old rules\n", 0o644));
    facts.ssh_connection = Some(("10.0.0.254".parse().expect("ip"), 22));
    let refused = plan_host(&guarded("192.0.2.0/24"), &facts);
    assert_eq!(
        refused.refusal.as_deref(),
        Some(
            "infra's SSH connection comes from 10.0.0.254, which the new firewall would refuse (SSH only from 192.0.2.0/24); add the address infra connects from to `firewall.admin_cidrs` (the lab's is its gateway; behind a bastion, the bastion's), or run infra from an admin network"
        )
    );
    assert_eq!(plan_host(&guarded("10.0.0.0/24"), &facts).refusal, None);
}

#[test]
fn an_unchanged_ruleset_is_not_second_guessed() {
    let mut facts = converged();
    facts.ssh_connection = Some(("10.0.0.254".parse().expect("ip"), 22));
    assert_eq!(plan_host(&guarded("192.0.2.0/24"), &facts).refusal, None);
}

#[test]
fn a_host_on_an_unsupported_system_is_refused_and_a_supported_one_shows_its_release() {
    let mut facts = converged();
    facts.os = Some(("debian".into(), "trixie".into()));
    let planned = plan_host(&host(), &facts);
    assert_eq!((planned.debian, planned.refusal), (Some(crate::debian::Debian::Trixie), None));
    for (id, codename) in [("debian", "bullseye"), ("ubuntu", "noble")] {
        facts.os = Some((id.into(), codename.into()));
        let refusal = plan_host(&host(), &facts).refusal.expect("refused");
        assert!(
            refusal.contains(&format!("`{id}` `{codename}`")) && refusal.contains("Debian 13 (trixie)"),
            "{refusal}"
        );
    }
}

fn listening(port: u16, unit: &str, process: &str) -> crate::facts::Listening {
    crate::facts::Listening { port, unit: unit.into(), process: process.into() }
}

fn nginx_on_80() -> HostState {
    HostState { ports: vec![crate::desired::Port { port: 80, service: "Nginx".into() }], ..host() }
}

#[test]
fn a_port_held_by_a_service_infra_does_not_manage_refuses_the_host() {
    let mut facts = converged();
    facts.listeners = vec![listening(80, "apache2.service", "apache2")];
    let plan = plan_host(&nginx_on_80(), &facts);
    insta::assert_snapshot!(plan.refusal.expect("refused"), @"port 80 is already taken by `apache2.service` (process `apache2`), which infra does not manage, so Nginx could not listen there; stop and disable it on the host (`systemctl disable --now apache2.service`, or `apt-get purge apache2` if nothing else needs it), then plan again");
}

#[test]
fn a_port_held_by_the_hosts_own_service_is_fine() {
    let mut facts = converged();
    facts.listeners = vec![listening(80, "nginx.service", "nginx")];
    assert_eq!(plan_host(&nginx_on_80(), &facts).refusal, None);
}

#[test]
fn a_busy_dpkg_is_said_only_when_there_is_something_to_install() {
    let mut facts = converged();
    facts.dpkg_busy = Some("unattended-upgr".into());
    assert_eq!(plan_host(&host(), &facts).dpkg_busy, None, "nothing to install: nothing to wait for");
    facts.packages.clear();
    let plan = plan_host(&host(), &facts);
    assert_eq!(plan.dpkg_busy.as_deref(), Some("unattended-upgr"));
    let text = render_text(
        &Plan { version: 1, inventory: None, hosts: vec![plan], unreachable: vec![], warnings: vec![] },
        Palette::PLAIN,
    );
    assert!(
        text.contains(
            "! dpkg is busy: `unattended-upgr` holds its lock; apply waits for it (up to 10 minutes) before installing"
        ),
        "{text}"
    );
}

#[test]
fn a_balancer_without_the_named_interface_is_refused_with_the_ones_it_has() {
    let mut facts = converged();
    facts.interfaces = Some(vec!["lo".into(), "ens5".into()]);
    let eth0 = crate::desired::Interface {
        name: "eth0".into(),
        purpose: "keepalived to move the virtual IP on",
        setting: "load_balancer.interface",
    };
    let balancer = HostState { interfaces: vec![eth0], ..host() };
    insta::assert_snapshot!(plan_host(&balancer, &facts).refusal.expect("refused"), @"it has no network interface `eth0` for keepalived to move the virtual IP on; it has `ens5`: set `load_balancer.interface` to the name this host gives it");
    facts.interfaces = Some(vec!["lo".into(), "eth0".into()]);
    assert_eq!(plan_host(&balancer, &facts).refusal, None);
}

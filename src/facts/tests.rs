//! The facts script is run by the real `sh` here, against files in a
//! temporary directory, and its answers parsed; then the parser is fed
//! answers a broken or hostile host could give.

use std::process::{Command, Stdio};

use super::*;
use crate::desired::{HostState, ManagedFile, ManagedService};

fn file(path: String, content: &str, sensitive: bool) -> ManagedFile {
    ManagedFile {
        path,
        content: content.as_bytes().into(),
        mode: 0o644,
        owner: "root".into(),
        group: "root".into(),
        sensitive,
        checker: None,
        origin: "test".into(),
    }
}

fn host(directory: &std::path::Path) -> HostState {
    let at = |name: &str| directory.join(name).display().to_string();
    HostState {
        name: "test-01".into(),
        address: "10.0.0.1".parse().expect("address"),
        target: crate::transport::Target::with_defaults("test-01", "10.0.0.1".parse().expect("address")),
        roles: vec![],
        stage: crate::topology::Role::Web,
        packages: vec!["coreutils".into(), "surely-not-a-package".into(), "bash".into()],
        files: vec![
            file(at("absent"), "x", false),
            file(at("same"), "same\n", false),
            file(at("differs"), "new\n", false),
            file(at("secret"), "new secret\n", true),
            file(at("a dir's name"), "x", false),
        ],
        services: ["surely-not-a-service", "nor-this-one", "nginx"]
            .map(|name| ManagedService { name: name.into(), reload_on: vec![], restart_on: vec![], enabled: true })
            .to_vec(),
        hooks: vec![crate::desired::Hook {
            name: "create database and grants".into(),
            command: "true".into(),
            triggered_by: vec![],
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

/// An app host's releases in `directory`, served through `link`.
fn releases_in(directory: &str, link: &str) -> crate::desired::Releases {
    crate::desired::Releases {
        directory: directory.into(),
        link: link.into(),
        id: "aaaaaaaaaaaa".into(),
        inventory_id: "aaaaaaaaaaaa".into(),
        deploy: None,
        keep: 5,
        requirements: None,
        module: "app".into(),
        migrate: None,
        python: None,
        origin: Default::default(),
        files: vec![],
        shared: vec![],
        before_switch: vec![],
        after_switch: vec![],
        processes: vec![],
        static_files: None,
    }
}

/// Runs the facts script here, as whoever runs the tests: the check that
/// a host's facts are read as root is a host's concern, not this one's.
fn run_locally(script: &str) -> String {
    use std::io::Write;
    let script = script.replacen("\nrequire_root\n", "\n", 1);
    let mut child = Command::new("sh").arg("-s").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sh runs");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("script sent");
    let output = child.wait_with_output().expect("sh finishes");
    String::from_utf8(output.stdout).expect("facts are text")
}

#[test]
fn the_script_reports_every_item_in_one_answer() {
    let directory = tempfile::tempdir().expect("temp dir");
    std::fs::write(directory.path().join("same"), "same\n").expect("write");
    std::fs::write(directory.path().join("differs"), "old\n").expect("write");
    std::fs::write(directory.path().join("secret"), "old secret\n").expect("write");
    std::fs::create_dir(directory.path().join("a dir's name")).expect("mkdir");
    let host = host(directory.path());
    let output = run_locally(&script(&host));
    let facts = parse(&host, &output).unwrap_or_else(|error| panic!("{error}\n{output}"));
    let fact = |name: &str| facts.files[&directory.path().join(name).display().to_string()].clone();
    assert_eq!(fact("absent"), FileFact::Absent);
    assert!(matches!(fact("same"), FileFact::Present { content: None, .. }), "unchanged content is not sent");
    assert!(
        matches!(fact("differs"), FileFact::Present { content: Some(ref c), .. } if c == b"old\n"),
        "changed content is sent for the diff"
    );
    assert!(
        matches!(fact("secret"), FileFact::Present { content: None, .. }),
        "sensitive content never leaves the host"
    );
    assert_eq!(fact("a dir's name"), FileFact::NotAFile { kind: "directory".into() });
    for package in ["coreutils", "bash"] {
        let version =
            Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]).output().expect("dpkg-query");
        let version = String::from_utf8(version.stdout).expect("a version");
        assert_eq!(facts.packages[package].as_deref(), Some(version.as_str()), "{package}'s own version");
    }
    assert_eq!(facts.packages["surely-not-a-package"], None);
    for service in ["surely-not-a-service", "nor-this-one"] {
        assert_eq!(facts.services[service], ServiceFact { active: false, enabled: false });
    }
    assert_eq!(facts.fingerprint.len(), 64);
}

#[test]
fn the_fingerprint_changes_when_the_host_does() {
    let directory = tempfile::tempdir().expect("temp dir");
    let host = host(directory.path());
    let before = parse(&host, &run_locally(&script(&host))).expect("facts");
    std::fs::write(directory.path().join("absent"), "now here").expect("write");
    let after = parse(&host, &run_locally(&script(&host))).expect("facts");
    assert_ne!(before.fingerprint, after.fingerprint);
}

fn valid_answer() -> (HostState, String) {
    let directory = tempfile::tempdir().expect("temp dir");
    let host = host(directory.path());
    let output = run_locally(&script(&host));
    (host, output)
}

#[test]
fn garbage_is_an_error_naming_the_host_and_line() {
    let (host, _) = valid_answer();
    let error = parse(&host, "Welcome to the jungle\n").expect_err("garbage");
    assert_eq!(
        error,
        FactsError::UnexpectedLine { host: "test-01".into(), line_number: 1, line: "Welcome to the jungle".into() }
    );
}

#[test]
fn a_cut_short_answer_is_an_error_not_absence() {
    let (host, output) = valid_answer();
    let cut: String = output.lines().take(2).map(|line| format!("{line}\n")).collect();
    assert!(matches!(parse(&host, &cut), Err(FactsError::Missing { .. })));
    let no_end = output.replace("END\n", "");
    assert_eq!(
        parse(&host, &no_end),
        Err(FactsError::Missing { host: "test-01".into(), what: "the end marker".into() })
    );
}

#[test]
fn repeated_and_trailing_lines_are_errors() {
    let (host, output) = valid_answer();
    let first = output.lines().next().expect("a line").to_string();
    assert!(matches!(parse(&host, &format!("{first}\n{output}")), Err(FactsError::Repeated { .. })));
    assert!(matches!(parse(&host, &format!("{output}extra\n")), Err(FactsError::UnexpectedLine { .. })));
}

#[test]
fn base64_matches_coreutils() {
    for sample in ["", "a", "ab", "abc", "abcd", "hello\nworld\u{1F600}"] {
        let encoded = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {} | base64 -w0", quote(sample)))
            .output()
            .expect("base64");
        let encoded = String::from_utf8(encoded.stdout).expect("ascii");
        assert_eq!(decode_base64(&encoded).as_deref(), Some(sample.as_bytes()), "{encoded}");
    }
    assert_eq!(decode_base64("a=bc"), None);
}

#[test]
fn the_journal_of_an_interrupted_apply_is_reported() {
    let (host, output) = valid_answer();
    let with_journal = output.replace("END\n", "J reload nginx\nJ hook create_database_and_grants\nEND\n");
    let facts = parse(&host, &with_journal).expect("facts");
    assert_eq!(
        facts.pending,
        [("reload".to_string(), "nginx".to_string()), ("hook".to_string(), "create database and grants".to_string())]
    );
    assert_ne!(facts.fingerprint, parse(&host, &output).expect("facts").fingerprint);
    for planted in ["J format disk", "J restart ssh", "J hook rm_-rf_/"] {
        assert!(
            matches!(
                parse(&host, &output.replace("END\n", &format!("{planted}\nEND\n"))),
                Err(FactsError::UnexpectedLine { .. })
            ),
            "issue 22: `{planted}` is nothing this host's plan could owe"
        );
    }
}

/// Issue 22: whatever a compromised host answers, parsing ends in facts or
/// an error for that host, never a panic that takes the run down. Lines
/// are drawn from the shapes the parser knows, cut and garbled.
#[test]
fn no_host_answer_makes_the_parser_panic() {
    use proptest::prelude::*;
    let directory = tempfile::tempdir().expect("temp dir");
    let mut host = host(directory.path());
    host.releases = Some(releases_in("/srv/app/releases", "/srv/app/current"));
    host.backups = Some(crate::desired::Backups {
        directory: "/var/backups/infra".into(),
        on_calendar: "daily".into(),
        before_apply: true,
    });
    let word = prop_oneof![
        Just(String::new()),
        "[0-9]{1,3}",
        "[a-f0-9]{12}",
        "[a-f0-9]{64}",
        "[ -~]{0,12}",
        "\\PC{0,6}",
        Just("-".to_string()),
        Just("!".to_string()),
    ];
    let line = (
        prop_oneof![
            "[A-Z]",
            Just("END".to_string()),
            Just("J restart".to_string()),
            Just("K".to_string()),
            Just("M aaaaaaaaaaaa".to_string())
        ],
        proptest::collection::vec(word, 0..7),
    )
        .prop_map(|(tag, words)| if words.is_empty() { tag } else { format!("{tag} {}", words.join(" ")) });
    let answer = proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"));
    proptest!(ProptestConfig::with_cases(2000), |(answer in answer)| {
        let _ = parse(&host, &answer);
    });
    for bare in ["K", "M", "M aaaaaaaaaaaa", "F", "C 0", "R", "B", "L", "O", "V", "Y", "J"] {
        let _ = parse(&host, bare);
    }
}

/// A balancer reports its addresses (here, this machine's own, by the same
/// `ip` command the host runs); they are not drift, so the fingerprint
/// ignores them.
#[test]
fn a_balancer_reports_its_addresses_outside_the_fingerprint() {
    let directory = tempfile::tempdir().expect("tempdir");
    let mut host = host(directory.path());
    host.roles = vec![crate::role::Role::LoadBalancer];
    let output = run_locally(&script(&host));
    let facts = parse(&host, &output).unwrap_or_else(|error| panic!("{error}\n{output}"));
    assert!(facts.addresses.contains(&"127.0.0.1".parse().expect("address")), "{output}");
    let (plain, plain_output) = valid_answer();
    let moved = plain_output.replace("END\n", "V 10.0.0.10\nEND\n");
    let with_address = parse(&plain, &moved).expect("facts");
    assert_eq!(with_address.addresses, ["10.0.0.10".parse::<std::net::IpAddr>().expect("address")]);
    assert_eq!(with_address.fingerprint, parse(&plain, &plain_output).expect("facts").fingerprint);
}

/// The host's system, from its own os-release, is a fact (and part of the
/// fingerprint: an upgraded host is not the host a plan was made for).
#[test]
fn the_system_is_read_from_os_release() {
    let directory = tempfile::tempdir().expect("tempdir");
    let host = host(directory.path());
    let facts = parse(&host, &run_locally(&script(&host))).expect("facts");
    let (id, codename) = facts.os.clone().expect("this machine has an os-release");
    assert!(!id.is_empty() && !codename.is_empty());
    let (plain, output) = valid_answer();
    let upgraded = parse(&plain, &output.replace(&format!("O {id} {codename}\n"), "O debian forky\n")).expect("facts");
    assert_ne!(upgraded.fingerprint, parse(&plain, &output).expect("facts").fingerprint);
    assert!(matches!(
        parse(&plain, &output.replace("END\n", "O Debian; rm -rf\nEND\n")),
        Err(FactsError::UnexpectedLine { .. })
    ));
}

/// An app host's releases: which are complete, healthy and migrated, and
/// what each recorded about itself; a record edited into garbage only
/// loses its description.
#[test]
fn releases_are_read_with_their_health_and_records() {
    let directory = tempfile::tempdir().expect("temp dir");
    let releases = directory.path().join("releases");
    let release = |id: &str, markers: &[&str], record: Option<&str>| {
        let path = releases.join(id);
        std::fs::create_dir_all(&path).expect("mkdir");
        for marker in markers {
            std::fs::write(path.join(marker), "").expect("write");
        }
        if let Some(record) = record {
            std::fs::write(path.join(".infra-release"), format!("{record}\n")).expect("write");
        }
    };
    release(
        "aaaaaaaaaaaa",
        &[".infra-complete", ".infra-healthy", ".infra-migrated"],
        Some(r#"{"source":"../app","revision":"v1","commit":"3f2a","by":"ana@laptop"}"#),
    );
    release("bbbbbbbbbbbb", &[".infra-complete"], Some("{not json"));
    release("cccccccccccc", &[], None);
    std::os::unix::fs::symlink("releases/aaaaaaaaaaaa", directory.path().join("current")).expect("link");
    let mut host = host(directory.path());
    host.releases =
        Some(releases_in(&releases.display().to_string(), &directory.path().join("current").display().to_string()));
    let output = run_locally(&script(&host));
    let facts = parse(&host, &output).unwrap_or_else(|error| panic!("{error}\n{output}"));
    let ids: Vec<&str> = facts.releases.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["aaaaaaaaaaaa", "bbbbbbbbbbbb"], "an incomplete release is not one");
    assert!(facts.healthy.contains("aaaaaaaaaaaa") && !facts.healthy.contains("bbbbbbbbbbbb"));
    assert!(facts.migrated.contains("aaaaaaaaaaaa"));
    let record = facts.records.get("aaaaaaaaaaaa").expect("a record");
    assert_eq!((record.origin.revision.as_deref(), record.by.as_str()), (Some("v1"), "ana@laptop"));
    assert!(!facts.records.contains_key("bbbbbbbbbbbb"));
}

/// Issue 22: os-release is a file on the host, read, never sourced: a
/// command in it runs nothing, and quoted values read as the words.
#[test]
fn os_release_is_read_not_run() {
    let directory = tempfile::tempdir().expect("temp dir");
    let host = host(directory.path());
    let marker = directory.path().join("ran");
    let os_release = directory.path().join("os-release");
    let answer = |content: String| {
        std::fs::write(&os_release, content).expect("write");
        let script = script(&host).replace("/etc/os-release", &os_release.display().to_string());
        parse(&host, &run_locally(&script))
    };
    let facts = answer("ID=\"debian\"\nVERSION_CODENAME='trixie'\n".into()).expect("facts");
    assert_eq!(facts.os, Some(("debian".into(), "trixie".into())));
    let hostile = answer(format!("ID=debian\nVERSION_CODENAME=$(touch {})\n", marker.display()));
    assert!(matches!(hostile, Err(FactsError::UnexpectedLine { .. })), "{hostile:?}");
    assert!(!marker.exists(), "the facts script ran a command from os-release");
}

#[test]
fn listeners_on_the_hosts_ports_and_a_busy_dpkg_are_read() {
    let (mut host, output) = valid_answer();
    host.ports = vec![crate::desired::Port { port: 80, service: "Nginx".into() }];
    let answer = output.replace("END\n", "T 80 apache2.service apache2\nZ unattended-upgr\nEND\n");
    let facts = parse(&host, &answer).unwrap_or_else(|error| panic!("{error}\n{answer}"));
    assert_eq!(
        facts.listeners,
        [crate::facts::Listening { port: 80, unit: "apache2.service".into(), process: "apache2".into() }]
    );
    assert_eq!(facts.dpkg_busy.as_deref(), Some("unattended-upgr"));
    let elsewhere = output.replace("END\n", "T 8080 apache2.service apache2\nEND\n");
    assert!(matches!(parse(&host, &elsewhere), Err(FactsError::UnexpectedLine { .. })), "a port the host does not use");
}

/// Issue 28: a converged host proves its whole tree unchanged in one line
/// (`D`), and then reads exactly as file by file would; a file edited by
/// hand (even to the same size), re-moded, replaced by a link, emptied or
/// removed is still seen, file by file.
#[test]
fn an_unchanged_tree_answers_in_one_line_and_every_change_is_still_seen() {
    use std::os::unix::fs::PermissionsExt;
    let directory = tempfile::tempdir().expect("temp dir");
    let id = |flag: &str| {
        let output = Command::new("id").arg(flag).output().expect("id runs");
        String::from_utf8(output.stdout).expect("a name").trim().to_string()
    };
    let mut host = host(directory.path());
    let at = |name: &str| directory.path().join(name);
    let specs = [("one", "one\n", 0o644, false), ("empty", "", 0o600, false), ("secret", "s3cret\n", 0o640, true)];
    host.files = specs
        .iter()
        .map(|(name, content, mode, sensitive)| ManagedFile {
            mode: *mode,
            owner: id("-un"),
            group: id("-gn"),
            ..file(at(name).display().to_string(), content, *sensitive)
        })
        .collect();
    let converge = || {
        for (name, content, mode, _) in specs {
            let _ = std::fs::remove_file(at(name));
            std::fs::write(at(name), content).expect("write");
            std::fs::set_permissions(at(name), std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    };
    let answer = |script: &str| {
        let output = run_locally(script);
        (
            output.lines().any(|line| line == "D"),
            parse(&host, &output).unwrap_or_else(|error| panic!("{error}\n{output}")),
        )
    };
    converge();
    let (proved, fast) = answer(&script(&host));
    assert!(proved, "a converged tree answers in one line");
    let (_, slow) = answer(&script(&host).replace("if files_unchanged ", "if false && files_unchanged "));
    assert_eq!(fast, slow, "the one line reads exactly as every file read on its own");
    type Change = fn(&std::path::Path);
    let changes: [(&str, Change); 5] = [
        ("an edit to the same size", |dir| std::fs::write(dir.join("one"), "eno\n").expect("edit")),
        ("a mode", |dir| {
            std::fs::set_permissions(dir.join("secret"), std::fs::Permissions::from_mode(0o644)).expect("chmod")
        }),
        ("a link in its place", |dir| {
            std::fs::remove_file(dir.join("one")).expect("rm");
            std::os::unix::fs::symlink(dir.join("secret"), dir.join("one")).expect("ln");
        }),
        ("content in an empty file", |dir| std::fs::write(dir.join("empty"), "x").expect("write")),
        ("a removal", |dir| std::fs::remove_file(dir.join("secret")).expect("rm")),
    ];
    for (change, make) in changes {
        converge();
        make(directory.path());
        let (proved, facts) = answer(&script(&host));
        assert!(!proved, "{change}: the tree was proved unchanged");
        assert_ne!(facts.files, fast.files, "{change}: not seen");
    }
    if id("-u") == "0" {
        converge();
        std::os::unix::fs::chown(at("one"), Some(65534), None).expect("chown");
        assert!(!answer(&script(&host)).0, "an owner: the tree was proved unchanged");
    }
}

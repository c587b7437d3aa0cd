use std::time::Duration;

use super::*;

fn manifest(tables: &[(&str, u64, &str)]) -> Manifest {
    Manifest {
        id: "20261123T140000Z".into(),
        time: "2026-11-23T14:00:01Z".into(),
        size: 10,
        sha256: "ab".into(),
        server: "10.11.6-MariaDB".into(),
        database: "app".into(),
        seconds: 0.1,
        binlog_file: String::new(),
        binlog_position: 0,
        gtid: String::new(),
        tables: tables
            .iter()
            .map(|(name, rows, sha)| (name.to_string(), TableDigest { rows: *rows, sha256: sha.to_string() }))
            .collect(),
    }
}

fn restored(tables: &[(&str, u64, &str)]) -> BTreeMap<String, TableDigest> {
    manifest(tables).tables
}

#[test]
fn ids_round_trip_and_nothing_else_is_an_id() {
    let moment = parse_id("20261123T140502Z").expect("an id");
    assert_eq!(format_id(moment), "20261123T140502Z");
    for bad in ["20261123T140502", "20261323T140502Z", "../../etc/passwdZ", "20261123T140502Z\n", ""] {
        assert!(!is_id(bad), "{bad:?}");
    }
}

#[test]
fn a_faithful_restore_has_no_problems() {
    let tables = [("counter", 1, "aa"), ("empty", 0, "e3")];
    assert!(compare(&manifest(&tables), &restored(&tables), true).is_empty());
}

#[test]
fn missing_rows_tables_and_changed_contents_are_problems() {
    let backup = manifest(&[("counter", 5, "aa"), ("users", 2, "bb"), ("gone", 1, "cc")]);
    let found = restored(&[("counter", 4, "aa"), ("users", 2, "zz"), ("extra", 0, "dd")]);
    let problems = compare(&backup, &found, true);
    assert_eq!(
        problems,
        [
            "table `counter` came back with 4 rows; the backup had 5",
            "table `gone` did not come back",
            "table `users` came back with other contents (its rows' SHA-256 differs)",
            "table `extra` came back but is not in the backup",
        ]
    );
    // Another server version formats its dump differently: rows still count.
    assert_eq!(compare(&backup, &found, false).len(), 3);
}

#[test]
fn a_manifest_without_tables_cannot_pass_a_drill() {
    assert_eq!(compare(&manifest(&[]), &restored(&[]), true).len(), 1);
}

#[test]
fn staleness_follows_the_schedule() {
    let now = parse_id("20261123T140000Z").expect("now");
    let daily = overdue_after("daily");
    assert_eq!(daily, Duration::from_secs(30 * 3600));
    assert_eq!(staleness("backup", Some("20261122T140000Z"), now, daily), None);
    assert_eq!(
        staleness("backup", Some("20261121T140000Z"), now, daily).as_deref(),
        Some("the newest backup (`20261121T140000Z`) is 2 d 0 h old; the schedule allows 1 d 6 h")
    );
    assert_eq!(staleness("backup", None, now, daily).as_deref(), Some("there is no backup yet"));
    assert_eq!(overdue_after("hourly"), Duration::from_secs(4500));
    assert_eq!(overdue_after("*-*-* 03:30:00"), daily);
}

#[test]
fn binary_logs_outlive_the_oldest_backup() {
    assert_eq!(binlog_retention("daily", 7), Duration::from_secs(9 * 24 * 3600));
}

#[test]
fn the_digest_program_fits_a_quoted_heredoc() {
    assert!(!DIGEST_AWK.lines().any(|line| line == "AWK"), "the heredoc's end marker");
}

#[test]
fn the_drill_report_reads_back_with_escaped_names() {
    let output = "server\t10.11.6-MariaDB\nseconds\t1.250\ntable\t3\tab\tcounter\ntable\t0\te3\twe\\\"ird\n";
    let restored = parse_drill(output).expect("parses");
    assert_eq!(restored.server, "10.11.6-MariaDB");
    assert_eq!(restored.seconds, 1.25);
    assert_eq!(restored.tables["counter"], TableDigest { rows: 3, sha256: "ab".into() });
    assert_eq!(restored.tables["we\"ird"].rows, 0);
    assert!(parse_drill("table\tx\tab\tc\n").is_err());
    assert!(parse_drill("seconds\t1.0\n").is_err(), "no server version");
}

#[test]
fn the_drill_dumps_with_the_backup_scripts_options() {
    let template = include_str!("../../templates/infra-backup.sh.j2");
    for option in
        ["--single-transaction", "--quick", "--hex-blob", "--order-by-primary", "--skip-dump-date", "--routines"]
    {
        assert!(template.contains(option) && DRILL_SCRIPT.contains(option), "{option}");
    }
}

#[test]
fn warnings_name_a_missing_backup_and_an_old_drill() {
    let now = parse_id("20261123T140000Z").expect("now");
    assert_eq!(warnings(None, None, now, "daily"), ["there is no backup yet", "there is no passing restore drill yet"]);
    assert!(warnings(Some("20261123T030000Z"), Some("20261120T000000Z"), now, "daily").is_empty());
    let old_drill = warnings(Some("20261123T030000Z"), Some("20261101T000000Z"), now, "daily");
    assert_eq!(
        old_drill,
        ["the newest passing restore drill (`20261101T000000Z`) is 22 d 14 h old; the schedule allows 7 d 0 h"]
    );
}

/// Issue 22: a destination host can write any manifest and dump it likes,
/// with a SHA-256 that matches; without the key it cannot seal them, so
/// its planted (future-dated) backup is never among the trusted ones.
#[test]
fn only_manifests_sealed_with_the_key_are_trusted() {
    let key = sealing_key("db'pass\"word");
    assert_ne!(key, sealing_key("another password"));
    assert!(!key.contains("pass"), "the key reveals nothing of the password");
    let real = manifest(&[("hits", 1, "aa")]);
    let mut forged = manifest(&[("hits", 1, "bb")]);
    forged.id = "20991231T235959Z".into();
    let line = |manifest: &Manifest| serde_json::to_string(manifest).expect("json");
    let raw: BTreeMap<String, String> =
        [&real, &forged].iter().map(|manifest| (manifest.id.clone(), line(manifest))).collect();
    let mut seals = BTreeMap::new();
    seals.insert(real.id.clone(), seal(&key, &line(&real)));
    seals.insert(forged.id.clone(), seal(&sealing_key("a guess"), &line(&forged)));
    let held = [real.clone(), forged.clone()];
    let trusted: Vec<&str> = sealed(&held, &raw, &seals, &key).iter().map(|manifest| manifest.id.as_str()).collect();
    assert_eq!(trusted, [real.id.as_str()]);
    let mut edited = raw.clone();
    edited.insert(real.id.clone(), line(&real).replace("\"rows\":1", "\"rows\":2"));
    assert!(sealed(&held, &edited, &seals, &key).is_empty(), "an edited manifest loses its seal");
}

/// The seal is what the backup script computes with coreutils: the key's
/// text, then the manifest file's hex SHA-256, through sha256sum.
#[test]
fn the_seal_matches_the_scripts() {
    let line = r#"{"id":"20261123T140000Z","size":1}"#;
    let script = format!(
        "key=k3y; sum=$(printf '%s\\n' '{line}' | sha256sum); printf '%s%s' \"$key\" \"${{sum%% *}}\" | sha256sum | cut -c1-64"
    );
    let output = std::process::Command::new("bash").arg("-c").arg(script).output().expect("bash runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), seal("k3y", line));
}

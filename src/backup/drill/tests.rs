//! The restore drill on the fake transport: the verdict recorded in every
//! store that holds the backup, a damaged copy failing the drill (not
//! erroring it), and a planted copy refused.

use std::collections::BTreeMap;

use super::*;
use crate::backup::store::tests::{KEY, listing, stores};
use crate::transport::fake::Fake;

const A: &str = "20261201T010000Z";
const B: &str = "20261201T020000Z";

fn run_drill(
    destination_key: &'static str,
    copy_fails: bool,
    wanted: Option<&str>,
) -> (Result<DrillRecord, DrillError>, Vec<(String, String)>) {
    let fake = Fake::new(move |host, script| match host {
        "db-01" if script.starts_with("for m in") => Ok(listing(&[A], KEY)),
        "web-01" if script.starts_with("for m in") => Ok(listing(&[A, B], destination_key)),
        "drill" if script.starts_with("mktemp") => Ok("/var/tmp/infra-drill.abc\n".into()),
        "drill" if script.starts_with("cat > ") && copy_fails => Err("the backup's SHA-256 is not the one".into()),
        "drill" if script.contains("infra-drill.abc") => {
            Ok("server\t11.8.3-MariaDB\nseconds\t0.25\ntable\t1\trows-digest\tcounter\n".into())
        }
        _ => Ok(String::new()),
    });
    let remotes: BTreeMap<String, _> =
        ["db-01", "web-01", "drill"].map(|host| (host.to_string(), fake.remote(host))).into();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let outcome = runtime.block_on(drill(&remotes, &stores(), "drill", (wanted, "app", Some(KEY)), |_| {}));
    (outcome, fake.scripts())
}

fn records_written(scripts: &[(String, String)]) -> Vec<String> {
    scripts.iter().filter(|(_, script)| script.contains(".drill.partial")).map(|(host, _)| host.clone()).collect()
}

#[test]
fn a_good_backup_passes_and_the_verdict_lands_beside_every_copy() {
    let (outcome, scripts) = run_drill(KEY, false, None);
    let record = outcome.expect("a record");
    // B, only on the destination but sealed right, is the newest trusted one.
    assert_eq!((record.backup.as_str(), record.passed, record.host.as_str()), (B, true, "drill"));
    assert_eq!(records_written(&scripts), ["web-01"]);
    let (outcome, scripts) = run_drill(KEY, false, Some(A));
    assert!(outcome.expect("a record").passed);
    assert_eq!(records_written(&scripts), ["db-01", "web-01"]);
    // The dump comes from a store, through infra, into the scratch directory.
    assert!(
        scripts
            .iter()
            .any(|(host, script)| host == "drill"
                && script.starts_with("cat > '/var/tmp/infra-drill.abc'/backup.sql.gz"))
    );
}

#[test]
fn a_damaged_copy_is_a_failed_drill_not_an_error() {
    let (outcome, scripts) = run_drill(KEY, true, Some(A));
    let record = outcome.expect("a record, failed");
    assert!(!record.passed);
    assert!(record.problems.iter().any(|problem| problem.contains("SHA-256")), "{:?}", record.problems);
    assert_eq!(records_written(&scripts), ["db-01", "web-01"], "a failure is recorded too");
}

#[test]
fn a_copy_planted_on_the_destination_is_never_drilled() {
    // Sealed with another key: B is not trusted, so A (the database host's) is drilled.
    let (outcome, _) = run_drill("a forger's key", false, None);
    assert_eq!(outcome.expect("a record").backup, A);
    let (outcome, scripts) = run_drill("a forger's key", false, Some(B));
    assert!(matches!(outcome, Err(DrillError::Restore(RestoreError::Unsealed { .. }))), "{outcome:?}");
    assert!(records_written(&scripts).is_empty());
}

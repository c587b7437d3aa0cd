//! The stores on the fake transport: what a copy sends and in which order,
//! what ship copies and prunes, and a holdings answer infra did not write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::*;
use crate::transport::Target;
use crate::transport::fake::Fake;

pub(crate) const KEY: &str = "the sealing key";

pub(crate) fn manifest(id: &str) -> Manifest {
    Manifest {
        id: id.into(),
        time: String::new(),
        size: 10,
        sha256: format!("sha-of-{id}"),
        server: "11.8.3-MariaDB".into(),
        database: "app".into(),
        seconds: 0.1,
        binlog_file: "mysql-bin.000001".into(),
        binlog_position: 4,
        gtid: String::new(),
        tables: [("counter".to_string(), super::super::TableDigest { rows: 1, sha256: "rows-digest".into() })].into(),
    }
}

pub(crate) fn stores() -> Stores {
    let store = |name: &str, last: u8, directory: &str| Store {
        target: Target::with_defaults(name, format!("10.0.0.{last}").parse().expect("address")),
        directory: directory.into(),
    };
    Stores {
        database: store("db-01", 41, "/var/backups/infra"),
        destination: Some(store("web-01", 21, "/srv/backups")),
        keep: 2,
        schedule: "daily".into(),
    }
}

/// What the holdings script answers for backups `ids`: each manifest line
/// and its seal under `key`.
pub(crate) fn listing(ids: &[&str], key: &str) -> String {
    ids.iter()
        .map(|id| {
            let line = serde_json::to_string(&manifest(id)).expect("JSON");
            format!("M {line}\nS {}\n", super::super::seal(key, &line))
        })
        .collect()
}

/// A fake where db-01 holds `on_database` and web-01 whatever was
/// written there (starting with `on_destination`), as manifests land.
fn two_stores(on_database: &'static [&'static str], on_destination: &[&str]) -> Fake {
    let landed: Arc<Mutex<BTreeSet<String>>> =
        Arc::new(Mutex::new(on_destination.iter().map(|id| id.to_string()).collect()));
    Fake::new(move |host, script| {
        let mut landed = landed.lock().expect("landed");
        if script.starts_with("for m in") {
            let ids: Vec<&str> =
                if host == "db-01" { on_database.to_vec() } else { landed.iter().map(String::as_str).collect() };
            return Ok(listing(&ids, KEY));
        }
        if host == "web-01"
            && let Some(id) = script.split("/srv/backups/").nth(1).and_then(|rest| rest.strip_suffix_json())
        {
            landed.insert(id);
        }
        if host == "web-01" && script.starts_with("rm -f") {
            landed.retain(|id| !script.contains(&format!("{id}.json")));
        }
        Ok(String::new())
    })
}

trait ManifestPath {
    fn strip_suffix_json(&self) -> Option<String>;
}

impl ManifestPath for str {
    /// `ID.json.partial' …`, as `write_file` names a manifest it writes.
    fn strip_suffix_json(&self) -> Option<String> {
        self.split_once(".json.partial").map(|(id, _)| id.to_string())
    }
}

const A: &str = "20261201T010000Z";
const B: &str = "20261201T020000Z";
const C: &str = "20261201T030000Z";

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(future)
}

#[test]
fn ship_copies_what_the_destination_lacks_seal_then_manifest_and_prunes_it_to_keep() {
    let fake = two_stores(&[A, B, C], &[A]);
    let remotes: BTreeMap<String, _> = ["db-01", "web-01"].map(|host| (host.to_string(), fake.remote(host))).into();
    let copied = Mutex::new(Vec::new());
    run(ship(&remotes, &stores(), |id, _| copied.lock().expect("copied").push(id.to_string()))).expect("shipped");
    assert_eq!(copied.into_inner().expect("copied"), [B, C]);
    let on_destination: Vec<String> = fake
        .scripts()
        .into_iter()
        .filter(|(host, script)| host == "web-01" && !script.starts_with("for m in"))
        .map(|(_, script)| script)
        .collect();
    let kind = |script: &String| {
        if script.contains("sha256sum <") {
            "dump"
        } else if script.contains(".seal.partial") {
            "seal"
        } else if script.contains(".json.partial") {
            "manifest"
        } else if script.starts_with("rm -f") {
            "prune"
        } else {
            "other"
        }
    };
    let kinds: Vec<&str> = on_destination.iter().map(kind).collect();
    assert_eq!(kinds, ["dump", "seal", "manifest", "dump", "seal", "manifest", "prune"], "{on_destination:#?}");
    // The dump is checked against its manifest's digest before it counts.
    assert!(on_destination[0].contains(&format!("= 'sha-of-{B}'")), "{}", on_destination[0]);
    // The oldest goes, with everything beside it; nothing newer does.
    let prune = on_destination.last().expect("a prune");
    for extension in ["sql.gz", "json", "drill", "seal"] {
        assert!(prune.contains(&format!("/srv/backups/{A}.{extension}")), "{prune}");
    }
    assert!(!prune.contains(B) && !prune.contains(C), "{prune}");
}

#[test]
fn a_copy_writes_the_manifest_line_as_the_source_holds_it() {
    let fake = two_stores(&[A], &[]);
    let stores = stores();
    let destination = stores.destination.as_ref().expect("a destination");
    let held = parse_holdings(&listing(&[A], KEY), &stores.database).expect("parsed");
    let (from, to) = (fake.remote("db-01"), fake.remote("web-01"));
    run(copy(&held.manifests[0], &held, (&from, &stores.database), (&to, destination))).expect("copied");
    let written = fake.scripts().into_iter().map(|(_, script)| script).collect::<Vec<_>>().join("\n");
    assert!(written.contains(&held.raw[A]), "the manifest is sent byte for byte: {written}");
    assert!(written.contains(&format!("cat '/var/backups/infra/{A}.sql.gz'")), "{written}");
}

#[test]
fn a_store_answer_infra_did_not_write_is_refused() {
    let store = stores().database;
    assert!(matches!(parse_holdings("X whatever\n", &store), Err(StoreError::Foreign { .. })));
    assert!(matches!(parse_holdings("S a seal before any manifest\n", &store), Err(StoreError::Foreign { .. })));
    assert!(matches!(parse_holdings("M {not json\n", &store), Err(StoreError::Foreign { .. })));
    let held = parse_holdings(&listing(&[B, A], KEY), &store).expect("parsed");
    let ids: Vec<&str> = held.manifests.iter().map(|manifest| manifest.id.as_str()).collect();
    assert_eq!(ids, [A, B], "oldest first");
}

#[test]
fn a_copy_elsewhere_is_trusted_only_with_the_right_seal() {
    let stores = stores();
    let destination = stores.destination.as_ref().expect("a destination");
    let held = parse_holdings(&listing(&[A], KEY), destination).expect("parsed");
    assert_eq!(held.trusted(destination, &stores, Some(KEY)).len(), 1);
    assert!(held.trusted(destination, &stores, Some("another key")).is_empty());
    assert!(held.trusted(destination, &stores, None).is_empty());
    // The database host's own are trusted as they are.
    let own = parse_holdings(&listing(&[A], "whatever"), &stores.database).expect("parsed");
    assert_eq!(own.trusted(&stores.database, &stores, None).len(), 1);
}

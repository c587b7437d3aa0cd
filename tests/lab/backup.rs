//! Backups on real lab hosts: taken under load without failed requests,
//! proven by restore drills on a temporary lab host, restored onto a
//! database host rebuilt from nothing, rolled forward to a chosen second,
//! and taken before a change that restarts MariaDB.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

impl Lab {
    fn backup(&self, args: &[&str]) -> Output {
        // restore and drills derive the backups' sealing key from the password.
        self.command()
            .args(args)
            .arg("-i")
            .arg(&self.inventory)
            .env("INFRA_DB_PASSWORD", DB_PASSWORD)
            .output()
            .expect("infra runs")
    }

    /// The ids of the complete backups in a directory of a host.
    fn backups_on(&self, host: &str, directory: &str) -> Vec<String> {
        let listing = self.ssh_ok(&address(host), &format!("ls {directory} 2>/dev/null || true"));
        listing.lines().filter_map(|name| name.strip_suffix(".json")).map(String::from).collect()
    }
}

/// Requests through the virtual IP until `stop`: each one's latency, and
/// the failures.
fn timed_load(vip: &str, stop: &AtomicBool) -> (Vec<Duration>, Vec<String>) {
    let (mut latencies, mut failures) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(300);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let started = Instant::now();
        match http_get(vip, "/") {
            Ok((200, _)) => latencies.push(started.elapsed()),
            Ok((status, body)) => failures.push(format!("{status}: {}", body.chars().take(80).collect::<String>())),
            Err(error) => failures.push(error),
        }
    }
    (latencies, failures)
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A database big enough for the backup to take a moment (200,000 rows of
/// hashes, tens of MB), backed up while requests that each write a row
/// run through the virtual IP: none fails, and the slowest shows how long
/// a write waited on the backup, if at all.
pub(crate) fn a_backup_under_load_fails_no_request(lab: &Lab) {
    lab.ssh_ok(
        &address("db-01"),
        "mariadb app -e \"CREATE TABLE IF NOT EXISTS bulk (id INT PRIMARY KEY, payload VARCHAR(100)); \
         REPLACE INTO bulk SELECT seq, CONCAT(MD5(seq), MD5(seq + 1), MD5(seq + 2)) FROM seq_1_to_200000;\"",
    );
    let stop = AtomicBool::new(false);
    let (backup, seconds, (latencies, failures)) = std::thread::scope(|scope| {
        let load = scope.spawn(|| timed_load(&lab.vip, &stop));
        std::thread::sleep(Duration::from_secs(2));
        let started = Instant::now();
        let backup = lab.backup(&["backup", "now"]);
        let seconds = started.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        (backup, seconds, load.join().expect("the load thread"))
    });
    assert_success(&backup, "backup now under load");
    assert!(latencies.len() > 20, "the load did not run: {} requests", latencies.len());
    assert!(failures.is_empty(), "requests failed during the backup: {failures:?}");
    let mut sorted = latencies.clone();
    sorted.sort();
    let (median, slowest) = (sorted[sorted.len() / 2], sorted[sorted.len() - 1]);
    let id = String::from_utf8_lossy(&backup.stdout).trim().to_string();
    let size = lab.ssh_ok(&address("db-01"), &format!("stat -c %s /var/backups/infra/{id}.sql.gz"));
    eprintln!(
        "backup of {:.1} MB (gzip) took {seconds:.1} s under load: {} requests, 0 failed, median {:.1} ms, slowest {:.1} ms",
        size.trim().parse::<f64>().unwrap_or(0.0) / 1e6,
        latencies.len(),
        milliseconds(median),
        milliseconds(slowest)
    );
    let manifest = lab.ssh_ok(&address("db-01"), &format!("cat /var/backups/infra/{id}.json"));
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("the manifest is JSON");
    assert_eq!(manifest["tables"]["bulk"]["rows"], 200_000, "{manifest}");
    assert!(manifest["binlog_file"].as_str().is_some_and(|file| file.starts_with("infra-binlog.")), "{manifest}");
    assert!(lab.backups_on("web-01", "/var/backups/infra-db").contains(&id), "the backup was copied to web-01");
}

/// `backup verify --lab` restores the newest backup into a scratch server
/// on a temporary lab host and passes; the same backup with a row slipped
/// in (and its checksum made to match) fails, naming the table. The
/// temporary host is gone afterwards.
pub(crate) fn restore_drills_pass_on_a_good_backup_and_fail_on_a_corrupted_one(lab: &Lab) {
    let gateway_mac = lab.bridge_mac();
    let drill = lab.backup(&["backup", "verify", "--lab", "--format", "json"]);
    assert_success(&drill, "backup verify of a good backup");
    let report: serde_json::Value = serde_json::from_slice(&drill.stdout).expect("JSON");
    assert_eq!(report["drill"]["passed"], true, "{report}");
    let id = report["drill"]["backup"].as_str().expect("the drilled backup").to_string();
    eprintln!("restore drill of `{id}` loaded in {} s", report["drill"]["restore_seconds"]);
    let listed = lab.backup(&["backup", "list", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let entry = listed["backups"].as_array().and_then(|all| all.iter().find(|b| b["id"] == id.as_str())).cloned();
    assert_eq!(entry.expect("listed")["drill"]["passed"], true);

    let file = format!("/var/backups/infra/{id}");
    lab.ssh_ok(
        &address("db-01"),
        &format!(
            "set -e; zcat {file}.sql.gz | sed '0,/^INSERT INTO `hits` VALUES/s//INSERT INTO `hits` VALUES (99,1),/' \
             | gzip > {file}.tampered && mv {file}.tampered {file}.sql.gz; \
             sum=$(sha256sum < {file}.sql.gz | cut -d' ' -f1); \
             sed -i \"s/\\\"sha256\\\":\\\"[0-9a-f]*\\\",\\\"server/\\\"sha256\\\":\\\"$sum\\\",\\\"server/\" {file}.json"
        ),
    );
    let drill = lab.backup(&["backup", "verify", "--lab", "--id", &id]);
    assert_eq!(drill.status.code(), Some(1), "a corrupted backup must fail its drill");
    let text = String::from_utf8_lossy(&drill.stdout);
    assert!(text.contains("FAILED") && text.contains("table `hits` came back with 2 rows; the backup had 1"), "{text}");
    let status = String::from_utf8_lossy(&lab.infra(&["lab", "status"], None).stdout).into_owned();
    assert!(!status.contains("drill"), "the temporary drill host is still there: {status}");
    // A bridge takes its ports' lowest MAC unless told one: a scratch host
    // coming and going must not move the gateway under the hosts' ARP caches.
    assert_eq!(lab.bridge_mac(), gateway_mac, "the gateway's MAC address moved with the drill host");
    lab.ssh_ok(&address("db-01"), &format!("rm {file}.sql.gz {file}.json {file}.drill"));
}

/// Issue 22: the backup destination (web-01) plants a backup of its own
/// making: future-dated, so it would be the newest, a dump whose SHA-256
/// its manifest records, and a `\\!` line that would run a shell command
/// as root on the database host. Without the sealing key it cannot seal
/// it: restore and the drill refuse it by name, restore without a name
/// never picks it, and nothing it holds ran anywhere.
pub(crate) fn a_backup_forged_on_the_destination_is_refused_by_restore_and_drill(lab: &Lab) {
    assert_success(&lab.backup(&["backup", "now"]), "backup now");
    let forged = "20991231T235959Z";
    let directory = "/var/backups/infra-db";
    lab.ssh_ok(
        &address("web-01"),
        &format!(
            "set -e; cd {directory}; printf '%s\\n' '\\! touch /tmp/forged-backup-ran' 'SELECT 1;' | gzip > {forged}.sql.gz; \
             sum=$(sha256sum < {forged}.sql.gz | cut -d' ' -f1); size=$(stat -c %s {forged}.sql.gz); \
             printf '{{\"id\":\"{forged}\",\"time\":\"2099-12-31T23:59:59Z\",\"size\":%s,\"sha256\":\"%s\",\"server\":\"x\",\"database\":\"app\",\"seconds\":0.1,\"tables\":{{}}}}\\n' \"$size\" \"$sum\" > {forged}.json; \
             echo 0000000000000000000000000000000000000000000000000000000000000000 > {forged}.seal"
        ),
    );
    let restore = lab.backup(&["restore", "--yes", "--backup", forged]);
    let stderr = String::from_utf8_lossy(&restore.stderr);
    assert_eq!(restore.status.code(), Some(1), "restore of a forged backup: {stderr}");
    assert!(stderr.contains(&format!("backup `{forged}` on `web-01` has no valid seal")), "{stderr}");
    let drill = lab.backup(&["backup", "verify", "--on", "db-01", "--id", forged]);
    let stderr = String::from_utf8_lossy(&drill.stderr);
    assert_eq!(drill.status.code(), Some(1), "drill of a forged backup: {stderr}");
    assert!(stderr.contains("has no valid seal"), "{stderr}");
    let listed = String::from_utf8_lossy(&lab.backup(&["backup", "list", "--format", "json"]).stdout).into_owned();
    assert!(listed.contains(forged), "the forged backup is there to be picked: {listed}");
    let newest_drill = lab.backup(&["backup", "verify", "--on", "db-01"]);
    let stdout = String::from_utf8_lossy(&newest_drill.stdout);
    assert_success(&newest_drill, "a drill of the newest trusted backup");
    assert!(!stdout.contains(forged), "the drill picked the forged backup: {stdout}");
    for host in ["db-01", "web-01"] {
        let ran = lab.ssh_ok(&address(host), "[ -e /tmp/forged-backup-ran ] && echo ran || echo clean");
        assert_eq!(ran.trim(), "clean", "the forged dump's shell line ran on {host}");
    }
    lab.ssh_ok(&address("web-01"), &format!("rm -f {directory}/{forged}.*"));
}

/// The database host dies with its disk: a fresh one is booted, apply
/// installs MariaDB, and the restore copies the backup back from web-01:
/// the counter continues from the backed-up value, and no secret shows in
/// any process's command line meanwhile.
pub(crate) fn backups_outlive_the_database_host(lab: &Lab) {
    counter_at(&lab.vip);
    assert_success(&lab.backup(&["backup", "now"]), "backup now");
    let saved = counter_at(&lab.vip);
    for _ in 0..3 {
        counter_at(&lab.vip);
    }
    assert_success(&lab.infra(&["lab", "destroy", "db-01"], None), "lab destroy db-01");
    let up = lab.infra(&["lab", "up", "--release", release(), "-i"], Some(&lab.inventory));
    assert_success(&up, "lab up with a fresh db-01");
    assert!(lab.backups_on("db-01", "/var/backups/infra").is_empty(), "the fresh db-01 has no backups");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply onto the fresh db-01");
    let (restored, command_lines) = watching_command_lines(lab, || {
        let output = lab.backup(&["restore", "--yes"]);
        std::thread::sleep(Duration::from_secs(1));
        output
    });
    assert_success(&restored, "restore onto the fresh db-01");
    assert!(String::from_utf8_lossy(&restored.stderr).contains("from `web-01` to `db-01`"));
    no_secret_in(lab, "restore's output", &restored);
    no_secret_in_text(lab, "the hosts' /proc/*/cmdline during a restore", &command_lines);
    assert_eq!(counter_at(&lab.vip), saved + 1, "the counter continues from the backed-up value");
}

/// With binary logs, `restore --to-time` loads the newest backup before
/// the moment and replays the writes up to it: what came after is undone.
pub(crate) fn a_point_in_time_restore_stops_at_the_chosen_second(lab: &Lab) {
    assert_success(&lab.backup(&["backup", "now"]), "backup now");
    let mut at_the_moment = 0;
    for _ in 0..3 {
        at_the_moment = counter_at(&lab.vip);
    }
    std::thread::sleep(Duration::from_millis(1100));
    let moment = time_now();
    std::thread::sleep(Duration::from_millis(1100));
    for _ in 0..3 {
        counter_at(&lab.vip);
    }
    let restored = lab.backup(&["restore", "--yes", "--to-time", &moment]);
    assert_success(&restored, "restore --to-time");
    // The restore's health probe counts once, this read once more.
    assert_eq!(counter_at(&lab.vip), at_the_moment + 2, "rolled forward to {moment}, not past it");
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, as the lab hosts' clocks (this machine's).
fn time_now() -> String {
    let output = Command::new("date").args(["-u", "+%Y-%m-%d %H:%M:%S"]).output().expect("date runs");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A change that restarts MariaDB takes a backup first; turning binary
/// logs back on afterwards is another restart, and another backup.
pub(crate) fn a_risky_database_change_takes_a_backup_first(lab: &Lab) {
    let before = lab.backups_on("db-01", "/var/backups/infra").len();
    let without_binlogs = lab.inventory_with("no-binlogs.yml", "binlogs: true", "binlogs: false");
    let applied = lab.apply(&without_binlogs, &[]);
    assert_success(&applied, "apply that restarts MariaDB");
    assert!(String::from_utf8_lossy(&applied.stderr).contains("db-01: backing up the database"));
    assert_eq!(lab.backups_on("db-01", "/var/backups/infra").len(), before + 1, "a backup was taken first");
    assert_success(&lab.apply(&lab.inventory, &[]), "apply that turns binary logs back on");
    assert_eq!(lab.backups_on("db-01", "/var/backups/infra").len(), before + 2);
}

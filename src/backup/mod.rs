//! Backups of the database: the manifest the backup script writes beside
//! each dump and its seal, the record a restore drill leaves, how a
//! restored copy is judged against the manifest, and how old a backup may
//! grow before the schedule says one is missing (here, pure); the stores
//! backups are kept in, read, copied and pruned (`store`), and a restore's
//! sequence (`restore`), both over the transport traits. The commands in
//! `commands::backup`, `restore` and `drill` connect, lock and print.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, PrimitiveDateTime, format_description::BorrowedFormatItem, macros::format_description};

pub mod drill;
pub mod restore;
pub mod store;

#[cfg(test)]
mod tests;

/// The awk program that counts and digests each table's rows as a dump
/// streams past, on the database host while backing up and on the drill
/// host after the restore: one program, so the two digests agree exactly
/// when the rows do.
pub const DIGEST_AWK: &str = include_str!("../../templates/table-digest.awk");

/// The key the database host seals each backup's manifest with, derived
/// from the database password (which a backup destination does not hold:
/// `check` refuses a destination that is an app host), so a destination
/// cannot make a backup that restore or a drill would take for the
/// database host's. Domain-separated: the key reveals nothing of the
/// password.
pub fn sealing_key(password: &str) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(format!("infra backup sealing key\n{password}").as_bytes()))
}

/// A manifest's seal, as the backup script computes it: the SHA-256 of
/// the key followed by the hex SHA-256 of the manifest file (`manifest`
/// is its one line, without the newline). The inner digest has a fixed
/// length, so no extension of a seen seal is the seal of another manifest.
pub fn seal(key: &str, manifest: &str) -> String {
    use sha2::{Digest, Sha256};
    let inner = hex(&Sha256::digest(format!("{manifest}\n").as_bytes()));
    hex(&Sha256::digest(format!("{key}{inner}").as_bytes()))
}

/// Of the manifests a store other than the database host holds, those
/// whose seal (`seals`, by id) the key confirms, with `raw` each one's
/// line as the store holds it. Everything else there is ignored: a
/// planted, future-dated or edited manifest is never restored or drilled.
pub fn sealed<'m>(
    manifests: &'m [Manifest],
    raw: &BTreeMap<String, String>,
    seals: &BTreeMap<String, String>,
    key: &str,
) -> Vec<&'m Manifest> {
    manifests
        .iter()
        .filter(|manifest| match (raw.get(&manifest.id), seals.get(&manifest.id)) {
            (Some(line), Some(found)) => seal(key, line) == *found,
            _ => false,
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The restore drill run on the scratch host, after [`drill_script`]'s
/// assignments.
const DRILL_SCRIPT: &str = include_str!("drill.sh");

/// A backup id: the UTC second it was started, `YYYYMMDDTHHMMSSZ`.
const ID_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year][month][day]T[hour][minute][second]Z");

/// One backup as its manifest describes it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Manifest {
    pub id: String,
    pub time: String,
    pub size: u64,
    pub sha256: String,
    pub server: String,
    pub database: String,
    pub seconds: f64,
    /// Where the dump's snapshot sits in the binary log: the start of a
    /// point-in-time restore. Empty when binary logs were off.
    #[serde(default)]
    pub binlog_file: String,
    #[serde(default)]
    pub binlog_position: u64,
    /// The snapshot's GTID position (`domain-server-sequence`), with binary logs.
    #[serde(default)]
    pub gtid: String,
    /// Each table's row count and the SHA-256 of its INSERT lines.
    #[serde(default)]
    pub tables: BTreeMap<String, TableDigest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct TableDigest {
    pub rows: u64,
    pub sha256: String,
}

/// What one restore drill found, kept beside the backup as `ID.drill`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct DrillRecord {
    pub backup: String,
    /// When the drill ran, as a backup id is written.
    pub at: String,
    /// The host the scratch server ran on.
    pub host: String,
    pub passed: bool,
    pub restore_seconds: f64,
    /// Why it failed; empty when it passed.
    pub problems: Vec<String>,
}

/// Whether `text` is a backup id; ids name files on hosts, so nothing else
/// is ever put in a path.
pub fn is_id(text: &str) -> bool {
    parse_id(text).is_some()
}

/// The UTC moment an id (or a drill's `at`) names.
pub fn parse_id(text: &str) -> Option<OffsetDateTime> {
    (text.len() == 16).then_some(())?;
    PrimitiveDateTime::parse(text, ID_FORMAT).ok().map(PrimitiveDateTime::assume_utc)
}

/// `moment` written as an id.
pub fn format_id(moment: OffsetDateTime) -> String {
    let utc = moment.to_offset(time::UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time()).format(ID_FORMAT).unwrap_or_default()
}

/// Judges a drill's restored copy against the manifest: every table the
/// backup had, with as many rows; and, when the drill ran the same server
/// version (whose dump formatting is then identical), the same digest.
pub fn compare(manifest: &Manifest, restored: &BTreeMap<String, TableDigest>, same_server: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if manifest.tables.is_empty() {
        problems.push("the manifest records no tables: the backup predates digests, or the database was empty".into());
    }
    for (table, expected) in &manifest.tables {
        match restored.get(table) {
            None => problems.push(format!("table `{table}` did not come back")),
            Some(found) if found.rows != expected.rows => problems
                .push(format!("table `{table}` came back with {} rows; the backup had {}", found.rows, expected.rows)),
            Some(found) if same_server && found.sha256 != expected.sha256 => {
                problems.push(format!("table `{table}` came back with other contents (its rows' SHA-256 differs)"))
            }
            Some(_) => {}
        }
    }
    for table in restored.keys().filter(|table| !manifest.tables.contains_key(*table)) {
        problems.push(format!("table `{table}` came back but is not in the backup"));
    }
    problems
}

/// How often the schedule (systemd `OnCalendar=` as the inventory grammar
/// writes it) takes a backup.
pub fn schedule_period(on_calendar: &str) -> Duration {
    const HOUR: u64 = 3600;
    match on_calendar {
        "hourly" => Duration::from_secs(HOUR),
        "weekly" => Duration::from_secs(7 * 24 * HOUR),
        _ => Duration::from_secs(24 * HOUR),
    }
}

/// How long binary logs are kept: long enough to roll the oldest kept
/// backup forward, and a day more.
pub fn binlog_retention(on_calendar: &str, keep: u32) -> Duration {
    schedule_period(on_calendar) * (keep + 1) + Duration::from_secs(24 * 3600)
}

/// Past this age the newest backup means a scheduled one is missing: one
/// period, plus a quarter for a run that starts late or takes long.
pub fn overdue_after(on_calendar: &str) -> Duration {
    let period = schedule_period(on_calendar);
    period + period / 4
}

/// A warning when the newest of `ids` is older than `allowed` at `now`
/// (`what` names them in the message), or when there is none.
pub fn staleness(what: &str, newest: Option<&str>, now: OffsetDateTime, allowed: Duration) -> Option<String> {
    let Some(newest) = newest else { return Some(format!("there is no {what} yet")) };
    let taken = parse_id(newest)?;
    let age = now - taken;
    (age > allowed).then(|| {
        format!(
            "the newest {what} (`{newest}`) is {} old; the schedule allows {}",
            human(age.unsigned_abs()),
            human(allowed)
        )
    })
}

/// A duration as people say it: `3 d 4 h`, `2 h 5 min`, `40 s`.
pub fn human(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, _) => format!("{minutes} min"),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

/// The drill script for a backup copied to `directory/backup.sql.gz` on
/// the scratch host, of the database `database`.
pub fn drill_script(directory: &str, database: &str) -> String {
    use crate::transport::shell_quote;
    format!(
        "dir={}\ndatabase={}\ndigest_awk=$(cat <<'AWK'\n{DIGEST_AWK}\nAWK\n)\n{DRILL_SCRIPT}",
        shell_quote(directory),
        shell_quote(database)
    )
}

/// What the drill script reported.
#[derive(Debug, PartialEq)]
pub struct Restored {
    pub server: String,
    pub seconds: f64,
    pub tables: BTreeMap<String, TableDigest>,
}

/// Reads the drill script's tab-separated report.
pub fn parse_drill(output: &str) -> Result<Restored, String> {
    let mut restored = Restored { server: String::new(), seconds: 0.0, tables: BTreeMap::new() };
    for line in output.lines().filter(|line| !line.is_empty()) {
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        match fields.as_slice() {
            ["server", version] => restored.server = version.to_string(),
            ["seconds", seconds] => {
                restored.seconds = seconds.parse().map_err(|_| format!("not a duration: `{line}`"))?
            }
            ["table", rows, sha256, name] => {
                let rows = rows.parse().map_err(|_| format!("not a row count: `{line}`"))?;
                // The digest program escapes names as JSON does.
                let name: String =
                    serde_json::from_str(&format!("\"{name}\"")).map_err(|_| format!("not a table name: `{line}`"))?;
                restored.tables.insert(name, TableDigest { rows, sha256: sha256.to_string() });
            }
            _ => return Err(format!("the drill said something unexpected: `{line}`")),
        }
    }
    if restored.server.is_empty() {
        return Err("the drill did not report its server version".into());
    }
    Ok(restored)
}

/// How old the newest passing drill may be: a week, or one backup period
/// when backups are rarer.
pub fn drill_overdue_after(on_calendar: &str) -> Duration {
    overdue_after(on_calendar).max(Duration::from_secs(7 * 24 * 3600))
}

/// The warnings `backup list` and `plan` print about a database's backups,
/// given the newest backup's id and the newest passing drill's.
pub fn warnings(
    newest_backup: Option<&str>,
    newest_passed_drill: Option<&str>,
    now: OffsetDateTime,
    on_calendar: &str,
) -> Vec<String> {
    let backup = staleness("backup", newest_backup, now, overdue_after(on_calendar));
    let drill = staleness("passing restore drill", newest_passed_drill, now, drill_overdue_after(on_calendar));
    backup.into_iter().chain(drill).collect()
}

//! What infra does to a running MariaDB, beside its files in the catalog:
//! which changes put data at risk (and so take a backup first), and the
//! backup taken then. Replication's verbs belong here too.

use super::{BACKUP_SCRIPT, MARIADB};

/// Whether a change could lose data: MariaDB restarted (`restarted` names
/// the units a host's change restarts), or SQL fed to it.
pub fn is_risky<'a>(mut restarted: impl Iterator<Item = &'a str>, feeds_sql: bool) -> bool {
    feeds_sql || restarted.any(|unit| unit == MARIADB.unit)
}

/// A backup now, where the backup script is installed and the server runs
/// (a first apply has nothing to back up yet).
pub fn backup_now() -> String {
    let script = BACKUP_SCRIPT.path;
    format!(
        "if [ -x {script} ] && systemctl is-active --quiet {unit}; then {script} now; else echo 'no database to back up yet'; fi\n",
        unit = MARIADB.unit
    )
}

//! `infra backup list` and `infra restore`: what the stores hold, and a
//! backup loaded back into the database host (copied there first from the
//! destination when the host lost it, say after being rebuilt).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use time::OffsetDateTime;

use super::backup::{Holdings, Store, Stores, checked, checked_id, connection, copy, holdings, run, under_lock};
use crate::backup::{self, DrillRecord, Manifest};
use crate::catalog;
use crate::cli::{BackupArgs, Format, RestoreArgs};
use crate::diagnostic::Style;
use crate::facts;
use crate::report::Silent;
use crate::topology::{self, Role};
use crate::transport::{Connection, Target, shell_quote};

/// One backup across the stores.
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    manifest: &'a Manifest,
    /// The hosts holding it.
    stores: Vec<&'a str>,
    /// Its newest drill, if any.
    drill: Option<&'a DrillRecord>,
}

pub fn list(args: &BackupArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((_, inventory)) = checked(&args.hosts, style)? else { return Ok(ExitCode::FAILURE) };
    let stores = Stores::of(&inventory)?;
    let runtime = super::runtime()?;
    let (held, mut warnings) = runtime.block_on(read_all(&args.hosts, &stores))?;
    let listed = listing(&held);
    let newest = listed.last().map(|listed| listed.manifest.id.as_str());
    let passed = newest_passed(&held);
    warnings.extend(backup::warnings(newest, passed.as_deref(), OffsetDateTime::now_utc(), &stores.schedule));
    match args.format {
        Format::Json => println!("{:#}", serde_json::json!({"version": 1, "backups": listed, "warnings": warnings})),
        Format::Text => print_listing(&listed),
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_listing(listed: &[Listed]) {
    let now = OffsetDateTime::now_utc();
    for item in listed {
        let age =
            backup::parse_id(&item.manifest.id).map_or("?".into(), |taken| backup::human((now - taken).unsigned_abs()));
        let drill = match item.drill {
            Some(drill) if drill.passed => {
                format!("restore drill passed {} ({:.2} s)", drill.at, drill.restore_seconds)
            }
            Some(drill) => format!("restore drill FAILED {}: {}", drill.at, drill.problems.join("; ")),
            None => "never drilled".into(),
        };
        // Manifests and drill records are what a host wrote.
        let (id, stores, drill) = (
            crate::sanitize::printable(&item.manifest.id),
            crate::sanitize::printable(&item.stores.join(", ")),
            crate::sanitize::printable(&drill),
        );
        println!("{id}  {age:>9} old  {:>10} bytes  on {stores}  {drill}", item.manifest.size);
    }
    if listed.is_empty() {
        eprintln!("no backups yet: `infra backup now -i INVENTORY` takes one");
    }
}

/// Every reachable store's holdings, by host; an unreachable store is a
/// warning, not an error, so the destination can be read when the
/// database host is gone.
async fn read_all(
    args: &crate::cli::HostsArgs,
    stores: &Stores,
) -> anyhow::Result<(BTreeMap<String, Holdings>, Vec<String>)> {
    let connected = facts::connect(&stores.targets(), super::transport_settings(&args.connection), 2, &Silent).await;
    let mut warnings: Vec<String> = connected
        .unreachable
        .iter()
        .map(|host| format!("cannot read the backups on `{}`: {}", host.host, host.error))
        .collect();
    let mut held = BTreeMap::new();
    for store in stores.all() {
        let Some(connection) = connected.connections.get(&store.target.name) else { continue };
        match holdings(connection, store).await {
            Ok(holdings) => {
                held.insert(store.target.name.clone(), holdings);
            }
            Err(error) => warnings.push(format!("cannot read the backups on `{}`: {error:#}", store.target.name)),
        }
    }
    connected.close().await;
    if held.is_empty() {
        bail!("no backup store could be read: {}", warnings.join("; "));
    }
    Ok((held, warnings))
}

fn listing(held: &BTreeMap<String, Holdings>) -> Vec<Listed<'_>> {
    let mut by_id: BTreeMap<&str, Listed> = BTreeMap::new();
    for (host, holdings) in held {
        for manifest in &holdings.manifests {
            by_id.entry(&manifest.id).or_insert(Listed { manifest, stores: Vec::new(), drill: None }).stores.push(host);
        }
    }
    for drill in held.values().flat_map(|holdings| &holdings.drills) {
        if let Some(listed) = by_id.get_mut(drill.backup.as_str())
            && listed.drill.is_none_or(|newest| newest.at < drill.at)
        {
            listed.drill = Some(drill);
        }
    }
    by_id.into_values().collect()
}

fn newest_passed(held: &BTreeMap<String, Holdings>) -> Option<String> {
    held.values().flat_map(|holdings| &holdings.drills).filter(|drill| drill.passed).map(|drill| drill.at.clone()).max()
}

pub fn restore(args: &RestoreArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((inventory_path, inventory)) = checked(&args.hosts, style)? else { return Ok(ExitCode::FAILURE) };
    let stores = Stores::of(&inventory)?;
    let database = stores.database.target.clone();
    let apps: Vec<Target> =
        topology::hosts_with(&inventory, Role::App).map(|host| topology::ssh_target(&inventory, host)).collect();
    if !args.yes {
        bail!(
            "refusing to restore without `--yes`: it replaces the tables of `{}` on `{}`, with the app tier stopped while it loads",
            inventory.database.as_ref().map_or("", |database| database.name.value.as_str()),
            database.name
        );
    }
    let port = topology::app_port(&inventory);
    let probes: Vec<(String, String)> = apps
        .iter()
        .filter_map(|app| {
            Some((app.name.clone(), catalog::GUNICORN.probes.first()?.command(app.address, port?, None)?))
        })
        .collect();
    let mut locked = vec![database.clone()];
    locked.extend(apps.iter().filter(|app| app.name != database.name).cloned());
    let mut targets = locked.clone();
    targets.extend(
        stores
            .destination
            .iter()
            .map(|store| store.target.clone())
            .filter(|target| !locked.iter().any(|l| l.name == target.name)),
    );
    let wanted = Wanted { id: args.backup.clone(), until: args.to_time.clone() };
    let key = super::backup::sealing_key(&inventory);
    let runtime = super::runtime()?;
    let restored = runtime.block_on(under_lock(
        &args.hosts,
        &inventory_path,
        "restore",
        &locked,
        &targets,
        async |connections| {
            let id = fetch(connections, &stores, &wanted, key.as_deref()).await?;
            restore_locked(connections, &stores.database, &probes, &id, wanted.until.as_deref()).await?;
            if wanted.until.is_some() {
                // The binary log still holds what came after the chosen moment;
                // a fresh backup is the start of the next point-in-time restore.
                let fresh = run(connection(connections, &stores.database)?, "now").await?;
                eprintln!("restore: took `{}`, the new starting point for point-in-time restores", fresh.trim());
            }
            Ok(id)
        },
    ))?;
    match &args.to_time {
        Some(until) => {
            eprintln!("restore: `{restored}` loaded and rolled forward to {until} UTC; the app tier is serving again")
        }
        None => eprintln!("restore: `{restored}` loaded; the app tier is serving again"),
    }
    Ok(ExitCode::SUCCESS)
}

struct Wanted {
    id: Option<String>,
    until: Option<String>,
}

/// Chooses the backup and makes sure the database host has it, copying it
/// from the destination when only that has it.
/// A copy on the destination counts only when its seal is right: one the
/// destination made itself (future-dated, so it would be the newest) is
/// never chosen, and naming it is an error.
async fn fetch(
    connections: &BTreeMap<String, Connection>,
    stores: &Stores,
    wanted: &Wanted,
    key: Option<&str>,
) -> anyhow::Result<String> {
    let database = connection(connections, &stores.database)?;
    let local = holdings(database, &stores.database).await?;
    let remote = match &stores.destination {
        Some(store) => Some((store, holdings(connection(connections, store)?, store).await?)),
        None => None,
    };
    let trusted_remote: Vec<&Manifest> =
        remote.iter().flat_map(|(store, held)| held.trusted(store, stores, key)).collect();
    if let (Some(id), Some((store, held))) = (&wanted.id, &remote)
        && !local.has(id)
        && held.has(id)
        && !trusted_remote.iter().any(|manifest| &manifest.id == id)
    {
        return Err(super::backup::untrusted(id, store, stores, key));
    }
    if let (None, Some((store, held))) = (key, &remote)
        && wanted.id.is_none()
        && local.manifests.is_empty()
        && let Some(newest) = held.manifests.last()
    {
        return Err(super::backup::untrusted(&newest.id, store, stores, key));
    }
    let every: Vec<&Manifest> = local.manifests.iter().chain(trusted_remote).collect();
    let chosen = choose(&every, wanted)?;
    let id = checked_id(&chosen.id)?.to_string();
    if !local.has(&id) {
        let (store, held) = remote.as_ref().context("no store holds the chosen backup")?;
        eprintln!("restore: copying `{id}` from `{}` to `{}`", store.target.name, stores.database.target.name);
        copy(chosen, held, (connection(connections, store)?, store), (database, &stores.database)).await?;
    }
    Ok(id)
}

/// The backup a restore loads: the one named; else, for a point in time,
/// the newest taken before it with a binary log position; else the newest.
fn choose<'m>(every: &[&'m Manifest], wanted: &Wanted) -> anyhow::Result<&'m Manifest> {
    if let Some(id) = &wanted.id {
        return every
            .iter()
            .find(|manifest| &manifest.id == id)
            .copied()
            .with_context(|| format!("no store holds a backup `{id}`"));
    }
    let candidates = every.iter().filter(|manifest| match &wanted.until {
        // Ids sort as times: `YYYYMMDDTHHMMSSZ` against `YYYY-MM-DD HH:MM:SS`.
        Some(until) => !manifest.binlog_file.is_empty() && manifest.id.as_str() <= id_of_time(until).as_str(),
        None => true,
    });
    candidates.max_by(|a, b| a.id.cmp(&b.id)).copied().with_context(|| match &wanted.until {
        Some(until) => format!("no backup with a binary log position was taken before {until}"),
        None => "there is no backup to restore".to_string(),
    })
}

fn id_of_time(time: &str) -> String {
    format!("{}Z", time.replace(['-', ':'], "").replace(' ', "T"))
}

/// The restore itself, every host locked: check the backup, stop the app
/// tier, load, start the app tier (also after a failed load) and wait until
/// each app host answers its health probe.
async fn restore_locked(
    connections: &BTreeMap<String, Connection>,
    database: &Store,
    probes: &[(String, String)],
    id: &str,
    until: Option<&str>,
) -> anyhow::Result<()> {
    let database = connection(connections, database)?;
    run(database, &format!("check {}", shell_quote(id))).await?;
    let apps: Vec<(&str, &str, &Connection)> =
        probes.iter().filter_map(|(app, probe)| Some((app.as_str(), probe.as_str(), connections.get(app)?))).collect();
    let names: Vec<&str> = apps.iter().map(|(app, _, _)| *app).collect();
    eprintln!("restore: stopping the app tier ({})", names.join(", "));
    for (_, _, connection) in &apps {
        connection.run_script(&catalog::gunicorn::stop()).await?;
    }
    eprintln!("restore: loading `{id}`");
    let arguments = match until {
        Some(until) => format!("restore {} {}", shell_quote(id), shell_quote(until)),
        None => format!("restore {}", shell_quote(id)),
    };
    let loaded = run(database, &arguments).await;
    eprintln!("restore: starting the app tier");
    for (_, _, connection) in &apps {
        connection.run_script(&catalog::gunicorn::start()).await?;
    }
    for (app, probe, connection) in &apps {
        let wait = catalog::until_it_passes(probe);
        connection.run_script(&wait).await.with_context(|| format!("`{app}` did not answer after the restore"))?;
    }
    loaded.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_in_time_picks_the_newest_backup_before_it_with_a_log_position() {
        let manifest = |id: &str, binlog: &str| Manifest {
            id: id.into(),
            time: String::new(),
            size: 0,
            sha256: String::new(),
            server: String::new(),
            database: "app".into(),
            seconds: 0.0,
            binlog_file: binlog.into(),
            binlog_position: 4,
            gtid: String::new(),
            tables: BTreeMap::new(),
        };
        let (a, b, c) = (
            manifest("20261123T100000Z", "b.1"),
            manifest("20261123T110000Z", ""),
            manifest("20261123T120000Z", "b.2"),
        );
        let every = [&a, &b, &c];
        let at = |until: &str| Wanted { id: None, until: Some(until.into()) };
        assert_eq!(choose(&every, &at("2026-11-23 11:30:00")).expect("found").id, a.id);
        assert_eq!(choose(&every, &at("2026-11-23 12:00:00")).expect("found").id, c.id);
        assert!(choose(&every, &at("2026-11-23 09:00:00")).is_err());
        assert_eq!(choose(&every, &Wanted { id: None, until: None }).expect("newest").id, c.id);
    }
}

//! `infra backup list` and `infra restore`: what the stores hold, and a
//! backup loaded back into the database host (copied there first from the
//! destination when the host lost it, say after being rebuilt).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use time::OffsetDateTime;

use super::backup::{checked, explained, stores_of, under_lock};
use crate::backup::restore::{self, App, Wanted};
use crate::backup::store::{self, Holdings, Stores, Verb};
use crate::backup::{self, DrillRecord, Manifest};
use crate::catalog;
use crate::cli::{BackupArgs, Format, RestoreArgs};
use crate::diagnostic::Style;
use crate::facts;
use crate::report::Silent;
use crate::topology::{self, Role};
use crate::transport::Target;

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
    let Some((_, stack)) = checked(&args.hosts.inventory, style)? else { return Ok(ExitCode::FAILURE) };
    let stores = stores_of(&stack)?;
    let runtime = super::runtime()?;
    let (held, mut warnings) = runtime.block_on(read_all(&args.hosts, &stores))?;
    let listed = listing(&held);
    let newest = listed.last().map(|listed| listed.manifest.id.as_str());
    let passed = newest_passed(&held);
    warnings.extend(backup::warnings(newest, passed.as_deref(), OffsetDateTime::now_utc(), &stores.schedule));
    match args.format {
        Format::Json => stdoutln!("{:#}", serde_json::json!({"version": 1, "backups": listed, "warnings": warnings})),
        Format::Text => print_listing(&listed),
    }
    for warning in &warnings {
        stderrln!("warning: {warning}");
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
        stdoutln!("{id}  {age:>9} old  {:>10} bytes  on {stores}  {drill}", item.manifest.size);
    }
    if listed.is_empty() {
        stderrln!("no backups yet: `infra backup now -i INVENTORY` takes one");
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
        match store::holdings(connection, store).await {
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
    let Some((inventory_path, stack)) = checked(&args.hosts.inventory, style)? else { return Ok(ExitCode::FAILURE) };
    let stores = stores_of(&stack)?;
    let database = stores.database.target.clone();
    let apps: Vec<&crate::inventory::Host> = stack.hosts_with(Role::App).collect();
    let question = format!(
        "Replace the tables of `{}` on `{}` with the backup, the app tier stopped while it loads?",
        stack.database.name.value, database.name
    );
    let hint = "run again with `--yes` when you mean it: `infra backup list` shows what each backup holds";
    if !super::confirmed(args.yes, &question, "restore", hint)? {
        stderrln!("restore cancelled: nothing was changed");
        return Ok(ExitCode::FAILURE);
    }
    let processes = catalog::process_instances(
        stack.app.processes.iter().map(|process| (process.name.value.as_str(), process.count.value)),
    );
    let probes: Vec<App> = apps
        .iter()
        .filter_map(|app| {
            let port = stack.port(app, Role::App)?;
            let probe = catalog::GUNICORN.probes.first()?.command(
                app.address.value,
                port,
                None,
                crate::render::app_request(stack.app.health.as_ref()),
            )?;
            Some(App { name: app.name.value.clone(), probe, processes: processes.clone() })
        })
        .collect();
    let apps: Vec<Target> = apps.into_iter().map(|host| topology::ssh_target(&stack, host)).collect();
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
    let key = super::backup::sealing_key(&stack);
    let runtime = super::runtime()?;
    let restored = runtime.block_on(under_lock(
        &args.hosts,
        &inventory_path,
        "restore",
        &locked,
        &targets,
        async |connections| {
            let copying = |id: &str, from: &str| {
                stderrln!("restore: copying `{id}` from `{from}` to `{}`", stores.database.target.name);
            };
            let id = restore::fetch(connections, &stores, &wanted, key.as_deref(), copying).await.map_err(explained)?;
            let say = |what: String| stderrln!("restore: {what}");
            restore::load(connections, &stores.database, &probes, (&id, wanted.until.as_deref()), say)
                .await
                .map_err(explained)?;
            if wanted.until.is_some() {
                // The binary log still holds what came after the chosen moment;
                // a fresh backup is the start of the next point-in-time restore.
                let database = store::remote(connections, &stores.database).map_err(explained)?;
                let fresh = store::run(database, Verb::Now).await.map_err(explained)?;
                stderrln!("restore: took `{}`, the new starting point for point-in-time restores", fresh.trim());
            }
            Ok(id)
        },
    ))?;
    match &args.to_time {
        Some(until) => {
            stderrln!("restore: `{restored}` loaded and rolled forward to {until} UTC; the app tier is serving again")
        }
        None => stderrln!("restore: `{restored}` loaded; the app tier is serving again"),
    }
    Ok(ExitCode::SUCCESS)
}

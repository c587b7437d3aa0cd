//! `infra backup now|list` and `infra restore`: the database's backups,
//! taken and restored by the script apply installs on the database host
//! (`catalog::BACKUP_SCRIPT`), under the same host locks as apply.
//!
//! A restore stops the app tier first, so nothing writes while the dump is
//! loaded, and starts it again whatever happened.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::catalog;
use crate::cli::{BackupArgs, Format, HostsArgs, RestoreArgs};
use crate::diagnostic::Style;
use crate::facts;
use crate::inventory::Inventory;
use crate::lock::{self, Claim};
use crate::report::Silent;
use crate::topology::{self, Role};
use crate::transport::{Connection, Target, TransportError, shell_quote};

/// One backup as its manifest on the database host describes it.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct Manifest {
    pub id: String,
    pub time: String,
    pub size: u64,
    pub sha256: String,
    pub server: String,
    pub database: String,
    pub seconds: f64,
}

pub fn now(args: &BackupArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((inventory_path, inventory)) = checked(&args.hosts, style)? else { return Ok(ExitCode::FAILURE) };
    let database = database_target(&inventory)?;
    let runtime = super::runtime()?;
    let id =
        runtime.block_on(under_lock(&args.hosts, &inventory_path, "backup now", &[database], async |connections| {
            let connection = connections.values().next().context("no connection to the database host")?;
            let started = std::time::Instant::now();
            let output = run(connection, "now").await?;
            eprintln!("backup: took {:.1} s", started.elapsed().as_secs_f64());
            Ok(output.trim().to_string())
        }))?;
    match args.format {
        Format::Json => println!("{}", serde_json::json!({"version": 1, "backup": id})),
        Format::Text => println!("{id}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(args: &BackupArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((_, inventory)) = checked(&args.hosts, style)? else { return Ok(ExitCode::FAILURE) };
    let database = database_target(&inventory)?;
    let runtime = super::runtime()?;
    let manifests = runtime.block_on(async {
        let connected =
            facts::connect(&[database], super::transport_settings(&args.hosts.connection), 1, &Silent).await;
        let result = match connected.connections.values().next() {
            Some(connection) => manifests(connection).await,
            None => Err(anyhow::anyhow!(
                "{}",
                connected.unreachable.first().map_or("the database host is unreachable", |host| host.error.as_str())
            )),
        };
        connected.close().await;
        result
    })?;
    match args.format {
        Format::Json => println!("{:#}", serde_json::json!({"version": 1, "backups": manifests})),
        Format::Text => {
            for manifest in &manifests {
                println!(
                    "{}  {}  {:>10} bytes  {}  sha256 {}…",
                    manifest.id,
                    manifest.time,
                    manifest.size,
                    manifest.server,
                    manifest.sha256.chars().take(12).collect::<String>()
                );
            }
            if manifests.is_empty() {
                eprintln!("no backups yet: `infra backup now -i INVENTORY` takes one");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restore(args: &RestoreArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((inventory_path, inventory)) = checked(&args.hosts, style)? else { return Ok(ExitCode::FAILURE) };
    let database = database_target(&inventory)?;
    let apps: Vec<Target> =
        topology::hosts_with(&inventory, Role::App).map(|host| topology::ssh_target(&inventory, host)).collect();
    let mut targets = vec![database.clone()];
    targets.extend(apps.iter().filter(|app| app.name != database.name).cloned());
    if !args.yes {
        bail!(
            "refusing to restore without `--yes`: it replaces the tables of `{}` on `{}`, with the app tier stopped while it loads",
            inventory.database.as_ref().map_or("", |database| database.name.value.as_str()),
            database.name
        );
    }
    let port = inventory.app.as_ref().map_or(8000, |app| app.bind.value.port());
    let apps: Vec<(String, String)> = apps
        .iter()
        .filter_map(|app| Some((app.name.clone(), catalog::GUNICORN.probes.first()?.command(app.address, port, None)?)))
        .collect();
    let runtime = super::runtime()?;
    let restored =
        runtime.block_on(under_lock(&args.hosts, &inventory_path, "restore", &targets, async |connections| {
            restore_locked(connections, &database.name, &apps, args.backup.clone()).await
        }))?;
    eprintln!("restore: `{restored}` loaded; the app tier is serving again");
    Ok(ExitCode::SUCCESS)
}

/// The restore itself, every host locked: check the backup, stop the app
/// tier, load, start the app tier (also after a failed load) and wait until
/// each app host answers its health probe. `apps` holds each app host's
/// name and probe.
async fn restore_locked(
    connections: &BTreeMap<String, Connection>,
    database: &str,
    apps: &[(String, String)],
    wanted: Option<String>,
) -> anyhow::Result<String> {
    let database = connections.get(database).context("no connection to the database host")?;
    let id = match wanted {
        Some(id) => id,
        None => {
            manifests(database).await?.pop().map(|manifest| manifest.id).context("there is no backup to restore")?
        }
    };
    run(database, &format!("check {}", shell_quote(&id))).await?;
    let app_connections: Vec<&Connection> = apps.iter().filter_map(|(app, _)| connections.get(app)).collect();
    let names: Vec<&str> = apps.iter().map(|(app, _)| app.as_str()).collect();
    eprintln!("restore: stopping the app tier ({})", names.join(", "));
    for connection in &app_connections {
        connection.run_script(&format!("systemctl stop {}\n", catalog::GUNICORN.unit)).await?;
    }
    eprintln!("restore: loading `{id}`");
    let loaded = run(database, &format!("restore {}", shell_quote(&id))).await;
    eprintln!("restore: starting the app tier");
    for connection in &app_connections {
        connection.run_script(&format!("systemctl start {}\n", catalog::GUNICORN.unit)).await?;
    }
    for ((app, probe), connection) in apps.iter().zip(&app_connections) {
        // Gunicorn takes a moment to bind after its start.
        let wait = format!("for _ in $(seq 1 60); do {probe} && exit 0; sleep 0.5; done; {probe}\n");
        connection.run_script(&wait).await.with_context(|| format!("`{app}` did not answer after the restore"))?;
    }
    loaded.map(|_| id)
}

/// Runs `body` with the lock held on every target, then releases it.
async fn under_lock<T>(
    args: &HostsArgs,
    inventory: &str,
    command: &str,
    targets: &[Target],
    body: impl AsyncFnOnce(&BTreeMap<String, Connection>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let settings = super::transport_settings(&args.connection);
    let connected = facts::connect(targets, settings, args.connection.parallel, &Silent).await;
    if let Some(unreachable) = connected.unreachable.first() {
        let error = unreachable.error.clone();
        connected.close().await;
        bail!("{command} changed nothing: {error}");
    }
    let claim = Claim::here(command, inventory);
    let locks = match lock::acquire(&connected.connections, &claim, Duration::from_secs(args.lock_timeout)).await {
        Ok(locks) => locks,
        Err(error) => {
            connected.close().await;
            return Err(anyhow::Error::new(error).context(format!("{command} changed nothing: a host is locked")));
        }
    };
    let result = body(&connected.connections).await;
    locks.release().await;
    connected.close().await;
    result
}

async fn manifests(connection: &Connection) -> anyhow::Result<Vec<Manifest>> {
    let output = run(connection, "list").await?;
    output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).with_context(|| format!("a backup manifest is not what infra wrote: `{line}`"))
        })
        .collect()
}

/// Runs the backup script with `arguments` on the database host.
async fn run(connection: &Connection, arguments: &str) -> anyhow::Result<String> {
    let script = catalog::BACKUP_SCRIPT.path;
    let command =
        format!("[ -x {script} ] || {{ echo 'infra-backup is not installed' >&2; exit 3; }}\n{script} {arguments}\n");
    connection.run_script(&command).await.map_err(|error| match &error {
        TransportError::Script { stderr, .. } if stderr.contains("infra-backup is not installed") => {
            anyhow::Error::new(error).context(super::Hinted {
                message: format!("the database host has no `{script}`"),
                hint: "run `infra apply -i INVENTORY` first: it installs the backup script with the database".into(),
            })
        }
        _ => anyhow::Error::new(error),
    })
}

fn checked(args: &HostsArgs, style: Style) -> anyhow::Result<Option<(String, Inventory)>> {
    let mut checked = super::load_and_check(&args.inventory.inventory, false)?;
    if checked.printed_and_valid(style).is_none() {
        return Ok(None);
    }
    let path = std::fs::canonicalize(&args.inventory.inventory)
        .map_or_else(|_| args.inventory.inventory.display().to_string(), |path| path.display().to_string());
    Ok(checked.inventory.take().map(|inventory| (path, inventory)))
}

fn database_target(inventory: &Inventory) -> anyhow::Result<Target> {
    let host = topology::hosts_with(inventory, Role::Database).next().context("the inventory has no database host")?;
    Ok(topology::ssh_target(inventory, host))
}

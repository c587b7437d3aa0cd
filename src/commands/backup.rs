//! `infra backup now`: a backup taken by the script apply installs on the
//! database host, then shipped to the inventory's destination, under the
//! same host locks as apply; and what the backup commands share (the
//! stores of a stack, the connect → lock runner, errors with their hints).
//! What is done to the stores is the `backup::store` subsystem's.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;

use crate::backup;
use crate::backup::restore::RestoreError;
use crate::backup::store::{self, Store, StoreError, Stores, Verb};
use crate::cli::{BackupArgs, Format, HostsArgs};
use crate::diagnostic::Style;
use crate::stack::Stack;
use crate::topology::{self, Role};
use crate::transport::{Connection, Target};

/// Where `stack`'s backups are: the database host's directory, the
/// destination's if the inventory names one, and the schedule.
pub fn stores_of(stack: &Stack) -> anyhow::Result<Stores> {
    let host = stack.hosts_with(Role::Database).next().context("the inventory has no database host")?;
    let settings = &stack.database.backup;
    let destination = settings.destination.as_ref().and_then(|destination| {
        let host = stack.host(&destination.host.value)?;
        Some(Store { target: topology::ssh_target(stack, host), directory: destination.directory.value.clone() })
    });
    Ok(Stores {
        database: Store { target: topology::ssh_target(stack, host), directory: settings.directory.value.clone() },
        destination,
        keep: settings.keep.value,
        schedule: settings.schedule.value.clone(),
    })
}

/// The key backups are sealed with, derived from the database password
/// as the database host's script was given it: restore and the drill need
/// it to trust a copy on a destination, and do without one (trusting the
/// database host's own backups only) when the password is not at hand.
pub fn sealing_key(stack: &Stack) -> Option<String> {
    let password = stack.database.password.resolve(&stack.files).ok()?;
    Some(backup::sealing_key(password.expose()))
}

/// A backup subsystem's error, with the hint an operator needs where there
/// is one: the sealing key's source, or apply to install the script.
pub fn explained(error: impl Into<RestoreError>) -> anyhow::Error {
    match error.into() {
        needs_key @ RestoreError::NeedsKey { .. } => anyhow::Error::new(needs_key).context(super::Hinted {
            message: "infra cannot check its seal without the database password".into(),
            hint: "set the database password as apply has it (`INFRA_DB_PASSWORD`, or its file): the backups' sealing key derives from it".into(),
        }),
        RestoreError::Store(missing @ StoreError::NotInstalled(script)) => anyhow::Error::new(missing).context(super::Hinted {
            message: format!("the database host has no `{script}`"),
            hint: "run `infra apply -i INVENTORY` first: it installs the backup script with the database".into(),
        }),
        other => anyhow::Error::new(other),
    }
}

pub fn now(args: &BackupArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((inventory_path, stack)) = checked(&args.hosts.inventory, style)? else { return Ok(ExitCode::FAILURE) };
    let stores = stores_of(&stack)?;
    let runtime = super::runtime()?;
    let locked = [stores.database.target.clone()];
    let id = runtime.block_on(under_lock(
        &args.hosts,
        &inventory_path,
        "backup now",
        &locked,
        &stores.targets(),
        async |connections| {
            let database = store::remote(connections, &stores.database).map_err(explained)?;
            let started = std::time::Instant::now();
            let id = store::run(database, Verb::Now).await.map_err(explained)?.trim().to_string();
            stderrln!(
                "backup: `{id}` taken on `{}` in {:.1} s",
                stores.database.target.name,
                started.elapsed().as_secs_f64()
            );
            let copied = |id: &str, took: std::time::Duration| {
                if let Some(destination) = &stores.destination {
                    stderrln!(
                        "backup: `{id}` copied to `{}:{}` in {:.1} s",
                        destination.target.name,
                        destination.directory,
                        took.as_secs_f64()
                    );
                }
            };
            store::ship(connections, &stores, copied).await.map_err(explained)?;
            Ok(id)
        },
    ))?;
    match args.format {
        Format::Json => stdoutln!("{}", serde_json::json!({"version": 1, "backup": id})),
        Format::Text => stdoutln!("{id}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// [`super::hosts::under_lock`] for the commands that take [`HostsArgs`],
/// with `body` given the connections by host name.
pub async fn under_lock<T>(
    args: &HostsArgs,
    inventory: &str,
    command: &str,
    locked: &[Target],
    targets: &[Target],
    body: impl AsyncFnOnce(&BTreeMap<String, Connection>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let run = super::hosts::Run { connection: &args.connection, lock_timeout: args.lock_timeout, command, inventory };
    super::hosts::under_lock(run, locked, targets, async |connected| body(&connected.connections).await).await
}

/// The inventory's path (canonical, for the lock) and its stack; `None`
/// when it has errors (printed).
pub fn checked(inventory: &crate::cli::InventoryArg, style: Style) -> anyhow::Result<Option<(String, Stack)>> {
    let inventory = super::inventory_of(inventory)?;
    let mut checked = super::load_and_check(&inventory, false)?;
    if checked.printed_and_valid(style).is_none() {
        return Ok(None);
    }
    let path = std::fs::canonicalize(&inventory)
        .map_or_else(|_| inventory.display().to_string(), |path| path.display().to_string());
    Ok(checked.stack.take().map(|stack| (path, stack)))
}

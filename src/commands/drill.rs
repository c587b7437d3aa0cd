//! `infra backup verify`: the restore drill. A backup is copied to a
//! throwaway host (a temporary lab host with `--lab`, else the inventory's
//! drill host), loaded into a MariaDB server started there for the drill
//! alone, and each table's rows and digest are checked against the
//! manifest. The result is recorded beside the backup in every store that
//! holds it, so `backup list` and `plan` can tell when the last proof of a
//! restore is getting old.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use time::OffsetDateTime;

use super::backup::{checked, explained, stores_of};
use crate::backup::store::{self, Store, Stores, backup_path};
use crate::backup::{self, DrillRecord, Manifest};
use crate::cli::{Format, VerifyArgs};
use crate::debian::Debian;
use crate::diagnostic::Style;
use crate::facts;
use crate::lab;
use crate::report::Silent;
use crate::stack::Stack;
use crate::topology;
use crate::transport::{Connection, Target, shell_quote};

/// The name of the temporary lab host a `--lab` drill boots.
const SCRATCH_HOST: &str = "drill";

pub fn verify(args: &VerifyArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((_, stack)) = checked(&args.backup.hosts, style)? else { return Ok(ExitCode::FAILURE) };
    let stores = stores_of(&stack)?;
    let key = super::backup::sealing_key(&stack);
    let database_name = stack.database.name.value.clone();
    let drill_host = if args.lab { boot_scratch(&stores)? } else { drill_target(&stack, args.on.as_deref())? };
    let runtime = super::runtime()?;
    let prepare = args.lab.then(scratch_packages);
    let result =
        runtime.block_on(drill(args, &stores, &drill_host, (&database_name, key.as_deref()), prepare.as_deref()));
    if args.lab
        && let Err(error) = lab::remove_scratch(SCRATCH_HOST)
    {
        eprintln!(
            "warning: the scratch host `{SCRATCH_HOST}` could not be removed: {error}; `infra lab down` removes it"
        );
    }
    let record = result?;
    match args.backup.format {
        Format::Json => println!("{:#}", serde_json::json!({"version": 1, "drill": record})),
        Format::Text if record.passed => println!(
            "restore drill of `{}` on `{}` passed: loaded in {:.2} s, every table's rows and digest as recorded",
            record.backup, record.host, record.restore_seconds
        ),
        Format::Text => {
            println!("restore drill of `{}` on `{}` FAILED:", record.backup, record.host);
            for problem in &record.problems {
                println!("  - {}", crate::sanitize::printable(problem));
            }
        }
    }
    Ok(if record.passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Boots the temporary lab host, on the database host's release.
fn boot_scratch(stores: &Stores) -> anyhow::Result<Target> {
    let release = lab::status()
        .ok()
        .and_then(|hosts| hosts.into_iter().find(|host| host.name == stores.database.target.name))
        .map_or(Debian::CURRENT_STABLE, |host| host.release);
    eprintln!("drill: booting the temporary lab host `{SCRATCH_HOST}` ({})", release.codename());
    let scratch = lab::boot_scratch(SCRATCH_HOST, release).context("cannot boot a lab host for the drill")?;
    let mut target = stores.database.target.clone();
    target.name = scratch.name;
    target.address = scratch.address;
    Ok(target)
}

/// Installs MariaDB's programs on a fresh lab host (from the lab's package
/// cache: lab hosts have no route out) without starting its service: the
/// drill starts a server of its own.
fn scratch_packages() -> String {
    let packages = crate::catalog::MARIADB.packages.join(" ");
    format!(
        "set -e\nexport DEBIAN_FRONTEND=noninteractive\nprintf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d\nchmod +x /usr/sbin/policy-rc.d\n\
         apt-get install -y -q --no-install-recommends {packages} mariadb-client > /dev/null\nrm -f /usr/sbin/policy-rc.d\n"
    )
}

/// The inventory host named by `--on`, else by `database.backup.drill_host`.
fn drill_target(stack: &Stack, on: Option<&str>) -> anyhow::Result<Target> {
    let configured = stack.database.backup.drill_host.as_ref().map(|host| host.value.as_str());
    let Some(name) = on.or(configured) else {
        return Err(anyhow::anyhow!("no host to drill on").context(super::Hinted {
            message: "a restore drill needs a throwaway host".into(),
            hint:
                "pass `--on HOST`, set `database.backup.drill_host`, or in a lab pass `--lab` for a temporary lab host"
                    .into(),
        }));
    };
    let host = stack.host(name).with_context(|| format!("`{name}` is not a host of this inventory"))?;
    Ok(topology::ssh_target(stack, host))
}

async fn drill(
    args: &VerifyArgs,
    stores: &Stores,
    host: &Target,
    (database, key): (&str, Option<&str>),
    prepare: Option<&str>,
) -> anyhow::Result<DrillRecord> {
    let mut targets = stores.targets();
    targets.push(host.clone());
    let settings = super::transport_settings(&args.backup.hosts.connection);
    let connected = facts::connect(&targets, settings, 3, &Silent).await;
    if let (Some(script), Some(scratch)) = (prepare, connected.connections.get(&host.name)) {
        eprintln!("drill: installing MariaDB on `{}`", host.name);
        if let Err(error) = scratch.run_script(script).await {
            connected.close().await;
            return Err(anyhow::Error::new(error).context("cannot install MariaDB on the scratch host"));
        }
    }
    let result = drill_connected(&connected.connections, args.id.as_deref(), stores, host, (database, key)).await;
    connected.close().await;
    result
}

async fn drill_connected(
    connections: &BTreeMap<String, Connection>,
    wanted: Option<&str>,
    stores: &Stores,
    host: &Target,
    (database, key): (&str, Option<&str>),
) -> anyhow::Result<DrillRecord> {
    let scratch =
        connections.get(&host.name).with_context(|| format!("cannot reach the drill host `{}`", host.name))?;
    // A drill that passed on a backup a destination planted would vouch
    // for nothing: a copy counts only with a valid seal.
    let mut holders: Vec<(&Store, &Connection, Vec<Manifest>)> = Vec::new();
    for store in stores.all() {
        if let Some(connection) = connections.get(&store.target.name) {
            let held = store::holdings(connection, store).await?;
            let trusted: Vec<Manifest> = held.trusted(store, stores, key).into_iter().cloned().collect();
            if let Some(id) = wanted
                && held.has(id)
                && !trusted.iter().any(|manifest| manifest.id == id)
            {
                return Err(explained(crate::backup::restore::untrusted(id, store, stores, key)));
            }
            holders.push((store, connection, trusted));
        }
    }
    let newest = || holders.iter().flat_map(|(_, _, manifests)| manifests).map(|manifest| manifest.id.as_str()).max();
    let id = store::checked_id(wanted.or_else(newest).context("there is no backup to drill")?)?.to_string();
    let (source, source_connection, manifest) = holders
        .iter()
        .find_map(|(store, connection, manifests)| Some((*store, *connection, manifests.iter().find(|m| m.id == id)?)))
        .with_context(|| format!("no reachable store holds a backup `{id}`"))?;
    eprintln!("drill: restoring `{id}` from `{}` on `{}`", source.target.name, host.name);
    let record = run_drill(manifest, (source_connection, source), scratch, &host.name, database).await?;
    let json = serde_json::to_string(&record)?;
    for (store, connection, manifests) in &holders {
        if manifests.iter().any(|manifest| manifest.id == id) {
            store::write_file(*connection, &backup_path(store, &id, "drill"), &json).await?;
        }
    }
    Ok(record)
}

/// Copies the backup to the scratch host, runs the drill there and judges
/// what came back. A damaged copy or a failed load is a failed drill, not
/// an error: it is what the drill exists to find.
async fn run_drill(
    manifest: &Manifest,
    source: (&Connection, &Store),
    scratch: &Connection,
    host: &str,
    database: &str,
) -> anyhow::Result<DrillRecord> {
    let at = backup::format_id(OffsetDateTime::now_utc());
    let directory = scratch.run_script("mktemp -d /var/tmp/infra-drill.XXXXXX\n").await?.trim().to_string();
    let copy = format!(
        "cat > {dir}/backup.sql.gz && [ \"$(sha256sum < {dir}/backup.sql.gz | cut -d' ' -f1)\" = {sum} ] || {{ echo \"the backup's SHA-256 is not the one its manifest records: the file is damaged\" >&2; rm -rf {dir}; exit 1; }}",
        dir = shell_quote(&directory),
        sum = shell_quote(&manifest.sha256)
    );
    let read = format!("cat {}\n", shell_quote(&backup_path(source.1, &manifest.id, "sql.gz")));
    let outcome = match source.0.stream_to(&read, scratch, &copy).await {
        Ok(_) => scratch.run_script(&backup::drill_script(&directory, database)).await.map_err(anyhow::Error::new),
        Err(error) => Err(anyhow::Error::new(error)),
    };
    let (passed, restore_seconds, problems) = match outcome.map(|output| backup::parse_drill(&output)) {
        Ok(Ok(restored)) => {
            let problems = backup::compare(manifest, &restored.tables, restored.server == manifest.server);
            (problems.is_empty(), restored.seconds, problems)
        }
        Ok(Err(unreadable)) => bail!("the drill on `{host}` reported something infra cannot read: {unreadable}"),
        Err(error) => (false, 0.0, vec![crate::diagnostic::error_chain(error.as_ref())]),
    };
    Ok(DrillRecord { backup: manifest.id.clone(), at, host: host.to_string(), passed, restore_seconds, problems })
}

//! `infra backup verify`: the restore drill on a throwaway host (a
//! temporary lab host with `--lab`, else the inventory's drill host). What
//! the drill does is `backup::drill`'s; this module finds or boots the
//! host, connects and prints. The result is recorded beside the backup in
//! every store that holds it, so `backup list` and `plan` can tell when the
//! last proof of a restore is getting old.

use std::process::ExitCode;

use anyhow::Context;

use super::backup::{checked, explained, stores_of};
use crate::backup::store::Stores;
use crate::backup::{self, DrillRecord};
use crate::cli::{Format, VerifyArgs};
use crate::debian::Debian;
use crate::diagnostic::Style;
use crate::facts;
use crate::lab;
use crate::report::Silent;
use crate::stack::Stack;
use crate::topology;
use crate::transport::Target;

/// The name of the temporary lab host a `--lab` drill boots.
const SCRATCH_HOST: &str = "drill";

pub fn verify(args: &VerifyArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((_, stack)) = checked(&args.backup.hosts.inventory, style)? else { return Ok(ExitCode::FAILURE) };
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
        stderrln!(
            "warning: the scratch host `{SCRATCH_HOST}` could not be removed: {error}; `infra lab down` removes it"
        );
    }
    let record = result?;
    match args.backup.format {
        Format::Json => stdoutln!("{:#}", serde_json::json!({"version": 1, "drill": record})),
        Format::Text if record.passed => stdoutln!(
            "restore drill of `{}` on `{}` passed: loaded in {:.2} s, every table's rows and digest as recorded",
            record.backup,
            record.host,
            record.restore_seconds
        ),
        Format::Text => {
            stdoutln!("restore drill of `{}` on `{}` FAILED:", record.backup, record.host);
            for problem in &record.problems {
                stdoutln!("  - {}", crate::sanitize::printable(problem));
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
    stderrln!("drill: booting the temporary lab host `{SCRATCH_HOST}` ({})", release.codename());
    let scratch = lab::boot_scratch(SCRATCH_HOST, release).context("cannot boot a lab host for the drill")?;
    let mut target = stores.database.target.clone();
    target.name = scratch.name;
    target.address = scratch.address;
    // The scratch host is on the lab's own network, never behind a bastion.
    target.destination = scratch.address.to_string();
    target.jump = None;
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
        stderrln!("drill: installing MariaDB on `{}`", host.name);
        if let Err(error) = scratch.run_script(script).await {
            connected.close().await;
            return Err(anyhow::Error::new(error).context("cannot install MariaDB on the scratch host"));
        }
    }
    let say = |what: String| stderrln!("drill: {what}");
    let asked = (args.id.as_deref(), database, key);
    let result =
        backup::drill::drill(&connected.connections, stores, &host.name, asked, say).await.map_err(explained_drill);
    connected.close().await;
    result
}

/// A drill's error, with the operator's hint where there is one.
fn explained_drill(error: backup::drill::DrillError) -> anyhow::Error {
    match error {
        backup::drill::DrillError::Restore(error) => explained(error),
        other => anyhow::Error::new(other),
    }
}

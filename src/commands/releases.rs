//! `infra releases` and `infra rollback`: the app's releases on each app
//! host, and a switch of the `current` link back to an earlier one. A
//! rollback rebuilds nothing: the release is already unpacked on every
//! host, so it is a link renamed and a graceful Gunicorn reload per host,
//! one host at a time, each checked healthy before the next, under the
//! same host locks as apply.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};

use super::backup::{checked, under_lock};
use crate::catalog;
use crate::cli::{Format, ReleasesArgs, RollbackArgs};
use crate::desired::{HostState, Releases};
use crate::diagnostic::Style;
use crate::facts::{HostFacts, LinkFact, is_release_id, newest_first};
use crate::inventory::Inventory;
use crate::transport::{Connection, Target, shell_quote};

/// One app host's releases, newest first.
#[derive(serde::Serialize)]
struct HostReleases {
    host: String,
    current: Option<String>,
    /// The release the inventory's source makes, which apply deploys.
    inventory: String,
    releases: Vec<Unpacked>,
}

#[derive(serde::Serialize)]
struct Unpacked {
    id: String,
    /// When it was unpacked on the host (UTC).
    unpacked: String,
    /// Whether it passed its health checks on the host: only such a
    /// release is rolled back to.
    healthy: bool,
    /// Where its code came from and who deployed it, when it says.
    #[serde(flatten)]
    record: Option<crate::desired::ReleaseRecord>,
}

pub fn list(args: &ReleasesArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((_, inventory)) = checked(&args.hosts, style)? else { return Ok(ExitCode::FAILURE) };
    let hosts = app_hosts(&inventory)?;
    let desired = crate::desired::DesiredState { hosts: hosts.clone(), virtual_ip: None };
    let gathered = super::gather_facts(&desired, &args.hosts.connection, false)?;
    for unreachable in &gathered.unreachable {
        eprintln!("error: {}", unreachable.error);
    }
    let listed: Vec<HostReleases> =
        hosts.iter().filter_map(|host| Some(host_releases(host, gathered.facts.get(&host.name)?))).collect();
    match args.format {
        Format::Json => println!("{:#}", serde_json::json!({"version": 1, "hosts": listed})),
        Format::Text => print_releases(&listed),
    }
    Ok(if gathered.unreachable.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_releases(listed: &[HostReleases]) {
    for host in listed {
        println!("{}", host.host);
        if host.releases.is_empty() {
            println!("  no releases yet: `infra apply` deploys the first");
        }
        for release in &host.releases {
            let mut notes = Vec::new();
            if host.current.as_deref() == Some(release.id.as_str()) {
                notes.push("current");
            }
            if release.id == host.inventory {
                notes.push("the inventory's");
            }
            if !release.healthy {
                notes.push("never healthy here");
            }
            let notes = if notes.is_empty() { String::new() } else { format!("  ({})", notes.join(", ")) };
            // The record is what the host's `.infra-release` says.
            let origin = crate::sanitize::printable(&origin(release.record.as_ref()));
            println!("  {}  unpacked {}{origin}{notes}", release.id, release.unpacked);
        }
    }
}

/// `  from ../app at v2 (commit 3f2a9c1e0b7d) by ana@laptop`, as much as
/// is known.
fn origin(record: Option<&crate::desired::ReleaseRecord>) -> String {
    let Some(record) = record else { return String::new() };
    let by = if record.by.is_empty() { String::new() } else { format!(" by {}", record.by) };
    format!("  {}{by}", record.origin)
}

fn host_releases(host: &HostState, facts: &HostFacts) -> HostReleases {
    let releases = newest_first(&facts.releases);
    HostReleases {
        host: host.name.clone(),
        current: current(facts),
        inventory: host.releases.as_ref().map_or_else(String::new, |releases| releases.id.clone()),
        releases: releases
            .into_iter()
            .map(|(id, unpacked)| Unpacked {
                id: id.clone(),
                unpacked: time::OffsetDateTime::from_unix_timestamp(*unpacked)
                    .map_or_else(|_| unpacked.to_string(), crate::backup::format_id),
                healthy: facts.healthy.contains(id),
                record: facts.records.get(id).cloned(),
            })
            .collect(),
    }
}

fn current(facts: &HostFacts) -> Option<String> {
    facts.release_link.as_ref().and_then(LinkFact::release)
}

/// The app hosts' desired states: releases need no secret, so the
/// inventory is rendered with placeholders.
fn app_hosts(inventory: &Inventory) -> anyhow::Result<Vec<HostState>> {
    let rendered = crate::render::render(inventory, crate::render::SecretMode::Placeholder)
        .context("cannot render the configuration")?;
    let hosts: Vec<HostState> = rendered.state.hosts.into_iter().filter(|host| host.releases.is_some()).collect();
    if hosts.is_empty() {
        bail!("the inventory has no app hosts");
    }
    Ok(hosts)
}

pub fn rollback(args: &RollbackArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((inventory_path, inventory)) = checked(&args.hosts, style)? else { return Ok(ExitCode::FAILURE) };
    let hosts = app_hosts(&inventory)?;
    let desired = crate::desired::DesiredState { hosts: hosts.clone(), virtual_ip: None };
    let gathered = super::gather_facts(&desired, &args.hosts.connection, false)?;
    if let Some(unreachable) = gathered.unreachable.first() {
        bail!("rollback changed nothing: {}", unreachable.error);
    }
    let target = rollback_target(&hosts, &gathered.facts, args.to.as_deref())?;
    let port = crate::topology::app_port(&inventory).context("the inventory has no `app` section")?;
    let targets: Vec<Target> = hosts.iter().map(|host| host.target.clone()).collect();
    let started = Instant::now();
    let runtime = super::runtime()?;
    runtime.block_on(under_lock(
        &args.hosts,
        &inventory_path,
        "rollback",
        &targets,
        &targets,
        async |connections| {
            for host in &hosts {
                let connection = connections.get(&host.name).context("no connection to an app host")?;
                switch_host(connection, host, &target, port).await?;
            }
            Ok(())
        },
    ))?;
    eprintln!(
        "rollback: every app host serves release {target} ({} hosts in {:.1} s)",
        hosts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The release to go back to: the one asked for, else the newest healthy
/// release older than the current one. Either way it must be unpacked on
/// every app host, or nothing is switched.
fn rollback_target(
    hosts: &[HostState],
    facts: &BTreeMap<String, HostFacts>,
    to: Option<&str>,
) -> anyhow::Result<String> {
    let first = hosts.first().context("no app host")?;
    let first_facts = facts.get(&first.name).context("no facts of the first app host")?;
    let target = match to {
        Some(id) => id.to_string(),
        None => {
            let current =
                current(first_facts).context("the first app host has no current release to roll back from")?;
            let since = first_facts.releases.iter().find(|(id, _)| *id == current).map_or(i64::MAX, |(_, time)| *time);
            let mut older = newest_first(&first_facts.releases)
                .into_iter()
                .filter(|(id, time)| *id != current && *time <= since && first_facts.healthy.contains(id));
            older.next().map(|(id, _)| id.clone()).context(
                "there is no earlier release that passed its health checks to roll back to (`infra releases` lists them; `--to ID` picks one)",
            )?
        }
    };
    if !is_release_id(&target) {
        bail!("`{target}` is not a release id (`infra releases` lists them)");
    }
    for host in hosts {
        let present = facts.get(&host.name).is_some_and(|facts| facts.releases.iter().any(|(id, _)| *id == target));
        if !present {
            bail!("release {target} is not on `{}`: rollback changed nothing", host.name);
        }
    }
    Ok(target)
}

/// Switches one host's link, reloads Gunicorn gracefully and waits for its
/// probe; switches back if the probe never passes.
async fn switch_host(connection: &Connection, host: &HostState, id: &str, port: u16) -> anyhow::Result<()> {
    let releases: &Releases = host.releases.as_ref().context("an app host without releases")?;
    let probe = catalog::GUNICORN
        .probes
        .first()
        .and_then(|probe| probe.command(host.address, port, None))
        .context("Gunicorn has no probe")?;
    let started = Instant::now();
    let switch = format!(
        "set -e\nold=$(readlink {link})\n{}{}echo \"$old\"\n",
        crate::apply::switch_link(&releases.link, &releases.target(id)),
        catalog::gunicorn::reload(),
        link = shell_quote(&releases.link),
    );
    let old = connection.run_script(&switch).await?.trim().to_string();
    let healthy = shell_quote(&format!("{}/{id}/{}", releases.directory, crate::desired::release_marks::HEALTHY));
    // The probe's loop exits the script when it passes: a subshell keeps
    // the mark after it, and the status is the probe's.
    let wait = format!("(\n{}) && touch {healthy}\n", catalog::until_it_passes(&probe));
    if let Err(error) = connection.run_script(&wait).await {
        let back = format!("{}{}", crate::apply::switch_link(&releases.link, &old), catalog::gunicorn::reload());
        connection.run_script(&back).await?;
        return Err(anyhow::Error::new(error)
            .context(format!("`{}` failed its health check on release {id}; switched back", host.name)));
    }
    eprintln!("rollback: `{}` serves release {id} ({:.1} s)", host.name, started.elapsed().as_secs_f64());
    Ok(())
}

//! `infra releases` and `infra rollback`: the app's releases on each app
//! host, and a switch back to an earlier one under the same host locks as
//! apply. What a rollback does is the `releases` subsystem's; this module
//! reads the facts, takes the locks and prints.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};

use super::backup::{checked, under_lock};
use crate::cli::{Format, ReleasesArgs, RollbackArgs};
use crate::desired::HostState;
use crate::diagnostic::Style;
use crate::facts::{HostFacts, newest_first};
use crate::stack::Stack;
use crate::transport::Target;

/// One app host's releases, newest first.
#[derive(serde::Serialize)]
struct HostReleases {
    host: String,
    current: Option<String>,
    /// The release the inventory's source makes, which apply deploys.
    inventory: String,
    /// The operator's choice a plain apply keeps instead of the
    /// inventory's release (`infra deploy --source`, `infra rollback`).
    #[serde(skip_serializing_if = "Option::is_none")]
    kept: Option<crate::desired::ReleaseChoice>,
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
    let Some((_, stack)) = checked(&args.hosts.inventory, style)? else { return Ok(ExitCode::FAILURE) };
    let hosts = app_hosts(&stack)?;
    let desired = crate::desired::DesiredState { hosts: hosts.clone(), virtual_ip: None, witnesses: Vec::new() };
    let gathered = super::gather_facts(&desired, &args.hosts.connection, false)?;
    for unreachable in &gathered.unreachable {
        stderrln!("error: {}", unreachable.error);
    }
    let listed: Vec<HostReleases> =
        hosts.iter().filter_map(|host| Some(host_releases(host, gathered.facts.get(&host.name)?))).collect();
    match args.format {
        Format::Json => stdoutln!("{:#}", serde_json::json!({"version": 1, "hosts": listed})),
        Format::Text => print_releases(&listed),
    }
    Ok(if gathered.unreachable.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_releases(listed: &[HostReleases]) {
    for host in listed {
        stdoutln!("{}", host.host);
        if host.releases.is_empty() {
            stdoutln!("  no releases yet: `infra apply` deploys the first");
        }
        for release in &host.releases {
            let mut notes = Vec::new();
            if host.current.as_deref() == Some(release.id.as_str()) {
                notes.push("current".to_string());
            }
            if release.id == host.inventory {
                notes.push("the inventory's".to_string());
            }
            if let Some(kept) = host.kept.as_ref().filter(|kept| kept.release == release.id) {
                notes.push(format!("apply keeps it: `{}` chose it", kept.command));
            }
            if !release.healthy {
                notes.push("never healthy here".to_string());
            }
            let notes = if notes.is_empty() { String::new() } else { format!("  ({})", notes.join(", ")) };
            let notes = crate::sanitize::printable(&notes);
            // The record is what the host's `.infra-release` says.
            let origin = crate::sanitize::printable(&origin(release.record.as_ref()));
            stdoutln!("  {}  unpacked {}{origin}{notes}", release.id, release.unpacked);
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
        current: crate::releases::current(facts),
        inventory: host.releases.as_ref().map_or_else(String::new, |releases| releases.id.clone()),
        kept: host.releases.as_ref().and_then(|releases| crate::plan::kept_choice(releases, facts)).cloned(),
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

/// The app hosts' desired states: releases need no secret, so the
/// inventory is rendered with placeholders.
fn app_hosts(stack: &Stack) -> anyhow::Result<Vec<HostState>> {
    let rendered = crate::render::render(stack, crate::render::SecretMode::Placeholder)
        .context("cannot render the configuration")?;
    let hosts: Vec<HostState> = rendered.state.hosts.into_iter().filter(|host| host.releases.is_some()).collect();
    if hosts.is_empty() {
        bail!("the inventory has no app hosts");
    }
    Ok(hosts)
}

pub fn rollback(args: &RollbackArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((inventory_path, stack)) = checked(&args.hosts.inventory, style)? else { return Ok(ExitCode::FAILURE) };
    let hosts = app_hosts(&stack)?;
    let desired = crate::desired::DesiredState { hosts: hosts.clone(), virtual_ip: None, witnesses: Vec::new() };
    let gathered = super::gather_facts(&desired, &args.hosts.connection, false)?;
    if !gathered.unreachable.is_empty() {
        return Err(super::hosts::unreachable("rollback", "read", &gathered.unreachable));
    }
    let target = crate::releases::rollback_target(&hosts, &gathered.facts, args.to.as_deref())?;
    let names: Vec<&str> = hosts.iter().map(|host| host.name.as_str()).collect();
    let question = format!("Switch {} back to release {target}, one host at a time?", names.join(", "));
    let hint = "run again with `--yes`; `infra releases` lists the releases each host keeps";
    if !super::confirmed(args.yes, &question, "roll back", hint)? {
        stderrln!("rollback cancelled: nothing was changed");
        return Ok(ExitCode::FAILURE);
    }
    let command = match &args.to {
        Some(id) => format!("infra rollback --to {id}"),
        None => "infra rollback".to_string(),
    };
    let at = crate::backup::format_id(time::OffsetDateTime::now_utc());
    let choice = crate::releases::rollback_choice(&hosts, &target, command, crate::lock::operator(), at);
    let targets: Vec<Target> = hosts.iter().map(|host| host.target.clone()).collect();
    let started = Instant::now();
    let switches = std::sync::Mutex::new(Vec::new());
    let runtime = super::runtime()?;
    runtime.block_on(under_lock(
        &args.hosts,
        &inventory_path,
        "rollback",
        &targets,
        &targets,
        async |connections| {
            let switched = |host: &str, took: std::time::Duration| {
                if args.format == Format::Text {
                    stderrln!("rollback: `{host}` serves release {target} ({:.1} s)", took.as_secs_f64());
                }
                let mut switches = switches.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                switches.push(serde_json::json!({"host": host, "seconds": took.as_secs_f64()}));
            };
            Ok(crate::releases::roll_back(connections, &hosts, &gathered.facts, &target, choice.as_ref(), switched)
                .await?)
        },
    ))?;
    let seconds = started.elapsed().as_secs_f64();
    match args.format {
        Format::Json => {
            let switches = switches.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            let document = serde_json::json!({"version": 1, "rollback": {"release": target, "hosts": switches, "seconds": seconds}});
            stdoutln!("{document:#}");
        }
        Format::Text => {
            let count = if hosts.len() == 1 { "1 host".to_string() } else { format!("{} hosts", hosts.len()) };
            stderrln!("rollback: every app host serves release {target} ({count} in {seconds:.1} s)");
            if choice.is_some() {
                stderrln!(
                    "apply keeps release {target} until the inventory's `app.source` changes; `infra deploy` goes back to the inventory's release"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

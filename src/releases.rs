//! The app's releases at run time, once apply has unpacked them: which
//! release a rollback goes back to, and the switch of each app host's
//! `current` link with a graceful Gunicorn reload, checked healthy before
//! the next host and switched back when it is not. A rollback rebuilds
//! nothing, so it takes seconds.
//!
//! Written against the transport traits and tested on the fake transport;
//! `infra rollback` only connects, locks, calls in and prints.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::catalog;
use crate::desired::{HostState, ReleaseChoice, release_marks};
use crate::facts::{HostFacts, LinkFact, is_release_id, newest_first};
use crate::transport::{Remote, TransportError, shell_quote};

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("the inventory has no app hosts")]
    NoAppHost,
    #[error("no facts of `{0}`")]
    NoFacts(String),
    #[error("the first app host has no current release to roll back from")]
    NoCurrent,
    #[error(
        "there is no earlier release that passed its health checks to roll back to (`infra releases` lists them; `--to ID` picks one)"
    )]
    NoEarlierHealthy,
    #[error("`{0}` is not a release id (`infra releases` lists them)")]
    NotAnId(String),
    #[error("release {id} is not on `{host}`: rollback changed nothing")]
    NotOnHost { id: String, host: String },
    #[error("`{0}` is not an app host with a Gunicorn probe")]
    NotAnAppHost(String),
    #[error("no connection to `{0}`")]
    NoConnection(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("`{host}` failed its health check on release {id}; switched back")]
    Unhealthy {
        host: String,
        id: String,
        #[source]
        error: Box<TransportError>,
    },
}

/// The release `facts`' link points at.
pub fn current(facts: &HostFacts) -> Option<String> {
    facts.release_link.as_ref().and_then(LinkFact::release)
}

/// The release to go back to: the one asked for, else the newest release
/// older than the current one that passed its health checks, as the first
/// app host says. Either way it must be unpacked on every app host, or
/// nothing is switched.
pub fn rollback_target(
    hosts: &[HostState],
    facts: &BTreeMap<String, HostFacts>,
    to: Option<&str>,
) -> Result<String, RollbackError> {
    let first = hosts.first().ok_or(RollbackError::NoAppHost)?;
    let first_facts = facts.get(&first.name).ok_or_else(|| RollbackError::NoFacts(first.name.clone()))?;
    let target = match to {
        Some(id) => id.to_string(),
        None => previous_healthy(first_facts)?,
    };
    if !is_release_id(&target) {
        return Err(RollbackError::NotAnId(target));
    }
    for host in hosts {
        let present = facts.get(&host.name).is_some_and(|facts| facts.releases.iter().any(|(id, _)| *id == target));
        if !present {
            return Err(RollbackError::NotOnHost { id: target, host: host.name.clone() });
        }
    }
    Ok(target)
}

/// The newest healthy release unpacked no later than the current one.
fn previous_healthy(facts: &HostFacts) -> Result<String, RollbackError> {
    let current = current(facts).ok_or(RollbackError::NoCurrent)?;
    let since = facts.releases.iter().find(|(id, _)| *id == current).map_or(i64::MAX, |(_, time)| *time);
    newest_first(&facts.releases)
        .into_iter()
        .find(|(id, time)| *id != current && *time <= since && facts.healthy.contains(id))
        .map(|(id, _)| id.clone())
        .ok_or(RollbackError::NoEarlierHealthy)
}

/// Switches every app host to release `id`, one at a time, each healthy
/// before the next; stops at the first that is not (switched back).
/// `switched(host, took)` hears of each host done.
/// Each host healthy on `id` records `choice` as its release choice (a
/// plain apply keeps the release then), or forgets its choice when `id` is
/// the inventory's own release (`None`).
pub async fn roll_back<R: Remote>(
    remotes: &BTreeMap<String, R>,
    hosts: &[HostState],
    facts: &BTreeMap<String, HostFacts>,
    id: &str,
    choice: Option<&ReleaseChoice>,
    switched: impl Fn(&str, Duration),
) -> Result<(), RollbackError> {
    for host in hosts {
        let remote = remotes.get(&host.name).ok_or_else(|| RollbackError::NoConnection(host.name.clone()))?;
        let servers = facts.get(&host.name).map(|facts| {
            let server = |release: Option<String>| release.and_then(|release| facts.servers.get(&release).cloned());
            (server(current(facts)), server(Some(id.to_string())))
        });
        let (from, to) = servers.unwrap_or_default();
        let took = switch(remote, host, id, catalog::gunicorn::switch(from.as_deref(), to.as_deref())).await?;
        remote.run_script(&crate::apply::choice_script(choice)).await?;
        switched(&host.name, took);
    }
    Ok(())
}

/// What `infra rollback` to `id` records on each app host: the choice a
/// plain apply keeps, unless `id` is the release the inventory names.
pub fn rollback_choice(
    hosts: &[HostState],
    id: &str,
    command: String,
    by: String,
    at: String,
) -> Option<ReleaseChoice> {
    let inventory = hosts.first()?.releases.as_ref()?.inventory_id.clone();
    (inventory != id).then(|| ReleaseChoice { release: id.to_string(), inventory, command, by, at })
}

/// One host: the link renamed onto release `id` and Gunicorn reloaded
/// gracefully (or restarted, `server`, when the release serves with
/// another Gunicorn: [`catalog::gunicorn::switch`]), then its probe waited
/// for; on failure the old link comes back (the same way) and the error
/// says so.
pub async fn switch<R: Remote>(
    remote: &R,
    host: &HostState,
    id: &str,
    server: String,
) -> Result<Duration, RollbackError> {
    let not_an_app_host = || RollbackError::NotAnAppHost(host.name.clone());
    let releases = host.releases.as_ref().ok_or_else(not_an_app_host)?;
    let probe = gunicorn_probe(host).ok_or_else(not_an_app_host)?;
    let started = Instant::now();
    let server = format!("{server}{}", catalog::gunicorn::restart_processes(&releases.processes));
    let to_new = format!(
        "set -e\nold=$(readlink {link})\n{}{}echo \"$old\"\n",
        crate::apply::switch_link(&releases.link, &releases.target(id)),
        server,
        link = shell_quote(&releases.link),
    );
    let old = remote.run_script(&to_new).await?.trim().to_string();
    let healthy = shell_quote(&format!("{}/{id}/{}", releases.directory, release_marks::HEALTHY));
    // The probe's loop exits the script when it passes: a subshell keeps
    // the mark after it, and the status is the probe's.
    let wait = format!("(\n{}) && touch {healthy}\n", catalog::until_it_passes(probe));
    if let Err(error) = remote.run_script(&wait).await {
        let back = format!("{}{server}", crate::apply::switch_link(&releases.link, &old));
        remote.run_script(&back).await?;
        return Err(RollbackError::Unhealthy { host: host.name.clone(), id: id.to_string(), error: Box::new(error) });
    }
    Ok(started.elapsed())
}

/// The command of `host`'s Gunicorn probe, as render wrote it into the
/// host's health checks (on the port the stack gives the app).
pub fn gunicorn_probe(host: &HostState) -> Option<&str> {
    let description = catalog::GUNICORN.probes.first()?.description();
    host.health_checks.iter().find(|check| check.description == description).map(|check| check.command.as_str())
}

#[cfg(test)]
mod tests;

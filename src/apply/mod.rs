//! Apply: executes a plan on the hosts, stage by stage, each host as a
//! transaction.
//!
//! Stages follow the role dependency graph (database, app, web, load
//! balancer); a stage starts only when every host of the one before is
//! converged and healthy. Within a stage, hosts of the web and app tiers go
//! `serial` at a time (default 1) and every web server is drained in HAProxy
//! on each load balancer before it is touched and put back after its health
//! check; load balancers go one at a time, the one not holding the virtual IP
//! first. Per host: install, upload to `PATH.infra-new`, validate with the
//! service's own checker, swap (backups kept, owed actions journaled),
//! reload/restart/start, health checks, commit. A failure rolls that host
//! back and stops before the next stage.

mod steps;

pub use steps::{choice_script, switch_link};

use std::net::IpAddr;
use std::time::Duration;

pub use crate::report::{Reporter, reporter};

use crate::catalog::haproxy::{self, ServerState};
use crate::desired::{DesiredState, HostState, ReleaseRecord};
use crate::plan::{HostPlan, PackagesPlan, Plan};
use crate::role::{Role, role_order};
use crate::transport::{Connector, Remote, TransportError};

#[derive(Clone, Copy, Debug)]
pub struct ApplySettings {
    /// Web and app hosts changed at a time.
    pub serial: usize,
    /// How long each health check may take to pass.
    pub health_seconds: u32,
}

/// Why a host could not be converged.
#[derive(Clone, Debug)]
pub struct HostFailure {
    pub host: String,
    pub step: String,
    pub error: String,
}

/// What a run did: the hosts converged, and every host that failed in the
/// stage that stopped it (each rolled back), not only the first.
#[derive(Debug, Default)]
pub struct Outcome {
    pub changed: Vec<String>,
    pub failures: Vec<HostFailure>,
}

/// Everything apply needs besides the plan.
pub struct Context<'a, C: Connector> {
    pub desired: &'a DesiredState,
    pub connector: &'a C,
    pub settings: ApplySettings,
    pub reporter: &'a dyn Reporter,
    /// The wheels each planned package install needs, as tar archives, by
    /// [`PackagesPlan::wheelhouse_key`]: fetched on this machine, so hosts
    /// need no internet.
    pub wheelhouses: &'a std::collections::BTreeMap<String, Vec<u8>>,
    /// The releases whose migration ran in this apply: once per release,
    /// on the first host that switches to it.
    pub migrated: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Who runs this apply (`user@machine`), recorded with each release it
    /// unpacks.
    pub operator: String,
    /// When it started (UTC, like a backup id), recorded with a release
    /// choice.
    pub started: String,
}

pub async fn apply<C: Connector>(plan: &Plan, context: &Context<'_, C>) -> Outcome {
    let mut outcome = Outcome::default();
    for role in role_order() {
        let mut hosts: Vec<(&HostPlan, &HostState)> = plan
            .hosts
            .iter()
            .filter(|host| !host.is_empty())
            .filter_map(|plan| {
                context.desired.hosts.iter().find(|host| host.name == plan.host).map(|host| (plan, host))
            })
            .filter(|(_, host)| host.stage == role)
            .collect();
        if hosts.is_empty() {
            continue;
        }
        if role == Role::LoadBalancer {
            hosts = holder_last(hosts, context).await;
        }
        let names: Vec<String> = hosts.iter().map(|(plan, _)| plan.host.clone()).collect();
        context.reporter.stage(role.name(), &names);
        let serial = match role {
            Role::LoadBalancer => 1,
            Role::Web | Role::App => context.settings.serial.max(1),
            Role::Database => hosts.len(),
        };
        for chunk in migrating_alone(&mut hosts, serial) {
            let results =
                futures_util::future::join_all(chunk.iter().map(|(plan, host)| converge_host(plan, host, context)))
                    .await;
            for result in results {
                match result {
                    Ok(host) => outcome.changed.push(host),
                    Err(failure) => outcome.failures.push(failure),
                }
            }
            if !outcome.failures.is_empty() {
                return outcome;
            }
        }
        if role == Role::LoadBalancer
            && let Err(failure) = exactly_one_vip_holder(context).await
        {
            outcome.failures.push(failure);
            return outcome;
        }
    }
    outcome
}

/// The stage's hosts in chunks of `serial`, except that a host that runs
/// a migration goes first and alone: no host may switch to a release
/// before its migration is done.
fn migrating_alone<'a, 'h>(
    hosts: &'a mut [(&'h HostPlan, &'h HostState)],
    serial: usize,
) -> impl Iterator<Item = &'a [(&'h HostPlan, &'h HostState)]> {
    // Publishing a release's static files goes first and alone too: its
    // pages must find them on every web host.
    let migrates = |plan: &HostPlan| {
        plan.releases.as_ref().is_some_and(|release| release.migrate.is_some() || release.publish.is_some())
    };
    hosts.sort_by_key(|(plan, _)| !migrates(plan));
    let alone = usize::from(hosts.first().is_some_and(|(plan, _)| migrates(plan)));
    let (first, rest) = hosts.split_at(alone.min(hosts.len()));
    (!first.is_empty()).then_some(first).into_iter().chain(rest.chunks(serial))
}

fn balancers<'a, C: Connector>(context: &'a Context<'_, C>) -> Vec<&'a HostState> {
    context.desired.hosts.iter().filter(|host| host.roles.contains(&Role::LoadBalancer)).collect()
}

/// Runs one script on a host over a fresh connection (for the cross-host
/// steps: draining, VIP checks).
async fn run_on<C: Connector>(
    context: &Context<'_, C>,
    host: &HostState,
    script: &str,
) -> Result<String, TransportError> {
    let connection = context.connector.open(&host.target).await?;
    let output = connection.run_script(script).await;
    connection.close().await;
    output
}

/// Whether `host` holds the virtual IP now (no answer: it does not).
async fn holds_vip<C: Connector>(context: &Context<'_, C>, host: &HostState, vip: IpAddr) -> bool {
    let listed = run_on(context, host, crate::catalog::keepalived::ADDRESSES_SCRIPT).await;
    listed.is_ok_and(|output| crate::catalog::keepalived::holds(&output, vip))
}

/// Load balancers in the order to change them: the virtual IP's holder last.
async fn holder_last<'a, C: Connector>(
    hosts: Vec<(&'a HostPlan, &'a HostState)>,
    context: &Context<'_, C>,
) -> Vec<(&'a HostPlan, &'a HostState)> {
    let Some(vip) = context.desired.virtual_ip else { return hosts };
    let mut ordered = Vec::with_capacity(hosts.len());
    let mut holders = Vec::new();
    for (plan, host) in hosts {
        let holds = holds_vip(context, host, vip).await;
        if holds { holders.push((plan, host)) } else { ordered.push((plan, host)) }
    }
    ordered.extend(holders);
    ordered
}

/// After the load balancer stage exactly one balancer holds the virtual IP.
async fn exactly_one_vip_holder<C: Connector>(context: &Context<'_, C>) -> Result<(), HostFailure> {
    let Some(vip) = context.desired.virtual_ip else { return Ok(()) };
    let mut holders = Vec::new();
    for _ in 0..20 {
        holders.clear();
        for host in balancers(context) {
            if holds_vip(context, host, vip).await {
                holders.push(host.name.clone());
            }
        }
        if holders.len() == 1 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(HostFailure {
        host: holders.join(", "),
        step: "virtual IP check".into(),
        error: format!(
            "{} load balancers hold the virtual IP {vip} (expected exactly one): {}",
            holders.len(),
            holders.join(", ")
        ),
    })
}

/// Sets a web server's state on every load balancer that runs HAProxy.
async fn set_web_state<C: Connector>(context: &Context<'_, C>, web: &str, state: ServerState) {
    for balancer in balancers(context) {
        if let Err(error) = run_on(context, balancer, &haproxy::set_server_state(web, state)).await {
            tracing::warn!(balancer = %balancer.name, web, state = state.name(), error = %crate::diagnostic::error_chain(&error), "cannot set the web server's state in HAProxy");
        }
    }
}

async fn converge_host<C: Connector>(
    plan: &HostPlan,
    host: &HostState,
    context: &Context<'_, C>,
) -> Result<String, HostFailure> {
    let is_web = host.roles.contains(&Role::Web);
    if is_web {
        context.reporter.step(&host.name, "draining in HAProxy");
        set_web_state(context, &host.name, ServerState::Drain).await;
    }
    let result = transaction(plan, host, context).await;
    if is_web {
        // Converged, or rolled back to the configuration it served before:
        // either way it goes back into rotation (HAProxy's own checks still
        // keep it out if it is unhealthy).
        set_web_state(context, &host.name, ServerState::Ready).await;
    }
    match &result {
        Ok(summary) => context.reporter.done(&host.name, summary),
        Err(failure) => context.reporter.failed(&failure.host, &failure.step, &failure.error),
    }
    result.map(|_| host.name.clone())
}

fn failure(host: &HostState, step: &str, error: impl ToString) -> HostFailure {
    HostFailure { host: host.name.clone(), step: step.to_string(), error: error.to_string() }
}

fn remote_error(error: TransportError) -> String {
    match error {
        TransportError::Script { stderr, status, .. } => format!("{stderr} ({status})"),
        other => crate::diagnostic::error_chain(&other),
    }
}

/// One host's transaction; rolls back on any failure after the swap.
async fn transaction<C: Connector>(
    plan: &HostPlan,
    host: &HostState,
    context: &Context<'_, C>,
) -> Result<String, HostFailure> {
    context.reporter.step(&host.name, "connecting");
    let connection =
        context.connector.open(&host.target).await.map_err(|error| failure(host, "connect", remote_error(error)))?;
    let result = run_steps(plan, host, context, &connection).await;
    connection.close().await;
    result
}

async fn run_steps<C: Connector>(
    plan: &HostPlan,
    host: &HostState,
    context: &Context<'_, C>,
    connection: &C::Remote,
) -> Result<String, HostFailure> {
    let files = steps::content_changes(plan, host);
    let step = |name: &'static str, script: String| async move {
        context.reporter.step(&host.name, name);
        // The step's name first: it shows in the host's process list and
        // lets a test transport tell the steps apart.
        let script = format!("# infra step: {name}\n{script}");
        connection.run_script(&script).await.map(|_| ()).map_err(|error| failure(host, name, remote_error(error)))
    };
    if !plan.install.is_empty() {
        let installing = match &plan.dpkg_busy {
            Some(_) => "waiting for dpkg's lock, then installing packages",
            None => "installing packages",
        };
        step(installing, steps::install(&plan.install)).await?;
    }
    if !files.is_empty() {
        step("uploading files", steps::upload(&files)).await?;
    }
    // Everything before the swap can fail with the host untouched: staged
    // files are discarded and a release this apply unpacked is removed.
    for (name, script) in before_swap(plan, host, context, &files) {
        if let Err(error) = step(name, script).await {
            let _ =
                connection.run_script(&format!("{}{}", steps::discard(&files), steps::forget_new_release(plan))).await;
            return Err(error);
        }
    }
    let publish = plan.releases.as_ref().and_then(|release| release.publish.as_ref().map(|publish| (release, publish)));
    if let Some(publish) = publish
        && let Err(error) = publish_static(publish, host, context, connection).await
    {
        let _ = connection.run_script(&format!("{}{}", steps::discard(&files), steps::forget_new_release(plan))).await;
        return Err(error);
    }
    let swapped = async {
        step("swapping files in", steps::swap(plan, &files, host)).await?;
        if let Some(script) = steps::services(plan, host) {
            step("reloading services", script).await?;
        }
        if let Some((name, script)) = host.roles.contains(&Role::Database).then(|| migration(plan, context)).flatten() {
            step(name, script).await?;
        }
        if let Some(script) = steps::health(host, context.settings.health_seconds) {
            step("health checks", script).await?;
        }
        if let Some(script) = plan.releases.as_ref().and_then(|release| steps::switch_hooks(release, true)) {
            step("running the release's after-switch commands", script).await?;
        }
        let mut commit = steps::commit(plan, &files);
        if let Some(release) = &plan.releases {
            commit.push_str(&steps::settle_choice(release, &context.operator, &context.started));
        }
        step("committing", commit).await
    }
    .await;
    if let Err(error) = swapped {
        context.reporter.step(&host.name, "rolling back");
        let rollback = format!("# infra step: rolling back\n{}", steps::rollback(plan, &files));
        if let Err(rollback) = connection.run_script(&rollback).await {
            return Err(HostFailure {
                error: format!("{}\nthe rollback failed too: {}", error.error, remote_error(rollback)),
                ..error
            });
        }
        return Err(error);
    }
    Ok(summary(plan, files.len()))
}

/// The steps that prepare a host's change without changing what it
/// serves: validating the staged files, unpacking the new release, its
/// packages, importing it, its migration (once per release and run) and a
/// database backup before a risky change.
fn before_swap<C: Connector>(
    plan: &HostPlan,
    host: &HostState,
    context: &Context<'_, C>,
    files: &[&crate::desired::ManagedFile],
) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    found.extend(steps::validate(host, files).map(|script| ("validating", script)));
    if let (Some(release), Some(desired)) = (&plan.releases, &host.releases) {
        let record = ReleaseRecord { origin: desired.origin.clone(), by: context.operator.clone() };
        found.extend(
            steps::unpack(release, &desired.files, &desired.environment(&desired.id), &record)
                .map(|script| ("unpacking the release", script)),
        );
        let wheels = release.packages.as_ref().and_then(PackagesPlan::wheelhouse_key);
        let name = match release.packages {
            Some(PackagesPlan::Install { .. }) => "installing the release's packages",
            _ => "linking the packages of an earlier release",
        };
        let tar = wheels.and_then(|key| context.wheelhouses.get(&key)).map(Vec::as_slice);
        found.extend(steps::packages(release, tar).map(|script| (name, script)));
        found.extend(steps::import_check(release, &desired.module).map(|script| ("importing the new release", script)));
        if !host.roles.contains(&Role::Database) {
            found.extend(migration(plan, context));
        }
        let hooks = steps::switch_hooks(release, false);
        found.extend(hooks.map(|script| ("running the release's before-switch commands", script)));
    }
    found.extend(steps::backup_first(plan, host).map(|script| ("backing up the database", script)));
    found
}

/// Publishes the release's static files (`app.static`) to the web hosts
/// that lack them, before this host (the first of the run) switches: read
/// from this host as data, written to each web host over its own
/// connection.
async fn publish_static<C: Connector>(
    (release, publish): (&crate::plan::ReleasePlan, &crate::plan::StaticPublish),
    host: &HostState,
    context: &Context<'_, C>,
    connection: &C::Remote,
) -> Result<(), HostFailure> {
    let reading = match publish.source {
        crate::desired::StaticSource::Build(_) => "building the release's static files",
        crate::desired::StaticSource::Directory(_) => "reading the release's static files",
    };
    context.reporter.step(&host.name, reading);
    let script = format!("# infra step: {reading}\n{}", steps::static_files(release, publish));
    let output = connection.run_script(&script).await.map_err(|error| failure(host, reading, remote_error(error)))?;
    let files =
        crate::static_files::parse_listing(&host.name, &output).map_err(|error| failure(host, reading, error))?;
    let publishing = "publishing the release's static files";
    context.reporter.step(&host.name, &format!("{publishing} to {}", publish.to.join(", ")));
    let web_hosts: Vec<crate::static_files::WebHost> = context
        .desired
        .hosts
        .iter()
        .chain(&context.desired.witnesses)
        .filter(|web| publish.to.contains(&web.name) || publish.prune.contains_key(&web.name))
        .map(|web| crate::static_files::WebHost {
            target: &web.target,
            lacks: publish.to.contains(&web.name),
            prune: publish.prune.get(&web.name).map_or(&[][..], Vec::as_slice),
        })
        .collect();
    crate::static_files::publish(context.connector, (&publish.root, &publish.release), &files, &web_hosts)
        .await
        .map_err(|error| failure(host, publishing, remote_error(error)))
}

/// The release's migration, when this host is the first of the run to
/// switch to it. It runs before the swap, with one exception: on a host
/// that is also the database, whose new configuration is part of the same
/// transaction, it runs once that is live (after the services step); a
/// failure there still rolls the host back.
fn migration<C: Connector>(plan: &HostPlan, context: &Context<'_, C>) -> Option<(&'static str, String)> {
    let release = plan.releases.as_ref().filter(|release| release.migrate.is_some())?;
    let id = release.switch_to.clone().unwrap_or_default();
    let first = context.migrated.lock().is_ok_and(|mut migrated| migrated.insert(id));
    steps::migrate(release).filter(|_| first).map(|script| ("migrating the database", script))
}

fn summary(plan: &HostPlan, files: usize) -> String {
    let mut parts = Vec::new();
    if !plan.install.is_empty() {
        parts.push(format!("{} packages", plan.install.len()));
    }
    if files > 0 {
        parts.push(format!("{files} files"));
    }
    let services = plan.reload.len() + plan.restart.len() + plan.start.len() + plan.retire.len();
    if services > 0 {
        parts.push(format!("{services} services"));
    }
    if parts.is_empty() { "no changes".into() } else { parts.join(", ") }
}
#[cfg(test)]
mod tests;

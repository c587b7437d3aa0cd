//! `infra apply`: plan, confirm, converge. With a saved plan it applies
//! exactly that plan and refuses, naming the host, when any host's facts or
//! the desired state changed since the plan was made.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::apply::{self, ApplySettings};
use crate::cli::{ApplyArgs, DeployArgs, Format};
use crate::desired::{DesiredState, HostState};
use crate::diagnostic::Style;
use crate::facts;
use crate::lock;
use crate::plan::{self, Palette, Plan};
use crate::stack::Stack;
use crate::timings::Timings;
use crate::transport::{Settings, Ssh};

pub fn run(args: &ApplyArgs, style: Style) -> anyhow::Result<ExitCode> {
    let timings = Timings::default();
    let saved = args.plan_file.as_ref().map(read_plan).transpose()?;
    let inventory_path = inventory_path(args, saved.as_ref())?;
    let code = super::with_rendered(&inventory_path, args.converge.strict, style, |stack, rendered| {
        timings.record("load, check and render", timings.elapsed());
        apply_rendered(args, style, saved.as_ref(), &inventory_path, stack, rendered, false, &timings)
    });
    print_timings(args, &timings);
    code
}

fn print_timings(args: &ApplyArgs, timings: &Timings) {
    if args.converge.timings {
        stderr!("{}", crate::timings::render_text(&timings.report()));
    }
}

/// `infra deploy`: an apply of the app hosts only, from the revision
/// `--source` names, that first says what the release changes.
pub fn deploy(args: &DeployArgs, style: Style) -> anyhow::Result<ExitCode> {
    let inventory = super::inventory_path(args.inventory.as_deref())?;
    let apply = ApplyArgs {
        plan_file: None,
        inventory: Some(inventory.clone()),
        limit: vec![crate::topology::Role::App.name().to_string()],
        converge: args.converge.clone(),
    };
    let overrides = super::Overrides { revision: args.source.clone() };
    let timings = Timings::default();
    let code =
        super::with_rendered_overridden(&inventory, args.converge.strict, &overrides, style, |stack, mut rendered| {
            super::deploy::mark_as_deploy(&mut rendered, args.source.as_deref())?;
            timings.record("load, check and render", timings.elapsed());
            apply_rendered(&apply, style, None, &inventory, stack, rendered, true, &timings)
        });
    print_timings(&apply, &timings);
    code
}

/// Everything after the shared prologue: connect, lock, then converge.
#[allow(clippy::too_many_arguments)] // the prologue's results, passed on once
fn apply_rendered(
    args: &ApplyArgs,
    style: Style,
    saved: Option<&Plan>,
    inventory_path: &Path,
    stack: &Stack,
    rendered: crate::render::Rendered,
    deploy: bool,
    timings: &Timings,
) -> anyhow::Result<ExitCode> {
    let limits: Vec<String> = match saved {
        Some(saved) => saved.hosts.iter().map(|host| host.host.clone()).collect(),
        None => args.limit.clone(),
    };
    let (hosts, witnesses) = super::limited_with_witnesses(rendered.state.hosts, &limits)?;
    let desired = DesiredState { hosts, virtual_ip: rendered.state.virtual_ip, witnesses };
    let read: Vec<HostState> = desired.hosts.iter().chain(&desired.witnesses).cloned().collect();
    let transport = super::transport_settings(&args.converge.connection);
    let run = Run { args, style, stack, transport, deploy, timings, read: &read };
    let inventory = canonical_display(inventory_path);
    let hosts = super::hosts::Run {
        connection: &args.converge.connection,
        lock_timeout: args.converge.lock_timeout,
        command: if deploy { "deploy" } else { "apply" },
        inventory: &inventory,
    };
    let targets = facts::targets_of(&read);
    let runtime = super::runtime()?;
    let connecting = Instant::now();
    runtime.block_on(super::hosts::under_lock(hosts, &targets, &targets, async |connected| {
        timings.record("connect and lock", connecting.elapsed());
        run.converge(&desired, saved, connected).await
    }))
}

/// What one apply run works with once the inventory is rendered.
struct Run<'a> {
    args: &'a ApplyArgs,
    style: Style,
    stack: &'a Stack,
    transport: Settings,
    /// `infra deploy`: say what the release changes before the plan.
    deploy: bool,
    timings: &'a Timings,
    /// The hosts whose facts are read: those changed, and the app hosts a
    /// `--limit` leaves out (their record of migrated releases).
    read: &'a [HostState],
}

impl Run<'_> {
    /// Everything apply does under the host locks: read the facts (so a
    /// saved plan is checked against the hosts as they are now), plan,
    /// confirm, converge.
    async fn converge(
        &self,
        desired: &DesiredState,
        saved: Option<&Plan>,
        connected: &facts::Connected,
    ) -> anyhow::Result<ExitCode> {
        let parallel = self.args.converge.connection.parallel;
        let timed = crate::timings::Timed { inner: &crate::report::Silent, timings: self.timings };
        let reading = Instant::now();
        let gathered = facts::read(self.read, connected, parallel, &timed).await;
        self.timings.record("read facts", reading.elapsed());
        if !gathered.unreachable.is_empty() {
            return Err(super::hosts::unreachable("apply", "read", &gathered.unreachable));
        }
        let plan = self.timings.phase("plan", || plan::plan(desired, &gathered.facts, Vec::new()));
        if let Some(saved) = saved {
            plan::drift(saved, &plan)?;
        }
        if plan.refusals().next().is_some() {
            super::print_refusals(&plan);
            bail!("apply changed nothing: a host refused its plan");
        }
        if self.deploy && self.args.converge.format == Format::Text {
            stderr!("{}", super::deploy::summary(desired, &plan, connected).await);
        }
        for warning in &plan.warnings {
            stderrln!("warning: {warning}");
        }
        if !plan.has_changes() {
            stderrln!("nothing to do: every host already matches the inventory");
            self.print_stack_urls();
            return Ok(ExitCode::SUCCESS);
        }
        if self.args.converge.format == Format::Text {
            let palette = if self.style == Style::Colored { Palette::COLORED } else { Palette::PLAIN };
            stderr!("{}", plan::render_text(&plan, palette));
        }
        // The question and pip below block: the runtime moves its other
        // tasks (the locks' holders) off this thread meanwhile.
        if saved.is_none() && !tokio::task::block_in_place(|| confirmed(&plan, self.args.converge.yes))? {
            stderrln!("apply cancelled: nothing was changed");
            return Ok(ExitCode::FAILURE);
        }
        let reporter = apply::reporter(self.args.converge.format == Format::Json, !self.args.converge.no_progress);
        let settings =
            ApplySettings { serial: self.args.converge.serial, health_seconds: self.args.converge.health_timeout };
        let connector = Ssh(self.transport.clone());
        let wheelhouses =
            tokio::task::block_in_place(|| self.timings.phase("fetch wheels", || fetch_wheelhouses(&plan, desired)))?;
        let timed = crate::timings::Timed { inner: reporter.as_ref(), timings: self.timings };
        let context = apply::Context {
            desired,
            connector: &connector,
            settings,
            reporter: &timed,
            wheelhouses: &wheelhouses,
            migrated: Default::default(),
            operator: lock::operator(),
            started: crate::backup::format_id(time::OffsetDateTime::now_utc()),
        };
        let started = Instant::now();
        let outcome = apply::apply(&plan, &context).await;
        self.timings.record("converge", started.elapsed());
        reporter.finish();
        let code = report(&plan, &outcome, started.elapsed())?;
        if outcome.failures.is_empty() {
            self.print_stack_urls();
        }
        Ok(code)
    }

    fn print_stack_urls(&self) {
        stderrln!("the stack answers at {}", stack_urls(&self.stack.load_balancer));
    }
}

fn canonical_display(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// The virtual IP's URLs, HTTPS too when HAProxy terminates TLS.
fn stack_urls(lb: &crate::inventory::LoadBalancerSettings) -> String {
    let url = |scheme: &str, port: u16, default: u16| {
        let address = lb.virtual_ip.value.addr();
        let host = if address.is_ipv6() { format!("[{address}]") } else { address.to_string() };
        if port == default { format!("{scheme}://{host}/") } else { format!("{scheme}://{host}:{port}/") }
    };
    let plain = url("http", lb.frontend_port.value, 80);
    match &lb.tls {
        Some(tls) => format!("{plain} and {}", url("https", tls.port.value, 443)),
        None => plain,
    }
}

fn read_plan(path: &PathBuf) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the plan `{}`", path.display()))?;
    let plan: Plan = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a plan saved by `infra plan --out`", path.display()))?;
    if plan.version != plan::SCHEMA_VERSION {
        bail!(
            "`{}` is a version {} plan; this infra reads version {}",
            path.display(),
            plan.version,
            plan::SCHEMA_VERSION
        );
    }
    if !plan.unreachable.is_empty() {
        bail!("`{}` was made while some hosts were unreachable; make a new plan", path.display());
    }
    Ok(plan)
}

/// `-i`, else the saved plan's own inventory, else discovery's.
fn inventory_path(args: &ApplyArgs, saved: Option<&Plan>) -> anyhow::Result<PathBuf> {
    match (&args.inventory, saved.and_then(|plan| plan.inventory.as_ref())) {
        (Some(path), _) => Ok(path.clone()),
        (None, Some(path)) => Ok(PathBuf::from(path)),
        (None, None) => super::inventory_path(None),
    }
}

/// Asks on a terminal; refuses without one.
fn confirmed(plan: &Plan, yes: bool) -> anyhow::Result<bool> {
    let changing = plan.hosts.iter().filter(|host| !host.is_empty()).count();
    super::confirmed(
        yes,
        &format!("Apply these changes to {}?", super::plural(changing, "host")),
        "apply",
        "review the plan, then run again with `--yes`, or apply a saved plan (`infra plan --out FILE`, `infra apply FILE`)",
    )
}

fn report(plan: &Plan, outcome: &apply::Outcome, elapsed: Duration) -> anyhow::Result<ExitCode> {
    let summary = plan.summary();
    match outcome.failures.as_slice() {
        [] => {
            stderrln!(
                "Applied: {} changed in {:.1} s ({} files created, {} changed, {} packages installed, {} reloads, {} restarts, {} starts)",
                super::plural(outcome.changed.len(), "host"),
                elapsed.as_secs_f64(),
                summary.create,
                summary.update,
                summary.install,
                summary.reload,
                summary.restart,
                summary.start
            );
            Ok(ExitCode::SUCCESS)
        }
        failures => {
            for failure in failures {
                stderrln!("error: apply failed on `{}` at step `{}`:", failure.host, failure.step);
                // The error carries the host's own output (its script's stderr).
                for line in failure.error.lines() {
                    stderrln!("  {}", crate::sanitize::multiline(line));
                }
            }
            let names: Vec<String> = failures.iter().map(|failure| format!("`{}`", failure.host)).collect();
            stderrln!(
                "\n{} {} rolled back to {} previous files and services; {} hosts converged before; later stages were not started",
                names.join(", "),
                if failures.len() == 1 { "was" } else { "were" },
                if failures.len() == 1 { "its" } else { "their" },
                outcome.changed.len()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Downloads (or takes from the cache) the wheels of every planned package
/// install, once per requirements, Python and machine.
fn fetch_wheelhouses(
    plan: &Plan,
    desired: &DesiredState,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut wheelhouses = std::collections::BTreeMap::new();
    for host in &plan.hosts {
        let Some(release) = &host.releases else { continue };
        let Some(package_plan @ plan::PackagesPlan::Install { file, added, python, arch, .. }) = &release.packages
        else {
            continue;
        };
        let Some(key) = package_plan.wheelhouse_key().filter(|key| !wheelhouses.contains_key(key)) else { continue };
        let requirements = desired
            .hosts
            .iter()
            .find(|candidate| candidate.name == host.host)
            .and_then(|candidate| candidate.releases.as_ref()?.file(file))
            .with_context(|| format!("the release for `{}` has no `{file}`", host.host))?;
        let mut text = String::from_utf8_lossy(requirements).into_owned();
        for requirement in added {
            text.push_str(&format!("\n{requirement}\n"));
        }
        let started = Instant::now();
        let tar = crate::wheels::wheelhouse(&key, &text, python, arch)
            .with_context(|| format!("cannot fetch the wheels `{}` needs", host.host))?;
        stderrln!(
            "wheels for Python {python} on {arch}: {:.1} MB ready in {:.1} s",
            tar.len() as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        wheelhouses.insert(key, tar);
    }
    Ok(wheelhouses)
}

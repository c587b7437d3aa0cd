//! `infra plan`: render the desired state, read every host's facts in one
//! round trip each, and print what apply would change. The plan goes to
//! stdout (text or JSON); progress and errors to stderr.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Format, PlanArgs};
use crate::diagnostic::Style;
use crate::plan::{self, Palette};
use crate::render::Rendered;
use crate::timings::Timings;

/// `style` is stderr's (diagnostics), `stdout_style` the plan's own.
pub fn run(args: &PlanArgs, style: Style, stdout_style: Style) -> anyhow::Result<ExitCode> {
    let timings = Timings::default();
    let inventory = super::inventory_of(&args.inventory)?;
    let started = std::time::Instant::now();
    if args.source.is_some() && args.out.is_some() {
        anyhow::bail!(
            "`--out` cannot save the plan of a deploy yet: `infra deploy --source REF` shows this plan and asks before it changes anything"
        );
    }
    let overrides = super::Overrides { revision: args.source.clone() };
    let code = super::with_rendered_overridden(&inventory, args.strict, &overrides, style, |_, mut rendered| {
        if args.source.is_some() {
            super::deploy::mark_as_deploy(&mut rendered, args.source.as_deref())?;
        }
        timings.record("load, check and render", started.elapsed());
        plan_hosts(args, &inventory, stdout_style, rendered, &timings)
    });
    if args.timings {
        stderr!("{}", crate::timings::render_text(&timings.report()));
    }
    code
}

fn plan_hosts(
    args: &PlanArgs,
    inventory: &Path,
    style: Style,
    rendered: Rendered,
    timings: &Timings,
) -> anyhow::Result<ExitCode> {
    // A deploy's plan is of the app hosts only, as `infra deploy` is.
    let deploy_limit = [crate::topology::Role::App.name().to_string()];
    let limits = if args.source.is_some() && args.limit.is_empty() { &deploy_limit[..] } else { &args.limit[..] };
    let (hosts, witnesses) = super::limited_with_witnesses(rendered.state.hosts, limits)?;
    let desired = crate::desired::DesiredState { hosts, virtual_ip: rendered.state.virtual_ip, witnesses };
    let read: Vec<_> = desired.hosts.iter().chain(&desired.witnesses).cloned().collect();
    let gathered = timings.phase("connect and read facts", || {
        super::gather_facts_timed(&read, &args.connection, !args.no_progress, timings)
    })?;
    let mut plan = timings.phase("plan", || plan::plan(&desired, &gathered.facts, gathered.unreachable));
    plan.warnings.extend(plan::backup_warnings(&desired, &gathered.facts, time::OffsetDateTime::now_utc()));
    plan.inventory = std::fs::canonicalize(inventory).ok().map(|path| path.display().to_string());
    if let Some(path) = &args.out {
        let json = serde_json::to_string_pretty(&plan).context("cannot serialize the plan")?;
        std::fs::write(path, json + "\n").with_context(|| format!("cannot write the plan to `{}`", path.display()))?;
    }
    match args.format {
        Format::Json => stdoutln!("{}", serde_json::to_string_pretty(&plan).context("cannot serialize the plan")?),
        Format::Text => stdout!(
            "{}",
            plan::render_text(&plan, if style == Style::Colored { Palette::COLORED } else { Palette::PLAIN })
        ),
    }
    for warning in &plan.warnings {
        stderrln!("warning: {warning}");
    }
    super::hosts::print_unreachable(&plan.unreachable);
    super::print_refusals(&plan);
    Ok(exit_code(&plan, args.detailed_exitcode))
}

pub(crate) fn exit_code(plan: &plan::Plan, detailed: bool) -> ExitCode {
    if !plan.unreachable.is_empty() || plan.refusals().next().is_some() {
        ExitCode::FAILURE
    } else if detailed && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

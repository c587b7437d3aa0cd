//! `infra plan`: render the desired state, read every host's facts in one
//! round trip each, and print what apply would change. The plan goes to
//! stdout (text or JSON); progress and errors to stderr.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::{Format, PlanArgs};
use crate::desired::HostState;
use crate::diagnostic::Style;
use crate::facts;
use crate::plan::{self, Palette};
use crate::transport::{Settings, Target};

pub fn run(args: &PlanArgs, style: Style) -> anyhow::Result<ExitCode> {
    let checked = super::load_and_check(&args.inventory.inventory, args.strict)?;
    let Some(inventory) = checked.printed_and_valid(style) else {
        return Ok(ExitCode::FAILURE);
    };
    let Some(rendered) = super::render_for_hosts(inventory, &checked, style)? else {
        return Ok(ExitCode::FAILURE);
    };
    let hosts = limited(rendered.state.hosts, &args.limit)?;
    let settings = Settings {
        accept_new_host_keys: args.connection.accept_new_host_keys,
        connect_timeout: Duration::from_secs(args.connection.connect_timeout),
    };
    let targets = Target::from_inventory(inventory);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let gathered = runtime.block_on(facts::gather(&hosts, &targets, settings, args.connection.parallel));
    let mut plan = plan::plan(&crate::desired::DesiredState { hosts }, &gathered.facts, gathered.unreachable);
    plan.inventory = std::fs::canonicalize(&args.inventory.inventory).ok().map(|path| path.display().to_string());
    if let Some(path) = &args.out {
        let json = serde_json::to_string_pretty(&plan).context("cannot serialize the plan")?;
        std::fs::write(path, json + "\n").with_context(|| format!("cannot write the plan to `{}`", path.display()))?;
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan).context("cannot serialize the plan")?),
        Format::Text => print!(
            "{}",
            plan::render_text(&plan, if style == Style::Colored { Palette::COLORED } else { Palette::PLAIN })
        ),
    }
    for unreachable in &plan.unreachable {
        eprintln!("error: {}", unreachable.error);
    }
    print_refusals(&plan);
    Ok(exit_code(&plan, args.detailed_exitcode))
}

/// Says, on stderr, why each refused host must not be changed, and how to fix it.
pub(crate) fn print_refusals(plan: &plan::Plan) {
    for (host, refusal) in plan.refusals() {
        eprintln!("error: refusing to change `{host}`: {refusal}");
    }
    if plan.refusals().next().is_some() {
        eprintln!(
            "help: add the address infra connects from to `firewall.admin_cidrs` (the lab's is its gateway), or run infra from an admin network"
        );
    }
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

/// The hosts named by `--limit` (host names or role names), or all.
pub(crate) fn limited(hosts: Vec<HostState>, limits: &[String]) -> anyhow::Result<Vec<HostState>> {
    if limits.is_empty() {
        return Ok(hosts);
    }
    for limit in limits {
        let known = hosts.iter().any(|host| host.name == *limit || host.roles.iter().any(|role| role.name() == limit));
        if !known {
            bail!("`--limit {limit}` matches no host name or role in the inventory");
        }
    }
    Ok(hosts
        .into_iter()
        .filter(|host| {
            limits.iter().any(|limit| host.name == *limit || host.roles.iter().any(|role| role.name() == limit))
        })
        .collect())
}

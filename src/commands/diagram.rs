//! `infra diagram`: the topology as SVG, Mermaid or DOT; with `--live`,
//! marked with what the hosts say now (read as plan reads them). Also the
//! generated `completions` and `man` outputs, which are pictures of the CLI.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{DiagramArgs, DiagramFormat};
use crate::diagnostic::Style;
use crate::diagram::{self, Diagram, Live};
use crate::plan;
use crate::render::Rendered;

pub fn run(args: &DiagramArgs, style: Style) -> anyhow::Result<ExitCode> {
    let inventory = super::inventory_of(&args.inventory)?;
    if args.live {
        return super::with_rendered(&inventory, false, style, |stack, rendered| {
            let mut picture = Diagram::of(stack);
            let answered = mark_live(&mut picture, args, rendered)?;
            let written = write(&picture, args)?;
            if answered == 0 {
                // The picture is the inventory's alone: nothing live in it.
                stderrln!("error: no host answered, so nothing in the picture is live");
                return Ok(ExitCode::FAILURE);
            }
            Ok(written)
        });
    }
    let checked = super::load_and_check(&inventory, false)?;
    let Some(stack) = checked.printed_and_valid(style) else {
        return Ok(ExitCode::FAILURE);
    };
    write(&Diagram::of(stack), args)
}

/// Reads every host's facts, as plan does, and marks the picture: the
/// balancers holding the virtual IP, hosts unreachable or drifted.
/// Returns how many hosts answered.
fn mark_live(picture: &mut Diagram, args: &DiagramArgs, rendered: Rendered) -> anyhow::Result<usize> {
    let gathered = super::gather_facts(&rendered.state, &args.connection, true)?;
    let plan = plan::plan(&rendered.state, &gathered.facts, gathered.unreachable);
    let mut live: BTreeMap<String, Live> = BTreeMap::new();
    for host in &plan.hosts {
        live.insert(host.host.clone(), if host.is_empty() { Live::InSync } else { Live::Drifted });
    }
    super::hosts::print_unreachable_as("warning", &plan.unreachable);
    for unreachable in &plan.unreachable {
        live.insert(unreachable.host.clone(), Live::Unreachable);
    }
    let holders: Vec<String> = match rendered.state.virtual_ip {
        Some(vip) => gathered
            .facts
            .iter()
            .filter(|(_, facts)| facts.addresses.contains(&vip))
            .map(|(host, _)| host.clone())
            .collect(),
        None => Vec::new(),
    };
    if rendered.state.virtual_ip.is_some() && holders.len() != 1 && !gathered.facts.is_empty() {
        stderrln!("warning: {} load balancers hold the virtual IP (expected exactly one)", holders.len());
    }
    picture.mark(holders, &live);
    Ok(gathered.facts.len())
}

fn write(picture: &Diagram, args: &DiagramArgs) -> anyhow::Result<ExitCode> {
    let text = match args.format {
        DiagramFormat::Mermaid => diagram::mermaid::write(picture),
        DiagramFormat::Dot => diagram::dot::write(picture),
        DiagramFormat::Svg => diagram::dot::svg(&diagram::dot::write(picture))?,
    };
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))?,
        None => stdout!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

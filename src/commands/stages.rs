//! `infra stages`: the rollout order, database first, load balancers last.

use std::process::ExitCode;

use crate::cli::{Format, StagesArgs};
use crate::diagnostic::Style;
use crate::topology;

pub fn run(args: &StagesArgs, style: Style) -> anyhow::Result<ExitCode> {
    let checked = super::load_and_check(&super::inventory_of(&args.inventory)?, false)?;
    let Some(stack) = checked.printed_and_valid(style) else {
        return Ok(ExitCode::FAILURE);
    };
    let stages: Vec<_> = topology::stages(stack).into_iter().filter(|stage| !stage.hosts.is_empty()).collect();
    match args.format {
        Format::Json => stdoutln!("{}", serde_json::json!({ "version": 1, "stages": stages })),
        Format::Text => {
            for (index, stage) in stages.iter().enumerate() {
                let hosts: Vec<&str> = stage.hosts.iter().map(|host| host.name.value.as_str()).collect();
                stdoutln!("{}. {:<14} {}", index + 1, stage.role.name(), hosts.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

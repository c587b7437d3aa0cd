//! `infra render`: the exact files each host would get, written for review.
//!
//! Secrets must resolve here (the files are what plan and apply would push),
//! so files holding one are written with mode 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::RenderArgs;
use crate::desired::{DesiredState, HostState};
use crate::diagnostic::Style;

pub fn run(args: &RenderArgs, style: Style) -> anyhow::Result<ExitCode> {
    let checked = super::load_and_check(&args.inventory.inventory, args.strict)?;
    let Some(inventory) = checked.printed_and_valid(style) else {
        return Ok(ExitCode::FAILURE);
    };
    let Some(rendered) = super::render_for_hosts(inventory, &checked, style)? else {
        return Ok(ExitCode::FAILURE);
    };
    write_tree(&rendered.state, &args.out)?;
    let files: usize = rendered.state.hosts.iter().map(|host| host.files.len()).sum();
    eprintln!("rendered {files} files for {} hosts into `{}`", rendered.state.hosts.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn write_tree(state: &DesiredState, out: &Path) -> anyhow::Result<()> {
    if out.exists() && out.read_dir().with_context(|| format!("cannot read `{}`", out.display()))?.next().is_some() {
        bail!(
            "`{}` is not empty; render writes only into a new or empty directory so nothing is overwritten",
            out.display()
        );
    }
    for host in &state.hosts {
        write_host(host, &out.join(&host.name))?;
    }
    Ok(())
}

fn write_host(host: &HostState, root: &Path) -> anyhow::Result<()> {
    for file in &host.files {
        let path = root.join(file.path.trim_start_matches('/'));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&path, &file.content).with_context(|| format!("cannot write `{}`", path.display()))?;
        let mode = if file.sensitive { 0o600 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of `{}`", path.display()))?;
    }
    let manifest = serde_json::to_string_pretty(host).context("cannot serialize the host manifest")?;
    let manifest_path = root.join("host.json");
    std::fs::create_dir_all(root).with_context(|| format!("cannot create `{}`", root.display()))?;
    std::fs::write(&manifest_path, manifest + "\n")
        .with_context(|| format!("cannot write `{}`", manifest_path.display()))
}

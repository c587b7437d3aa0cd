//! `infra render`: the exact files each host would get, written for review.
//!
//! Secrets must resolve here (the files are what plan and apply would push),
//! so files holding one are written with mode 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cli::RenderArgs;
use crate::desired::{DesiredState, HostState};
use crate::diagnostic::Style;

pub fn run(args: &RenderArgs, style: Style) -> anyhow::Result<ExitCode> {
    super::with_rendered(&super::inventory_of(&args.inventory)?, args.strict, style, |_, rendered| {
        write_tree(&rendered.state, &args.out)?;
        let files: usize = rendered.state.hosts.iter().map(|host| host.files.len()).sum();
        stderrln!("rendered {files} files for {} hosts into `{}`", rendered.state.hosts.len(), args.out.display());
        Ok(ExitCode::SUCCESS)
    })
}

/// Writes the tree into a new directory of infra's own beside `out`, which
/// no one else can write into, then renames it to `out`. A link or a file
/// planted at `out` (or in it) after the emptiness check is replaced or
/// makes the rename fail: nothing is ever written through it.
fn write_tree(state: &DesiredState, out: &Path) -> anyhow::Result<()> {
    if out.is_symlink() {
        bail!(
            "`{}` is a symbolic link; render writes only into a new or empty directory, never through a link",
            out.display()
        );
    }
    if out.exists() && out.read_dir().with_context(|| format!("cannot read `{}`", out.display()))?.next().is_some() {
        bail!(
            "`{}` is not empty; render writes only into a new or empty directory so nothing is overwritten",
            out.display()
        );
    }
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".infra-render-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a directory in `{}`", parent.display()))?;
    for host in &state.hosts {
        write_host(host, &staging.path().join(&host.name))?;
    }
    std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot set the mode of `{}`", staging.path().display()))?;
    std::fs::rename(staging.path(), out).with_context(|| {
        format!("cannot move the rendered tree to `{}` (did something appear there meanwhile?)", out.display())
    })?;
    let _ = staging.keep();
    Ok(())
}

/// Writes one host's files below `root`. Every path is checked to stay
/// below it (only plain components), every file is created new (a second
/// file for one path is an error, never an overwrite) and with its final
/// mode, so a sensitive file is never readable by others, not even briefly.
fn write_host(host: &HostState, root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(root).with_context(|| format!("cannot create `{}`", root.display()))?;
    let inside = |path: &str| -> anyhow::Result<std::path::PathBuf> {
        let relative = Path::new(path.trim_start_matches('/'));
        if relative.as_os_str().is_empty() || !relative.components().all(|part| matches!(part, Component::Normal(_))) {
            bail!("refusing to write `{path}` for `{}`: it would not stay inside `{}`", host.name, root.display());
        }
        Ok(root.join(relative))
    };
    for file in &host.files {
        // The mode the host gets (the backup script's 0755), but a secret
        // stays readable by its owner only, even where the host lets a group read it.
        let mode = if file.sensitive { file.mode & 0o700 } else { file.mode };
        write_new(&inside(&file.path)?, &file.content, mode)?;
    }
    // The app's release, where apply unpacks it.
    if let Some(releases) = &host.releases {
        for (relative, content) in &releases.files {
            write_new(&inside(&format!("{}/{}/{relative}", releases.directory, releases.id))?, content, 0o644)?;
        }
    }
    let manifest = serde_json::to_string_pretty(host).context("cannot serialize the host manifest")?;
    write_new(&root.join("host.json"), (manifest + "\n").as_bytes(), 0o644)
}

fn write_new(path: &Path, content: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create `{}` (render never overwrites a file)", path.display()))?;
    file.write_all(content).with_context(|| format!("cannot write `{}`", path.display()))?;
    // The mode given to open() is filtered by the umask; set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of `{}`", path.display()))
}

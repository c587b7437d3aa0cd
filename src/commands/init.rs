//! `infra init`: write the starter inventory and the files it names, or
//! nothing at all when any of them exists.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::InitArgs;
use crate::starter::{self, Choices};

pub fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let choices = Choices {
        subnet: args.subnet,
        load_balancers: args.load_balancers,
        web: args.web,
        app: args.app,
        lab: args.lab,
    };
    let files = starter::files(&choices, args.out.clone())?;
    if let Some(existing) = files.iter().find(|file| file.path.exists()) {
        anyhow::bail!(
            "`{}` exists, and infra init never overwrites a file: nothing was written\n\nhint: run it in a new directory, or choose another name with `--out FILE`",
            existing.path.display()
        );
    }
    for file in &files {
        write_new(&file.path, &file.content)?;
        stderrln!("wrote {}", file.path.display());
    }
    let secrets = "`export INFRA_VRRP_SECRET=... INFRA_DB_PASSWORD=...`";
    if args.lab {
        stderrln!("\nnext: {secrets}, then `infra lab up` (as root) and `infra apply`");
    } else {
        stderrln!(
            "\nnext: edit the addresses in {}, {secrets}, then `infra validate` and `infra plan`",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` (and its directory); fails rather than replace a file
/// that appeared since the check.
fn write_new(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    if let Some(directory) = path.parent().filter(|directory| !directory.as_os_str().is_empty()) {
        std::fs::create_dir_all(directory).with_context(|| format!("cannot create `{}`", directory.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(content.as_bytes()).with_context(|| format!("cannot write `{}`", path.display()))
}

//! `infra man` and `infra completions`: the reference generated from the
//! parser itself (clap_mangen, clap_complete), so it cannot disagree with
//! it, plus what only [`crate::reference`] knows: exit statuses, the
//! environment, examples.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};

/// Answers a completion request and exits, when the shell made one
/// ([`crate::completion::ENVIRONMENT`] set); a normal run returns at once.
pub fn answer_completion_if_asked() {
    clap_complete::CompleteEnv::with_factory(Cli::command).var(crate::completion::ENVIRONMENT).complete();
}

/// The script that registers `infra`'s completion with `shell`: the
/// shell then asks `infra` itself, which knows the inventory's hosts.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let script = crate::completion::registration(shell).context("cannot write the completion script")?;
    crate::output::write_stdout_bytes(&script);
    Ok(ExitCode::SUCCESS)
}

/// The inventory's JSON schema on stdout.
pub fn schema() -> anyhow::Result<ExitCode> {
    let document = serde_json::to_string_pretty(&crate::inventory::schema::document())?;
    crate::output::write_stdout_bytes(format!("{document}\n").as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// One page on stdout, or every page into `--out DIR`.
pub fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    if let Some(directory) = &args.out {
        let written = write_all(&root, &[], directory)?;
        stderrln!("wrote {written} man pages into {}", directory.display());
        return Ok(ExitCode::SUCCESS);
    }
    let words: Vec<&str> = args.command.iter().flat_map(|word| word.split_whitespace()).collect();
    let mut command = &root;
    for (depth, word) in words.iter().enumerate() {
        command = command.find_subcommand(word).with_context(|| {
            let known: Vec<&str> = command.get_subcommands().map(clap::Command::get_name).collect();
            let parent = ["infra"].into_iter().chain(words[..depth].iter().copied()).collect::<Vec<_>>().join(" ");
            format!("`{parent} {word}` is not a command; `{parent}` has {}", known.join(", "))
        })?;
    }
    let page = page(command, &words).context("cannot write the man page")?;
    crate::output::write_stdout_bytes(&page);
    Ok(ExitCode::SUCCESS)
}

/// Writes the page of `command` (at `words`) and of every subcommand under it.
fn write_all(command: &clap::Command, words: &[&str], directory: &Path) -> anyhow::Result<usize> {
    std::fs::create_dir_all(directory).with_context(|| format!("cannot create `{}`", directory.display()))?;
    let mut written = 0;
    for subcommand in command.get_subcommands().filter(|subcommand| !subcommand.is_hide_set()) {
        let mut below = words.to_vec();
        below.push(subcommand.get_name());
        written += write_all(subcommand, &below, directory)?;
    }
    let man = clap_mangen::Man::new(command.clone());
    let path = directory.join(man.get_filename());
    std::fs::write(&path, page(command, words)?).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(written + 1)
}

/// clap_mangen's sections, then EXIT STATUS, ENVIRONMENT and EXAMPLES.
fn page(command: &clap::Command, words: &[&str]) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(command.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if command.get_arguments().any(|argument| !argument.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if command.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    crate::reference::write_sections(&crate::reference::page(words), &mut out)?;
    if command.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    Ok(out)
}

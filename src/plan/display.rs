//! The plan as text for an operator: stage by stage, host by host, each
//! change with its reason, diffs coloured, and one summary line.

use crate::sanitize::printable;
use std::fmt::Write;

use super::{FileAction, HostPlan, Plan};

/// ANSI colours, or none.
#[derive(Clone, Copy)]
pub struct Palette {
    pub green: &'static str,
    pub red: &'static str,
    pub yellow: &'static str,
    pub cyan: &'static str,
    pub bold: &'static str,
    pub reset: &'static str,
}

impl Palette {
    pub const PLAIN: Palette = Palette { green: "", red: "", yellow: "", cyan: "", bold: "", reset: "" };
    pub const COLORED: Palette = Palette {
        green: "\x1b[32m",
        red: "\x1b[31m",
        yellow: "\x1b[33m",
        cyan: "\x1b[36m",
        bold: "\x1b[1m",
        reset: "\x1b[0m",
    };
}

pub fn render_text(plan: &Plan, palette: Palette) -> String {
    let mut out = String::new();
    let mut stage = String::new();
    for host in &plan.hosts {
        let host_stage = host.stage.clone();
        if host_stage != stage {
            let _ = writeln!(out, "{}stage: {host_stage}{}", palette.bold, palette.reset);
            stage = host_stage;
        }
        render_host(&mut out, host, palette);
    }
    // Which hosts did not answer is in the summary; why is on stderr,
    // once per host, with the hint.
    let summary = plan.summary();
    let unreachable: Vec<&str> = plan.unreachable.iter().map(|host| host.host.as_str()).collect();
    let _ = writeln!(
        out,
        "{}Plan:{} {} ({} changing{}), {} files to create, {} to change, {} packages to install, {} services to reload, {} to restart, {} to start",
        palette.bold,
        palette.reset,
        if summary.hosts == 1 { "1 host".to_string() } else { format!("{} hosts", summary.hosts) },
        summary.hosts_changing,
        if unreachable.is_empty() {
            String::new()
        } else {
            format!(", {}{} unreachable: {}{}", palette.red, unreachable.len(), unreachable.join(", "), palette.reset)
        },
        summary.create,
        summary.update,
        summary.install,
        summary.reload,
        summary.restart,
        summary.start,
    );
    out
}

fn render_host(out: &mut String, host: &HostPlan, palette: Palette) {
    let debian = host.debian.map_or_else(String::new, |debian| format!(", {debian}"));
    let _ = writeln!(out, "  {}{}{} ({}{debian})", palette.bold, host.host, palette.reset, host.address);
    if let Some(refusal) = &host.refusal {
        let _ = writeln!(out, "    {}! refused:{} {}", palette.red, palette.reset, printable(refusal));
    }
    if host.is_empty() {
        let _ = writeln!(out, "    no changes");
        return;
    }
    if let Some(process) = &host.dpkg_busy {
        let _ = writeln!(
            out,
            "    {}! dpkg is busy:{} `{}` holds its lock; apply waits for it (up to {} minutes) before installing",
            palette.yellow,
            palette.reset,
            printable(process),
            crate::debian::DPKG_LOCK_WAIT.as_secs() / 60
        );
    }
    for package in &host.install {
        let _ = writeln!(out, "    {}+ install{} {package}", palette.green, palette.reset);
    }
    for file in &host.files {
        let (sign, verb, color) = match file.action {
            FileAction::Create => ("+", "create", palette.green),
            FileAction::Update => ("~", "change", palette.yellow),
            FileAction::Metadata => ("~", "set", palette.yellow),
            FileAction::Replace => ("!", "replace", palette.red),
        };
        let mut line =
            format!("    {color}{sign} {verb}{} {} ({} {})", palette.reset, file.path, file.mode, file.owner);
        if !file.metadata.is_empty() {
            line.push_str(&format!(": {}", printable(&file.metadata.join(", "))));
        }
        if file.sensitive && file.action != FileAction::Metadata {
            line.push_str(" (sensitive content changed)");
        }
        let _ = writeln!(out, "{line}");
        if let Some(diff) = &file.diff {
            render_diff(out, diff, palette);
        }
    }
    if let Some(releases) = &host.releases {
        if releases.new {
            let id = releases.switch_to.as_deref().or(releases.current.as_deref()).unwrap_or_default();
            let _ = writeln!(
                out,
                "    {}+ unpack{} release {id} ({} files) in {}/{id}",
                palette.green, palette.reset, releases.files, releases.directory
            );
            if !releases.shared.is_empty() {
                let root = crate::desired::shared_root(&releases.directory);
                let _ = writeln!(out, "      linking {} from {root}", releases.shared.join(", "));
            }
        }
        match &releases.packages {
            Some(crate::plan::PackagesPlan::Install { file, names, python, .. }) => {
                let _ = writeln!(
                    out,
                    "    {}+ install{} the release's packages from {file} for Python {python}: {}",
                    palette.green,
                    palette.reset,
                    names.join(", ")
                );
            }
            Some(crate::plan::PackagesPlan::Reuse { from, .. }) => {
                let _ = writeln!(
                    out,
                    "    {}= reuse{} the packages of release {from} (same requirements)",
                    palette.cyan, palette.reset
                );
            }
            None => {}
        }
        if let Some(migrate) = &releases.migrate {
            let _ = writeln!(
                out,
                "    {}▸ migrate{} `{}` here, once for the fleet, before any host switches",
                palette.cyan,
                palette.reset,
                printable(&migrate.join(" "))
            );
        }
        app_commands(out, &releases.before_switch, "before the switch", palette);
        if let Some(publish) = &releases.publish {
            static_lines(out, publish, palette);
        }
        if let Some(to) = &releases.switch_to {
            let from = releases.current.as_ref().map_or_else(|| "no release".to_string(), |id| format!("release {id}"));
            let _ = writeln!(
                out,
                "    {}⇄ switch{} {} from {from} to release {to}",
                palette.cyan, palette.reset, releases.link
            );
            if let Some(change) = &releases.change {
                let _ = writeln!(out, "      the running app changes: now {}", printable(&change.from));
                let _ = writeln!(out, "      next {}", printable(&change.to));
            }
        }
        app_commands(out, &releases.after_switch, "once the host is healthy on it", palette);
        if !releases.record_migrations.is_empty() {
            let _ = writeln!(
                out,
                "    {}✎ record{} that release {} migrated, as another app host knows",
                palette.cyan,
                palette.reset,
                releases.record_migrations.join(", ")
            );
        }
        match &releases.choice {
            crate::plan::ChoicePlan::Record(choice) => {
                let _ = writeln!(
                    out,
                    "    {}✎ record{} that `{}` chose release {}: apply keeps it until the inventory's `app.source` changes",
                    palette.cyan,
                    palette.reset,
                    printable(&choice.command),
                    choice.release
                );
            }
            crate::plan::ChoicePlan::Forget => {
                let _ = writeln!(
                    out,
                    "    {}✎ forget{} the earlier release choice: the inventory's release is the one to serve",
                    palette.cyan, palette.reset
                );
            }
            crate::plan::ChoicePlan::Keep => {}
        }
        for id in &releases.prune {
            let _ = writeln!(
                out,
                "    {}- remove{} release {id} ({}/{id})",
                palette.red, palette.reset, releases.directory
            );
        }
    }
    for (verb, changes) in [("reload", &host.reload), ("restart", &host.restart), ("run", &host.hooks)] {
        for change in changes {
            let _ = writeln!(
                out,
                "    {}↻ {verb}{} {} (because {})",
                palette.cyan,
                palette.reset,
                change.name,
                because(&change.because)
            );
        }
    }
    for unit in &host.retire {
        let _ = writeln!(out, "    {}■ stop{} {unit} (no longer in `app.processes`)", palette.red, palette.reset);
    }
    for service in &host.enable {
        let _ = writeln!(out, "    {}▸ enable{} {service}", palette.cyan, palette.reset);
    }
    for service in &host.start {
        let _ = writeln!(out, "    {}▸ start{} {service}", palette.cyan, palette.reset);
    }
}

/// How a release's static files are made here and where they go.
fn static_lines(out: &mut String, publish: &crate::plan::StaticPublish, palette: Palette) {
    let id = &publish.release;
    match &publish.source {
        crate::desired::StaticSource::Build(commands) => {
            app_commands(out, commands, "to build the release's static files into `$STATIC_ROOT`", palette)
        }
        crate::desired::StaticSource::Directory(directory) => {
            let _ = writeln!(
                out,
                "    {}▸ read{} the release's static files from {directory}",
                palette.cyan, palette.reset
            );
        }
    }
    let _ = writeln!(
        out,
        "    {}+ publish{} them to {} in {}/{id}, served at {}, before any host switches",
        palette.green,
        palette.reset,
        publish.to.join(", "),
        publish.root,
        crate::desired::static_url(id)
    );
    for (host, gone) in &publish.prune {
        let _ = writeln!(
            out,
            "    {}- remove{} the static files of release {} from {host} (no app host keeps it)",
            palette.red,
            palette.reset,
            gone.join(", ")
        );
    }
}

/// One `▸ run` line per command of a release phase, `when` saying which.
fn app_commands(out: &mut String, commands: &[Vec<String>], when: &str, palette: Palette) {
    for words in commands {
        let _ = writeln!(out, "    {}▸ run{} `{}` {when}", palette.cyan, palette.reset, printable(&words.join(" ")));
    }
}

/// Why a service restarts, reloads or a hook runs: the files that changed
/// (`/etc/nginx/nginx.conf changed`), then any other reason in its words.
fn because(reasons: &[String]) -> String {
    let (paths, others): (Vec<&String>, Vec<&String>) = reasons.iter().partition(|reason| reason.starts_with('/'));
    let mut parts: Vec<String> = Vec::new();
    if !paths.is_empty() {
        parts.push(format!("{} changed", paths.iter().map(|path| path.as_str()).collect::<Vec<_>>().join(", ")));
    }
    parts.extend(others.into_iter().cloned());
    parts.join("; ")
}

fn render_diff(out: &mut String, diff: &str, palette: Palette) {
    for line in diff.lines() {
        let color = match line.chars().next() {
            Some('+') if !line.starts_with("+++") => palette.green,
            Some('-') if !line.starts_with("---") => palette.red,
            Some('@') => palette.cyan,
            _ => "",
        };
        let reset = if color.is_empty() { "" } else { palette.reset };
        // The lines of the host's current file are the host's text.
        let _ = writeln!(out, "        {color}{}{reset}", crate::sanitize::multiline(line));
    }
}

#[cfg(test)]
mod tests {
    /// Issue 22: a host's current file may hold escape sequences; its diff
    /// shows them as text, never as terminal commands.
    #[test]
    fn a_diff_of_a_hosts_file_cannot_drive_the_terminal() {
        let mut out = String::new();
        let palette = super::Palette::PLAIN;
        super::render_diff(&mut out, "-\u{1b}[2J\u{1b}]0;pwned\u{7}old\n+new\ttabbed\n", palette);
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
        assert!(out.contains("\\u{1b}[2J") && out.contains("+new\ttabbed"), "{out:?}");
    }
}

//! `infra validate`: everything that can be checked without touching a host.
//!
//! Parse, stack rules, render every host (with placeholders for secrets that
//! CI does not have), then the services' own checkers on the rendered files.
//! Text goes to stderr; `--format json` prints one versioned document on
//! stdout for CI.

use std::process::ExitCode;

use serde_json::json;

use crate::checkers::{self, CheckerRun, Outcome};
use crate::cli::{Format, ValidateArgs};
use crate::debian::Debian;
use crate::diagnostic::{Diagnostic, Style};
use crate::render::{self, SecretMode};

/// The version of the JSON document, bumped on incompatible changes.
const JSON_VERSION: u32 = 1;

pub fn run(args: &ValidateArgs, style: Style) -> anyhow::Result<ExitCode> {
    let inventory = super::inventory_of(&args.inventory)?;
    let mut checked = match super::load_and_check(&inventory, args.strict) {
        Ok(checked) => checked,
        Err(error) if args.format == Format::Json => {
            print_unreadable_json(&inventory, &error);
            return Ok(ExitCode::FAILURE);
        }
        Err(error) => return Err(error),
    };
    let mut runs: Vec<CheckerRun> = Vec::new();
    if let Some(stack) = &checked.stack {
        match render::render(stack, SecretMode::Placeholder) {
            Ok(rendered) => {
                let secrets_failed = rendered.diagnostics.iter().any(Diagnostic::is_error);
                checked.diagnostics.extend(rendered.diagnostics);
                // A secret that failed its rule was rendered empty: checkers would only repeat that.
                if !args.no_checkers && !secrets_failed {
                    runs = checkers::run_all(&rendered.state)?;
                    checked.diagnostics.extend(runs.iter().filter_map(checker_diagnostic));
                    checked.diagnostics.extend(other_release_note(args.target_release.map(Into::into)));
                }
            }
            Err(error) => checked.diagnostics.push(render_diagnostic(&error)),
        }
    }
    let valid = !checked.has_errors();
    match args.format {
        Format::Json => print_json(&checked, &runs, valid),
        Format::Text => print_text(&checked, &runs, valid, style),
    }
    Ok(if valid { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The checkers here are this machine's packages: a note when the hosts run
/// another release, whose versions may judge a config differently. apply
/// still checks every file with the host's own checker before swapping it in.
fn other_release_note(target: Option<Debian>) -> Option<Diagnostic> {
    let target = target?;
    let here = Debian::of_this_machine();
    if here == Some(target) {
        return None;
    }
    let here = here.map_or_else(|| "an unsupported system's".to_string(), |release| format!("{release}'s"));
    Some(
        Diagnostic::note(
            "checkers-of-another-release",
            format!("the services' checkers on this machine are {here}; the hosts run {target}"),
        )
        .help(format!(
            "a newer or older haproxy, nginx or mariadbd may judge a config differently: run validate on {target} (a CI image of it, say) to check with its checkers; apply checks every file with the host's own checker before it swaps it in"
        )),
    )
}

fn checker_diagnostic(run: &CheckerRun) -> Option<Diagnostic> {
    let Outcome::Failed { output } = &run.outcome else {
        return None;
    };
    Some(
        Diagnostic::error(
            "checker-failed",
            format!("`{}` rejected {} rendered for `{}`", run.checker.name(), run.files.join(", "), run.host),
        )
        .help(format!("{} said:\n{output}", run.checker.name())),
    )
}

fn render_diagnostic(error: &render::RenderError) -> Diagnostic {
    Diagnostic::error("render-failed", crate::diagnostic::error_chain(error))
}

fn print_text(checked: &super::Checked, runs: &[CheckerRun], valid: bool, style: Style) {
    checked.print(style);
    for run in runs {
        let status = match &run.outcome {
            Outcome::Passed => "passed".to_string(),
            Outcome::Failed { .. } => "FAILED".to_string(),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        };
        stderrln!("checker {:<16} {:<8} {}: {status}", run.checker.name(), run.host, run.files.join(", "));
    }
    let path = checked.source.path().display();
    let hosts = checked.hosts;
    if valid {
        stderrln!("`{path}` is valid: {hosts} hosts, {}", super::counts(&checked.diagnostics));
    } else {
        stderrln!("error: `{path}` is invalid: {}", super::counts(&checked.diagnostics));
    }
}

/// CI reads stdout as JSON whatever happens: an inventory that cannot be
/// read at all is still a document, with the reason as its one diagnostic.
fn print_unreadable_json(path: &std::path::Path, error: &anyhow::Error) {
    let message = error.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ");
    let diagnostic = Diagnostic::error("inventory-unreadable", message);
    let source = crate::source::SourceFile::new(path, String::new());
    let document = json!({
        "version": JSON_VERSION,
        "inventory": path.display().to_string(),
        "valid": false,
        "diagnostics": [diagnostic.to_json(&source)],
        "checkers": [],
    });
    stdoutln!("{document:#}");
}

fn print_json(checked: &super::Checked, runs: &[CheckerRun], valid: bool) {
    let diagnostics: Vec<_> = checked.diagnostics.iter().map(|d| d.to_json(&checked.source)).collect();
    let document = json!({
        "version": JSON_VERSION,
        "inventory": checked.source.path().display().to_string(),
        "valid": valid,
        "diagnostics": diagnostics,
        "checkers": runs,
        "checkers_release": Debian::of_this_machine(),
    });
    stdoutln!("{document:#}");
}

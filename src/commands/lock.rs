//! `infra lock status` and `infra lock break`: who holds the host locks
//! that keep two applies apart, and the way out when a holder hangs.

use std::process::ExitCode;

use crate::cli::{Format, LockArgs, LockCommand};
use crate::diagnostic::Style;
use crate::facts;
use crate::lock;
use crate::transport::Target;

pub fn run(command: &LockCommand, style: Style) -> anyhow::Result<ExitCode> {
    match command {
        LockCommand::Status(args) => status(args, style),
        LockCommand::Break { lock, hosts } => break_locks(lock, hosts, style),
    }
}

/// One host's answer to a lock script.
enum Answer {
    Free,
    Held(lock::Holder),
    Broken,
    Failed(String),
}

fn status(args: &LockArgs, style: Style) -> anyhow::Result<ExitCode> {
    let answers = ask(args, None, &lock::status_script(), style)?;
    let Some(answers) = answers else { return Ok(ExitCode::FAILURE) };
    if args.format == Format::Json {
        let hosts: Vec<serde_json::Value> = answers
            .iter()
            .map(|(host, answer)| match answer {
                Answer::Free | Answer::Broken => serde_json::json!({"host": host, "state": "free"}),
                Answer::Held(holder) => serde_json::json!({"host": host, "state": "held", "holder": holder}),
                Answer::Failed(error) => serde_json::json!({"host": host, "state": "unknown", "error": error}),
            })
            .collect();
        stdoutln!("{:#}", serde_json::json!({ "version": 1, "hosts": hosts }));
    } else {
        for (host, answer) in &answers {
            match answer {
                Answer::Free | Answer::Broken => stdoutln!("{host:<16} free"),
                Answer::Held(holder) => stdoutln!("{host:<16} held: {holder} (remote pid {})", holder.pid),
                Answer::Failed(error) => stdoutln!("{host:<16} unknown: {}", crate::sanitize::printable(error)),
            }
        }
    }
    let failed = answers.iter().any(|(_, answer)| matches!(answer, Answer::Failed(_)));
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn break_locks(args: &LockArgs, hosts: &[String], style: Style) -> anyhow::Result<ExitCode> {
    let Some(answers) = ask(args, Some(hosts), &lock::break_script(), style)? else {
        return Ok(ExitCode::FAILURE);
    };
    let mut code = ExitCode::SUCCESS;
    for (host, answer) in &answers {
        match answer {
            Answer::Broken => stderrln!("{host}: lock broken, free for the next run"),
            Answer::Free | Answer::Held(_) => stderrln!("{host}: not locked"),
            Answer::Failed(error) => {
                stderrln!("error: {host}: {}", crate::sanitize::printable(&error.to_string()));
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

/// Runs `script` on the inventory's hosts (or those named) and reads each
/// answer; `None` when the inventory has errors (already printed).
fn ask(
    args: &LockArgs,
    only: Option<&[String]>,
    script: &str,
    style: Style,
) -> anyhow::Result<Option<Vec<(String, Answer)>>> {
    let checked = super::load_and_check(&super::inventory_of(&args.inventory)?, false)?;
    let Some(stack) = checked.printed_and_valid(style) else { return Ok(None) };
    let mut hosts: Vec<&crate::inventory::Host> = stack.hosts.iter().collect();
    if let Some(names) = only {
        let mut chosen = Vec::new();
        for name in names {
            chosen.extend(crate::selection::select(&stack.hosts, name)?);
        }
        hosts.retain(|host| chosen.iter().any(|chosen| std::ptr::eq(*chosen, *host)));
    }
    let targets: Vec<Target> = hosts.iter().map(|host| crate::topology::ssh_target(stack, host)).collect();
    let settings = super::transport_settings(&args.connection);
    let runtime = super::runtime()?;
    let answers = runtime.block_on(async {
        let connected = facts::connect(&targets, settings, args.connection.parallel, &crate::report::Silent).await;
        let runs = connected
            .connections
            .iter()
            .map(|(host, connection)| async move { (host.clone(), connection.run_script(script).await) });
        let mut answers: Vec<(String, Answer)> = futures_util::future::join_all(runs)
            .await
            .into_iter()
            .map(|(host, output)| match output {
                Ok(text) => (host, answer_of(&text)),
                Err(error) => (host, Answer::Failed(crate::diagnostic::error_chain(&error))),
            })
            .collect();
        answers.extend(connected.unreachable.iter().map(|u| (u.host.clone(), Answer::Failed(u.error.clone()))));
        connected.close().await;
        answers
    });
    let order = |name: &str| targets.iter().position(|target| target.name == name);
    let mut answers = answers;
    answers.sort_by_key(|(host, _)| order(host));
    Ok(Some(answers))
}

fn answer_of(text: &str) -> Answer {
    match text.lines().next() {
        Some("free") => Answer::Free,
        Some("broken") => Answer::Broken,
        Some("held") => Answer::Held(lock::parse_holder(text)),
        _ => Answer::Failed(format!("unexpected answer: {}", crate::sanitize::printable(text.trim()))),
    }
}

//! `infra ssh`, `logs`, `exec` and `run`: the daily commands on hosts named by
//! host or role, through the inventory's SSH settings (user, key,
//! known_hosts, bastion, sudo). This module parses, calls and prints; the
//! journal command is the catalog's, the ssh command line the transport's.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use crate::catalog::verbs::{self, LogWindow};
use crate::cli::{ExecArgs, LogsArgs, RunArgs, SshArgs};
use crate::diagnostic::Style;
use crate::facts;
use crate::report::Silent;
use crate::selection;
use crate::stack::Stack;
use crate::transport::{Connection, Finished, Target};

/// Replaces this process with `ssh` to the host: the terminal is ssh's.
pub fn ssh(args: &SshArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some(stack) = valid_stack(&args.inventory, style)? else { return Ok(ExitCode::FAILURE) };
    let host = stack
        .hosts
        .iter()
        .find(|host| host.name.value == args.host)
        .ok_or_else(|| selection::no_match(&stack.hosts, &args.host))?;
    let target = crate::topology::ssh_target(&stack, host);
    let settings = super::transport_settings(&args.connection);
    let terminal = std::io::stdin().is_terminal();
    let error = crate::transport::interactive::command(&target, &settings, &args.command, terminal).exec();
    Err(anyhow::Error::new(error).context("cannot run `ssh` (is openssh-client installed?)"))
}

/// Replaces this process with `ssh` to one app host running the command
/// as the app does ([`crate::catalog::gunicorn::app_command`]) in the
/// current release: a terminal of its own when this one has one, so
/// prompts work; its exit status is this one's.
pub fn run(args: &RunArgs, style: Style) -> anyhow::Result<ExitCode> {
    use crate::catalog::gunicorn::{Streams, app_command};
    let Some(stack) = valid_stack(&args.inventory, style)? else { return Ok(ExitCode::FAILURE) };
    let host = selection::app_host(&stack.hosts, args.host.as_deref())?;
    let target = crate::topology::ssh_target(&stack, host);
    let terminal = std::io::stdin().is_terminal();
    let streams = if terminal { Streams::Terminal } else { Streams::Pipe };
    let environment = crate::transport::shell_quote(crate::catalog::APP_ENVIRONMENT.path);
    let link = format!("{}/current", stack.app.directory.value);
    let mut remote = app_command(&link, &environment, &args.command, streams);
    if target.privilege == crate::transport::Privilege::Sudo {
        remote = format!("sudo -n -- {remote}");
    }
    stderrln!("run: on `{}`, in {link}, as {}", host.name.value, crate::catalog::gunicorn::USER);
    let settings = super::transport_settings(&args.connection);
    let error = crate::transport::interactive::command(&target, &settings, &[remote], terminal).exec();
    Err(anyhow::Error::new(error).context("cannot run `ssh` (is openssh-client installed?)"))
}

/// Each selected host's journal of its services (or the one named).
pub fn logs(args: &LogsArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some(stack) = valid_stack(&args.inventory, style)? else { return Ok(ExitCode::FAILURE) };
    let hosts = selection::select(&stack.hosts, &args.hosts)?;
    let mut scripts = Vec::new();
    for host in &hosts {
        let roles: Vec<_> = host.roles.iter().map(|role| role.value).collect();
        let services = services_to_read(&host.name.value, verbs::services_on(&roles), args.service.as_deref())?;
        let window = LogWindow { lines: args.lines, follow: args.follow };
        scripts.push((crate::topology::ssh_target(&stack, host), verbs::logs_command(&services, window)));
    }
    let prefixed = scripts.len() > 1;
    run_everywhere(&args.connection, scripts, async |target, connection, script| {
        if args.follow {
            let name = target.name.clone();
            connection.follow(&script, |line| print_line(prefixed.then_some(&name), line)).await
        } else {
            connection.run(&script).await
        }
    })
}

/// The services of a host that `asked` names: all of them by default.
fn services_to_read(
    host: &str,
    runs: Vec<&'static crate::catalog::Service>,
    asked: Option<&str>,
) -> anyhow::Result<Vec<&'static crate::catalog::Service>> {
    let Some(asked) = asked else { return Ok(runs) };
    match verbs::service_named(asked).filter(|named| runs.iter().any(|service| service.name == named.name)) {
        Some(service) => Ok(vec![service]),
        None => {
            let names: Vec<&str> = runs.iter().map(|service| service.name).collect();
            anyhow::bail!("`{host}` runs no service `{asked}`; it runs {}", crate::inventory::quoted_list(&names))
        }
    }
}

/// Runs the command on every selected host at once, as root.
pub fn exec(args: &ExecArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some(stack) = valid_stack(&args.inventory, style)? else { return Ok(ExitCode::FAILURE) };
    let hosts = selection::select(&stack.hosts, &args.hosts)?;
    // As `ssh HOST COMMAND` does: the words joined, for the host's shell.
    let script = format!("{}\n", args.command.join(" "));
    let scripts: Vec<(Target, String)> =
        hosts.iter().map(|host| (crate::topology::ssh_target(&stack, host), script.clone())).collect();
    run_everywhere(&args.connection, scripts, async |_, connection, script| connection.run(&script).await)
}

/// Connects to every target, runs its script with `run`, then prints
/// each host's output as one block in inventory order (prefixed by the
/// host's name when there are several) and says which failed.
fn run_everywhere(
    connection_args: &crate::cli::ConnectionArgs,
    scripts: Vec<(Target, String)>,
    run: impl AsyncFn(Target, &Connection, String) -> Result<Finished, crate::transport::TransportError>,
) -> anyhow::Result<ExitCode> {
    let targets: Vec<Target> = scripts.iter().map(|(target, _)| target.clone()).collect();
    let settings = super::transport_settings(connection_args);
    let runtime = super::runtime()?;
    let (finished, unreachable) = runtime.block_on(async {
        let connected = facts::connect(&targets, settings, connection_args.parallel, &Silent).await;
        let runs = scripts.iter().filter_map(|(target, script)| {
            let connection = connected.connections.get(&target.name)?;
            let run = &run;
            Some(async move { (target.name.clone(), run(target.clone(), connection, script.clone()).await) })
        });
        let finished = futures_util::future::join_all(runs).await;
        let unreachable = connected.unreachable.clone();
        connected.close().await;
        (finished, unreachable)
    });
    let prefixed = targets.len() > 1;
    let mut failed = Vec::new();
    for (host, result) in finished {
        match result {
            Ok(done) => {
                print_block(prefixed.then_some(&host), &done);
                if done.status != Some(0) {
                    failed.push(format!("`{host}` ({})", done.status_text()));
                }
            }
            Err(error) => failed.push(format!("`{host}` ({})", crate::diagnostic::error_chain(&error))),
        }
    }
    super::hosts::print_unreachable(&unreachable);
    summary(targets.len(), &failed, unreachable.len())
}

fn summary(tried: usize, failed: &[String], unreachable: usize) -> anyhow::Result<ExitCode> {
    if failed.is_empty() && unreachable == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let mut problems = Vec::new();
    if !failed.is_empty() {
        problems.push(format!("failed on {}", failed.join(", ")));
    }
    if unreachable > 0 {
        problems.push(format!("{unreachable} did not answer"));
    }
    stderrln!("error: of {}, {}", super::plural(tried, "host"), problems.join("; "));
    Ok(ExitCode::FAILURE)
}

/// A host's output: stdout on stdout, stderr on stderr, line by line.
fn print_block(prefix: Option<&String>, done: &Finished) {
    for line in done.stdout.lines() {
        print_line(prefix, line);
    }
    for line in done.stderr.lines() {
        let line = crate::sanitize::printable(line);
        match prefix {
            Some(host) => stderrln!("{host}: {line}"),
            None => stderrln!("{line}"),
        }
    }
}

/// One line from a host, its control characters made visible: a host
/// may be compromised, and its output must not drive this terminal.
fn print_line(prefix: Option<&String>, line: &str) {
    let line = crate::sanitize::printable(line);
    match prefix {
        Some(host) => stdoutln!("{host}: {line}"),
        None => stdoutln!("{line}"),
    }
}

fn valid_stack(inventory: &crate::cli::InventoryArg, style: Style) -> anyhow::Result<Option<Stack>> {
    Ok(super::backup::checked(inventory, style)?.map(|(_, stack)| stack))
}

//! One module per subcommand; this one holds what they share: logging setup,
//! colour choice, loading and checking an inventory, and printing errors
//! with their causes and hints.

mod apply;
mod backup;
mod deploy;
mod diagram;
mod doctor;
mod drill;
mod hosts;
mod init;
mod lab;
mod lock;
mod manual;
mod plan;
mod releases;
mod remote;
mod render;
mod restore;
mod stages;
mod validate;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

pub use manual::answer_completion_if_asked;

use crate::cli::{Cli, ColorChoice, Command, Format};
use crate::diagnostic::{self, Diagnostic, Severity, Style};
use crate::inventory::{self, Inventory};
use crate::source::SourceFile;
use crate::stack::Stack;

/// Runs a parsed command line and returns the process exit code:
/// 0 success, 1 failure (clap uses 2 for usage errors).
pub fn run(cli: Cli) -> ExitCode {
    // Each stream is coloured by its own terminal: `infra plan > plan.txt`
    // from a terminal writes a plain file and still colours the diagnostics.
    let style = style_for(cli.color, std::io::stderr().is_terminal());
    let stdout_style = style_for(cli.color, std::io::stdout().is_terminal());
    init_logging(cli.verbose, style);
    let json = wants_json(&cli.command);
    let result = match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Validate(args) => validate::run(&args, style),
        Command::Render(args) => render::run(&args, style),
        Command::Stages(args) => stages::run(&args, style),
        Command::Lab(command) => lab::run(&command, style),
        Command::Plan(args) => plan::run(&args, style, stdout_style),
        Command::Doctor(args) => doctor::run(&args, style, stdout_style),
        Command::Apply(args) => apply::run(&args, style),
        Command::Deploy(args) => apply::deploy(&args, style),
        Command::Lock(command) => lock::run(&command, style),
        Command::Backup(crate::cli::BackupCommand::Now(args)) => backup::now(&args, style),
        Command::Backup(crate::cli::BackupCommand::List(args)) => restore::list(&args, style),
        Command::Backup(crate::cli::BackupCommand::Verify(args)) => drill::verify(&args, style),
        Command::Restore(args) => restore::restore(&args, style),
        Command::Releases(args) => releases::list(&args, style),
        Command::Rollback(args) => releases::rollback(&args, style),
        Command::Ssh(args) => remote::ssh(&args, style),
        Command::Logs(args) => remote::logs(&args, style),
        Command::Exec(args) => remote::exec(&args, style),
        Command::Run(args) => remote::run(&args, style),
        Command::Diagram(args) => diagram::run(&args, style),
        Command::Completions { shell } => manual::completions(shell),
        Command::Man(args) => manual::man(&args),
        Command::Schema => manual::schema(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            print_error(&error);
            if json {
                print_error_json(&error);
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether the command was asked for JSON on stdout.
fn wants_json(command: &Command) -> bool {
    let format = match command {
        Command::Validate(args) => args.format,
        Command::Stages(args) => args.format,
        Command::Plan(args) => args.format,
        Command::Doctor(args) => args.format,
        Command::Apply(args) => args.converge.format,
        Command::Deploy(args) => args.converge.format,
        Command::Lock(crate::cli::LockCommand::Status(args)) => args.format,
        Command::Backup(crate::cli::BackupCommand::Now(args) | crate::cli::BackupCommand::List(args)) => args.format,
        Command::Backup(crate::cli::BackupCommand::Verify(args)) => args.backup.format,
        Command::Releases(args) => args.format,
        Command::Rollback(args) => args.format,
        Command::Lab(crate::cli::LabCommand::Status { format }) => *format,
        _ => Format::Text,
    };
    format == Format::Json
}

/// A program reading stdout as JSON gets a document whatever happened: an
/// error that ended the command (an unreadable inventory, say) is one too.
fn print_error_json(error: &anyhow::Error) {
    let causes: Vec<String> = error.chain().skip(1).map(ToString::to_string).collect();
    let hint = error.downcast_ref::<Hinted>().map(|hinted| hinted.hint.clone());
    let document = serde_json::json!({
        "version": 1,
        "error": { "message": error.to_string(), "causes": causes, "hint": hint },
    });
    stdoutln!("{document:#}");
}

/// Log lines go to stderr, coloured only when the diagnostics there are.
fn init_logging(verbose: u8, style: Style) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("INFRA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(style == Style::Colored)
        .without_time()
        .init();
}

/// The style of a stream that is a terminal or not, under `--color`.
fn style_for(choice: ColorChoice, terminal: bool) -> Style {
    let colored = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::env::var_os("NO_COLOR").is_none() && terminal,
    };
    if colored { Style::Colored } else { Style::Plain }
}

/// `error: ...` then each cause on its own `caused by:` line, then the
/// hint of a [`Hinted`] context after a blank line.
/// Causes may quote a host or a tool (a script's stderr, git's), so each
/// is [`crate::sanitize::multiline`]d.
fn print_error(error: &anyhow::Error) {
    stderrln!("error: {}", crate::sanitize::multiline(&error.to_string()));
    for cause in error.chain().skip(1) {
        stderrln!("  caused by: {}", crate::sanitize::multiline(&cause.to_string()));
    }
    if let Some(hinted) = error.downcast_ref::<Hinted>() {
        stderrln!("\nhint: {}", hinted.hint);
    }
}

/// A context message with a hint printed after the whole cause chain.
#[derive(Debug)]
pub(crate) struct Hinted {
    pub message: String,
    pub hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Directories outside the inventory's repository that its local paths may
/// name: infra's own lab state (its TLS certificate), and those the
/// operator lists in `INFRA_ALLOW_PATHS` (colon-separated). Never the
/// inventory's choice: a pull request cannot widen it.
pub(crate) fn allowed_paths() -> Vec<std::path::PathBuf> {
    let mut allowed = vec![crate::lab::state_dir()];
    if let Some(listed) = std::env::var_os("INFRA_ALLOW_PATHS") {
        allowed.extend(std::env::split_paths(&listed).filter(|path| path.is_absolute()));
    }
    allowed
}

/// An inventory with every problem that loading and the rules found, and
/// its stack when there was no error.
pub(crate) struct Checked {
    pub source: SourceFile,
    pub stack: Option<Stack>,
    /// How many hosts the file lists, valid or not.
    pub hosts: usize,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn print(&self, style: Style) {
        if !self.diagnostics.is_empty() {
            stderr!("{}", diagnostic::render(&self.diagnostics, &self.source, style));
        }
    }

    /// Prints the diagnostics and returns the stack, or `None` (after a
    /// summary line) when it has errors and the command must stop.
    pub fn printed_and_valid(&self, style: Style) -> Option<&Stack> {
        self.print(style);
        if self.stack.is_none() {
            let path = self.source.path().display();
            stderrln!("error: `{path}` has {}", counts(&self.diagnostics));
        }
        self.stack.as_ref()
    }
}

/// The inventory `-i` names, else the one `INFRA_INVENTORY` names, else the
/// nearest `infra.yml` from the working directory up; a file the command
/// line did not name is announced on stderr, so the operator sees which.
pub(crate) fn inventory_path(given: Option<&Path>) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let environment = std::env::var_os(inventory::discovery::ENVIRONMENT).map(std::path::PathBuf::from);
    let start = std::env::current_dir().context("cannot read the working directory")?;
    let chosen = inventory::discovery::choose(given, environment.as_deref(), &start)?;
    if let Some(line) = chosen.announcement() {
        stderrln!("{line}");
    }
    Ok(chosen.path)
}

/// [`inventory_path`] of an `-i` flag.
pub(crate) fn inventory_of(arg: &crate::cli::InventoryArg) -> anyhow::Result<std::path::PathBuf> {
    inventory_path(arg.inventory.as_deref())
}

/// Loads an inventory and runs the stack rules; `strict` makes warnings errors.
pub(crate) fn load_and_check(path: &Path, strict: bool) -> anyhow::Result<Checked> {
    load_and_check_with(path, strict, &Overrides::default())
}

/// What a command's flags change in the inventory it loads, before the
/// rules run on it: `infra deploy --source REF`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overrides {
    /// The git revision to deploy instead of `app.source.ref`.
    pub revision: Option<String>,
}

impl Overrides {
    fn apply_to(&self, inventory: &mut Inventory) -> anyhow::Result<()> {
        let Some(revision) = &self.revision else { return Ok(()) };
        let revision = crate::inventory::grammar::git_revision(revision)
            .map_err(|expected| anyhow::anyhow!("`--source {revision}` is not {expected}"))?;
        let Some(app) = inventory.app.as_mut() else { anyhow::bail!("`--source`: the inventory has no `app`") };
        let Some(asked) = app.revision.as_mut() else {
            return Err(anyhow::Error::msg(format!(
                "`--source {revision}` names a git revision, but `app.source` is the directory `{}`",
                app.source.value.display()
            ))
            .context(Hinted {
                message: "deploy changed nothing".into(),
                hint: format!(
                    "deploy from a repository with `source: {{git: {}, ref: main}}`, or run `infra deploy` without `--source`",
                    app.source.value.display()
                ),
            }));
        };
        app.inventory_revision = Some(std::mem::replace(&mut asked.value, revision));
        Ok(())
    }
}

/// [`load_and_check`] with `overrides` applied to the inventory first.
pub(crate) fn load_and_check_with(path: &Path, strict: bool, overrides: &Overrides) -> anyhow::Result<Checked> {
    let mut loaded = inventory::load(path, &allowed_paths())?;
    if let Some(inventory) = loaded.inventory.as_mut() {
        overrides.apply_to(inventory)?;
    }
    let mut diagnostics = loaded.diagnostics;
    if let Some(inventory) = &loaded.inventory {
        diagnostics.extend(crate::rules::run(inventory));
    }
    if strict {
        promote_warnings(&mut diagnostics);
    }
    // Top to bottom, the order a reader fixes them in; unlocated ones last.
    diagnostics.sort_by_key(|d| d.labels.iter().find(|l| l.primary).map_or(usize::MAX, |l| l.span.start));
    let hosts = loaded.inventory.as_ref().map_or(0, |inventory| inventory.hosts.len());
    let valid = !diagnostics.iter().any(Diagnostic::is_error);
    let stack = match loaded.inventory.filter(|_| valid).map(Stack::of).transpose() {
        Ok(stack) => stack,
        Err(error) => {
            diagnostics
                .push(Diagnostic::error("not-a-stack", format!("{error}: the rules let it through (a bug in infra)")));
            None
        }
    };
    Ok(Checked { source: loaded.source, stack, hosts, diagnostics })
}

pub(crate) fn promote_warnings(diagnostics: &mut [Diagnostic]) {
    for diagnostic in diagnostics.iter_mut().filter(|d| d.severity == Severity::Warning) {
        diagnostic.severity = Severity::Error;
        diagnostic.help.push("this is an error because of `--strict`".to_string());
    }
}

/// The prologue plan, apply and render share: load, check and print the
/// diagnostics, then render with every secret; `then` gets the inventory
/// and the desired state. Any problem is printed and the command ends with 1.
pub(crate) fn with_rendered(
    path: &Path,
    strict: bool,
    style: Style,
    then: impl FnOnce(&Stack, crate::render::Rendered) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    with_rendered_overridden(path, strict, &Overrides::default(), style, then)
}

/// [`with_rendered`] with `overrides` applied to the inventory.
pub(crate) fn with_rendered_overridden(
    path: &Path,
    strict: bool,
    overrides: &Overrides,
    style: Style,
    then: impl FnOnce(&Stack, crate::render::Rendered) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let checked = load_and_check_with(path, strict, overrides)?;
    let Some(stack) = checked.printed_and_valid(style) else {
        return Ok(ExitCode::FAILURE);
    };
    let Some(rendered) = render_for_hosts(stack, &checked, style)? else {
        return Ok(ExitCode::FAILURE);
    };
    then(stack, rendered)
}

/// Reads the facts of `desired`'s hosts, one progress line per host: what
/// `plan` and `diagram --live` share.
pub(crate) fn gather_facts(
    desired: &crate::desired::DesiredState,
    connection: &crate::cli::ConnectionArgs,
    progress: bool,
) -> anyhow::Result<crate::facts::Gathered> {
    gather_facts_timed(&desired.hosts, connection, progress, &crate::timings::Timings::default())
}

/// [`gather_facts`], each host's steps marked in `timings`.
pub(crate) fn gather_facts_timed(
    hosts: &[crate::desired::HostState],
    connection: &crate::cli::ConnectionArgs,
    progress: bool,
    timings: &crate::timings::Timings,
) -> anyhow::Result<crate::facts::Gathered> {
    let runtime = runtime()?;
    let reporter = crate::report::facts_reporter(progress);
    let timed = crate::timings::Timed { inner: reporter.as_ref(), timings };
    // Reading changes nothing, so the masters stay warm for what follows
    // (the apply after a plan).
    let settings = crate::transport::Settings { park: true, ..transport_settings(connection) };
    let gathered = runtime.block_on(crate::facts::gather(hosts, settings, connection.parallel, &timed));
    reporter.finish();
    Ok(gathered)
}

/// The SSH settings the connection flags ask for.
pub(crate) fn transport_settings(args: &crate::cli::ConnectionArgs) -> crate::transport::Settings {
    crate::transport::Settings::new(args.accept_new_host_keys, std::time::Duration::from_secs(args.connect_timeout))
}

/// The async runtime the commands that talk to hosts run on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// [`limited`], and the app hosts it leaves out when it keeps any. A
/// release migrates once for the fleet, as the union of every app host's
/// record says (docs/releases.md): a run limited to one app host reads the
/// others' records too (and takes their locks), or a host new to the fleet
/// would migrate a release the database is already past. With
/// `app.static`, the web hosts too: a release's static files are on every
/// one of them before an app host switches (`infra deploy` included).
pub(crate) fn limited_with_witnesses(
    hosts: Vec<crate::desired::HostState>,
    limits: &[String],
) -> anyhow::Result<(Vec<crate::desired::HostState>, Vec<crate::desired::HostState>)> {
    let static_files = hosts.iter().any(|host| host.releases.as_ref().is_some_and(|r| r.static_files.is_some()));
    let read_too: Vec<crate::desired::HostState> = hosts
        .iter()
        .filter(|host| host.releases.is_some() || (static_files && host.static_releases.is_some()))
        .cloned()
        .collect();
    let kept = limited(hosts, limits)?;
    if !kept.iter().any(|host| host.releases.is_some()) {
        return Ok((kept, Vec::new()));
    }
    let witnesses = read_too.into_iter().filter(|host| !kept.iter().any(|kept| kept.name == host.name)).collect();
    Ok((kept, witnesses))
}

/// The hosts named by `--limit` (host names or role names), or all.
pub(crate) fn limited(
    hosts: Vec<crate::desired::HostState>,
    limits: &[String],
) -> anyhow::Result<Vec<crate::desired::HostState>> {
    use crate::selection;
    if let Some(unknown) = limits.iter().find(|limit| !hosts.iter().any(|host| selection::matches(host, limit))) {
        let error = selection::no_match(&hosts, unknown);
        return Err(anyhow::Error::new(error).context(format!("`--limit {unknown}` selects nothing")));
    }
    if limits.is_empty() {
        return Ok(hosts);
    }
    Ok(hosts.into_iter().filter(|host| limits.iter().any(|limit| selection::matches(host, limit))).collect())
}

/// Says, on stderr, why each refused host must not be changed, and how to fix it.
pub(crate) fn print_refusals(plan: &crate::plan::Plan) {
    for (host, refusal) in plan.refusals() {
        stderrln!("error: refusing to change `{host}`: {}", crate::sanitize::printable(refusal));
    }
}

/// Renders with every secret required (the files are what hosts get);
/// prints the secret problems and returns `None` when there are any.
pub(crate) fn render_for_hosts(
    stack: &Stack,
    checked: &Checked,
    style: Style,
) -> anyhow::Result<Option<crate::render::Rendered>> {
    use anyhow::Context;
    let rendered =
        crate::render::render(stack, crate::render::SecretMode::Require).context("cannot render the configuration")?;
    if rendered.diagnostics.iter().any(Diagnostic::is_error) {
        stderr!("{}", diagnostic::render(&rendered.diagnostics, &checked.source, style));
        return Ok(None);
    }
    Ok(Some(rendered))
}

/// The question apply, rollback and restore ask before they change hosts:
/// `--yes` answers it; on a terminal it is asked on stderr; without one
/// the command refuses (`what` is the refusal, `hint` how to proceed).
pub(crate) fn confirmed(yes: bool, question: &str, what: &str, hint: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, Write};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("refusing to {what} without confirmation: stdin is not a terminal\n\nhint: {hint}");
    }
    stderr!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| anyhow::anyhow!("cannot read the answer: {error}"))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `N errors, M warnings` for summary lines.
pub(crate) fn counts(diagnostics: &[Diagnostic]) -> String {
    let (errors, warnings) = diagnostic::summary(diagnostics);
    format!("{}, {}", plural(errors, "error"), plural(warnings, "warning"))
}

/// `1 host`, `5 hosts`: a count and its noun, for summary lines.
pub(crate) fn plural(count: usize, word: &str) -> String {
    format!("{count} {word}{}", if count == 1 { "" } else { "s" })
}

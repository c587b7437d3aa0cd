//! Command-line arguments, and nothing else: each subcommand's behaviour lives
//! in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

#[derive(Parser, Debug)]
#[command(name = "infra", version = crate::reference::VERSION, about = "Lay out and converge a load-balanced web stack from one YAML inventory")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to colour output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// More logging on stderr (`-v` info, `-vv` debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a commented starter inventory (`infra.yml`), a small app, a static page and the schema: it validates as written.
    Init(InitArgs),
    /// Check an inventory offline: parse, stack rules, render, and the services' own config checkers.
    Validate(ValidateArgs),
    /// Render every host's configuration into a directory, one folder per host, for review.
    Render(RenderArgs),
    /// Print the rollout stages in dependency order with the hosts in each.
    Stages(StagesArgs),
    /// Show exactly what apply would change on the hosts, reading their state over SSH.
    Plan(PlanArgs),
    /// Check every host for what would stop an apply (sudo, release, ports taken, interfaces, disk, clock, dpkg), each with its fix.
    Doctor(DoctorArgs),
    /// Converge the hosts: plan, confirm, then change them stage by stage, each host as a transaction.
    Apply(ApplyArgs),
    /// A local lab of real Debian hosts for an inventory (needs root).
    #[command(subcommand)]
    Lab(LabCommand),
    /// The host locks that keep two applies from changing hosts at once.
    #[command(subcommand)]
    Lock(LockCommand),
    /// The database's backups: take one now, list them, prove one restores.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Deploy the app: a new release from its source (a git branch, tag or commit with `--source`) on the app hosts, one at a time.
    Deploy(DeployArgs),
    /// The app's releases on each app host: which is current, which the inventory's source makes.
    Releases(ReleasesArgs),
    /// Switch every app host back to an earlier release (the previous one by default), one host at a time.
    Rollback(RollbackArgs),
    /// Load a backup (the newest by default) into the database, with the app tier stopped meanwhile.
    Restore(RestoreArgs),
    /// Open a shell on a host (or run one command there) with the inventory's SSH settings: user, key, known_hosts, bastion.
    Ssh(SshArgs),
    /// Print the journal of a host's services (every service of its roles, or one), or of every host of a role.
    Logs(LogsArgs),
    /// Run a command as root on a host, or on every host of a role in parallel, one block of output per host.
    Exec(ExecArgs),
    /// Run a one-off app command (`python manage.py createsuperuser`) on an app host, in the current release, as the app's user with its environment; interactive from a terminal.
    Run(RunArgs),
    /// Draw the topology from the clients inward: the virtual IP, each tier, every flow the firewall allows.
    Diagram(DiagramArgs),
    /// Print the inventory's JSON schema, for editors: `# yaml-language-server: $schema=infra.schema.json`.
    Schema,
    /// Print a shell completion script (`source <(infra completions bash)`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): `infra man plan | man -l -`; `--out DIR` writes every page.
    Man(ManArgs),
}

#[derive(clap::Args, Debug)]
pub struct SshArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// The host, by its inventory name.
    #[arg(value_name = "HOST", add = ArgValueCandidates::new(crate::completion::hosts))]
    pub host: String,
    /// A command to run instead of a login shell (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// A host, a role (all its hosts) or `all`.
    #[arg(value_name = "HOST|ROLE", add = ArgValueCandidates::new(crate::completion::hosts_and_roles))]
    pub hosts: String,
    /// One service (`haproxy`, `keepalived`, `nginx`, `gunicorn`, `mariadb`, `backup`, `firewall`); all the host's by default.
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
    /// How many of the last lines of each host's journal.
    #[arg(short = 'n', long, default_value_t = 100, value_name = "N")]
    pub lines: u32,
    /// Keep printing new lines as they come, prefixed by host, until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// A host, a role (all its hosts) or `all`.
    #[arg(value_name = "HOST|ROLE", add = ArgValueCandidates::new(crate::completion::hosts_and_roles))]
    pub hosts: String,
    /// The command, after `--`; run by the host's `sh` as root, as `ssh HOST COMMAND` would.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// An app host, or a role or `all` (its first app host); the first app host by default.
    #[arg(value_name = "HOST|ROLE", add = ArgValueCandidates::new(crate::completion::hosts_and_roles))]
    pub host: Option<String>,
    /// The command, after `--`: its words, run as they are (no shell), in the current release.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// The subcommand's page (`plan`, `backup now`); `infra`'s own by default.
    #[arg(value_name = "SUBCOMMAND")]
    pub command: Vec<String>,
    /// Write `infra.1` and every subcommand's page (`infra-plan.1`, …) into this directory instead.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Where to write the inventory; never over an existing file.
    #[arg(long, value_name = "FILE", default_value = "infra.yml")]
    pub out: PathBuf,
    /// The subnet the hosts are numbered on: balancers from .11, web from .21, app from .31, the database .41, the virtual IP .10.
    #[arg(long, value_name = "CIDR", default_value = "10.20.0.0/24")]
    pub subnet: ipnet::Ipv4Net,
    /// How many load balancers (2 share the virtual IP; 1 works with a warning).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub load_balancers: u8,
    /// How many web (Nginx) hosts.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub web: u8,
    /// How many app (Gunicorn) hosts.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub app: u8,
    /// SSH settings for hosts `infra lab up` boots (its key pair and known_hosts) instead of production's.
    #[arg(long)]
    pub lab: bool,
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Take a consistent, compressed backup of the app's database on its host (under the host lock).
    Now(BackupArgs),
    /// List the backups on the database host and the destination, oldest first, with their drills.
    List(BackupArgs),
    /// A restore drill: load a backup into a scratch server on a throwaway host and check it against its manifest.
    Verify(VerifyArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReleasesArgs {
    #[command(flatten)]
    pub hosts: HostsArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub hosts: HostsArgs,
    /// The release to go back to (`infra releases` lists them); the one before the current by default.
    #[arg(long, value_name = "ID")]
    pub to: Option<String>,
    /// Roll back without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// `text`, or `json`: one document on stdout with the release and each host's switch.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub backup: BackupArgs,
    /// The backup to drill; the newest by default.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Run the scratch server on this inventory host (default: `database.backup.drill_host`).
    #[arg(long, value_name = "HOST", conflicts_with = "lab")]
    pub on: Option<String>,
    /// Boot a temporary lab host for the drill and remove it afterwards (needs root and a lab that is up).
    #[arg(long)]
    pub lab: bool,
}

/// The inventory and how to reach and lock its hosts.
#[derive(clap::Args, Debug)]
pub struct HostsArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Wait up to this long for another run's host locks.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_timeout: u64,
}

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    pub hosts: HostsArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub hosts: HostsArgs,
    /// The backup to load (`infra backup list` shows them); the newest by default.
    #[arg(long, value_name = "ID")]
    pub backup: Option<String>,
    /// Roll the backup forward to this moment (UTC, `YYYY-MM-DD HH:MM:SS`) from the binary logs
    /// (`database.backup.binlogs: true`); the backup is the newest taken before it unless `--backup` says.
    #[arg(long, value_name = "TIME", value_parser = parse_utc_time)]
    pub to_time: Option<String>,
    /// Restore without asking (needed when stdin is not a terminal): it replaces the database's tables.
    #[arg(long)]
    pub yes: bool,
}

#[derive(clap::Args, Debug)]
pub struct DiagramArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// `svg` (laid out by Graphviz's `dot`), `mermaid` (text for a README or a pull request) or `dot`.
    #[arg(long, value_enum, default_value_t = DiagramFormat::Svg)]
    pub format: DiagramFormat,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Ask the hosts (over SSH, as plan does): mark the balancer holding the virtual IP now, and hosts unreachable or drifted.
    #[arg(long)]
    pub live: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiagramFormat {
    Svg,
    Mermaid,
    Dot,
}

#[derive(Subcommand, Debug)]
pub enum LockCommand {
    /// Show which hosts are locked, by whom, from where, since when and for which inventory.
    Status(LockArgs),
    /// End the remote process holding a host's lock, for a holder that hangs. It does not stop the run that took it: make sure that run is gone first.
    Break {
        #[command(flatten)]
        lock: LockArgs,
        /// The hosts whose lock to break (host names, role names or `all`).
        #[arg(required = true, value_name = "HOST|ROLE", add = ArgValueCandidates::new(crate::completion::hosts_and_roles))]
        hosts: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct LockArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Boot one host per inventory host at its address and wait for SSH; hosts already up are left alone.
    Up(LabUpArgs),
    /// Remove every process, mount, namespace, veth and bridge the lab made.
    Down,
    /// List the lab's hosts with their state.
    Status {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Power a host off.
    Stop { host: String },
    /// Power a host on and wait for SSH.
    Start { host: String },
    /// Power a host off and remove its disk, as a dead server; `lab up` boots it fresh.
    Destroy { host: String },
    /// Take a host's network link down.
    Cut { host: String },
    /// Bring a host's network link back up.
    Heal { host: String },
}

#[derive(clap::Args, Debug)]
pub struct LabUpArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// The Debian release of hosts whose inventory entry names none (`lab: {release: ...}`).
    #[arg(long, value_enum, default_value_t = DebianRelease::Trixie)]
    pub release: DebianRelease,
}

/// The Debian releases infra supports (and the lab boots).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebianRelease {
    Bookworm,
    Trixie,
}

impl From<DebianRelease> for crate::debian::Debian {
    fn from(release: DebianRelease) -> Self {
        match release {
            DebianRelease::Bookworm => crate::debian::Debian::Bookworm,
            DebianRelease::Trixie => crate::debian::Debian::Trixie,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct InventoryArg {
    /// The inventory file (default: the one `INFRA_INVENTORY` names, else the nearest `infra.yml` from here up).
    #[arg(short, long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Treat warnings (a single load balancer, say) as errors.
    #[arg(long)]
    pub strict: bool,
    /// Skip the external checkers (haproxy -c, nginx -t, ...).
    #[arg(long)]
    pub no_checkers: bool,
    /// The release the hosts run: a note says when this machine's checkers are another release's.
    #[arg(long, value_enum, value_name = "RELEASE")]
    pub target_release: Option<DebianRelease>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Where to write the rendered tree (created; must be empty if it exists).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Only these hosts (repeatable): a host name, a role name or `all`.
    #[arg(long, value_name = "HOST|ROLE", add = ArgValueCandidates::new(crate::completion::hosts_and_roles))]
    pub limit: Vec<String>,
    /// Exit 0 when there are no changes, 2 when changes are pending, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Save the plan, with the fingerprint of every host's facts, for `infra apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Plan what `infra deploy --source REF` would do: the app hosts, from this branch, tag or commit of `app.source`.
    #[arg(long, value_name = "REF")]
    pub source: Option<String>,
    /// No live view of each host's progress, even on a terminal (plain lines on stderr instead).
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// Say where the time went, on stderr: each phase here, and each host's steps (docs/plan.md).
    #[arg(long)]
    pub timings: bool,
}

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Only these hosts (repeatable): a host name, a role name or `all`.
    #[arg(long, value_name = "HOST|ROLE", add = ArgValueCandidates::new(crate::completion::hosts_and_roles))]
    pub limit: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// A plan saved by `infra plan --out`: applied exactly, refused if any host or the inventory changed since.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<PathBuf>,
    /// The inventory (default: a saved plan's own, else `INFRA_INVENTORY`, else the nearest `infra.yml` from here up).
    #[arg(short, long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Only these hosts or roles (repeatable).
    #[arg(long, value_name = "HOST|ROLE", add = ArgValueCandidates::new(crate::completion::hosts_and_roles))]
    pub limit: Vec<String>,
    #[command(flatten)]
    pub converge: ConvergeArgs,
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// The inventory file (default: the one `INFRA_INVENTORY` names, else the nearest `infra.yml` from here up).
    #[arg(short, long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// The branch, tag or commit to deploy from the git repository `app.source` names (default: its `ref`).
    #[arg(long, value_name = "REF")]
    pub source: Option<String>,
    #[command(flatten)]
    pub converge: ConvergeArgs,
}

/// How apply and deploy change hosts.
#[derive(clap::Args, Debug, Clone)]
pub struct ConvergeArgs {
    /// Apply without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Web and app hosts changed at a time; the others keep serving.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub serial: usize,
    /// Seconds each health check may take to pass.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub health_timeout: u32,
    /// `text` (progress on a terminal, plain lines otherwise) or `json` events on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Plain lines even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Wait up to this long for another run's host locks instead of refusing at once.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub lock_timeout: u64,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// Say where the time went, on stderr: each phase here, and each host's steps (docs/plan.md).
    #[arg(long)]
    pub timings: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// How many hosts to talk to at once.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub parallel: usize,
    /// Seconds to wait for a host's SSH connection.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub connect_timeout: u64,
    /// Add unknown host keys to known_hosts (ssh's accept-new); changed keys are still refused.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

#[derive(clap::Args, Debug)]
pub struct StagesArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `--to-time`: `YYYY-MM-DD HH:MM:SS`, UTC; it reaches the host's
/// `mariadb-binlog --stop-datetime`, so nothing else passes.
fn parse_utc_time(text: &str) -> Result<String, String> {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, format)
        .map(|_| text.to_string())
        .map_err(|_| format!("`{text}` is not a UTC time written `YYYY-MM-DD HH:MM:SS`"))
}

//! What infra does to the app's Gunicorn at run time, and the account it
//! runs as, which the unit, the environment file's group and every app
//! command (import check, migrations) share.

use super::{GUNICORN, GUNICORN_SOCKET};

/// The Gunicorn a release's `.venv` gets when its requirements do not name
/// one: the version Debian 13 ships, so a move from Debian's server to the
/// release's own changes nothing but where it is installed.
pub const DEFAULT_VERSION: &str = "23.0.0";

/// The distribution's name, normalised as requirements compare names.
pub const DISTRIBUTION: &str = "gunicorn";

/// The account Gunicorn and the app's commands run as (Debian's web user,
/// which Nginx also runs as).
pub const USER: &str = "www-data";

/// How an app command's standard streams reach whoever runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    /// Piped (apply's import check and migrations, `infra run` without a
    /// terminal): output is collected, nothing reads a terminal.
    Pipe,
    /// A terminal of its own (`infra run` from a terminal): prompts,
    /// line editing and Ctrl-C reach the command.
    Terminal,
}

/// The command line that runs `words` as [`USER`], in `directory` (a
/// release, or the `current` link), with the environment file
/// `environment` (a shell word: a quoted path or `"$variable"`) read by
/// systemd, which wrote its quoting, and the release's `.venv` first on
/// `PATH`: the environment Gunicorn's workers have. The service manager
/// expands `$NAME` and `${NAME}` in a command it runs, so each `$` is
/// doubled: a word is passed as written, and a secret of the environment
/// file never reaches a command line.
pub fn app_command(directory: &str, environment: &str, words: &[impl AsRef<str>], streams: Streams) -> String {
    use crate::transport::shell_quote as quote;
    let command: Vec<String> = words.iter().map(|word| quote(&word.as_ref().replace('$', "$$"))).collect();
    let streams = match streams {
        Streams::Pipe => "--pipe",
        Streams::Terminal => "--pty",
    };
    format!(
        "systemd-run --quiet --wait --collect {streams} --uid={USER} --gid={USER} \\\n  \
         -p EnvironmentFile={environment} -p EnvironmentFile=-{release_environment} \\\n  \
         -p WorkingDirectory={dir} -E PATH={path} \\\n  \
         /bin/sh -c 'exec \"$@\"' app {command}",
        dir = quote(directory),
        release_environment = quote(&format!("{directory}/{}", crate::desired::release_marks::ENVIRONMENT)),
        path = quote(&format!("{directory}/.venv/bin:/usr/local/bin:/usr/bin:/bin")),
        command = command.join(" "),
    )
}

/// Stops the app (a restore loads the database while nothing writes), its
/// socket first (a connection to a socket left listening would start the
/// app again), and its `processes` (instance units), which write too.
pub fn stop(processes: &[String]) -> String {
    format!("systemctl stop {} {}{}\n", GUNICORN_SOCKET.unit, GUNICORN.unit, units(processes))
}

/// Starts the app again, and its processes.
pub fn start(processes: &[String]) -> String {
    format!("systemctl start {} {}{}\n", GUNICORN_SOCKET.unit, GUNICORN.unit, units(processes))
}

/// A switch's restart of the app's processes onto the release the link
/// points at now (each resolves the link when it starts); nothing
/// without any.
pub fn restart_processes(processes: &[String]) -> String {
    if processes.is_empty() { String::new() } else { format!("systemctl restart{}\n", units(processes)) }
}

fn units(processes: &[String]) -> String {
    processes.iter().map(|unit| format!(" {}", crate::transport::shell_quote(unit))).collect()
}

/// A graceful reload: new workers from the `current` release, in-flight
/// requests finish on the old ones.
pub fn reload() -> String {
    format!("systemctl reload {}\n", GUNICORN.unit)
}

/// What a switch of the `current` link does to the running server: a
/// graceful reload when the new release serves with the same Gunicorn as
/// the old one, else a restart (the master's own code is the old
/// release's, and a reload would keep it).
pub fn switch(from: Option<&str>, to: Option<&str>) -> String {
    if same_server(from, to) { reload() } else { format!("systemctl restart {}\n", GUNICORN.unit) }
}

/// Whether two releases serve with the same Gunicorn: both versions known
/// and equal (`None` is not known, so never the same).
pub fn same_server(from: Option<&str>, to: Option<&str>) -> bool {
    matches!((from, to), (Some(from), Some(to)) if from == to)
}

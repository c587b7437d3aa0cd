//! Shell completion that knows the inventory: host and role names for
//! `--limit`, `ssh`, `logs`, `exec` and `lock break`, read from the
//! inventory the command line names (`-i`) or discovery finds, through
//! clap_complete's dynamic engine (`source <(infra completions bash)`
//! registers it; `commands::answer_completion_if_asked` answers). Completion
//! must never print or fail: an unreadable inventory completes nothing.

use std::ffi::OsString;
use std::path::PathBuf;

use clap_complete::engine::CompletionCandidate;

use crate::inventory::discovery;
use crate::role::Role;

/// The variable that asks `infra` for completions instead of running.
pub const ENVIRONMENT: &str = "INFRA_COMPLETE";

/// The registration script for `shell`: what `infra completions SHELL` prints.
pub fn registration(shell: clap_complete::Shell) -> std::io::Result<Vec<u8>> {
    let mut script = Vec::new();
    let name = shell.to_string();
    if let Some(completer) = clap_complete::env::Shells::builtins().completer(&name) {
        completer.write_registration(ENVIRONMENT, "infra", "infra", "infra", &mut script)?;
    }
    Ok(script)
}

/// Host names.
pub fn hosts() -> Vec<CompletionCandidate> {
    host_names().into_iter().map(CompletionCandidate::new).collect()
}

/// Host names, then role names, then `all`.
pub fn hosts_and_roles() -> Vec<CompletionCandidate> {
    let mut names = host_names();
    names.extend(Role::ALL.iter().map(|role| role.name().to_string()));
    names.push(crate::selection::ALL.to_string());
    names.into_iter().map(CompletionCandidate::new).collect()
}

fn host_names() -> Vec<String> {
    let Some(path) = inventory_path() else { return Vec::new() };
    let Ok(loaded) = crate::inventory::load(&path, &[]) else { return Vec::new() };
    loaded
        .inventory
        .map(|inventory| inventory.hosts.into_iter().map(|host| host.name.value).collect())
        .unwrap_or_default()
}

/// The `-i` on the line being completed (after the `--` the shell's
/// script puts before the words), else discovery's.
fn inventory_path() -> Option<PathBuf> {
    let words: Vec<OsString> = std::env::args_os().skip_while(|word| word != "--").collect();
    let given = given_inventory(&words);
    let environment = std::env::var_os(discovery::ENVIRONMENT).map(PathBuf::from);
    let start = std::env::current_dir().ok()?;
    discovery::choose(given.as_deref(), environment.as_deref(), &start).ok().map(|chosen| chosen.path)
}

fn given_inventory(words: &[OsString]) -> Option<PathBuf> {
    let mut words = words.iter().map(|word| word.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "-i" || word == "--inventory" {
            return words.next().map(|path| PathBuf::from(path.as_ref()));
        }
        if let Some(path) = word.strip_prefix("--inventory=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inventory_on_the_line_is_the_one_completed_from() {
        let words: Vec<OsString> = ["--", "infra", "plan", "-i", "x.yml", "--limit", ""].map(OsString::from).to_vec();
        assert_eq!(given_inventory(&words), Some(PathBuf::from("x.yml")));
        let words: Vec<OsString> = ["--", "infra", "ssh", "--inventory=y.yml", ""].map(OsString::from).to_vec();
        assert_eq!(given_inventory(&words), Some(PathBuf::from("y.yml")));
        assert_eq!(given_inventory(&[OsString::from("infra")]), None);
    }
}

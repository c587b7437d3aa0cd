//! The reference a man page adds to what clap knows: every environment
//! variable infra reads, each subcommand's exit statuses and examples, and
//! the version line. One table here feeds `infra man` (one page per
//! subcommand) and is checked against docs/environment.md by a test, so
//! the two cannot drift apart.

use std::io::Write;

/// The version `--version` prints: the package's, the commit it was built
/// from and when (build.rs; `unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("INFRA_COMMIT"),
    " ",
    env!("INFRA_COMMIT_DATE"),
    ", built ",
    env!("INFRA_BUILD_DATE"),
    ")"
);

/// An environment variable infra reads.
pub struct Variable {
    pub name: &'static str,
    pub meaning: &'static str,
}

/// Every environment variable infra itself reads (the inventory's secrets
/// are named by the inventory: `{env: NAME}`).
pub const ENVIRONMENT: &[Variable] = &[
    Variable {
        name: "INFRA_INVENTORY",
        meaning: "The inventory file when `-i` is not given (before looking for `infra.yml` from the working directory up).",
    },
    Variable {
        name: "INFRA_LOG",
        meaning: "Log filter for stderr, as `tracing`'s `EnvFilter` reads it (`info`, `infra=debug`); overrides `-v`.",
    },
    Variable { name: "NO_COLOR", meaning: "Set to anything: no colour on any stream unless `--color always`." },
    Variable {
        name: "INFRA_ALLOW_PATHS",
        meaning: "Colon-separated absolute directories outside the inventory's repository that its local paths may name (the operator's choice, never the inventory's).",
    },
    Variable {
        name: "INFRA_COMPLETE",
        meaning: "Set by the completion script `infra completions SHELL` prints, to ask infra for completions instead of running.",
    },
    Variable {
        name: "INFRA_LAB_NAME",
        meaning: "Prefix of the lab's bridges and namespaces (default `infralab`): two labs with two names never touch.",
    },
    Variable {
        name: "INFRA_LAB_STATE",
        meaning: "The lab's state directory (default `/var/lib/infra/lab`): its key pair, known_hosts, TLS pair.",
    },
    Variable {
        name: "INFRA_LAB_CACHE",
        meaning: "Where the lab's Debian root filesystems are cached (default `/var/cache/infra/lab`).",
    },
    Variable {
        name: "INFRA_LAB_MIRROR",
        meaning: "The Debian mirror the lab's root filesystems are built from (default: the first in this machine's apt sources).",
    },
    Variable {
        name: "INFRA_SSH_PERSIST",
        meaning: "Set to `0`: no warm connections (plan, releases and `diagram --live` leave each host's SSH master listening for 60 s, in a directory only this user can enter, and the next run in that minute uses it instead of a handshake).",
    },
    Variable {
        name: "XDG_RUNTIME_DIR",
        meaning: "Where warm SSH masters' sockets are kept (`$XDG_RUNTIME_DIR/infra-ssh`; default `/run/user/UID/infra-ssh`, else `infra-ssh-UID` in the temporary directory).",
    },
    Variable {
        name: "XDG_CACHE_HOME",
        meaning: "Where the app's downloaded wheels are cached (`$XDG_CACHE_HOME/infra/wheelhouses`, default `~/.cache`).",
    },
    Variable {
        name: "PIP_INDEX_URL",
        meaning: "The package index the app's wheels and source distributions come from (default `https://pypi.org/simple`): pip reads it, and so does infra when it fetches a source distribution (PEP 691's JSON).",
    },
    Variable {
        name: "PIP_CERT",
        meaning: "A CA file for the package index (a proxy that intercepts TLS): pip's, and curl's when infra fetches a source distribution.",
    },
];

/// What a subcommand's page says beyond its options.
#[derive(Clone, Copy)]
pub struct Page {
    /// The subcommand's words (`["backup", "now"]`); empty for `infra` itself.
    pub command: &'static [&'static str],
    pub exit_status: &'static [(&'static str, &'static str)],
    pub examples: &'static [(&'static str, &'static str)],
}

const USUAL: &[(&str, &str)] =
    &[("0", "Success."), ("1", "Failure: the error says why."), ("2", "The command line was wrong (usage).")];

/// The pages with more to say than [`USUAL`] statuses and no examples.
pub const PAGES: &[Page] = &[
    Page {
        command: &[],
        exit_status: USUAL,
        examples: &[
            ("infra init --lab && infra lab up && infra apply", "Start from a starter inventory on lab hosts."),
            (
                "infra plan --out plan.json && infra apply plan.json",
                "Review exactly what changes, then apply that plan.",
            ),
        ],
    },
    Page {
        command: &["init"],
        exit_status: USUAL,
        examples: &[
            ("infra init", "Write infra.yml (five hosts on 10.20.0.0/24), app/ and static/ here."),
            ("infra init --subnet 192.168.50.0/24 --web 2 --app 3", "Two web and three app hosts on another subnet."),
        ],
    },
    Page {
        command: &["validate"],
        exit_status: &[("0", "The inventory is valid (warnings allowed unless --strict)."), ("1", "It has errors.")],
        examples: &[
            ("infra validate", "Check the infra.yml found from here up, with the services' own checkers."),
            ("infra validate -i inventories/prod.yml --strict --format json", "CI: warnings fail too; JSON on stdout."),
        ],
    },
    Page {
        command: &["plan"],
        exit_status: &[
            ("0", "The plan was made (and, with --detailed-exitcode, nothing would change)."),
            ("1", "An error, an unreachable host, or a host that refuses its plan."),
            ("2", "With --detailed-exitcode: changes are pending."),
        ],
        examples: &[
            ("infra plan", "What apply would change on every host."),
            ("infra plan --limit web --out plan.json", "Only the web hosts, saved for `infra apply plan.json`."),
        ],
    },
    Page {
        command: &["apply"],
        exit_status: &[
            ("0", "Every host converged (or nothing to do)."),
            ("1", "A host failed (it was rolled back), refused, or did not answer."),
        ],
        examples: &[
            ("infra apply", "Plan, ask, then converge stage by stage."),
            ("infra apply plan.json", "Apply a saved plan exactly; refused if any host drifted since."),
        ],
    },
    Page {
        command: &["ssh"],
        exit_status: &[("N", "The remote command's status, as ssh returns it; 255 when ssh could not connect.")],
        examples: &[("infra ssh web-01", "A login shell on web-01."), ("infra ssh db-01 -- uptime", "One command.")],
    },
    Page {
        command: &["logs"],
        exit_status: &[
            ("0", "Every host's journal was read."),
            ("1", "A host did not answer, or its journal could not be read."),
        ],
        examples: &[
            ("infra logs app", "The last 100 lines of every app host's services."),
            ("infra logs web-01 nginx -f", "Follow Nginx on web-01."),
        ],
    },
    Page {
        command: &["exec"],
        exit_status: &[
            ("0", "The command exited 0 on every host."),
            ("1", "It failed on a host, or a host did not answer."),
        ],
        examples: &[
            ("infra exec app -- systemctl status infra-app", "On every app host at once, one block per host."),
            ("infra exec db-01 -- 'df -h /var/lib/mysql'", "One host; quote what the host's shell should read."),
        ],
    },
];

/// The page for `command`, or the usual statuses and no examples.
pub fn page(command: &[&str]) -> Page {
    PAGES
        .iter()
        .find(|page| page.command == command)
        .map_or(Page { command: &[], exit_status: USUAL, examples: &[] }, |page| *page)
}

/// Writes the EXIT STATUS, ENVIRONMENT and EXAMPLES sections of `page` as roff.
pub fn write_sections(page: &Page, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (status, meaning) in page.exit_status {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(status), roff(meaning))?;
    }
    writeln!(out, ".SH ENVIRONMENT")?;
    for variable in ENVIRONMENT {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(variable.name), roff(variable.meaning))?;
    }
    if !page.examples.is_empty() {
        writeln!(out, ".SH EXAMPLES")?;
        for (command, meaning) in page.examples {
            writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(command), roff(meaning))?;
        }
    }
    Ok(())
}

/// Text for a roff line: backslashes and hyphens escaped, and a leading
/// `.` or `'` kept from reading as a request.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') { format!("\\&{escaped}") } else { escaped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_in_the_docs_table() {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/environment.md"))
            .expect("docs/environment.md");
        for variable in ENVIRONMENT {
            assert!(
                docs.contains(&format!("| `{}` |", variable.name)),
                "{} is not in docs/environment.md",
                variable.name
            );
        }
    }

    #[test]
    fn roff_text_cannot_start_a_request() {
        assert_eq!(roff(".hidden -x"), "\\&.hidden \\-x");
        assert_eq!(roff("a\\b"), "a\\eb");
    }

    #[test]
    fn a_page_without_its_own_entry_has_the_usual_statuses() {
        let page = page(&["lock", "status"]);
        assert_eq!(page.exit_status.len(), USUAL.len());
        assert!(page.examples.is_empty());
        assert_eq!(super::page(&["plan"]).exit_status[2].0, "2");
    }
}

//! `infra doctor`: per host, everything that would stop an apply, each
//! with its fix, before one is tried.
//!
//! The checks are plan's own refusals (system, interfaces, ports taken,
//! the firewall cutting infra's SSH) read from the same facts, plus what
//! only a first converge runs into: a login without root, little disk, a
//! clock far from this machine's, dpkg busy. A host that could not be
//! reached gets one check, the connection, with the error that says why
//! (a sudo that would prompt names the sudoers line). Pure: the command
//! gathers the facts and the [`SCRIPT`]'s answer and prints the verdicts.

use serde::Serialize;

use crate::desired::HostState;
use crate::facts::HostFacts;

/// The little doctor reads beyond the facts: free space on `/` (KiB), the
/// host's clock, its Python.
pub const SCRIPT: &str = "df -Pk / | awk 'NR == 2 { print \"D \" $4 }'\necho \"C $(date +%s.%N)\"\n\
     python3 -c 'import sys; print(\"Y %d.%d\" % sys.version_info[:2])' 2>/dev/null || echo 'Y -'\n";

/// Below this much free space on `/`, packages and releases fail to unpack.
const MIN_FREE_KIB: u64 = 1024 * 1024;
/// Clocks further apart than this make backup ages, TLS and logs lie.
const MAX_CLOCK_OFFSET_SECONDS: f64 = 2.0;

/// What [`SCRIPT`] said.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra {
    pub free_kib: Option<u64>,
    /// The host's clock minus this machine's, halfway through the round trip.
    pub clock_offset: Option<f64>,
    pub python: Option<String>,
}

impl Extra {
    /// Reads the script's answer; `local_midpoint` is this machine's clock
    /// (Unix seconds) halfway between sending it and the answer.
    pub fn parse(text: &str, local_midpoint: f64) -> Extra {
        let mut extra = Extra::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("D", free)) => extra.free_kib = free.trim().parse().ok(),
                Some(("C", clock)) => {
                    extra.clock_offset = clock.trim().parse::<f64>().ok().map(|clock| clock - local_midpoint)
                }
                Some(("Y", version)) if version != "-" && version.len() <= 8 => {
                    extra.python = Some(crate::sanitize::printable(version))
                }
                _ => {}
            }
        }
        extra
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warning,
    Blocker,
}

/// One check of one host.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    /// What was found, or what is wrong and how to fix it.
    pub detail: String,
}

fn check(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check { name, verdict, detail: detail.into() }
}

/// The checks of a host that answered.
pub fn checks(host: &HostState, facts: &HostFacts, extra: &Extra) -> Vec<Check> {
    let target = &host.target;
    let through = target.jump.as_ref().map_or_else(String::new, |jump| format!(" through {}", jump.destination));
    let root = match target.privilege {
        crate::transport::Privilege::Sudo => format!("as `{}`{through}, root through `sudo -n`", target.user),
        crate::transport::Privilege::Login => format!("as `{}`{through}", target.user),
    };
    let mut found = vec![check("connection", Verdict::Ok, root)];
    found.push(match crate::plan::os_refusal(facts) {
        Some(refusal) => check("release", Verdict::Blocker, refusal),
        None => check("release", Verdict::Ok, release_name(facts)),
    });
    found.extend(
        crate::plan::interface_refusal(host, facts).map(|refusal| check("interface", Verdict::Blocker, refusal)),
    );
    found.push(match crate::plan::port_refusal(host, facts) {
        Some(refusal) => check("ports", Verdict::Blocker, refusal),
        None if host.ports.is_empty() => check("ports", Verdict::Ok, "none needed"),
        None => check("ports", Verdict::Ok, format!("{} free or held by infra's own services", port_list(host))),
    });
    found.push(match &facts.dpkg_busy {
        Some(process) => check(
            "dpkg",
            Verdict::Warning,
            format!("`{process}` holds dpkg's lock; apply waits for it before installing"),
        ),
        None => check("dpkg", Verdict::Ok, "not busy"),
    });
    found.push(disk(extra.free_kib));
    found.push(clock(extra.clock_offset));
    found.push(match &extra.python {
        Some(version) => check("python", Verdict::Ok, format!("Python {version}")),
        None => check("python", Verdict::Warning, "no `python3` (apply installs it where the app needs it)"),
    });
    found
}

/// The one check of a host that could not be reached.
pub fn unreachable(error: &str) -> Vec<Check> {
    vec![check("connection", Verdict::Blocker, crate::sanitize::multiline(error).into_owned())]
}

fn release_name(facts: &HostFacts) -> String {
    facts.debian().map_or_else(|| "unknown".to_string(), |debian| debian.to_string())
}

fn port_list(host: &HostState) -> String {
    let ports: Vec<String> = host.ports.iter().map(|port| format!(":{} ({})", port.port, port.service)).collect();
    ports.join(", ")
}

fn disk(free_kib: Option<u64>) -> Check {
    match free_kib {
        None => check("disk", Verdict::Warning, "free space on / could not be read"),
        Some(free) if free < MIN_FREE_KIB => check(
            "disk",
            Verdict::Blocker,
            format!("{} free on /; packages and releases need at least 1 GiB: free some space first", gib(free)),
        ),
        Some(free) => check("disk", Verdict::Ok, format!("{} free on /", gib(free))),
    }
}

fn gib(kib: u64) -> String {
    format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0))
}

fn clock(offset: Option<f64>) -> Check {
    match offset {
        None => check("clock", Verdict::Warning, "the host's clock could not be read"),
        Some(offset) if offset.abs() > MAX_CLOCK_OFFSET_SECONDS => check(
            "clock",
            Verdict::Warning,
            format!(
                "{offset:+.1} s from this machine's: backup ages and TLS checks go by it; run an NTP client (`apt-get install systemd-timesyncd`)"
            ),
        ),
        Some(offset) => check("clock", Verdict::Ok, format!("{offset:+.1} s from this machine's")),
    }
}

/// Whether any host has a check that would stop an apply.
pub fn any_blocker<'a>(hosts: impl IntoIterator<Item = &'a Vec<Check>>) -> bool {
    hosts.into_iter().flatten().any(|check| check.verdict == Verdict::Blocker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_answer_is_read_and_the_clock_compared_at_the_midpoint() {
        let extra = Extra::parse("D 5242880\nC 1000.5\nY 3.13\n", 1000.0);
        assert_eq!(extra, Extra { free_kib: Some(5_242_880), clock_offset: Some(0.5), python: Some("3.13".into()) });
        assert_eq!(Extra::parse("Y -\nD x\n", 0.0), Extra::default());
    }

    #[test]
    fn little_disk_blocks_and_a_far_clock_warns() {
        assert_eq!(disk(Some(512 * 1024)).verdict, Verdict::Blocker);
        assert_eq!(disk(Some(4 * 1024 * 1024)).detail, "4.0 GiB free on /");
        assert_eq!(clock(Some(-30.0)).verdict, Verdict::Warning);
        assert_eq!(clock(Some(0.3)).verdict, Verdict::Ok);
    }
}

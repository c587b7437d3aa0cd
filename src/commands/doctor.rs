//! `infra doctor`: connect to every host, read its facts and the doctor's
//! few extra lines, and print [`crate::doctor`]'s verdicts per host. Exits
//! 1 when any host has something that would stop an apply.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::{DoctorArgs, Format};
use crate::desired::HostState;
use crate::diagnostic::Style;
use crate::doctor::{self, Check, Extra, Verdict};
use crate::facts::{self, Connected};
use crate::report::Silent;

/// `style` is stderr's (diagnostics), `stdout_style` the checks' own.
pub fn run(args: &DoctorArgs, style: Style, stdout_style: Style) -> anyhow::Result<ExitCode> {
    super::with_rendered(&super::inventory_of(&args.inventory)?, false, style, |_, rendered| {
        let hosts = super::limited(rendered.state.hosts, &args.limit)?;
        let runtime = super::runtime()?;
        let verdicts = runtime.block_on(examine(&hosts, args));
        print(&hosts, &verdicts, args.format, stdout_style)?;
        Ok(if doctor::any_blocker(verdicts.values()) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    })
}

/// Every host's checks, by name.
async fn examine(hosts: &[HostState], args: &DoctorArgs) -> BTreeMap<String, Vec<Check>> {
    let settings = super::transport_settings(&args.connection);
    let connected = facts::connect(&facts::targets_of(hosts), settings, args.connection.parallel, &Silent).await;
    let gathered = facts::read(hosts, &connected, args.connection.parallel, &Silent).await;
    let extras = extras(&connected).await;
    connected.close().await;
    let mut verdicts: BTreeMap<String, Vec<Check>> =
        gathered.unreachable.iter().map(|host| (host.host.clone(), doctor::unreachable(&host.error))).collect();
    for host in hosts {
        if let Some(facts) = gathered.facts.get(&host.name) {
            let extra = extras.get(&host.name).cloned().unwrap_or_default();
            verdicts.insert(host.name.clone(), doctor::checks(host, facts, &extra));
        }
    }
    verdicts
}

/// The doctor's script on every connected host at once.
async fn extras(connected: &Connected) -> BTreeMap<String, Extra> {
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |elapsed| elapsed.as_secs_f64());
    let runs = connected.connections.iter().map(|(name, connection)| async move {
        let sent = now();
        let answer = connection.run_script(doctor::SCRIPT).await.unwrap_or_default();
        (name.clone(), Extra::parse(&answer, (sent + now()) / 2.0))
    });
    futures_util::future::join_all(runs).await.into_iter().collect()
}

fn print(
    hosts: &[HostState],
    verdicts: &BTreeMap<String, Vec<Check>>,
    format: Format,
    style: Style,
) -> anyhow::Result<()> {
    if format == Format::Json {
        let hosts: Vec<_> = hosts
            .iter()
            .map(|host| serde_json::json!({ "host": host.name, "checks": verdicts.get(&host.name) }))
            .collect();
        stdoutln!("{}", serde_json::to_string_pretty(&serde_json::json!({ "version": 1, "hosts": hosts }))?);
        return Ok(());
    }
    let (red, yellow, green, reset) =
        if style == Style::Colored { ("\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[0m") } else { ("", "", "", "") };
    for host in hosts {
        stdoutln!("{} ({})", host.name, host.address);
        for check in verdicts.get(&host.name).into_iter().flatten() {
            let (mark, color) = match check.verdict {
                Verdict::Ok => ("ok", green),
                Verdict::Warning => ("warning", yellow),
                Verdict::Blocker => ("blocker", red),
            };
            stdoutln!("  {color}{mark:<8}{reset}{:<11}{}", check.name, crate::sanitize::multiline(&check.detail));
        }
    }
    let blockers = verdicts.values().flatten().filter(|check| check.verdict == Verdict::Blocker).count();
    let hosts_blocked = verdicts.values().filter(|checks| doctor::any_blocker([*checks])).count();
    if blockers == 0 {
        stderrln!("doctor: nothing stops an apply on {} hosts", hosts.len());
    } else {
        stderrln!("doctor: {blockers} blockers on {hosts_blocked} of {} hosts; each says how to fix it", hosts.len());
    }
    Ok(())
}

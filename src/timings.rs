//! Where a run spent its time (`--timings`): the phases on this machine
//! (loading, checking and rendering the inventory, planning) and, per
//! host, each step its reporter announced (connecting, reading facts,
//! every apply step, the health checks) with its wall-clock length. The
//! run's [`Reporter`] is wrapped ([`Timed`]), so neither the facts reader
//! nor the executor keeps a clock of its own; the table is computed from
//! the marks by a pure function ([`Timings::report`]).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::report::Reporter;

/// The marks of one run.
pub struct Timings {
    started: Instant,
    phases: Mutex<Vec<(String, Duration)>>,
    /// Per host, each step's name and when it began; `done`/`failed` end the last.
    marks: Mutex<Vec<(String, String, Instant)>>,
}

impl Default for Timings {
    fn default() -> Self {
        Timings { started: Instant::now(), phases: Mutex::default(), marks: Mutex::default() }
    }
}

/// How long each step took on one host, in the order the steps came.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostTimes {
    pub host: String,
    pub steps: Vec<(String, f64)>,
}

/// The whole breakdown, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub total: f64,
    pub phases: Vec<(String, f64)>,
    pub hosts: Vec<HostTimes>,
}

/// The marks that end a host's last step without starting another.
const END: &str = "";

impl Timings {
    /// Runs `work` as the phase `name`.
    pub fn phase<T>(&self, name: &str, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        self.record(name, started.elapsed());
        result
    }

    /// Since the run began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records a phase measured elsewhere.
    pub fn record(&self, name: &str, took: Duration) {
        lock(&self.phases).push((name.to_string(), took));
    }

    fn mark(&self, host: &str, step: &str) {
        lock(&self.marks).push((host.to_string(), step.to_string(), Instant::now()));
    }

    /// The breakdown so far.
    pub fn report(&self) -> Report {
        let phases = lock(&self.phases).iter().map(|(name, took)| (name.clone(), took.as_secs_f64())).collect();
        let marks = lock(&self.marks).clone();
        Report { total: self.started.elapsed().as_secs_f64(), phases, hosts: host_times(&marks) }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Each host's steps, each lasting until that host's next mark; hosts in
/// the order they were first marked. A step repeated (apply's health
/// check after a reload) adds up.
fn host_times(marks: &[(String, String, Instant)]) -> Vec<HostTimes> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_host: BTreeMap<&str, Vec<(&str, Instant)>> = BTreeMap::new();
    for (host, step, at) in marks {
        if !order.contains(&host.as_str()) {
            order.push(host);
        }
        by_host.entry(host).or_default().push((step, *at));
    }
    order
        .into_iter()
        .map(|host| {
            let marks = &by_host[host];
            let mut steps: Vec<(String, f64)> = Vec::new();
            for pair in marks.windows(2) {
                let ((step, began), (_, ended)) = (pair[0], pair[1]);
                if step == END {
                    continue;
                }
                let took = ended.duration_since(began).as_secs_f64();
                match steps.iter_mut().find(|(name, _)| name == step) {
                    Some((_, total)) => *total += took,
                    None => steps.push((step.to_string(), took)),
                }
            }
            HostTimes { host: host.to_string(), steps }
        })
        .collect()
}

/// The text `--timings` prints on stderr: the phases, then a table of each
/// host's steps, with the slowest host of each step last.
pub fn render_text(report: &Report) -> String {
    let mut out = format!("timings: {:.3} s in all\n", report.total);
    for (name, seconds) in &report.phases {
        let _ = writeln!(out, "  {name:<28} {seconds:>8.3} s");
    }
    let mut columns: Vec<&str> = Vec::new();
    for host in &report.hosts {
        for (step, _) in &host.steps {
            if !columns.contains(&step.as_str()) {
                columns.push(step);
            }
        }
    }
    if columns.is_empty() {
        return out;
    }
    let width = |step: &str| step.len().max(8);
    let _ = write!(out, "  {:<16}", "host (s)");
    for step in &columns {
        let _ = write!(out, " {step:>w$}", w = width(step));
    }
    out.push('\n');
    for host in &report.hosts {
        let _ = write!(out, "  {:<16}", host.host);
        for step in &columns {
            let cell = host.steps.iter().find(|(name, _)| name == step).map(|(_, seconds)| format!("{seconds:.3}"));
            let _ = write!(out, " {:>w$}", cell.unwrap_or_else(|| "-".into()), w = width(step));
        }
        out.push('\n');
    }
    let _ = write!(out, "  {:<16}", "slowest");
    for step in &columns {
        let slowest = report
            .hosts
            .iter()
            .filter_map(|host| host.steps.iter().find(|(name, _)| name == step).map(|(_, seconds)| *seconds))
            .fold(0.0_f64, f64::max);
        let _ = write!(out, " {:>w$}", format!("{slowest:.3}"), w = width(step));
    }
    out.push('\n');
    out
}

/// A reporter that marks every step for [`Timings`] and passes it on.
pub struct Timed<'a> {
    pub inner: &'a dyn Reporter,
    pub timings: &'a Timings,
}

impl Reporter for Timed<'_> {
    fn stage(&self, role: &str, hosts: &[String]) {
        self.inner.stage(role, hosts);
    }
    fn step(&self, host: &str, step: &str) {
        self.timings.mark(host, step);
        self.inner.step(host, step);
    }
    fn done(&self, host: &str, summary: &str) {
        self.timings.mark(host, END);
        self.inner.done(host, summary);
    }
    fn failed(&self, host: &str, step: &str, error: &str) {
        self.timings.mark(host, END);
        self.inner.failed(host, step, error);
    }
    fn finish(&self) {
        self.inner.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_lasts_until_the_hosts_next_mark() {
        let start = Instant::now();
        let at = |millis: u64| start + Duration::from_millis(millis);
        let marks = vec![
            ("a".to_string(), "connecting".to_string(), at(0)),
            ("b".to_string(), "connecting".to_string(), at(0)),
            ("a".to_string(), "reading facts".to_string(), at(100)),
            ("b".to_string(), "reading facts".to_string(), at(300)),
            ("a".to_string(), END.to_string(), at(150)),
            ("b".to_string(), END.to_string(), at(400)),
        ];
        let times = host_times(&marks);
        let seconds: Vec<(&str, Vec<f64>)> = times
            .iter()
            .map(|host| {
                (host.host.as_str(), host.steps.iter().map(|(_, seconds)| (seconds * 1000.0).round()).collect())
            })
            .collect();
        assert_eq!(seconds, [("a", vec![100.0, 50.0]), ("b", vec![300.0, 100.0])]);
        let text = render_text(&Report { total: 0.5, phases: vec![("plan".into(), 0.001)], hosts: times });
        assert_eq!(
            text,
            "timings: 0.500 s in all\n  plan                            0.001 s\n  host (s)         connecting reading facts\n  a                     0.100         0.050\n  b                     0.300         0.100\n  slowest               0.300         0.100\n"
        );
    }
}

//! How infra tells the operator what it is doing on each host: apply's
//! stages and steps, and plan's facts being read. Callers only call a
//! [`Reporter`]; this is the one module that touches indicatif.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// What the executor reports, in order, per host.
pub trait Reporter: Send + Sync {
    fn stage(&self, role: &str, hosts: &[String]);
    fn step(&self, host: &str, step: &str);
    fn done(&self, host: &str, summary: &str);
    fn failed(&self, host: &str, step: &str, error: &str);
    fn finish(&self) {}
}

/// Picks apply's reporter: JSON events, a live progress view on a
/// terminal, or plain lines otherwise.
pub fn reporter(json: bool, progress: bool) -> Box<dyn Reporter> {
    if json {
        Box::new(JsonReporter)
    } else if progress && std::io::stderr().is_terminal() {
        Box::new(ProgressReporter::default())
    } else {
        Box::new(PlainReporter { steps: true })
    }
}

/// Picks the reporter of reading facts (plan, `diagram --live`): a line per
/// host with its current step on a terminal; otherwise one plain line per
/// host when it is read, so a CI log shows how far a slow plan got. Never
/// on stdout, which holds the plan.
pub fn facts_reporter(progress: bool) -> Box<dyn Reporter> {
    if progress && std::io::stderr().is_terminal() {
        Box::new(ProgressReporter::default())
    } else {
        Box::new(PlainReporter { steps: false })
    }
}

/// Reports nothing: apply reads facts before its own reporter starts.
pub struct Silent;

impl Reporter for Silent {
    fn stage(&self, _: &str, _: &[String]) {}
    fn step(&self, _: &str, _: &str) {}
    fn done(&self, _: &str, _: &str) {}
    fn failed(&self, _: &str, _: &str, _: &str) {}
}

/// Lines on stderr; `steps: false` keeps only each host's outcome, and
/// of a failure nothing: reading facts, the command reports the hosts
/// that did not answer once, after the plan.
pub struct PlainReporter {
    pub steps: bool,
}

impl Reporter for PlainReporter {
    fn stage(&self, role: &str, hosts: &[String]) {
        stderrln!("stage {role}: {}", hosts.join(", "));
    }
    fn step(&self, host: &str, step: &str) {
        if self.steps {
            stderrln!("  {host}: {step}");
        }
    }
    fn done(&self, host: &str, summary: &str) {
        stderrln!("  {host}: done ({summary})");
    }
    fn failed(&self, host: &str, step: &str, error: &str) {
        if self.steps {
            stderrln!("  {host}: FAILED at {step}: {}", crate::sanitize::multiline(error));
        }
    }
}

/// One JSON object per line on stdout, for CI.
pub struct JsonReporter;

impl JsonReporter {
    fn emit(value: serde_json::Value) {
        stdoutln!("{value}");
    }
}

impl Reporter for JsonReporter {
    fn stage(&self, role: &str, hosts: &[String]) {
        Self::emit(serde_json::json!({"event": "stage", "role": role, "hosts": hosts}));
    }
    fn step(&self, host: &str, step: &str) {
        Self::emit(serde_json::json!({"event": "step", "host": host, "step": step}));
    }
    fn done(&self, host: &str, summary: &str) {
        Self::emit(serde_json::json!({"event": "done", "host": host, "summary": summary}));
    }
    fn failed(&self, host: &str, step: &str, error: &str) {
        Self::emit(serde_json::json!({"event": "failed", "host": host, "step": step, "error": error}));
    }
}

/// A line per host under its stage, showing the current step.
#[derive(Default)]
pub struct ProgressReporter {
    bars: MultiProgress,
    hosts: Mutex<Vec<(String, ProgressBar)>>,
}

impl ProgressReporter {
    fn bar(&self, host: &str) -> ProgressBar {
        let mut hosts = self.hosts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, bar)) = hosts.iter().find(|(name, _)| name == host) {
            return bar.clone();
        }
        let bar = self.bars.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("    {spinner} {prefix:<12} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(host.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        hosts.push((host.to_string(), bar.clone()));
        bar
    }
}

impl Reporter for ProgressReporter {
    fn stage(&self, role: &str, hosts: &[String]) {
        let _ = self.bars.println(format!("stage {role}: {}", hosts.join(", ")));
    }
    fn step(&self, host: &str, step: &str) {
        self.bar(host).set_message(step.to_string());
    }
    fn done(&self, host: &str, summary: &str) {
        self.bar(host).finish_with_message(format!("done ({summary})"));
    }
    fn failed(&self, host: &str, step: &str, error: &str) {
        self.bar(host).abandon_with_message(format!(
            "FAILED at {step}: {}",
            crate::sanitize::printable(error.lines().next().unwrap_or_default())
        ));
    }
    fn finish(&self) {
        let _ = self.bars.clear();
    }
}

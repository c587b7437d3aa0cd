//! How apply tells the operator what it is doing. The executor only calls a
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

/// Picks the reporter: JSON events, a live progress view on a terminal, or
/// plain lines otherwise.
pub fn reporter(json: bool, progress: bool) -> Box<dyn Reporter> {
    if json {
        Box::new(JsonReporter)
    } else if progress && std::io::stderr().is_terminal() {
        Box::new(ProgressReporter::default())
    } else {
        Box::new(PlainReporter)
    }
}

pub struct PlainReporter;

impl Reporter for PlainReporter {
    fn stage(&self, role: &str, hosts: &[String]) {
        eprintln!("stage {role}: {}", hosts.join(", "));
    }
    fn step(&self, host: &str, step: &str) {
        eprintln!("  {host}: {step}");
    }
    fn done(&self, host: &str, summary: &str) {
        eprintln!("  {host}: done ({summary})");
    }
    fn failed(&self, host: &str, step: &str, error: &str) {
        eprintln!("  {host}: FAILED at {step}: {error}");
    }
}

/// One JSON object per line on stdout, for CI.
pub struct JsonReporter;

impl JsonReporter {
    fn emit(value: serde_json::Value) {
        println!("{value}");
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
        self.bar(host).abandon_with_message(format!("FAILED at {step}: {}", error.lines().next().unwrap_or_default()));
    }
    fn finish(&self) {
        let _ = self.bars.clear();
    }
}

//! An in-memory transport for tests: every script is recorded with the host
//! it ran on, and a responder decides what each answers. Apply, releases
//! and backups are tested on it without a host, root or a second.

use std::sync::{Arc, Mutex};

use super::{Connector, Remote, Target, TransportError};

/// What a host answers to a script: its stdout, or the stderr of a failure.
pub(crate) type Responder = dyn Fn(&str, &str) -> Result<String, String> + Send + Sync;

/// The connector: each `open` gives a remote that records into the same log.
#[derive(Clone)]
pub(crate) struct Fake {
    scripts: Arc<Mutex<Vec<(String, String)>>>,
    respond: Arc<Responder>,
}

impl Fake {
    /// `respond(host, script)` answers each script.
    pub(crate) fn new(respond: impl Fn(&str, &str) -> Result<String, String> + Send + Sync + 'static) -> Fake {
        Fake { scripts: Arc::default(), respond: Arc::new(respond) }
    }

    /// Every script run so far, in order, as (host, script).
    pub(crate) fn scripts(&self) -> Vec<(String, String)> {
        self.scripts.lock().expect("the fake's log").clone()
    }

    /// [`Fake::scripts`] named by the step on their first line (`# infra
    /// step: …`), or whole when they have none.
    pub(crate) fn steps(&self) -> Vec<(String, String)> {
        self.scripts()
            .into_iter()
            .map(|(host, script)| {
                let first = script.lines().next().unwrap_or_default();
                let step = first.strip_prefix("# infra step: ").map_or_else(|| script.clone(), str::to_string);
                (host, step)
            })
            .collect()
    }

    /// A connection to `host`, as `open` would give it.
    pub(crate) fn remote(&self, host: &str) -> FakeRemote {
        FakeRemote { host: host.to_string(), fake: self.clone() }
    }
}

pub(crate) struct FakeRemote {
    host: String,
    fake: Fake,
}

impl Connector for Fake {
    type Remote = FakeRemote;

    async fn open(&self, target: &Target) -> Result<FakeRemote, TransportError> {
        Ok(self.remote(&target.name))
    }
}

impl Remote for FakeRemote {
    async fn run_script(&self, script: &str) -> Result<String, TransportError> {
        self.fake.scripts.lock().expect("the fake's log").push((self.host.clone(), script.to_string()));
        (self.fake.respond)(&self.host, script).map_err(|stderr| TransportError::Script {
            host: self.host.clone(),
            status: "exit status: 1".into(),
            stderr,
        })
    }

    /// `read` runs here and its answer is what `write`, run on `to`, is
    /// said to have been fed: both are recorded.
    async fn stream_to(&self, read: &str, to: &FakeRemote, write: &str) -> Result<u64, TransportError> {
        let read = self.run_script(read).await?;
        to.run_script(write).await?;
        Ok(read.len() as u64)
    }

    async fn close(self) {}
}

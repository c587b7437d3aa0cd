//! Gathering facts from many hosts at once: one connection and one script
//! per host, at most `parallel` hosts in flight. A host that cannot be
//! reached or answers garbage is reported by name; the others still count.
//!
//! Plan reads each host as soon as it is connected. Apply connects every
//! host first ([`connect`], then [`read`]) so it can take its host locks in
//! between, over the same connections: the facts its plan is made from are
//! then read under the lock, at no extra round trip.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::Unreachable;
use super::{FactsError, HostFacts, parse, script};
use crate::desired::HostState;
use crate::report::Reporter;
use crate::transport::{Connection, Settings, Target, TransportError};

pub struct Gathered {
    pub facts: BTreeMap<String, HostFacts>,
    pub unreachable: Vec<Unreachable>,
}

/// Open connections, by host name, and the hosts that could not be reached.
pub struct Connected {
    pub connections: BTreeMap<String, Connection>,
    pub unreachable: Vec<Unreachable>,
}

impl Connected {
    pub async fn close(self) {
        futures_util::future::join_all(self.connections.into_values().map(Connection::close)).await;
    }
}

/// Gathers the facts of every host in `hosts`, each host read as soon as
/// it is connected: a plan takes no lock, so no host waits for the slowest
/// handshake before its script starts.
pub async fn gather(hosts: &[HostState], settings: Settings, parallel: usize, reporter: &dyn Reporter) -> Gathered {
    let permits = Semaphore::new(parallel.max(1));
    let each = hosts.iter().map(|host| {
        let (permits, settings) = (&permits, &settings);
        async move {
            let _permit = permits.acquire().await;
            reporter.step(&host.name, "connecting");
            tracing::info!(host = %host.name, "connecting");
            let opened = Connection::open(&host.target, settings).await;
            let connection = connected_or_unreachable(&host.name, opened, reporter)?;
            let facts = read_one(host, &connection, reporter).await;
            connection.close().await;
            facts.map(|facts| (host.name.clone(), facts))
        }
    });
    let mut gathered = Gathered { facts: BTreeMap::new(), unreachable: Vec::new() };
    for result in futures_util::future::join_all(each).await {
        match result {
            Ok((host, facts)) => {
                gathered.facts.insert(host, facts);
            }
            Err(unreachable) => gathered.unreachable.push(unreachable),
        }
    }
    gathered
}

/// The targets of `hosts`, in their order.
pub fn targets_of(hosts: &[HostState]) -> Vec<Target> {
    hosts.iter().map(|host| host.target.clone()).collect()
}

/// Connects to every target, `parallel` at a time.
pub async fn connect(targets: &[Target], settings: Settings, parallel: usize, reporter: &dyn Reporter) -> Connected {
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for target in targets.iter().cloned() {
        reporter.step(&target.name, "connecting");
        let (permits, settings) = (Arc::clone(&permits), settings.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            tracing::info!(host = %target.name, "connecting");
            let connection = Connection::open(&target, &settings).await;
            (target.name, connection)
        });
    }
    let mut connected = Connected { connections: BTreeMap::new(), unreachable: Vec::new() };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((host, opened)) => match connected_or_unreachable(&host, opened, reporter) {
                Ok(connection) => {
                    connected.connections.insert(host, connection);
                }
                Err(unreachable) => connected.unreachable.push(unreachable),
            },
            Err(error) => connected.unreachable.push(Unreachable::new("?".into(), &error.to_string())),
        }
    }
    let order = |name: &str| targets.iter().position(|target| target.name == name);
    connected.unreachable.sort_by_key(|unreachable| order(&unreachable.host));
    connected
}

/// Reads the facts of every connected host, `parallel` at a time.
pub async fn read(hosts: &[HostState], connected: &Connected, parallel: usize, reporter: &dyn Reporter) -> Gathered {
    let permits = Semaphore::new(parallel.max(1));
    let reads = hosts.iter().filter_map(|host| {
        let connection = connected.connections.get(&host.name)?;
        let permits = &permits;
        Some(async move {
            let _permit = permits.acquire().await;
            (host.name.clone(), read_one(host, connection, reporter).await)
        })
    });
    let mut gathered = Gathered { facts: BTreeMap::new(), unreachable: connected.unreachable.clone() };
    for (host, result) in futures_util::future::join_all(reads).await {
        match result {
            Ok(facts) => {
                gathered.facts.insert(host, facts);
            }
            Err(unreachable) => gathered.unreachable.push(unreachable),
        }
    }
    sort_by_host_order(&mut gathered.unreachable, hosts);
    gathered
}

/// Reports how connecting to `host` went; a failure becomes its
/// [`Unreachable`].
fn connected_or_unreachable(
    host: &str,
    opened: Result<Connection, TransportError>,
    reporter: &dyn Reporter,
) -> Result<Connection, Unreachable> {
    match opened {
        Ok(connection) => {
            reporter.step(host, "connected");
            Ok(connection)
        }
        Err(error) => {
            let error = crate::diagnostic::error_chain(&error);
            reporter.failed(host, "connecting", &error);
            Err(Unreachable::new(host.to_string(), &error))
        }
    }
}

/// One connected host's facts, reported as they are read.
async fn read_one(
    host: &HostState,
    connection: &Connection,
    reporter: &dyn Reporter,
) -> Result<HostFacts, Unreachable> {
    reporter.step(&host.name, "reading facts");
    match facts_of(host, connection).await {
        Ok(facts) => {
            reporter.done(&host.name, "facts read");
            Ok(facts)
        }
        Err(error) => {
            let error = crate::diagnostic::error_chain(&error);
            reporter.failed(&host.name, "reading facts", &error);
            Err(Unreachable::new(host.name.clone(), &error))
        }
    }
}

fn sort_by_host_order(unreachable: &mut [Unreachable], hosts: &[HostState]) {
    let order = |name: &str| hosts.iter().position(|host| host.name == name);
    unreachable.sort_by_key(|unreachable| order(&unreachable.host));
}

/// Why one host's facts could not be read.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Facts(#[from] FactsError),
}

async fn facts_of(host: &HostState, connection: &Connection) -> Result<HostFacts, ReadError> {
    let output = connection.run_script(&script(host)).await?;
    tracing::debug!(host = %host.name, lines = output.lines().count(), "facts received");
    Ok(parse(host, &output)?)
}

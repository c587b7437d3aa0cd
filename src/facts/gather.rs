//! Gathering facts from many hosts at once: one connection and one script
//! per host, at most `parallel` hosts in flight. A host that cannot be
//! reached or answers garbage is reported by name; the others still count.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{HostFacts, parse, script};
use crate::desired::HostState;
use crate::plan::Unreachable;
use crate::transport::{Connection, Settings, Target};

pub struct Gathered {
    pub facts: BTreeMap<String, HostFacts>,
    pub unreachable: Vec<Unreachable>,
}

/// Gathers the facts of every host in `hosts`, matched to its target by name.
pub async fn gather(hosts: &[HostState], targets: &[Target], settings: Settings, parallel: usize) -> Gathered {
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for host in hosts {
        let Some(target) = targets.iter().find(|target| target.name == host.name).cloned() else {
            continue;
        };
        let (host, permits) = (host.clone(), Arc::clone(&permits));
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = facts_of(&host, &target, settings).await;
            (host.name, result)
        });
    }
    let mut gathered = Gathered { facts: BTreeMap::new(), unreachable: Vec::new() };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((host, Ok(facts))) => {
                gathered.facts.insert(host, facts);
            }
            Ok((host, Err(error))) => gathered.unreachable.push(Unreachable { host, error }),
            Err(error) => gathered.unreachable.push(Unreachable { host: "?".into(), error: error.to_string() }),
        }
    }
    let order = |name: &str| hosts.iter().position(|host| host.name == name);
    gathered.unreachable.sort_by_key(|unreachable| order(&unreachable.host));
    gathered
}

async fn facts_of(host: &HostState, target: &Target, settings: Settings) -> Result<HostFacts, String> {
    tracing::info!(host = %host.name, "connecting");
    let connection = Connection::open(target, settings).await.map_err(|error| error.to_string())?;
    let output = connection.run_script(&script(host)).await;
    connection.close().await;
    let output = output.map_err(|error| error.to_string())?;
    tracing::debug!(host = %host.name, lines = output.lines().count(), "facts received");
    parse(host, &output).map_err(|error| error.to_string())
}

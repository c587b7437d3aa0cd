//! A restore, as a sequence: choose the backup (the one named; for a point
//! in time, the newest taken before it with a binary log position; else
//! the newest), fetch it to the database host from the destination when
//! only that has it (and only with a right seal), check it, stop the app
//! tier, load it, start the app tier again whatever happened, and wait for
//! each app host's probe.
//!
//! Written against the transport traits, tested on the fake transport;
//! `infra restore` only connects, locks, calls in and prints.

use std::collections::BTreeMap;

use super::Manifest;
use super::store::{self, Holdings, Store, StoreError, Stores, Verb};
use crate::catalog;
use crate::transport::{Remote, TransportError};

/// Which backup a restore is asked for.
#[derive(Clone, Debug, Default)]
pub struct Wanted {
    /// `--backup ID`.
    pub id: Option<String>,
    /// `--to-time 'YYYY-MM-DD HH:MM:SS'` (UTC).
    pub until: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "backup `{id}` on `{store}` has no valid seal: it is not a backup `{database}` took, and infra loads no other"
    )]
    Unsealed { id: String, store: String, database: String },
    /// A copy elsewhere may be good, but without the key its seal cannot be checked.
    #[error("backup `{id}` is only on `{store}`")]
    NeedsKey { id: String, store: String },
    #[error("no store holds a backup `{0}`")]
    NotFound(String),
    #[error("no backup with a binary log position was taken before {0}")]
    NoneBefore(String),
    #[error("there is no backup to restore")]
    Nothing,
    #[error("`{app}` did not answer after the restore")]
    AppDidNotAnswer {
        app: String,
        #[source]
        error: TransportError,
    },
}

/// Why a copy of `id` on `store` is not trusted.
pub fn untrusted(id: &str, store: &Store, stores: &Stores, key: Option<&str>) -> RestoreError {
    match key {
        Some(_) => RestoreError::Unsealed {
            id: id.to_string(),
            store: store.target.name.clone(),
            database: stores.database.target.name.clone(),
        },
        None => RestoreError::NeedsKey { id: id.to_string(), store: store.target.name.clone() },
    }
}

/// Chooses the backup and makes sure the database host has it, copying it
/// from the destination when only that has it; its id. A copy on the
/// destination counts only when its seal is right: one the destination
/// made itself (future-dated, so it would be the newest) is never chosen,
/// and naming it is an error.
pub async fn fetch<R: Remote>(
    remotes: &BTreeMap<String, R>,
    stores: &Stores,
    wanted: &Wanted,
    key: Option<&str>,
    copying: impl Fn(&str, &str),
) -> Result<String, RestoreError> {
    let database = store::remote(remotes, &stores.database)?;
    let local = store::holdings(database, &stores.database).await?;
    let remote = match &stores.destination {
        Some(destination) => {
            Some((destination, store::holdings(store::remote(remotes, destination)?, destination).await?))
        }
        None => None,
    };
    let trusted_remote: Vec<&Manifest> =
        remote.iter().flat_map(|(store, held)| held.trusted(store, stores, key)).collect();
    refuse_untrusted(&local, remote.as_ref().map(|(store, held)| (*store, held)), stores, wanted, key)?;
    let every: Vec<&Manifest> = local.manifests.iter().chain(trusted_remote).collect();
    let chosen = choose(&every, wanted)?;
    let id = store::checked_id(&chosen.id)?.to_string();
    if !local.has(&id) {
        let (source, held) = remote.as_ref().ok_or_else(|| RestoreError::NotFound(id.clone()))?;
        copying(&id, &source.target.name);
        let from = (store::remote(remotes, source)?, *source);
        store::copy(chosen, held, from, (database, &stores.database)).await?;
    }
    Ok(id)
}

/// A backup asked for (or, with nothing on the database host, the newest)
/// that only the destination has and that is not trusted is an error,
/// rather than a silent choice of another.
fn refuse_untrusted(
    local: &Holdings,
    remote: Option<(&Store, &Holdings)>,
    stores: &Stores,
    wanted: &Wanted,
    key: Option<&str>,
) -> Result<(), RestoreError> {
    let Some((store, held)) = remote else { return Ok(()) };
    if let Some(id) = &wanted.id
        && !local.has(id)
        && held.distrusts(id, store, stores, key)
    {
        return Err(untrusted(id, store, stores, key));
    }
    if key.is_none()
        && wanted.id.is_none()
        && local.manifests.is_empty()
        && let Some(newest) = held.manifests.last()
    {
        return Err(untrusted(&newest.id, store, stores, key));
    }
    Ok(())
}

/// The backup a restore loads: the one named; else, for a point in time,
/// the newest taken before it with a binary log position; else the newest.
pub fn choose<'m>(every: &[&'m Manifest], wanted: &Wanted) -> Result<&'m Manifest, RestoreError> {
    if let Some(id) = &wanted.id {
        return every
            .iter()
            .find(|manifest| &manifest.id == id)
            .copied()
            .ok_or_else(|| RestoreError::NotFound(id.clone()));
    }
    let candidates = every.iter().filter(|manifest| match &wanted.until {
        // Ids sort as times: `YYYYMMDDTHHMMSSZ` against `YYYY-MM-DD HH:MM:SS`.
        Some(until) => !manifest.binlog_file.is_empty() && manifest.id.as_str() <= id_of_time(until).as_str(),
        None => true,
    });
    candidates.max_by(|a, b| a.id.cmp(&b.id)).copied().ok_or_else(|| match &wanted.until {
        Some(until) => RestoreError::NoneBefore(until.clone()),
        None => RestoreError::Nothing,
    })
}

/// The backup id of the second `time` (`YYYY-MM-DD HH:MM:SS`) names.
fn id_of_time(time: &str) -> String {
    format!("{}Z", time.replace(['-', ':'], "").replace(' ', "T"))
}

/// An app host a restore stops and starts: its name and its probe's command.
pub struct App {
    pub name: String,
    pub probe: String,
    /// The instance units of the app's processes (`app.processes`).
    pub processes: Vec<String>,
}

/// The restore itself, every host locked: check the backup, stop the app
/// tier, load, start the app tier (also after a failed load) and wait until
/// each app host answers its probe. `say` hears of each phase.
pub async fn load<R: Remote>(
    remotes: &BTreeMap<String, R>,
    database: &Store,
    apps: &[App],
    (id, until): (&str, Option<&str>),
    say: impl Fn(String),
) -> Result<(), RestoreError> {
    let database = store::remote(remotes, database)?;
    store::run(database, Verb::Check(id)).await?;
    let apps: Vec<(&App, &R)> = apps.iter().filter_map(|app| Some((app, remotes.get(&app.name)?))).collect();
    let names: Vec<&str> = apps.iter().map(|(app, _)| app.name.as_str()).collect();
    say(format!("stopping the app tier ({})", names.join(", ")));
    for (app, remote) in &apps {
        remote.run_script(&catalog::gunicorn::stop(&app.processes)).await.map_err(StoreError::from)?;
    }
    say(format!("loading `{id}`"));
    let loaded = store::run(database, Verb::Restore(id, until)).await;
    say("starting the app tier".to_string());
    for (app, remote) in &apps {
        remote.run_script(&catalog::gunicorn::start(&app.processes)).await.map_err(StoreError::from)?;
    }
    for (app, remote) in &apps {
        let wait = catalog::until_it_passes(&app.probe);
        remote
            .run_script(&wait)
            .await
            .map_err(|error| RestoreError::AppDidNotAnswer { app: app.name.clone(), error })?;
    }
    loaded?;
    Ok(())
}

#[cfg(test)]
mod tests;

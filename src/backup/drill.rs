//! A restore drill, as a sequence: choose the backup (the one asked for,
//! else the newest any store holds and infra trusts), stream it from its
//! store to the scratch host through infra, run the drill script there (a
//! MariaDB server of its own, the dump loaded, every table digested), judge
//! what came back against the manifest and record the verdict beside the
//! backup in every store that holds it.
//!
//! A damaged copy or a failed load is a failed drill, not an error: it is
//! what the drill exists to find. Written against the transport traits,
//! tested on the fake transport; `infra backup verify` boots or names the
//! scratch host, connects and prints.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::restore::RestoreError;
use super::store::{self, Store, StoreError, Stores, backup_path};
use super::{DrillRecord, Manifest};
use crate::transport::{Remote, shell_quote};

#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error("cannot reach the drill host `{0}`")]
    NoScratch(String),
    #[error("there is no backup to drill")]
    Nothing,
    #[error("no reachable store holds a backup `{0}`")]
    NotHeld(String),
    #[error("the drill on `{host}` reported something infra cannot read: {said}")]
    Unreadable { host: String, said: String },
    #[error("cannot write the drill's record")]
    Record(#[source] serde_json::Error),
}

impl From<StoreError> for DrillError {
    fn from(error: StoreError) -> DrillError {
        DrillError::Restore(RestoreError::Store(error))
    }
}

/// Drills backup `wanted` (else the newest trusted one) on the host
/// `scratch` names among `remotes`, into database `database`; `key` checks
/// the seals of copies on other stores. `say` hears which backup from where.
pub async fn drill<R: Remote>(
    remotes: &BTreeMap<String, R>,
    stores: &Stores,
    scratch: &str,
    (wanted, database, key): (Option<&str>, &str, Option<&str>),
    say: impl Fn(String),
) -> Result<DrillRecord, DrillError> {
    let scratch_remote = remotes.get(scratch).ok_or_else(|| DrillError::NoScratch(scratch.to_string()))?;
    let holders = trusted_holders(remotes, stores, wanted, key).await?;
    let newest = || holders.iter().flat_map(|(_, _, manifests)| manifests).map(|manifest| manifest.id.as_str()).max();
    let id = store::checked_id(wanted.or_else(newest).ok_or(DrillError::Nothing)?)?.to_string();
    let (source, source_remote, manifest) = holders
        .iter()
        .find_map(|(store, remote, manifests)| Some((*store, *remote, manifests.iter().find(|m| m.id == id)?)))
        .ok_or_else(|| DrillError::NotHeld(id.clone()))?;
    say(format!("restoring `{id}` from `{}` on `{scratch}`", source.target.name));
    let record = run(manifest, (source_remote, source), scratch_remote, scratch, database).await?;
    let json = serde_json::to_string(&record).map_err(DrillError::Record)?;
    for (store, remote, manifests) in &holders {
        if manifests.iter().any(|manifest| manifest.id == id) {
            store::write_file(*remote, &backup_path(store, &id, "drill"), &json).await?;
        }
    }
    Ok(record)
}

/// Each reachable store with the manifests infra trusts there. A drill
/// that passed on a backup a destination planted would vouch for nothing:
/// a copy counts only with a valid seal, and naming one without is an error.
async fn trusted_holders<'a, R: Remote>(
    remotes: &'a BTreeMap<String, R>,
    stores: &'a Stores,
    wanted: Option<&str>,
    key: Option<&str>,
) -> Result<Vec<(&'a Store, &'a R, Vec<Manifest>)>, DrillError> {
    let mut holders = Vec::new();
    for store in stores.all() {
        let Some(remote) = remotes.get(&store.target.name) else { continue };
        let held = store::holdings(remote, store).await?;
        let trusted: Vec<Manifest> = held.trusted(store, stores, key).into_iter().cloned().collect();
        if let Some(id) = wanted
            && held.distrusts(id, store, stores, key)
        {
            return Err(super::restore::untrusted(id, store, stores, key).into());
        }
        holders.push((store, remote, trusted));
    }
    Ok(holders)
}

/// Copies the backup to the scratch host, runs the drill there and judges
/// what came back.
async fn run<R: Remote>(
    manifest: &Manifest,
    source: (&R, &Store),
    scratch: &R,
    host: &str,
    database: &str,
) -> Result<DrillRecord, DrillError> {
    let at = super::format_id(OffsetDateTime::now_utc());
    let directory = scratch
        .run_script("mktemp -d /var/tmp/infra-drill.XXXXXX\n")
        .await
        .map_err(StoreError::from)?
        .trim()
        .to_string();
    let copy = format!(
        "cat > {dir}/backup.sql.gz && [ \"$(sha256sum < {dir}/backup.sql.gz | cut -d' ' -f1)\" = {sum} ] || {{ echo \"the backup's SHA-256 is not the one its manifest records: the file is damaged\" >&2; rm -rf {dir}; exit 1; }}",
        dir = shell_quote(&directory),
        sum = shell_quote(&manifest.sha256)
    );
    let read = format!("cat {}\n", shell_quote(&backup_path(source.1, &manifest.id, "sql.gz")));
    let outcome = match source.0.stream_to(&read, scratch, &copy).await {
        Ok(_) => scratch.run_script(&super::drill_script(&directory, database)).await,
        Err(error) => Err(error),
    };
    let (passed, restore_seconds, problems) = match outcome.map(|output| super::parse_drill(&output)) {
        Ok(Ok(restored)) => {
            let problems = super::compare(manifest, &restored.tables, restored.server == manifest.server);
            (problems.is_empty(), restored.seconds, problems)
        }
        Ok(Err(said)) => return Err(DrillError::Unreadable { host: host.to_string(), said }),
        Err(error) => (false, 0.0, vec![crate::diagnostic::error_chain(&error)]),
    };
    Ok(DrillRecord { backup: manifest.id.clone(), at, host: host.to_string(), passed, restore_seconds, problems })
}

#[cfg(test)]
mod tests;

//! Where backups are kept and how they move: a [`Store`] is a directory of
//! backups on one host (the database host's own, or the destination the
//! inventory names); what it holds is read with plain shell, copies go
//! through infra's own connections (the hosts need no key to each other),
//! and each store is pruned to the inventory's `keep`. The backup script's
//! protocol (`now`, `check ID`, `restore ID [TIME]`) is spoken here too.
//!
//! Written against the transport traits, tested on the fake transport.

use std::collections::BTreeMap;

use super::{DrillRecord, Manifest};
use crate::catalog;
use crate::transport::{Remote, TransportError, shell_quote};

/// A directory of backups on one host.
#[derive(Clone, Debug)]
pub struct Store {
    pub target: crate::transport::Target,
    pub directory: String,
}

/// Where a stack's backups are, and what its schedule promises.
#[derive(Clone, Debug)]
pub struct Stores {
    pub database: Store,
    pub destination: Option<Store>,
    pub keep: u32,
    pub schedule: String,
}

impl Stores {
    /// The database host's store, then the destination's.
    pub fn all(&self) -> impl Iterator<Item = &Store> {
        std::iter::once(&self.database).chain(&self.destination)
    }

    pub fn targets(&self) -> Vec<crate::transport::Target> {
        self.all().map(|store| store.target.clone()).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("`{host}` holds a backup record infra did not write: `{line}`")]
    Foreign { host: String, line: String },
    #[error("`{0}` is not a backup id (they look like `20261123T140000Z`)")]
    NotAnId(String),
    #[error("no connection to `{0}`")]
    NoConnection(String),
    /// The script apply installs with the database is not there yet.
    #[error("`{0}` is not installed")]
    NotInstalled(&'static str),
    #[error("cannot write backup `{id}`'s manifest")]
    Manifest {
        id: String,
        #[source]
        error: serde_json::Error,
    },
}

/// What one store holds: its complete backups and their drill records.
#[derive(Default, Debug)]
pub struct Holdings {
    pub manifests: Vec<Manifest>,
    pub drills: Vec<DrillRecord>,
    /// Each manifest's line as the store holds it, by id: what its seal covers.
    pub raw: BTreeMap<String, String>,
    /// Each manifest's seal, by id ([`super::seal`]).
    pub seals: BTreeMap<String, String>,
}

impl Holdings {
    pub fn has(&self, id: &str) -> bool {
        self.manifests.iter().any(|manifest| manifest.id == id)
    }

    /// The manifests to trust: all of the database host's own, and of
    /// another store's only those whose seal `key` confirms (none without
    /// the key).
    pub fn trusted(&self, store: &Store, stores: &Stores, key: Option<&str>) -> Vec<&Manifest> {
        if store.target.name == stores.database.target.name {
            return self.manifests.iter().collect();
        }
        key.map(|key| super::sealed(&self.manifests, &self.raw, &self.seals, key)).unwrap_or_default()
    }

    /// Whether this store holds backup `id` but not as a copy infra
    /// trusts ([`Holdings::trusted`]): restore and the drill refuse it.
    pub fn distrusts(&self, id: &str, store: &Store, stores: &Stores, key: Option<&str>) -> bool {
        self.has(id) && !self.trusted(store, stores, key).iter().any(|manifest| manifest.id == id)
    }
}

/// The connection to `store`'s host among `remotes`.
pub fn remote<'r, R>(remotes: &'r BTreeMap<String, R>, store: &Store) -> Result<&'r R, StoreError> {
    remotes.get(&store.target.name).ok_or_else(|| StoreError::NoConnection(store.target.name.clone()))
}

/// What a store holds: complete backups (dump and manifest both there),
/// oldest first, and drill records. Read with plain shell, so a destination
/// needs nothing installed.
pub async fn holdings<R: Remote>(remote: &R, store: &Store) -> Result<Holdings, StoreError> {
    let dir = shell_quote(&store.directory);
    let script = format!(
        "for m in {dir}/*.json; do [ -e \"$m\" ] && [ -e \"${{m%.json}}.sql.gz\" ] && printf 'M ' && head -n 1 \"$m\" && \
         {{ [ ! -e \"${{m%.json}}.seal\" ] || {{ printf 'S ' && head -n 1 \"${{m%.json}}.seal\"; }}; }}; done\n\
         for d in {dir}/*.drill; do [ -e \"$d\" ] && printf 'D ' && cat \"$d\"; done\ntrue\n"
    );
    parse_holdings(&remote.run_script(&script).await?, store)
}

/// The lines of [`holdings`]' script: `M` a manifest, `S` the seal of the
/// manifest before it, `D` a drill record. Anything else is refused.
fn parse_holdings(output: &str, store: &Store) -> Result<Holdings, StoreError> {
    let mut held = Holdings::default();
    for line in output.lines().filter(|line| !line.trim().is_empty()) {
        let foreign = || StoreError::Foreign { host: store.target.name.clone(), line: line.to_string() };
        match line.split_at_checked(2) {
            Some(("M ", json)) => {
                let manifest: Manifest = serde_json::from_str(json).map_err(|_| foreign())?;
                held.raw.insert(manifest.id.clone(), json.to_string());
                held.manifests.push(manifest);
            }
            Some(("S ", seal)) => {
                let id = held.manifests.last().map(|manifest| manifest.id.clone()).ok_or_else(foreign)?;
                held.seals.insert(id, seal.trim().to_string());
            }
            Some(("D ", json)) => held.drills.push(serde_json::from_str(json).map_err(|_| foreign())?),
            _ => return Err(foreign()),
        }
    }
    held.manifests.retain(|manifest| super::is_id(&manifest.id));
    held.manifests.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(held)
}

/// Copies to the destination every backup it lacks (the one just taken,
/// and any the timer took since), then prunes it to `keep`; `copied(id)`
/// hears of each copy.
pub async fn ship<R: Remote>(
    remotes: &BTreeMap<String, R>,
    stores: &Stores,
    copied: impl Fn(&str, std::time::Duration),
) -> Result<(), StoreError> {
    let Some(destination) = &stores.destination else { return Ok(()) };
    let (from, to) = (remote(remotes, &stores.database)?, remote(remotes, destination)?);
    let (have, wanted) = (holdings(from, &stores.database).await?, holdings(to, destination).await?);
    for manifest in have.manifests.iter().filter(|manifest| !wanted.has(&manifest.id)) {
        let started = std::time::Instant::now();
        copy(manifest, &have, (from, &stores.database), (to, destination)).await?;
        copied(&manifest.id, started.elapsed());
    }
    prune(to, destination, stores.keep).await
}

/// Copies one backup between stores: the dump streamed through infra, then
/// checked against its manifest there, then the seal, then the manifest,
/// which is what makes a backup count, last.
pub async fn copy<R: Remote>(
    manifest: &Manifest,
    sealed: &Holdings,
    from: (&R, &Store),
    to: (&R, &Store),
) -> Result<(), StoreError> {
    let id = checked_id(&manifest.id)?;
    let (source, target) = (backup_path(from.1, id, "sql.gz"), backup_path(to.1, id, "sql.gz"));
    let partial = backup_path(to.1, id, "partial");
    let write = format!(
        "set -e; umask 077; mkdir -p {dir}; cat > {partial}; [ \"$(sha256sum < {partial} | cut -d' ' -f1)\" = {sum} ] || {{ rm -f {partial}; echo 'the copy does not match its SHA-256' >&2; exit 1; }}; mv {partial} {target}",
        dir = shell_quote(&to.1.directory),
        partial = shell_quote(&partial),
        sum = shell_quote(&manifest.sha256),
        target = shell_quote(&target),
    );
    from.0.stream_to(&format!("cat {}\n", shell_quote(&source)), to.0, &write).await?;
    // The manifest and its seal as the source holds them, byte for byte:
    // the seal covers the line, and a re-serialised one would not match.
    if let Some(seal) = sealed.seals.get(id) {
        write_file(to.0, &backup_path(to.1, id, "seal"), seal).await?;
    }
    let line = match sealed.raw.get(id) {
        Some(raw) => raw.clone(),
        None => serde_json::to_string(manifest).map_err(|error| StoreError::Manifest { id: id.to_string(), error })?,
    };
    write_file(to.0, &backup_path(to.1, id, "json"), &line).await
}

/// Writes one line of text to `path` on the host, atomically.
pub async fn write_file<R: Remote>(remote: &R, path: &str, line: &str) -> Result<(), StoreError> {
    let partial = format!("{path}.partial");
    let script = format!(
        "umask 077\ncat > {partial} <<'INFRA_END_OF_FILE'\n{line}\nINFRA_END_OF_FILE\nmv {partial} {path}\n",
        partial = shell_quote(&partial),
        path = shell_quote(path)
    );
    remote.run_script(&script).await?;
    Ok(())
}

/// Removes a store's oldest backups beyond `keep`, each with its manifest,
/// drill record and seal.
pub async fn prune<R: Remote>(remote: &R, store: &Store, keep: u32) -> Result<(), StoreError> {
    let held = holdings(remote, store).await?;
    let excess = held.manifests.len().saturating_sub(keep as usize);
    let mut script = String::new();
    for manifest in held.manifests.iter().take(excess) {
        let id = checked_id(&manifest.id)?;
        for extension in ["sql.gz", "json", "drill", "seal"] {
            script.push_str(&format!("rm -f {}\n", shell_quote(&backup_path(store, id, extension))));
        }
    }
    if !script.is_empty() {
        remote.run_script(&script).await?;
    }
    Ok(())
}

pub fn backup_path(store: &Store, id: &str, extension: &str) -> String {
    format!("{}/{id}.{extension}", store.directory)
}

pub fn checked_id(id: &str) -> Result<&str, StoreError> {
    if super::is_id(id) { Ok(id) } else { Err(StoreError::NotAnId(id.to_string())) }
}

/// A verb of the backup script apply installs on the database host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb<'a> {
    /// Take a backup; prints its id.
    Now,
    /// Check a backup's dump against its manifest.
    Check(&'a str),
    /// Load a backup, rolled forward to a time when one is given.
    Restore(&'a str, Option<&'a str>),
}

impl Verb<'_> {
    fn arguments(self) -> String {
        match self {
            Verb::Now => "now".to_string(),
            Verb::Check(id) => format!("check {}", shell_quote(id)),
            Verb::Restore(id, None) => format!("restore {}", shell_quote(id)),
            Verb::Restore(id, Some(until)) => format!("restore {} {}", shell_quote(id), shell_quote(until)),
        }
    }
}

/// Runs the backup script with `verb` on the database host; its output.
pub async fn run<R: Remote>(remote: &R, verb: Verb<'_>) -> Result<String, StoreError> {
    let script = catalog::BACKUP_SCRIPT.path;
    let missing = "infra-backup is not installed";
    let command = format!("[ -x {script} ] || {{ echo '{missing}' >&2; exit 3; }}\n{script} {}\n", verb.arguments());
    remote.run_script(&command).await.map_err(|error| match &error {
        TransportError::Script { stderr, .. } if stderr.contains(missing) => StoreError::NotInstalled(script),
        _ => StoreError::Transport(error),
    })
}

#[cfg(test)]
pub(crate) mod tests;

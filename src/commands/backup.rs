//! `infra backup now|list` and `infra restore`: the database's backups,
//! taken and restored by the script apply installs on the database host
//! (`catalog::BACKUP_SCRIPT`), copied to the inventory's destination host
//! through infra's own connections, under the same host locks as apply.
//!
//! A restore stops the app tier first, so nothing writes while the dump is
//! loaded, and starts it again whatever happened. The restore drill
//! (`backup verify`) is in `drill`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::backup::{self, DrillRecord, Manifest};
use crate::catalog;
use crate::cli::{BackupArgs, Format, HostsArgs};
use crate::diagnostic::Style;
use crate::facts;
use crate::inventory::{BACKUP_DIRECTORY, BACKUP_KEEP, BACKUP_SCHEDULE, Inventory};
use crate::lock::{self, Claim};
use crate::report::Silent;
use crate::topology::{self, Role};
use crate::transport::{Connection, Target, TransportError, shell_quote};

/// A directory of backups on one host: the database host's own, or the
/// destination the inventory names.
#[derive(Clone, Debug)]
pub struct Store {
    pub target: Target,
    pub directory: String,
}

/// Where an inventory's backups are, and what its schedule promises.
pub struct Stores {
    pub database: Store,
    pub destination: Option<Store>,
    pub keep: u32,
    pub schedule: String,
}

impl Stores {
    pub fn of(inventory: &Inventory) -> anyhow::Result<Stores> {
        let host =
            topology::hosts_with(inventory, Role::Database).next().context("the inventory has no database host")?;
        let settings = inventory.database.as_ref().and_then(|database| database.backup.as_ref());
        let destination = settings.and_then(|backup| backup.destination.as_ref()).and_then(|destination| {
            let host = inventory.hosts.iter().find(|host| host.name.value == destination.host.value)?;
            Some(Store {
                target: topology::ssh_target(inventory, host),
                directory: destination.directory.value.clone(),
            })
        });
        Ok(Stores {
            database: Store {
                target: topology::ssh_target(inventory, host),
                directory: settings.map_or(BACKUP_DIRECTORY.to_string(), |backup| backup.directory.value.clone()),
            },
            destination,
            keep: settings.map_or(BACKUP_KEEP, |backup| backup.keep.value),
            schedule: settings.map_or(BACKUP_SCHEDULE.to_string(), |backup| backup.schedule.value.clone()),
        })
    }

    /// The database host's store, then the destination's.
    pub fn all(&self) -> impl Iterator<Item = &Store> {
        std::iter::once(&self.database).chain(&self.destination)
    }

    pub fn targets(&self) -> Vec<Target> {
        self.all().map(|store| store.target.clone()).collect()
    }
}

/// What one store holds: its complete backups and their drill records.
#[derive(Default)]
pub struct Holdings {
    pub manifests: Vec<Manifest>,
    pub drills: Vec<DrillRecord>,
    /// Each manifest's line as the store holds it, by id: what its seal covers.
    pub raw: BTreeMap<String, String>,
    /// Each manifest's seal, by id ([`backup::seal`]).
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
        key.map(|key| backup::sealed(&self.manifests, &self.raw, &self.seals, key)).unwrap_or_default()
    }
}

/// The key backups are sealed with, derived from the database password
/// as the database host's script was given it: restore and the drill need
/// it to trust a copy on a destination, and do without one (trusting the
/// database host's own backups only) when the password is not at hand.
pub fn sealing_key(inventory: &Inventory) -> Option<String> {
    let password = inventory.database.as_ref()?.password.resolve(&inventory.files).ok()?;
    Some(backup::sealing_key(password.expose()))
}

/// Why a copy on `store` is not trusted, for an error that names it.
pub fn untrusted(id: &str, store: &Store, stores: &Stores, key: Option<&str>) -> anyhow::Error {
    match key {
        Some(_) => anyhow::anyhow!(
            "backup `{id}` on `{}` has no valid seal: it is not a backup `{}` took, and infra loads no other",
            store.target.name,
            stores.database.target.name
        ),
        None => anyhow::Error::msg(format!("backup `{id}` is only on `{}`", store.target.name)).context(
            super::Hinted {
                message: "infra cannot check its seal without the database password".into(),
                hint: "set the database password as apply has it (`INFRA_DB_PASSWORD`, or its file): the backups' sealing key derives from it".into(),
            },
        ),
    }
}

pub fn now(args: &BackupArgs, style: Style) -> anyhow::Result<ExitCode> {
    let Some((inventory_path, inventory)) = checked(&args.hosts, style)? else { return Ok(ExitCode::FAILURE) };
    let stores = Stores::of(&inventory)?;
    let runtime = super::runtime()?;
    let locked = [stores.database.target.clone()];
    let id = runtime.block_on(under_lock(
        &args.hosts,
        &inventory_path,
        "backup now",
        &locked,
        &stores.targets(),
        async |connections| {
            let database = connection(connections, &stores.database)?;
            let started = std::time::Instant::now();
            let id = run(database, "now").await?.trim().to_string();
            eprintln!(
                "backup: `{id}` taken on `{}` in {:.1} s",
                stores.database.target.name,
                started.elapsed().as_secs_f64()
            );
            ship(connections, &stores).await?;
            Ok(id)
        },
    ))?;
    match args.format {
        Format::Json => println!("{}", serde_json::json!({"version": 1, "backup": id})),
        Format::Text => println!("{id}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies to the destination every backup it lacks (the one just taken,
/// and any the timer took since), then prunes it to `keep`.
async fn ship(connections: &BTreeMap<String, Connection>, stores: &Stores) -> anyhow::Result<()> {
    let Some(destination) = &stores.destination else { return Ok(()) };
    let (from, to) = (connection(connections, &stores.database)?, connection(connections, destination)?);
    let (have, wanted) = (holdings(from, &stores.database).await?, holdings(to, destination).await?);
    for manifest in have.manifests.iter().filter(|manifest| !wanted.has(&manifest.id)) {
        let started = std::time::Instant::now();
        copy(manifest, &have, (from, &stores.database), (to, destination)).await?;
        eprintln!(
            "backup: `{}` copied to `{}:{}` in {:.1} s",
            manifest.id,
            destination.target.name,
            destination.directory,
            started.elapsed().as_secs_f64()
        );
    }
    prune(to, destination, stores.keep).await
}

/// Copies one backup between stores: the dump streamed through infra, then
/// checked against its manifest there, then the manifest, which is what
/// makes a backup count, last.
pub async fn copy(
    manifest: &Manifest,
    sealed: &Holdings,
    from: (&Connection, &Store),
    to: (&Connection, &Store),
) -> anyhow::Result<()> {
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
    let (raw, seal) = (sealed.raw.get(id), sealed.seals.get(id));
    if let Some(seal) = seal {
        write_file(to.0, &backup_path(to.1, id, "seal"), seal).await?;
    }
    match raw {
        Some(raw) => write_file(to.0, &backup_path(to.1, id, "json"), raw).await,
        None => write_file(to.0, &backup_path(to.1, id, "json"), &serde_json::to_string(manifest)?).await,
    }
}

/// Writes one line of text to `path` on the host, atomically.
pub async fn write_file(connection: &Connection, path: &str, line: &str) -> anyhow::Result<()> {
    let partial = format!("{path}.partial");
    let script = format!(
        "umask 077\ncat > {partial} <<'INFRA_END_OF_FILE'\n{line}\nINFRA_END_OF_FILE\nmv {partial} {path}\n",
        partial = shell_quote(&partial),
        path = shell_quote(path)
    );
    connection.run_script(&script).await?;
    Ok(())
}

/// Removes a store's oldest backups beyond `keep`.
async fn prune(connection: &Connection, store: &Store, keep: u32) -> anyhow::Result<()> {
    let held = holdings(connection, store).await?;
    let excess = held.manifests.len().saturating_sub(keep as usize);
    let mut script = String::new();
    for manifest in held.manifests.iter().take(excess) {
        let id = checked_id(&manifest.id)?;
        for extension in ["sql.gz", "json", "drill", "seal"] {
            script.push_str(&format!("rm -f {}\n", shell_quote(&backup_path(store, id, extension))));
        }
    }
    if !script.is_empty() {
        connection.run_script(&script).await?;
    }
    Ok(())
}

/// What a store holds: complete backups (dump and manifest both there),
/// oldest first, and drill records. Read with plain shell, so a destination
/// needs nothing installed.
pub async fn holdings(connection: &Connection, store: &Store) -> anyhow::Result<Holdings> {
    let dir = shell_quote(&store.directory);
    let script = format!(
        "for m in {dir}/*.json; do [ -e \"$m\" ] && [ -e \"${{m%.json}}.sql.gz\" ] && printf 'M ' && head -n 1 \"$m\" && \
         {{ [ ! -e \"${{m%.json}}.seal\" ] || {{ printf 'S ' && head -n 1 \"${{m%.json}}.seal\"; }}; }}; done\n\
         for d in {dir}/*.drill; do [ -e \"$d\" ] && printf 'D ' && cat \"$d\"; done\ntrue\n"
    );
    let output = connection.run_script(&script).await?;
    let mut held = Holdings::default();
    for line in output.lines().filter(|line| !line.trim().is_empty()) {
        let unexpected = || format!("`{}` holds a backup record infra did not write: `{line}`", store.target.name);
        match line.split_at_checked(2) {
            Some(("M ", json)) => {
                let manifest: Manifest = serde_json::from_str(json).with_context(unexpected)?;
                held.raw.insert(manifest.id.clone(), json.to_string());
                held.manifests.push(manifest);
            }
            // A seal follows the manifest it seals.
            Some(("S ", seal)) => {
                let id = held.manifests.last().map(|manifest| manifest.id.clone()).with_context(unexpected)?;
                held.seals.insert(id, seal.trim().to_string());
            }
            Some(("D ", json)) => held.drills.push(serde_json::from_str(json).with_context(unexpected)?),
            _ => bail!(unexpected()),
        }
    }
    held.manifests.retain(|manifest| backup::is_id(&manifest.id));
    held.manifests.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(held)
}

pub fn backup_path(store: &Store, id: &str, extension: &str) -> String {
    format!("{}/{id}.{extension}", store.directory)
}

pub fn checked_id(id: &str) -> anyhow::Result<&str> {
    if backup::is_id(id) { Ok(id) } else { bail!("`{id}` is not a backup id (they look like `20261123T140000Z`)") }
}

pub fn connection<'c>(connections: &'c BTreeMap<String, Connection>, store: &Store) -> anyhow::Result<&'c Connection> {
    connections.get(&store.target.name).with_context(|| format!("no connection to `{}`", store.target.name))
}

/// Runs `body` with every target connected and the lock held on `locked`,
/// then releases it.
pub async fn under_lock<T>(
    args: &HostsArgs,
    inventory: &str,
    command: &str,
    locked: &[Target],
    targets: &[Target],
    body: impl AsyncFnOnce(&BTreeMap<String, Connection>) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let settings = super::transport_settings(&args.connection);
    let mut connected = facts::connect(targets, settings, args.connection.parallel, &Silent).await;
    if let Some(unreachable) = connected.unreachable.first() {
        let error = unreachable.error.clone();
        connected.close().await;
        bail!("{command} changed nothing: {error}");
    }
    let lockable: BTreeMap<String, Connection> =
        locked.iter().filter_map(|target| connected.connections.remove_entry(&target.name)).collect();
    let claim = Claim::here(command, inventory);
    let locks = lock::acquire(&lockable, &claim, Duration::from_secs(args.lock_timeout)).await;
    connected.connections.extend(lockable);
    let locks = match locks {
        Ok(locks) => locks,
        Err(error) => {
            connected.close().await;
            return Err(anyhow::Error::new(error).context(format!("{command} changed nothing: a host is locked")));
        }
    };
    let result = body(&connected.connections).await;
    locks.release().await;
    connected.close().await;
    result
}

/// Runs the backup script with `arguments` on the database host.
pub async fn run(connection: &Connection, arguments: &str) -> anyhow::Result<String> {
    let script = catalog::BACKUP_SCRIPT.path;
    let command =
        format!("[ -x {script} ] || {{ echo 'infra-backup is not installed' >&2; exit 3; }}\n{script} {arguments}\n");
    connection.run_script(&command).await.map_err(|error| match &error {
        TransportError::Script { stderr, .. } if stderr.contains("infra-backup is not installed") => {
            anyhow::Error::new(error).context(super::Hinted {
                message: format!("the database host has no `{script}`"),
                hint: "run `infra apply -i INVENTORY` first: it installs the backup script with the database".into(),
            })
        }
        _ => anyhow::Error::new(error),
    })
}

pub fn checked(args: &HostsArgs, style: Style) -> anyhow::Result<Option<(String, Inventory)>> {
    let mut checked = super::load_and_check(&args.inventory.inventory, false)?;
    if checked.printed_and_valid(style).is_none() {
        return Ok(None);
    }
    let path = std::fs::canonicalize(&args.inventory.inventory)
        .map_or_else(|_| args.inventory.inventory.display().to_string(), |path| path.display().to_string());
    Ok(checked.inventory.take().map(|inventory| (path, inventory)))
}

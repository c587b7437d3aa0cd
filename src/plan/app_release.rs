//! The app's releases in a plan: whether the `current` link switches to
//! the desired release, and which old releases are removed once the host
//! is healthy. Pure, like the rest of the plan.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::HostPlan;
use crate::desired::{DesiredState, HostState, ReleaseChoice, Releases};
use crate::facts::{HostFacts, LinkFact, newest_first};

/// What apply does with an app host's releases.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReleasePlan {
    /// Where releases are unpacked.
    pub directory: String,
    /// The symlink Gunicorn serves through.
    pub link: String,
    /// The release the link points at now, if any.
    pub current: Option<String>,
    /// The release the link will point at; `None` when it stays.
    pub switch_to: Option<String>,
    /// The link's new target (relative to the link's directory).
    pub target: String,
    /// Old releases removed after the host is healthy, oldest first.
    pub prune: Vec<String>,
    /// Whether the release is new to the host: unpacked by this apply, and
    /// removed again by a failed one, so it never counts towards
    /// `keep_releases`.
    #[serde(default)]
    pub new: bool,
    /// How many files a new release unpacks.
    #[serde(default)]
    pub files: usize,
    /// The migration to run before the switch (`app.migrate`): once per
    /// release, on the first host that switches to it, never again when a
    /// host goes back to a release whose migration ran (its schema may be
    /// behind the database's by then, as after any rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<Vec<String>>,
    /// How the release gets its Python packages, when it has none yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<PackagesPlan>,
    /// The releases to add to the host's migration ledger once it
    /// switches: those the fleet migrated (this release among them, when
    /// it migrates) that the host has no record of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record_migrations: Vec<String>,
    /// What apply does with the host's release choice once it is healthy.
    #[serde(default, skip_serializing_if = "ChoicePlan::is_keep")]
    pub choice: ChoicePlan,
    /// In plain words, where the running release's code came from and
    /// where the new one's comes from, when the link switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ReleaseChange>,
    /// The commands run in the release before the host switches to it,
    /// and after it is healthy on it (`app.before_switch`, `after_switch`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_switch: Vec<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_switch: Vec<Vec<String>>,
    /// The shared directories (`app.shared`) a new release links to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
    /// The Gunicorn the switch moves to, when it is not (or not known to
    /// be) the running release's: Gunicorn restarts instead of reloading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerChange>,
    /// The release's static files, published to the web hosts that lack
    /// them before this host (the first to switch) does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<StaticPublish>,
}

/// A release's static files to publish (`app.static`): built or taken
/// from the release by one app host's transaction, written to each web
/// host that lacks them, and the releases no app host keeps any more
/// removed there.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StaticPublish {
    pub release: String,
    /// The web hosts' directory of releases' files.
    pub root: String,
    pub source: crate::desired::StaticSource,
    /// The web hosts that lack the release's files.
    pub to: Vec<String>,
    /// For each web host, the releases' files it removes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prune: BTreeMap<String, Vec<String>>,
}

/// The running release's Gunicorn and the next one's, each a version,
/// [`crate::facts::SYSTEM_SERVER`] for Debian's, or `None` when not known
/// (a range in the requirements, or a `.venv` without one).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerChange {
    pub from: Option<String>,
    pub to: Option<String>,
}

impl std::fmt::Display for ServerChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |server: &Option<String>| match server.as_deref() {
            Some(crate::facts::SYSTEM_SERVER) => "Debian's Gunicorn".to_string(),
            Some(version) => format!("Gunicorn {version}"),
            None => "a Gunicorn of unknown version".to_string(),
        };
        write!(f, "the release serves with {} instead of {}", name(&self.to), name(&self.from))
    }
}

/// What apply does with the host's [`ReleaseChoice`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChoicePlan {
    /// Left as it is.
    #[default]
    Keep,
    /// An explicit deploy of a release the inventory does not name:
    /// recorded, so a plain apply keeps it.
    Record(ReleaseChoice),
    /// The inventory names another release since (or a deploy goes to the
    /// inventory's): forgotten.
    Forget,
}

impl ChoicePlan {
    fn is_keep(&self) -> bool {
        *self == ChoicePlan::Keep
    }
}

/// The running release and the next, described for a reader of the plan.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReleaseChange {
    /// `from ../app at v4 (commit 3f2a9c1e0b7d), which `infra deploy --source v4` put there`.
    pub from: String,
    /// `from ../app at v1 (commit 0a1b2c3d4e5f), the inventory's `app.source``.
    pub to: String,
}

/// How a release's `.venv` is made.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "how")]
pub enum PackagesPlan {
    /// Installed from wheels infra downloads for the host's Python.
    Install {
        /// The requirements file, relative to the release.
        file: String,
        digest: String,
        names: Vec<String>,
        /// Installed beside the file's: [`crate::desired::Requirements::added`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        added: Vec<String>,
        python: String,
        arch: String,
    },
    /// Hard-linked from another release with the same requirements: nothing is installed.
    Reuse { digest: String, from: String },
}

impl PackagesPlan {
    /// What identifies the wheels an install needs: one download serves
    /// every host with the same Python and machine.
    pub fn wheelhouse_key(&self) -> Option<String> {
        match self {
            PackagesPlan::Install { digest, python, arch, .. } => Some(format!("{digest}-py{python}-{arch}")),
            PackagesPlan::Reuse { .. } => None,
        }
    }
}

/// The release plan of a host with releases, and a refusal when the link's
/// path holds something apply must not replace. `None` when nothing is to
/// be done.
pub fn plan_releases(host: &HostState, facts: &HostFacts) -> (Option<ReleasePlan>, Option<String>) {
    let Some(releases) = &host.releases else { return (None, None) };
    if facts.release_link == Some(LinkFact::NotALink) {
        let refusal = format!("`{}` is not a symlink: move it away, infra switches releases through it", releases.link);
        return (None, Some(refusal));
    }
    if let Some(refusal) = unsuitable_python(releases, facts) {
        return (None, Some(refusal));
    }
    let current = facts.release_link.as_ref().and_then(LinkFact::release);
    if let Some(kept) = kept_choice(releases, facts) {
        return (kept_release(releases, facts, &kept.release), None);
    }
    let switch_to = (current.as_deref() != Some(releases.id.as_str())).then(|| releases.id.clone());
    let prune = prunable(&facts.releases, &releases.id, current.as_deref(), &facts.healthy, releases.keep);
    let packages = match packages_plan(releases, facts) {
        Ok(packages) => packages,
        Err(refusal) => return (None, Some(refusal)),
    };
    let new = !facts.releases.iter().any(|(id, _)| *id == releases.id);
    let choice = choice_plan(releases, facts);
    if switch_to.is_none() && prune.is_empty() && packages.is_none() && !new && choice.is_keep() {
        return (None, None);
    }
    let plan = ReleasePlan {
        directory: releases.directory.clone(),
        link: releases.link.clone(),
        target: releases.target(&releases.id),
        new,
        files: releases.files.len(),
        migrate: releases.migrate.clone().filter(|_| switch_to.is_some() && !facts.migrated.contains(&releases.id)),
        change: switch_to.as_ref().map(|_| release_change(releases, facts, current.as_deref())),
        shared: if new { releases.shared.clone() } else { Vec::new() },
        before_switch: if switch_to.is_some() { releases.before_switch.clone() } else { Vec::new() },
        after_switch: if switch_to.is_some() { releases.after_switch.clone() } else { Vec::new() },
        server: switch_to.as_ref().and(current.as_ref()).and_then(|current| {
            let change = ServerChange {
                from: facts.servers.get(current).cloned(),
                to: next_server(releases, facts, packages.as_ref()),
            };
            let same = crate::catalog::gunicorn::same_server(change.from.as_deref(), change.to.as_deref());
            (!same).then_some(change)
        }),
        current,
        switch_to,
        prune,
        packages,
        record_migrations: Vec::new(),
        choice,
        publish: None,
    };
    (Some(plan), None)
}

/// The operator's choice a plain apply keeps instead of the inventory's
/// release: it made the current release current, and the inventory names
/// the release it named then (its source has not changed since).
pub fn kept_choice<'a>(releases: &Releases, facts: &'a HostFacts) -> Option<&'a ReleaseChoice> {
    let choice = facts.choice.as_ref()?;
    let current = facts.release_link.as_ref().and_then(LinkFact::release)?;
    let kept = releases.deploy.is_none()
        && choice.release == current
        && choice.inventory == releases.inventory_id
        && choice.release != releases.id;
    kept.then_some(choice)
}

/// A kept release changes nothing but what pruning removes around it.
fn kept_release(releases: &Releases, facts: &HostFacts, kept: &str) -> Option<ReleasePlan> {
    let prune = prunable(&facts.releases, kept, Some(kept), &facts.healthy, releases.keep);
    (!prune.is_empty()).then(|| ReleasePlan { prune, ..ReleasePlan::idle(releases, kept) })
}

impl ReleasePlan {
    /// A plan that leaves the host on `current`, for a change beside the
    /// switch (pruning, publishing static files).
    pub(super) fn idle(releases: &Releases, current: &str) -> ReleasePlan {
        ReleasePlan {
            directory: releases.directory.clone(),
            link: releases.link.clone(),
            current: Some(current.to_string()),
            switch_to: None,
            target: releases.target(current),
            prune: Vec::new(),
            new: false,
            files: 0,
            migrate: None,
            packages: None,
            record_migrations: Vec::new(),
            choice: ChoicePlan::Keep,
            change: None,
            shared: Vec::new(),
            before_switch: Vec::new(),
            after_switch: Vec::new(),
            server: None,
            publish: None,
        }
    }
}

/// The Gunicorn the desired release will serve with: Debian's without
/// requirements, else its `.venv`'s as the host says (made already, or the
/// one it is linked from), else what its requirements pin.
fn next_server(releases: &Releases, facts: &HostFacts, packages: Option<&PackagesPlan>) -> Option<String> {
    let Some(requirements) = &releases.requirements else { return Some(crate::facts::SYSTEM_SERVER.to_string()) };
    match packages {
        None => facts.servers.get(&releases.id).cloned(),
        Some(PackagesPlan::Reuse { from, .. }) => facts.servers.get(from).cloned(),
        Some(PackagesPlan::Install { .. }) => requirements.gunicorn.clone(),
    }
}

/// An explicit deploy records its choice when it deploys a release the
/// inventory does not name, and forgets an earlier one when it deploys
/// the inventory's; a plain apply that does not keep a choice forgets it
/// (else the choice would come back to life when the inventory named its
/// old release again).
fn choice_plan(releases: &Releases, facts: &HostFacts) -> ChoicePlan {
    let recorded = facts.choice.as_ref().map(|choice| (choice.release.as_str(), choice.inventory.as_str()));
    let Some(command) = &releases.deploy else {
        return if recorded.is_some() { ChoicePlan::Forget } else { ChoicePlan::Keep };
    };
    if releases.id == releases.inventory_id {
        return if recorded.is_some() { ChoicePlan::Forget } else { ChoicePlan::Keep };
    }
    if recorded == Some((releases.id.as_str(), releases.inventory_id.as_str())) {
        return ChoicePlan::Keep;
    }
    ChoicePlan::Record(ReleaseChoice {
        release: releases.id.clone(),
        inventory: releases.inventory_id.clone(),
        command: command.clone(),
        by: String::new(),
        at: String::new(),
    })
}

/// Where the running release came from (its record on the host, and the
/// command that chose it) and where the next one comes from.
fn release_change(releases: &Releases, facts: &HostFacts, current: Option<&str>) -> ReleaseChange {
    let from = match current {
        None => "nothing (the host serves no release yet)".to_string(),
        Some(id) => {
            let origin = facts.records.get(id).map_or_else(
                || "code whose origin the host does not record".to_string(),
                |record| record.origin.to_string(),
            );
            let chosen = facts.choice.as_ref().filter(|choice| choice.release == id);
            let chosen = chosen.map_or_else(String::new, |choice| format!(", which `{}` put there", choice.command));
            crate::sanitize::printable(&format!("{origin}{chosen}"))
        }
    };
    let why = match &releases.deploy {
        Some(command) => format!("what `{command}` asks for"),
        None => "what the inventory's `app.source` names".to_string(),
    };
    ReleaseChange { from, to: format!("{}, {why}", releases.origin) }
}

/// Migrations as the fleet knows them: the union of every app host's
/// record decides, so a release migrates once for the fleet, on the first
/// host (in apply's order) that switches to it, and never when a host goes
/// back to it. Every host that switches adds what it lacks of the record
/// to its own ledger, so the record outlives any one host.
pub(super) fn reconcile_migrations(hosts: &mut [HostPlan], facts: &BTreeMap<String, HostFacts>) {
    let fleet: BTreeSet<&String> = facts.values().flat_map(|facts| &facts.migrated).collect();
    let mut migrating: BTreeSet<String> = BTreeSet::new();
    for host in hosts.iter_mut() {
        let Some(release) = host.releases.as_mut() else { continue };
        let Some(id) = release.switch_to.clone() else { continue };
        if fleet.contains(&id) || migrating.contains(&id) {
            release.migrate = None;
        } else if release.migrate.is_some() {
            migrating.insert(id.clone());
        }
        // The host that migrates records its release as the migration
        // passes (a later failure does not undo the database's change).
        let migrates_here = release.migrate.is_some().then_some(id.as_str());
        let own = facts.get(&host.host).map(|facts| &facts.migrated);
        let known = fleet.iter().map(|id| id.as_str()).chain(migrating.get(&id).map(String::as_str));
        release.record_migrations = known
            .filter(|known| Some(*known) != migrates_here && !own.is_some_and(|own| own.contains(*known)))
            .map(String::from)
            .collect();
        release.record_migrations.sort();
        release.record_migrations.dedup();
    }
}

/// Plan's words for app hosts that keep an operator's choice instead of
/// the inventory's release: one line per choice, naming its hosts.
pub(super) fn kept_warnings(desired: &DesiredState, facts: &BTreeMap<String, HostFacts>) -> Vec<String> {
    let mut kept: BTreeMap<(&ReleaseChoice, &str), Vec<&str>> = BTreeMap::new();
    for host in &desired.hosts {
        let (Some(releases), Some(facts)) = (&host.releases, facts.get(&host.name)) else { continue };
        if let Some(choice) = kept_choice(releases, facts) {
            kept.entry((choice, releases.id.as_str())).or_default().push(&host.name);
        }
    }
    kept.into_iter()
        .map(|((choice, inventory), hosts)| {
            let who = [&choice.by, &choice.at].iter().filter(|part| !part.is_empty()).map(|part| part.as_str()).collect::<Vec<_>>();
            let who = if who.is_empty() { String::new() } else { format!(" ({})", who.join(", ")) };
            crate::sanitize::printable(&format!(
                "{} {} release {}, which `{}` put there{who}; the inventory names release {inventory}, and its `app.source` has not changed since: `infra deploy` switches to the inventory's release, and so does apply once `app.source` changes",
                hosts.join(", "),
                if hosts.len() == 1 { "keeps" } else { "keep" },
                choice.release,
                choice.command,
            ))
        })
        .collect()
}

/// Why the host's Python cannot run the app (`app.python`), if it cannot.
fn unsuitable_python(releases: &Releases, facts: &HostFacts) -> Option<String> {
    let requirement = releases.python.as_deref()?;
    let Some((version, _)) = &facts.python else {
        return Some(format!("the app needs Python {requirement}, and the host did not say which it runs"));
    };
    (!crate::requirements::python_satisfies(version, requirement)).then(|| {
        format!("the app needs Python {requirement}; the host runs {version} (`/usr/bin/python3`): move the app to a host whose Debian release has one, or change `app.python`")
    })
}

/// The release's packages: none to make when it has no requirements or its
/// `.venv` already holds them; hard links when another release on the host
/// has the same requirements; else an install, for the host's Python.
fn packages_plan(releases: &Releases, facts: &HostFacts) -> Result<Option<PackagesPlan>, String> {
    let Some(requirements) = &releases.requirements else { return Ok(None) };
    if facts.venvs.get(&releases.id) == Some(&requirements.digest) {
        return Ok(None);
    }
    let donor = facts.venvs.iter().find(|(id, digest)| **digest == requirements.digest && **id != releases.id);
    if let Some((from, _)) = donor {
        return Ok(Some(PackagesPlan::Reuse { digest: requirements.digest.clone(), from: from.clone() }));
    }
    let (python, arch) = facts.python.clone().ok_or_else(|| {
        "the host did not say which Python it runs (`/usr/bin/python3`), so no wheels can be chosen for it".to_string()
    })?;
    Ok(Some(PackagesPlan::Install {
        file: requirements.file.clone(),
        digest: requirements.digest.clone(),
        names: requirements.names.clone(),
        added: requirements.added.clone(),
        python,
        arch,
    }))
}

/// The releases beyond the newest `keep` (by when they were unpacked). Kept
/// whatever `keep` says: the desired release, the current one (what a
/// rollback of this apply goes back to) and the newest healthy release
/// besides the desired one (what `infra rollback` goes back to after it).
fn prunable(
    present: &[(String, i64)],
    desired: &str,
    current: Option<&str>,
    healthy: &BTreeSet<String>,
    keep: u32,
) -> Vec<String> {
    let newest = newest_first(present);
    let previous_healthy = newest.iter().map(|(id, _)| id.as_str()).find(|id| *id != desired && healthy.contains(*id));
    let mut pinned: Vec<&str> = vec![desired];
    pinned.extend(current.into_iter().chain(previous_healthy).filter(|id| *id != desired));
    pinned.dedup();
    let others = newest.into_iter().filter(|(id, _)| !pinned.contains(&id.as_str()));
    let slots = (keep as usize).saturating_sub(pinned.len());
    let mut pruned: Vec<String> = others.skip(slots).map(|(id, _)| id.clone()).collect();
    pruned.reverse();
    pruned
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "111111111111";
    const V2: &str = "222222222222";
    const V4: &str = "444444444444";

    /// An app host whose inventory names `inventory`, this run deploying `id`.
    fn app_host(name: &str, id: &str, inventory: &str, deploy: Option<&str>) -> HostState {
        let releases = Releases {
            directory: "/srv/app/releases".into(),
            link: "/srv/app/current".into(),
            id: id.into(),
            inventory_id: inventory.into(),
            deploy: deploy.map(String::from),
            keep: 5,
            requirements: None,
            module: "app".into(),
            migrate: Some(vec!["flask".into(), "db".into(), "upgrade".into()]),
            python: None,
            origin: crate::desired::Origin { source: "../app".into(), revision: Some("v1".into()), commit: None },
            files: vec![],
            shared: vec![],
            before_switch: vec![],
            after_switch: vec![],
            processes: vec![],
            static_files: None,
        };
        let address = "10.0.0.31".parse().expect("address");
        HostState {
            name: name.into(),
            address,
            target: crate::transport::Target::with_defaults(name, address),
            roles: vec![crate::topology::Role::App],
            stage: crate::topology::Role::App,
            packages: vec![],
            files: vec![],
            services: vec![],
            hooks: vec![],
            health_checks: vec![],
            ssh_guard: None,
            ports: Vec::new(),
            interfaces: Vec::new(),
            backups: None,
            releases: Some(releases),
            static_releases: None,
        }
    }

    /// Facts of an app host serving `current`, with `unpacked` releases of
    /// which `migrated` ran their migration as it knows.
    fn serving(current: &str, unpacked: &[&str], migrated: &[&str]) -> HostFacts {
        HostFacts {
            release_link: Some(LinkFact::Link(format!("releases/{current}"))),
            releases: unpacked.iter().enumerate().map(|(time, id)| (id.to_string(), time as i64)).collect(),
            healthy: unpacked.iter().map(|id| id.to_string()).collect(),
            migrated: migrated.iter().map(|id| id.to_string()).collect(),
            ..HostFacts::default()
        }
    }

    fn planned(hosts: &[HostState], facts: &BTreeMap<String, HostFacts>) -> Vec<HostPlan> {
        let desired = DesiredState { hosts: hosts.to_vec(), virtual_ip: None, witnesses: Vec::new() };
        super::super::plan(&desired, facts, Vec::new()).hosts
    }

    fn release(plan: &HostPlan) -> &ReleasePlan {
        plan.releases.as_ref().expect("a release plan")
    }

    /// An app host switching to `id`, whose requirements pin Gunicorn to
    /// `gunicorn` (`None`: a range), with Gunicorn's unit as render makes it.
    fn with_requirements(id: &str, gunicorn: Option<&str>) -> HostState {
        let mut host = app_host("app-01", id, id, None);
        let releases = host.releases.as_mut().expect("releases");
        releases.requirements = Some(crate::desired::Requirements {
            file: "requirements.txt".into(),
            digest: "abcdef012345".into(),
            names: vec!["gunicorn".into()],
            added: vec![],
            gunicorn: gunicorn.map(String::from),
        });
        host.services.push(crate::desired::ManagedService {
            name: crate::catalog::GUNICORN.unit.into(),
            reload_on: vec![releases.link.clone()],
            restart_on: vec![],
            enabled: true,
        });
        host
    }

    /// Issue 27: a reload keeps the master's own code, so a switch to a
    /// release with another (or an unknown) Gunicorn restarts it, and one
    /// with the same Gunicorn reloads it.
    #[test]
    fn a_switch_restarts_gunicorn_only_when_the_release_brings_another() {
        let mut facts = serving(V1, &[V1], &[V1]);
        facts.python = Some(("3.13".into(), "x86_64".into()));
        facts.servers.insert(V1.into(), "23.0.0".into());
        let running = crate::facts::ServiceFact { active: true, enabled: true };
        facts.services.insert(crate::catalog::GUNICORN.unit.into(), running);
        let plan_for = |gunicorn: Option<&str>, facts: &HostFacts| {
            super::super::plan_host(&with_requirements(V2, gunicorn), facts)
        };

        let same = plan_for(Some("23.0.0"), &facts);
        assert_eq!(release(&same).server, None);
        assert_eq!(same.reload.iter().map(|change| change.name.as_str()).collect::<Vec<_>>(), ["infra-app"]);
        assert!(same.restart.is_empty());

        let other = plan_for(Some("22.0.0"), &facts);
        assert_eq!(other.restart.len(), 1, "{other:?}");
        assert_eq!(other.restart[0].because, ["the release serves with Gunicorn 22.0.0 instead of Gunicorn 23.0.0"]);
        assert!(other.reload.is_empty());

        let range = plan_for(None, &facts);
        assert_eq!(release(&range).server, Some(ServerChange { from: Some("23.0.0".into()), to: None }));

        // Made already (or linked from a release with the same packages): the host's word.
        facts.venvs.insert(V4.into(), "abcdef012345".into());
        facts.servers.insert(V4.into(), "23.0.0".into());
        facts.releases.push((V4.into(), 9));
        let linked = plan_for(None, &facts);
        assert!(matches!(release(&linked).packages, Some(PackagesPlan::Reuse { .. })));
        assert_eq!(release(&linked).server, None, "{linked:?}");

        // Debian's server before: the release's own is another.
        facts.servers.insert(V1.into(), crate::facts::SYSTEM_SERVER.into());
        let from_debian = plan_for(Some("23.0.0"), &facts);
        assert_eq!(
            from_debian.restart[0].because,
            ["the release serves with Gunicorn 23.0.0 instead of Debian's Gunicorn"]
        );
    }

    /// Issue 27: instances the host runs that the inventory no longer has
    /// are stopped; those it still has are left alone.
    #[test]
    fn instances_of_processes_no_longer_wanted_retire() {
        let mut host = app_host("app-01", V1, V1, None);
        host.services.push(crate::desired::ManagedService {
            name: "infra-app-worker@1.service".into(),
            reload_on: vec![],
            restart_on: vec![],
            enabled: true,
        });
        let mut facts = serving(V1, &[V1], &[V1]);
        facts.process_instances =
            ["infra-app-worker@1.service", "infra-app-worker@2.service", "infra-app-beat@1.service"]
                .map(String::from)
                .into();
        let plan = super::super::plan_host(&host, &facts);
        assert_eq!(plan.retire, ["infra-app-beat@1.service", "infra-app-worker@2.service"]);
        assert!(!plan.is_empty());
    }

    #[test]
    fn a_release_migrates_once_for_the_fleet_and_every_switching_host_records_it() {
        let hosts = [app_host("app-01", V2, V2, None), app_host("app-02", V2, V2, None)];
        let facts = BTreeMap::from([
            ("app-01".to_string(), serving(V1, &[V1], &[])),
            ("app-02".to_string(), serving(V1, &[V1], &[V1])),
        ]);
        let plans = planned(&hosts, &facts);
        assert!(release(&plans[0]).migrate.is_some(), "the first host to switch migrates");
        assert_eq!(release(&plans[1]).migrate, None, "and no other");
        assert_eq!(release(&plans[0]).record_migrations, [V1], "what app-02 knew reaches app-01 (V2 as it migrates)");
        assert_eq!(release(&plans[1]).record_migrations, [V2]);
    }

    /// The sequence that left a fleet on two versions: app-01 migrated v1,
    /// app-02 never did itself; going back to v1 must not migrate anywhere.
    #[test]
    fn going_back_to_a_release_any_host_migrated_never_migrates() {
        let hosts = [app_host("app-01", V1, V1, None), app_host("app-02", V1, V1, None)];
        let facts = BTreeMap::from([
            ("app-01".to_string(), serving(V4, &[V1, V2, V4], &[V1, V2, V4])),
            ("app-02".to_string(), serving(V4, &[V1, V2, V4], &[V4])),
        ]);
        let plans = planned(&hosts, &facts);
        assert!(plans.iter().all(|plan| release(plan).migrate.is_none()), "{plans:?}");
        assert_eq!(release(&plans[1]).record_migrations, [V1, V2]);
    }

    #[test]
    fn a_plain_apply_keeps_a_deployed_release_until_the_inventory_names_another() {
        let choice = ReleaseChoice {
            release: V4.into(),
            inventory: V1.into(),
            command: "infra deploy --source v4".into(),
            by: "ana@laptop".into(),
            at: "20261203T070000Z".into(),
        };
        let facts = HostFacts { choice: Some(choice.clone()), ..serving(V4, &[V1, V4], &[V1, V4]) };
        let unchanged = app_host("app-01", V1, V1, None);
        assert_eq!(plan_releases(&unchanged, &facts), (None, None), "nothing switches back");
        let desired = DesiredState { hosts: vec![unchanged], virtual_ip: None, witnesses: Vec::new() };
        let warnings = kept_warnings(&desired, &BTreeMap::from([("app-01".to_string(), facts.clone())]));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("app-01 keeps release 444444444444, which `infra deploy --source v4` put there (ana@laptop, 20261203T070000Z); the inventory names release 111111111111"), "{}", warnings[0]);

        let changed = app_host("app-01", V2, V2, None);
        let (plan, _) = plan_releases(&changed, &facts);
        let plan = plan.expect("a switch");
        assert_eq!(plan.switch_to.as_deref(), Some(V2), "the inventory changed since the deploy");
        assert_eq!(plan.choice, ChoicePlan::Forget);
        let change = plan.change.expect("words for the switch");
        assert!(change.from.ends_with("which `infra deploy --source v4` put there"), "{change:?}");
        assert!(change.to.ends_with("what the inventory's `app.source` names"), "{change:?}");
    }

    #[test]
    fn a_deploy_records_its_choice_and_one_of_the_inventorys_release_forgets_it() {
        let deploying = app_host("app-01", V4, V1, Some("infra deploy --source v4"));
        let (plan, _) = plan_releases(&deploying, &serving(V1, &[V1], &[V1]));
        let plan = plan.expect("a deploy");
        assert!(matches!(&plan.choice, ChoicePlan::Record(choice) if choice.release == V4 && choice.inventory == V1));
        assert!(plan.change.expect("words").to.ends_with("what `infra deploy --source v4` asks for"));

        let chosen = ReleaseChoice { release: V4.into(), inventory: V1.into(), ..ReleaseChoice::default() };
        let facts = HostFacts { choice: Some(chosen), ..serving(V4, &[V1, V4], &[V1, V4]) };
        let (plan, _) = plan_releases(&app_host("app-01", V1, V1, Some("infra deploy")), &facts);
        let plan = plan.expect("a deploy of the inventory's release");
        assert_eq!(plan.switch_to.as_deref(), Some(V1), "a deploy switches whatever a choice keeps");
        assert_eq!(plan.choice, ChoicePlan::Forget);
        assert_eq!(plan.migrate, None, "v1 migrated before");
    }

    fn present(ids: &[(&str, i64)]) -> Vec<(String, i64)> {
        ids.iter().map(|(id, time)| (id.to_string(), *time)).collect()
    }

    #[test]
    fn the_newest_releases_stay_with_the_desired_and_current_ones() {
        let hosts = present(&[("aaaaaaaaaaaa", 1), ("bbbbbbbbbbbb", 2), ("cccccccccccc", 3), ("dddddddddddd", 4)]);
        let none = BTreeSet::new();
        // Deploying eeee… while dddd… is current, keeping 3: eeee, dddd and cccc stay.
        assert_eq!(prunable(&hosts, "eeeeeeeeeeee", Some("dddddddddddd"), &none, 3), ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]);
        // Rolled back to aaaa… and nothing new: aaaa is current, the two newest others stay.
        assert_eq!(prunable(&hosts, "aaaaaaaaaaaa", Some("aaaaaaaaaaaa"), &none, 3), ["bbbbbbbbbbbb"]);
        assert!(prunable(&hosts, "dddddddddddd", Some("dddddddddddd"), &none, 5).is_empty());
    }

    #[test]
    fn an_old_current_release_is_never_pruned() {
        let hosts = present(&[("aaaaaaaaaaaa", 1), ("bbbbbbbbbbbb", 2), ("cccccccccccc", 3)]);
        assert_eq!(
            prunable(&hosts, "dddddddddddd", Some("aaaaaaaaaaaa"), &BTreeSet::new(), 2),
            ["bbbbbbbbbbbb", "cccccccccccc"]
        );
    }

    #[test]
    fn the_previous_healthy_release_is_never_pruned() {
        let hosts = present(&[("aaaaaaaaaaaa", 1), ("bbbbbbbbbbbb", 2), ("cccccccccccc", 3)]);
        // cccc… never passed its health checks (a host that was not
        // switched yet); bbbb… did: with eeee… new and cccc… current,
        // keeping two still keeps bbbb…, the release a rollback goes to.
        let healthy = BTreeSet::from(["aaaaaaaaaaaa".to_string(), "bbbbbbbbbbbb".to_string()]);
        assert_eq!(prunable(&hosts, "eeeeeeeeeeee", Some("cccccccccccc"), &healthy, 2), ["aaaaaaaaaaaa"]);
        // Current and healthy: it is the previous healthy one itself.
        assert_eq!(
            prunable(&hosts, "eeeeeeeeeeee", Some("bbbbbbbbbbbb"), &healthy, 2),
            ["aaaaaaaaaaaa", "cccccccccccc"]
        );
    }

    /// `app.static` building with `collectstatic`, on every app host.
    fn with_static(mut host: HostState) -> HostState {
        let releases = host.releases.as_mut().expect("releases");
        releases.static_files = Some(crate::desired::StaticFiles {
            root: "/var/www/infra".into(),
            source: crate::desired::StaticSource::Build(vec![vec!["python3".into(), "manage.py".into()]]),
        });
        host
    }

    fn web_host(name: &str) -> HostState {
        let mut host = app_host(name, V1, V1, None);
        host.releases = None;
        host.roles = vec![crate::topology::Role::Web];
        host.static_releases = Some("/var/www/infra".into());
        host
    }

    fn publishing(hosts: &[HostPlan]) -> Vec<(&str, &StaticPublish)> {
        hosts.iter().filter_map(|plan| Some((plan.host.as_str(), plan.releases.as_ref()?.publish.as_ref()?))).collect()
    }

    #[test]
    fn the_host_that_migrates_publishes_the_static_files_and_prunes_what_no_app_host_keeps() {
        let hosts = [
            with_static(app_host("app-01", V2, V2, None)),
            with_static(app_host("app-02", V2, V2, None)),
            web_host("web-01"),
        ];
        let facts = BTreeMap::from([
            ("app-01".to_string(), serving(V1, &[V1], &[V1])),
            ("app-02".to_string(), serving(V1, &[V1], &[V1])),
            (
                "web-01".to_string(),
                HostFacts { static_releases: [V1.to_string(), V4.to_string()].into(), ..HostFacts::default() },
            ),
        ]);
        let plans = planned(&hosts, &facts);
        let published = publishing(&plans);
        assert_eq!(published.len(), 1, "once for the fleet: {published:?}");
        let (host, publish) = published[0];
        assert_eq!(host, "app-01");
        assert!(release(&plans[0]).migrate.is_some(), "the same host migrates, first and alone");
        assert_eq!((publish.release.as_str(), publish.to.as_slice()), (V2, &["web-01".to_string()][..]));
        assert_eq!(publish.prune.get("web-01"), Some(&vec![V4.to_string()]), "V1 stays for a rollback");
    }

    #[test]
    fn web_hosts_that_have_the_files_get_none_and_a_new_one_gets_them_without_a_switch() {
        let hosts = [with_static(app_host("app-01", V1, V1, None)), web_host("web-01"), web_host("web-02")];
        let has = HostFacts { static_releases: [V1.to_string()].into(), ..HostFacts::default() };
        let mut facts = BTreeMap::from([
            ("app-01".to_string(), serving(V1, &[V1], &[V1])),
            ("web-01".to_string(), has.clone()),
            ("web-02".to_string(), has),
        ]);
        assert!(planned(&hosts, &facts).iter().all(HostPlan::is_empty), "converged");
        facts.insert("web-02".to_string(), HostFacts::default());
        let plans = planned(&hosts, &facts);
        let published = publishing(&plans);
        assert_eq!(published.len(), 1);
        assert_eq!(published[0].1.to, ["web-02"]);
        assert_eq!(release(&plans[0]).switch_to, None, "app-01 stays on its release");
    }
}

//! The app's releases in a plan: whether the `current` link switches to
//! the desired release, and which old releases are removed once the host
//! is healthy. Pure, like the rest of the plan.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::desired::{HostState, Releases};
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
    let switch_to = (current.as_deref() != Some(releases.id.as_str())).then(|| releases.id.clone());
    let prune = prunable(&facts.releases, &releases.id, current.as_deref(), &facts.healthy, releases.keep);
    let packages = match packages_plan(releases, facts) {
        Ok(packages) => packages,
        Err(refusal) => return (None, Some(refusal)),
    };
    let new = !facts.releases.iter().any(|(id, _)| *id == releases.id);
    if switch_to.is_none() && prune.is_empty() && packages.is_none() && !new {
        return (None, None);
    }
    let plan = ReleasePlan {
        directory: releases.directory.clone(),
        link: releases.link.clone(),
        target: releases.target(&releases.id),
        new,
        files: releases.files.len(),
        migrate: releases.migrate.clone().filter(|_| switch_to.is_some() && !facts.migrated.contains(&releases.id)),
        current,
        switch_to,
        prune,
        packages,
    };
    (Some(plan), None)
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
}

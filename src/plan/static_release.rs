//! Which web hosts lack the static files (`app.static`) of the release
//! the app hosts will serve, which app host's transaction publishes them
//! (the one that goes first: it migrates the release, or is the first to
//! switch to it), and which releases' files the web hosts no longer need
//! (none of the app hosts keeps the release).

use std::collections::{BTreeMap, BTreeSet};

use super::{HostPlan, ReleasePlan, StaticPublish};
use crate::desired::{DesiredState, Releases};
use crate::facts::{HostFacts, LinkFact};

pub(super) fn plan_static(hosts: &mut [HostPlan], desired: &DesiredState, facts: &BTreeMap<String, HostFacts>) {
    let app_hosts: Vec<(&str, &Releases)> = desired
        .hosts
        .iter()
        .filter_map(|host| Some((host.name.as_str(), host.releases.as_ref()?)))
        .filter(|(name, _)| facts.contains_key(*name))
        .collect();
    let Some(config) = app_hosts.iter().find_map(|(_, releases)| releases.static_files.as_ref()) else { return };
    let served: BTreeSet<String> = app_hosts.iter().filter_map(|(name, _)| served(hosts, facts, name)).collect();
    let kept = kept_releases(hosts, facts, &app_hosts, &served);
    let web_hosts: Vec<(&str, &HostFacts)> = desired
        .hosts
        .iter()
        .chain(&desired.witnesses)
        .filter(|host| host.static_releases.is_some())
        .filter_map(|host| Some((host.name.as_str(), facts.get(&host.name)?)))
        .collect();
    for release in &served {
        let to: Vec<String> = web_hosts
            .iter()
            .filter(|(_, facts)| !facts.static_releases.contains(release))
            .map(|(name, _)| name.to_string())
            .collect();
        if to.is_empty() {
            continue;
        }
        let prune = web_hosts
            .iter()
            .map(|(name, facts)| {
                (name.to_string(), facts.static_releases.iter().filter(|id| !kept.contains(*id)).cloned().collect())
            })
            .filter(|(_, gone): &(String, Vec<String>)| !gone.is_empty())
            .collect();
        let publish = StaticPublish {
            release: release.clone(),
            root: config.root.clone(),
            source: config.source.clone(),
            to,
            prune,
        };
        let Some(builder) = builder(hosts, facts, &app_hosts, release) else { continue };
        let releases = app_hosts.iter().find(|(name, _)| *name == hosts[builder].host).map(|(_, releases)| *releases);
        let plan = &mut hosts[builder];
        match (&mut plan.releases, releases) {
            (Some(release_plan), _) => release_plan.publish = Some(publish),
            (None, Some(releases)) => {
                plan.releases = Some(ReleasePlan { publish: Some(publish), ..ReleasePlan::idle(releases, release) })
            }
            (None, None) => {}
        }
    }
}

/// The release an app host serves once apply is done: the one it switches
/// to, else its current one.
fn served(hosts: &[HostPlan], facts: &BTreeMap<String, HostFacts>, name: &str) -> Option<String> {
    let plan = hosts.iter().find(|plan| plan.host == name)?;
    match plan.releases.as_ref().and_then(|release| release.switch_to.clone()) {
        Some(next) => Some(next),
        None => facts.get(name)?.release_link.as_ref().and_then(LinkFact::release),
    }
}

/// The releases some app host keeps after apply (what it has, less what
/// it prunes, and what it switches to): their files stay on the web hosts.
fn kept_releases(
    hosts: &[HostPlan],
    facts: &BTreeMap<String, HostFacts>,
    app_hosts: &[(&str, &Releases)],
    served: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut kept = served.clone();
    for (name, _) in app_hosts {
        let pruned = hosts
            .iter()
            .find(|plan| plan.host == *name)
            .and_then(|plan| plan.releases.as_ref())
            .map_or(&[][..], |release| release.prune.as_slice());
        let has = facts.get(*name).map_or(&[][..], |facts| facts.releases.as_slice());
        kept.extend(has.iter().map(|(id, _)| id).filter(|id| !pruned.contains(id)).cloned());
    }
    kept
}

/// The app host whose transaction publishes `release`: the one that
/// migrates it, else the first to switch to it, else the first serving it.
fn builder(
    hosts: &[HostPlan],
    facts: &BTreeMap<String, HostFacts>,
    app_hosts: &[(&str, &Releases)],
    release: &str,
) -> Option<usize> {
    let index = |name: &str| hosts.iter().position(|plan| plan.host == name);
    fn switching<'p>(plan: &'p HostPlan, release: &str) -> Option<&'p ReleasePlan> {
        plan.releases.as_ref().filter(|plan| plan.switch_to.as_deref() == Some(release))
    }
    let migrates = hosts.iter().position(|plan| switching(plan, release).is_some_and(|plan| plan.migrate.is_some()));
    migrates.or_else(|| hosts.iter().position(|plan| switching(plan, release).is_some())).or_else(|| {
        app_hosts
            .iter()
            .find(|(name, _)| served(hosts, facts, name).as_deref() == Some(release))
            .and_then(|(name, _)| index(name))
    })
}

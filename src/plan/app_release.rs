//! The app's releases in a plan: whether the `current` link switches to
//! the desired release, and which old releases are removed once the host
//! is healthy. Pure, like the rest of the plan.

use serde::{Deserialize, Serialize};

use crate::desired::HostState;
use crate::facts::{HostFacts, LinkFact, is_release_id};

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
}

/// The release plan of a host with releases, and a refusal when the link's
/// path holds something apply must not replace. `None` when nothing is to
/// be done.
pub fn plan_releases(host: &HostState, facts: &HostFacts) -> (Option<ReleasePlan>, Option<String>) {
    let Some(releases) = &host.releases else { return (None, None) };
    let current = match &facts.release_link {
        Some(LinkFact::NotALink) => {
            let refusal =
                format!("`{}` is not a symlink: move it away, infra switches releases through it", releases.link);
            return (None, Some(refusal));
        }
        Some(LinkFact::Link(target)) => target.rsplit('/').next().filter(|id| is_release_id(id)).map(String::from),
        Some(LinkFact::Absent) | None => None,
    };
    let switch_to = (current.as_deref() != Some(releases.id.as_str())).then(|| releases.id.clone());
    let prune = prunable(&facts.releases, &releases.id, current.as_deref(), releases.keep);
    if switch_to.is_none() && prune.is_empty() {
        return (None, None);
    }
    let plan = ReleasePlan {
        directory: releases.directory.clone(),
        link: releases.link.clone(),
        target: releases.target(&releases.id),
        current,
        switch_to,
        prune,
    };
    (Some(plan), None)
}

/// The releases beyond the newest `keep` (by when they were unpacked), the
/// desired and the current release always among the kept: the current one
/// is what a rollback of this apply goes back to.
fn prunable(present: &[(String, i64)], desired: &str, current: Option<&str>, keep: u32) -> Vec<String> {
    let mut others: Vec<&(String, i64)> =
        present.iter().filter(|(id, _)| id != desired && Some(id.as_str()) != current).collect();
    others.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let pinned = 1 + usize::from(current.is_some_and(|current| current != desired));
    let slots = (keep as usize).saturating_sub(pinned);
    let mut pruned: Vec<String> = others.into_iter().skip(slots).map(|(id, _)| id.clone()).collect();
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
        // Deploying eeee… while dddd… is current, keeping 3: eeee, dddd and cccc stay.
        assert_eq!(prunable(&hosts, "eeeeeeeeeeee", Some("dddddddddddd"), 3), ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]);
        // Rolled back to aaaa… and nothing new: aaaa is current, the two newest others stay.
        assert_eq!(prunable(&hosts, "aaaaaaaaaaaa", Some("aaaaaaaaaaaa"), 3), ["bbbbbbbbbbbb"]);
        assert!(prunable(&hosts, "dddddddddddd", Some("dddddddddddd"), 5).is_empty());
    }

    #[test]
    fn an_old_current_release_is_never_pruned() {
        let hosts = present(&[("aaaaaaaaaaaa", 1), ("bbbbbbbbbbbb", 2), ("cccccccccccc", 3)]);
        assert_eq!(prunable(&hosts, "dddddddddddd", Some("aaaaaaaaaaaa"), 2), ["bbbbbbbbbbbb", "cccccccccccc"]);
    }
}

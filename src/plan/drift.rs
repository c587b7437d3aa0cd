//! A saved plan against the hosts as they are now: apply of a saved plan
//! goes ahead only when every host in it is still there, reads as it read
//! when the plan was made, and the inventory still renders the same for it.

use super::Plan;

/// Why a saved plan cannot be applied as it is.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Drift {
    #[error("host `{0}` of the saved plan is no longer in the inventory; make a new plan")]
    Gone(String),
    #[error(
        "host `{0}` changed since the plan was made (its state no longer matches what plan read); run `infra plan` again"
    )]
    HostChanged(String),
    #[error(
        "the inventory or templates now render something else for `{0}` than when the plan was made; run `infra plan` again"
    )]
    DesiredChanged(String),
}

/// The first way `current` (planned now) differs from `saved`, host by host.
pub fn drift(saved: &Plan, current: &Plan) -> Result<(), Drift> {
    for planned in &saved.hosts {
        let Some(now) = current.hosts.iter().find(|host| host.host == planned.host) else {
            return Err(Drift::Gone(planned.host.clone()));
        };
        if now.fingerprint != planned.fingerprint {
            return Err(Drift::HostChanged(planned.host.clone()));
        }
        if now.desired != planned.desired {
            return Err(Drift::DesiredChanged(planned.host.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(hosts: &[(&str, &str, &str)]) -> Plan {
        let mut plan: Plan = serde_json::from_value(serde_json::json!({"version": 1, "hosts": [], "unreachable": []}))
            .expect("an empty plan");
        for (host, fingerprint, desired) in hosts {
            plan.hosts.push(
                serde_json::from_value(serde_json::json!({
                    "host": host, "address": "10.0.0.1", "roles": [], "fingerprint": fingerprint,
                    "desired": desired, "install": [], "files": [], "reload": [], "restart": [],
                    "enable": [], "start": [], "hooks": [],
                }))
                .expect("a host plan"),
            );
        }
        plan
    }

    #[test]
    fn a_saved_plan_applies_only_to_hosts_as_they_were() {
        let saved = plan_of(&[("web-01", "f1", "d1"), ("app-01", "f2", "d2")]);
        assert_eq!(drift(&saved, &plan_of(&[("app-01", "f2", "d2"), ("web-01", "f1", "d1")])), Ok(()));
        assert_eq!(drift(&saved, &plan_of(&[("web-01", "f1", "d1")])), Err(Drift::Gone("app-01".into())));
        let edited = plan_of(&[("web-01", "f9", "d1"), ("app-01", "f2", "d2")]);
        assert_eq!(drift(&saved, &edited), Err(Drift::HostChanged("web-01".into())));
        let rendered = plan_of(&[("web-01", "f1", "d1"), ("app-01", "f2", "d9")]);
        assert_eq!(drift(&saved, &rendered), Err(Drift::DesiredChanged("app-01".into())));
    }
}

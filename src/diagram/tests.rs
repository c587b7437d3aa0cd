use std::collections::BTreeMap;

use super::*;
use crate::rules::test_support::{VALID, stack};

/// Every flow the firewall allows between hosts is drawn, and only those:
/// each drawn host-to-host arrow is an allowance of its target.
#[test]
fn the_arrows_are_the_firewall_allowances() {
    let stack = stack(VALID);
    let picture = Diagram::of(&stack);
    let name_of: BTreeMap<IpAddr, &str> =
        stack.hosts.iter().map(|host| (host.address.value, host.name.value.as_str())).collect();
    let mut allowed = BTreeSet::new();
    for host in &stack.hosts {
        for allowance in crate::topology::allowances(&stack, host) {
            for source in allowance.from.iter().flatten().filter_map(|address| name_of.get(address)) {
                allowed.insert((source.to_string(), host.name.value.clone()));
            }
        }
    }
    let drawn: BTreeSet<(String, String)> = picture
        .flows
        .iter()
        .filter_map(|flow| match (&flow.from, &flow.to) {
            (End::Host(from), End::Host(to)) => Some((from.clone(), to.clone())),
            _ => None,
        })
        .collect();
    for (from, to) in &drawn {
        assert!(allowed.contains(&(from.clone(), to.clone())), "{from} -> {to} is drawn but not allowed");
    }
    for (from, to) in &allowed {
        let either_way = drawn.contains(&(from.clone(), to.clone())) || drawn.contains(&(to.clone(), from.clone()));
        assert!(either_way, "{from} -> {to} is allowed but not drawn");
    }
}

#[test]
fn tiers_run_in_stage_order_and_the_highest_priority_is_the_expected_holder() {
    let picture = Diagram::of(&stack(VALID));
    let roles: Vec<Role> = picture.tiers.iter().map(|tier| tier.role).collect();
    let order: Vec<Role> = topology::role_order().into_iter().filter(|role| roles.contains(role)).collect();
    assert_eq!(roles, order);
    let vip = picture.virtual_ip.as_ref().expect("a virtual IP");
    let highest = vip.balancers.iter().map(|(_, priority)| *priority).max();
    assert_eq!(vip.balancers.first().map(|(_, priority)| *priority), highest);
}

#[test]
fn live_marks_show_the_holder_and_unreachable_hosts() {
    let mut picture = Diagram::of(&stack(VALID));
    let backup = picture.virtual_ip.as_ref().and_then(|vip| vip.balancers.get(1)).map(|(name, _)| name.clone());
    let backup = backup.expect("two balancers");
    let expected = picture.expected_holder().expect("a holder").to_string();
    let live = BTreeMap::from([(expected.clone(), Live::Unreachable)]);
    picture.mark(vec![backup.clone()], &live);
    let text = mermaid::write(&picture);
    assert!(text.contains(&format!("class {} holder", id(&End::Host(backup.clone())))), "{text}");
    assert!(text.contains(&format!("class {} unreachable", id(&End::Host(expected.clone())))), "{text}");
    assert!(text.contains("holds it now"), "{text}");
    // The unreachable balancer may hold it or not: its edge says so.
    assert!(text.contains("unknown (unreachable), priority"), "{text}");
    assert!(!text.contains("does not hold it"), "{text}");
    let dot_text = dot::write(&picture);
    assert!(dot_text.contains("unreachable"), "{dot_text}");
}

#[test]
fn quotes_cannot_end_a_label() {
    let mut picture = Diagram::of(&stack(VALID));
    picture.admin = vec!["a\"] --> x[\"b".into()];
    assert!(mermaid::write(&picture).contains("a#quot;] --> x[#quot;b"));
    assert!(dot::write(&picture).contains("a\\\"] --> x[\\\"b"));
}

/// Where every host of a tier reaches every host of the next one, one
/// arrow: scaled.yml's two web and two app hosts draw one `tcp :8000`.
#[test]
fn whole_tier_flows_are_one_arrow() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/inventories/scaled.yml")).expect("scaled");
    let text = text.replace("../examples", concat!(env!("CARGO_MANIFEST_DIR"), "/examples"));
    let picture = Diagram::of(&stack(&text));
    let drawn = picture.drawn_flows();
    let app_port: Vec<&Flow> = drawn.iter().filter(|flow| flow.label == "tcp :8000").collect();
    assert_eq!(app_port.len(), 1, "{app_port:?}");
    assert_eq!((&app_port[0].from, &app_port[0].to), (&End::Tier(Role::Web), &End::Tier(Role::App)));
    // The picture's data keeps every pair: the firewall test reads it.
    assert_eq!(picture.flows.iter().filter(|flow| flow.label == "tcp :8000").count(), 4);
    let mermaid = mermaid::write(&picture);
    assert!(
        mermaid.starts_with("flowchart LR\n") && mermaid.contains("tier_web -->|\"tcp :8000\"| tier_app"),
        "{mermaid}"
    );
    let dot_text = dot::write(&picture);
    assert!(dot_text.contains("rankdir=LR") && dot_text.contains("ltail=cluster_web, lhead=cluster_app"), "{dot_text}");
}

/// Issue 27: the app's processes are drawn on each app host, beside
/// Gunicorn.
#[test]
fn app_hosts_show_their_processes() {
    let inventory = VALID.replace(
        "  source: app\n",
        "  source: app\n  processes:\n    - {name: worker, command: [celery, worker], count: 2}\n    - {name: beat, command: [celery, beat]}\n",
    );
    let picture = Diagram::of(&stack(&inventory));
    let mermaid = mermaid::write(&picture);
    assert!(mermaid.contains("<br/>+ worker ×2, beat ×1"), "{mermaid}");
    let app_hosts = picture.tiers.iter().find(|tier| tier.role == Role::App).expect("an app tier");
    assert!(app_hosts.hosts.iter().all(|host| host.processes == ["worker ×2", "beat ×1"]));
    let web = picture.tiers.iter().find(|tier| tier.role == Role::Web).expect("a web tier");
    assert!(web.hosts.iter().all(|host| host.processes.is_empty()));
}

//! Mermaid flowchart text, for a README or a pull request.
//!
//! Left to right from the clients inward, every arrow the way requests
//! travel, the database last; flows between whole tiers are one arrow. Labels are
//! quoted and `"` is written as Mermaid's `#quot;`: every name reaching
//! here passed the inventory grammar, and escaping keeps it so.

use std::fmt::Write;

use super::{Diagram, End, Live, id, live_note, role_names};

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "#quot;"))
}

pub fn write(diagram: &Diagram) -> String {
    let mut out = String::from("flowchart LR\n");
    if let Some(vip) = &diagram.virtual_ip {
        let _ = writeln!(out, "  clients([{}])", quoted("clients"));
        let _ = writeln!(out, "  vip{{{{{}}}}}", quoted(&format!("virtual IP<br/>{}", vip.address)));
    }
    if !diagram.admin.is_empty() {
        let _ = writeln!(out, "  admin[/{}/]", quoted(&format!("admin<br/>{}", diagram.admin.join("<br/>"))));
    }
    // From the clients inward: the balancers first, the database last.
    for tier in diagram.tiers.iter().rev() {
        let _ = writeln!(out, "  subgraph {}[{}]", id(&End::Tier(tier.role)), quoted(tier.role.name()));
        for node in &tier.hosts {
            let mut label = format!("{}<br/>{}<br/>{}", node.name, node.address, role_names(&node.roles));
            if !node.processes.is_empty() {
                label.push_str(&format!("<br/>+ {}", node.processes.join(", ")));
            }
            if let Some(note) = live_note(node.live) {
                label.push_str(&format!("<br/>{note}"));
            }
            let _ = writeln!(out, "    {}[{}]", id(&End::Host(node.name.clone())), quoted(&label));
        }
        out.push_str("  end\n");
    }
    for flow in &diagram.drawn_flows() {
        let arrow = if flow.both_ways { "<-->" } else { "-->" };
        let _ = writeln!(out, "  {} {arrow}|{}| {}", id(&flow.from), quoted(&flow.label), id(&flow.to));
    }
    write_vip_edges(diagram, &mut out);
    write_classes(diagram, &mut out);
    if !diagram.firewall {
        out.push_str(
            "  %% no tier firewall: every host accepts every port; the flows shown are those the stack uses\n",
        );
    }
    out
}

/// The virtual IP to each balancer: thick to the holder (now, with
/// `--live`; else the one expected by priority), dotted to the others.
fn write_vip_edges(diagram: &Diagram, out: &mut String) {
    for edge in diagram.vip_edges() {
        let arrow = if edge.holds { "==>" } else { "-.->" };
        let _ = writeln!(out, "  vip {arrow}|{}| {}", quoted(&edge.label), id(&End::Host(edge.balancer.to_string())));
    }
}

fn write_classes(diagram: &Diagram, out: &mut String) {
    let mut marked: Vec<(String, &str)> = Vec::new();
    for node in diagram.tiers.iter().flat_map(|tier| &tier.hosts) {
        let class = match node.live {
            Some(Live::Drifted) => "drifted",
            Some(Live::Unreachable) => "unreachable",
            _ => continue,
        };
        marked.push((id(&End::Host(node.name.clone())), class));
    }
    if let Some(holders) = diagram.virtual_ip.as_ref().and_then(|vip| vip.holders.as_ref()) {
        marked.extend(holders.iter().map(|name| (id(&End::Host(name.clone())), "holder")));
    }
    if marked.is_empty() {
        return;
    }
    out.push_str("  classDef holder fill:#d9f2d9,stroke:#2e7d32,stroke-width:3px\n");
    out.push_str("  classDef drifted fill:#fff4cc,stroke:#b7950b\n");
    out.push_str("  classDef unreachable fill:#f8d7da,stroke:#b71c1c,stroke-dasharray:4\n");
    for (node, class) in marked {
        let _ = writeln!(out, "  class {node} {class}");
    }
}

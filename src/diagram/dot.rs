//! Graphviz DOT, and SVG by Graphviz's own `dot`.
//!
//! Graphviz does the layout (ranks, clusters, edge routing) that hand-placed
//! boxes get wrong as soon as a tier grows; Debian packages it and its SVG
//! is self-contained (no fonts or scripts fetched). Left to right from the
//! clients inward, as the seeds draw it: every arrow is a request's way,
//! the database last. The SVG scales to the window it is shown in.

use std::fmt::Write;
use std::io::Write as _;
use std::process::{Command, Stdio};

use super::{Diagram, End, Live, id, live_note, role_names};

/// A DOT double-quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

pub fn write(diagram: &Diagram) -> String {
    let mut out = String::from("digraph infra {\n");
    out.push_str("  rankdir=LR; compound=true; newrank=true; nodesep=0.25; ranksep=0.7; fontname=\"sans-serif\";\n");
    out.push_str(
        "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#f4f6f8\", fontname=\"sans-serif\", fontsize=11];\n",
    );
    out.push_str("  edge [fontname=\"sans-serif\", fontsize=9, color=\"#555555\"];\n");
    if !diagram.firewall {
        let _ = writeln!(
            out,
            "  label={}; labelloc=t;",
            quoted("no tier firewall: every host accepts every port; the flows shown are those the stack uses")
        );
    }
    if let Some(vip) = &diagram.virtual_ip {
        let _ = writeln!(out, "  clients [shape=oval, label={}];", quoted("clients"));
        let label = format!("virtual IP\n{}", vip.address);
        let _ = writeln!(out, "  vip [shape=hexagon, fillcolor=\"#e3f2fd\", label={}];", quoted(&label));
    }
    if !diagram.admin.is_empty() {
        let label = format!("admin\n{}", diagram.admin.join("\n"));
        let _ = writeln!(out, "  admin [shape=parallelogram, fillcolor=\"#ede7f6\", label={}];", quoted(&label));
        if diagram.virtual_ip.is_some() {
            // Beside the clients: both come from outside.
            out.push_str("  { rank=same; clients; admin; }\n");
        }
    }
    // From the clients inward: the balancers first, the database last.
    for tier in diagram.tiers.iter().rev() {
        let _ = writeln!(out, "  subgraph cluster_{} {{", tier.role.name());
        let _ = writeln!(out, "    label={}; style=\"rounded,dashed\"; color=\"#9e9e9e\";", quoted(tier.role.name()));
        for node in &tier.hosts {
            let mut label = format!("{}\n{}\n{}", node.name, node.address, role_names(&node.roles));
            if !node.processes.is_empty() {
                label.push_str(&format!("\n+ {}", node.processes.join(", ")));
            }
            if let Some(note) = live_note(node.live) {
                label.push_str(&format!("\n{note}"));
            }
            let style = node_style(diagram, &node.name, node.live);
            let _ = writeln!(out, "    {} [label={}{style}];", id(&End::Host(node.name.clone())), quoted(&label));
        }
        // One column per tier: a host no drawn arrow reaches (an arrow
        // between tiers ends at the first host) stays with its tier.
        let members: Vec<String> = tier.hosts.iter().map(|node| id(&End::Host(node.name.clone()))).collect();
        let _ = writeln!(out, "    {{ rank=same; {}; }}", members.join("; "));
        out.push_str("  }\n");
    }
    for flow in &diagram.drawn_flows() {
        let (ends, mut extra) = edge_ends(diagram, &flow.from, &flow.to);
        if flow.both_ways {
            // Within one tier: no rank between the pair.
            extra.push_str(", dir=both, style=dashed, constraint=false");
        }
        if flow.from == End::Admin {
            extra.push_str(", style=dotted, color=\"#7e57c2\", fontcolor=\"#7e57c2\"");
        }
        let _ = writeln!(out, "  {ends} [label={}{extra}];", quoted(&flow.label));
    }
    write_vip_edges(diagram, &mut out);
    out.push_str("}\n");
    out
}

/// `a -> b` and extra attributes: an end that is a whole tier is its
/// first host, the edge clipped at the tier's box (`ltail`, `lhead`).
fn edge_ends(diagram: &Diagram, from: &End, to: &End) -> (String, String) {
    let resolve = |end: &End| match end {
        End::Tier(role) => {
            diagram.tiers.iter().find(|tier| tier.role == *role).and_then(|tier| tier.hosts.first()).map_or_else(
                || (id(end), None),
                |node| (id(&End::Host(node.name.clone())), Some(format!("cluster_{}", role.name()))),
            )
        }
        other => (id(other), None),
    };
    let (tail, tail_cluster) = resolve(from);
    let (head, head_cluster) = resolve(to);
    let mut extra = String::new();
    if let Some(cluster) = tail_cluster {
        extra.push_str(&format!(", ltail={cluster}"));
    }
    if let Some(cluster) = head_cluster {
        extra.push_str(&format!(", lhead={cluster}"));
    }
    (format!("{tail} -> {head}"), extra)
}

fn node_style(diagram: &Diagram, name: &str, live: Option<Live>) -> &'static str {
    let holds = diagram
        .virtual_ip
        .as_ref()
        .and_then(|vip| vip.holders.as_ref())
        .is_some_and(|holders| holders.iter().any(|holder| holder == name));
    match live {
        Some(Live::Unreachable) => ", fillcolor=\"#f8d7da\", color=\"#b71c1c\", style=\"rounded,filled,dashed\"",
        _ if holds => ", fillcolor=\"#d9f2d9\", color=\"#2e7d32\", penwidth=3",
        Some(Live::Drifted) => ", fillcolor=\"#fff4cc\", color=\"#b7950b\"",
        _ => "",
    }
}

fn write_vip_edges(diagram: &Diagram, out: &mut String) {
    for edge in diagram.vip_edges() {
        let style = if edge.holds { "penwidth=2.5, color=\"#1565c0\"" } else { "style=dashed" };
        let target = id(&End::Host(edge.balancer.to_string()));
        let _ = writeln!(out, "  vip -> {target} [label={}, {style}];", quoted(&edge.label));
    }
}

#[cfg(test)]
#[test]
fn the_svg_scales_to_its_window() {
    let svg = "<?xml?>\n<svg width=\"1515pt\" height=\"324pt\"\n viewBox=\"0 0 1515 324\" xmlns=\"x\">\n<g/></svg>\n";
    assert_eq!(
        scalable(svg),
        "<?xml?>\n<svg width=\"100%\" style=\"max-width: 1515pt\"\n viewBox=\"0 0 1515 324\" xmlns=\"x\">\n<g/></svg>\n"
    );
}

#[derive(Debug, thiserror::Error)]
pub enum SvgError {
    #[error(
        "drawing SVG needs Graphviz's `dot`, which is not installed\n\nhint: install it (`apt-get install graphviz`), or pass `--format mermaid` or `--format dot`, which need nothing"
    )]
    NoGraphviz,
    #[error("cannot run Graphviz's `dot`")]
    Run(#[source] std::io::Error),
    #[error("Graphviz's `dot` failed: {0}")]
    Failed(String),
}

/// Lays `dot_text` out as SVG with Graphviz.
pub fn svg(dot_text: &str) -> Result<String, SvgError> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound { SvgError::NoGraphviz } else { SvgError::Run(error) }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot_text.as_bytes()).map_err(SvgError::Run)?;
    }
    let output = child.wait_with_output().map_err(SvgError::Run)?;
    if !output.status.success() {
        return Err(SvgError::Failed(String::from_utf8_lossy(&output.stderr).trim().to_string()));
    }
    let svg = String::from_utf8(output.stdout).map_err(|_| SvgError::Failed("its output is not UTF-8".into()))?;
    // The DOCTYPE names a DTD on the web; nothing needs it, and a viewer
    // that resolves it would fetch it.
    let svg = svg
        .lines()
        .filter(|line| !line.starts_with("<!DOCTYPE") && !line.contains("svg11.dtd"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    Ok(scalable(&svg))
}

/// Graphviz fixes the picture's size in points; a window narrower than
/// that clips it. With `width="100%"` and no height the viewBox scales it
/// to the window, never beyond its natural size (`max-width`).
fn scalable(svg: &str) -> String {
    let Some(start) = svg.find("<svg ") else { return svg.to_string() };
    let Some(end) = svg[start..].find('>').map(|end| start + end) else { return svg.to_string() };
    let tag = &svg[start..end];
    let attribute = |name: &str| {
        let from = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let to = tag[from..].find('"')? + from;
        Some((from - name.len() - 3, to + 1, tag[from..to].to_string()))
    };
    let (Some((width_start, width_end, width)), Some((height_start, height_end, _))) =
        (attribute("width"), attribute("height"))
    else {
        return svg.to_string();
    };
    let mut new_tag = tag.to_string();
    // Height first: it comes after width, so width's offsets stay valid.
    new_tag.replace_range(height_start..height_end, "");
    new_tag.replace_range(width_start..width_end, &format!(" width=\"100%\" style=\"max-width: {width}\""));
    format!("{}{new_tag}{}", &svg[..start], &svg[end..])
}

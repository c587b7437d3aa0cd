//! A picture of the topology: what `infra diagram` draws.
//!
//! [`Diagram::of`] reads a stack into plain data: the tiers in
//! stage order with their hosts, the virtual IP and the balancer expected
//! to hold it, and every flow the tier firewall allows (the same
//! [`topology::allowances`] the ruleset is rendered from, so the picture
//! cannot show a flow the hosts refuse, nor miss one they accept). With
//! `--live`, [`Diagram::mark`] adds what the hosts say now: which balancer
//! holds the virtual IP, which hosts are unreachable or drifted. The
//! [`mermaid`] and [`dot`] writers turn it into text; Graphviz lays the DOT
//! out as SVG.

pub mod dot;
pub mod mermaid;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::stack::Stack;
use crate::topology::{self, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagram {
    pub tiers: Vec<Tier>,
    pub virtual_ip: Option<VirtualIp>,
    pub flows: Vec<Flow>,
    /// The networks SSH is accepted from, when the firewall is on.
    pub admin: Vec<String>,
    /// Without the tier firewall every host accepts every port; the flows
    /// drawn are then only those the stack uses.
    pub firewall: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub role: Role,
    pub hosts: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub address: IpAddr,
    pub roles: Vec<Role>,
    /// The app's processes beside Gunicorn on an app host (`worker ×2`).
    pub processes: Vec<String>,
    pub live: Option<Live>,
}

/// What a host said when the diagram was drawn with `--live`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    InSync,
    /// Its configuration differs from the inventory: `infra plan` shows how.
    Drifted,
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualIp {
    pub address: IpAddr,
    pub http_port: u16,
    pub tls_port: Option<u16>,
    /// Each balancer with its VRRP priority, the expected holder first.
    pub balancers: Vec<(String, u8)>,
    /// Who holds it now, with `--live`: none, one, or (split brain) several.
    pub holders: Option<Vec<String>>,
}

/// The virtual IP to one balancer.
pub struct VipEdge<'a> {
    pub balancer: &'a str,
    pub holds: bool,
    pub label: String,
}

/// One end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    Clients,
    VirtualIp,
    Admin,
    Host(String),
    /// Every host of a tier (the admin network's SSH).
    Tier(Role),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub from: End,
    pub to: End,
    pub label: String,
    /// VRRP: each balancer sends adverts to the other.
    pub both_ways: bool,
}

impl Diagram {
    /// The topology of a stack.
    pub fn of(stack: &Stack) -> Diagram {
        let tiers: Vec<Tier> = topology::stages(stack)
            .into_iter()
            .map(|stage| Tier {
                role: stage.role,
                hosts: stage
                    .hosts
                    .iter()
                    .map(|host| Node {
                        name: host.name.value.clone(),
                        address: host.address.value,
                        roles: host.roles.iter().map(|role| role.value).collect(),
                        processes: if host.roles.iter().any(|role| role.value == Role::App) {
                            stack
                                .app
                                .processes
                                .iter()
                                .map(|process| format!("{} ×{}", process.name.value, process.count.value))
                                .collect()
                        } else {
                            Vec::new()
                        },
                        live: None,
                    })
                    .collect(),
            })
            .collect();
        let virtual_ip = Some(&stack.load_balancer).map(|settings| {
            let balancers: Vec<_> = stack.hosts_with(Role::LoadBalancer).collect();
            let mut by_priority: Vec<(String, u8)> = topology::vrrp_priorities(&balancers)
                .into_iter()
                .map(|(priority, _, host)| (host.name.value.clone(), priority))
                .collect();
            by_priority.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            VirtualIp {
                address: settings.virtual_ip.value.addr(),
                http_port: settings.frontend_port.value,
                tls_port: settings.tls.as_ref().map(|tls| tls.port.value),
                balancers: by_priority,
                holders: None,
            }
        });
        let mut diagram = Diagram {
            tiers,
            virtual_ip,
            flows: Vec::new(),
            admin: topology::admin_networks(stack).iter().map(ToString::to_string).collect(),
            // A stack always has its tier firewall (`firewall.admin_cidrs` is required).
            firewall: true,
        };
        diagram.flows = flows(stack, &diagram);
        diagram
    }

    /// Marks what the hosts said: the balancers holding the virtual IP,
    /// and each host in sync, drifted or unreachable.
    pub fn mark(&mut self, holders: Vec<String>, live: &BTreeMap<String, Live>) {
        if let Some(virtual_ip) = &mut self.virtual_ip {
            virtual_ip.holders = Some(holders);
        }
        for node in self.tiers.iter_mut().flat_map(|tier| tier.hosts.iter_mut()) {
            node.live = live.get(&node.name).copied();
        }
    }

    /// The virtual IP's edge to each balancer: whether it holds the address
    /// (now, with `--live`; else expected to, by priority) and the label.
    pub fn vip_edges(&self) -> Vec<VipEdge<'_>> {
        let Some(vip) = &self.virtual_ip else { return Vec::new() };
        vip.balancers
            .iter()
            .enumerate()
            .map(|(index, (name, priority))| {
                let holds = vip.holders.as_ref().map_or(index == 0, |holders| holders.contains(name));
                let unreachable = self.node(name).is_some_and(|node| node.live == Some(Live::Unreachable));
                let words = match (&vip.holders, holds) {
                    (Some(_), true) => "holds it now",
                    // A balancer that did not answer may hold it or not.
                    (Some(_), false) if unreachable => "unknown (unreachable)",
                    (Some(_), false) => "does not hold it",
                    (None, true) => "expected holder",
                    (None, false) => "backup",
                };
                VipEdge { balancer: name, holds, label: format!("{words}, priority {priority}") }
            })
            .collect()
    }

    fn node(&self, name: &str) -> Option<&Node> {
        self.tiers.iter().flat_map(|tier| &tier.hosts).find(|node| node.name == name)
    }

    /// The tier a host is drawn in.
    fn tier_of(&self, end: &End) -> Option<&Tier> {
        let End::Host(name) = end else { return None };
        self.tiers.iter().find(|tier| tier.hosts.iter().any(|node| node.name == *name))
    }

    /// The flows as drawn: where every host of one tier reaches every host
    /// of another on the same ports, one arrow between the two tiers
    /// instead of one per pair (on `scaled.yml`, one `tcp :8000` where
    /// there were four, crossing). Any other flow is drawn host to host.
    pub fn drawn_flows(&self) -> Vec<Flow> {
        let mut drawn: Vec<Flow> = Vec::new();
        let mut grouped: BTreeSet<(Role, Role, String)> = BTreeSet::new();
        for flow in &self.flows {
            let tiers = (self.tier_of(&flow.from), self.tier_of(&flow.to));
            let (Some(from), Some(to)) = tiers else {
                drawn.push(flow.clone());
                continue;
            };
            let key = (from.role, to.role, flow.label.clone());
            if grouped.contains(&key) {
                continue;
            }
            let pairs = self.flows.iter().filter(|other| {
                other.label == flow.label
                    && other.both_ways == flow.both_ways
                    && self.tier_of(&other.from).is_some_and(|tier| tier.role == from.role)
                    && self.tier_of(&other.to).is_some_and(|tier| tier.role == to.role)
            });
            let every_pair = from.hosts.len() * to.hosts.len();
            if from.role != to.role && every_pair > 1 && pairs.count() == every_pair {
                grouped.insert(key);
                drawn.push(Flow { from: End::Tier(from.role), to: End::Tier(to.role), ..flow.clone() });
            } else {
                drawn.push(flow.clone());
            }
        }
        drawn
    }

    /// The balancer expected to hold the virtual IP: the highest priority.
    pub fn expected_holder(&self) -> Option<&str> {
        self.virtual_ip.as_ref().and_then(|vip| vip.balancers.first()).map(|(name, _)| name.as_str())
    }
}

fn ports_label(protocol: &str, ports: &[u16]) -> String {
    let ports: Vec<String> = ports.iter().map(|port| format!(":{port}")).collect();
    format!("{protocol} {}", ports.join(" "))
}

/// Every flow the firewall allows (or, without it, the stack uses), from
/// the same allowances the ruleset is rendered from.
fn flows(stack: &Stack, diagram: &Diagram) -> Vec<Flow> {
    let by_address: BTreeMap<IpAddr, &str> =
        stack.hosts.iter().map(|host| (host.address.value, host.name.value.as_str())).collect();
    let mut flows = Vec::new();
    if let Some(vip) = &diagram.virtual_ip {
        let mut label = format!("http :{}", vip.http_port);
        if let Some(port) = vip.tls_port {
            label.push_str(&format!(", https :{port} (TLS)"));
        }
        flows.push(Flow { from: End::Clients, to: End::VirtualIp, label, both_ways: false });
    }
    let mut vrrp_pairs = BTreeSet::new();
    for host in &stack.hosts {
        let to = End::Host(host.name.value.clone());
        for allowance in topology::allowances(stack, host) {
            let Some(sources) = &allowance.from else { continue };
            let names: BTreeSet<&str> = sources.iter().filter_map(|address| by_address.get(address).copied()).collect();
            for source in names {
                if allowance.tcp_ports.is_empty() {
                    let pair = if source < host.name.value.as_str() {
                        (source.to_string(), host.name.value.clone())
                    } else {
                        (host.name.value.clone(), source.to_string())
                    };
                    vrrp_pairs.insert(pair);
                } else {
                    let label = ports_label("tcp", &allowance.tcp_ports);
                    flows.push(Flow { from: End::Host(source.to_string()), to: to.clone(), label, both_ways: false });
                }
            }
        }
    }
    flows.extend(vrrp_pairs.into_iter().map(|(a, b)| Flow {
        from: End::Host(a),
        to: End::Host(b),
        label: "VRRP".into(),
        both_ways: true,
    }));
    if !diagram.admin.is_empty() {
        for tier in &diagram.tiers {
            let ports: BTreeSet<u16> = stack
                .hosts
                .iter()
                .filter(|host| tier.hosts.iter().any(|node| node.name == host.name.value))
                .map(|host| topology::ssh_port(&stack.ssh, host))
                .collect();
            let ports: Vec<u16> = ports.into_iter().collect();
            let label = ports_label("ssh", &ports);
            flows.push(Flow { from: End::Admin, to: End::Tier(tier.role), label, both_ways: false });
        }
    }
    flows
}

/// A node id for Mermaid and DOT: host names are DNS labels (letters,
/// digits, `-`), so replacing `-` by `_` keeps ids distinct.
fn id(end: &End) -> String {
    match end {
        End::Clients => "clients".into(),
        End::VirtualIp => "vip".into(),
        End::Admin => "admin".into(),
        End::Host(name) => format!("host_{}", name.replace('-', "_")),
        End::Tier(role) => format!("tier_{}", role.name()),
    }
}

fn role_names(roles: &[Role]) -> String {
    roles.iter().map(|role| role.name()).collect::<Vec<_>>().join(", ")
}

/// The words a live mark adds to a host's label.
fn live_note(live: Option<Live>) -> Option<&'static str> {
    match live? {
        Live::InSync => None,
        Live::Drifted => Some("drifted"),
        Live::Unreachable => Some("unreachable"),
    }
}

#[cfg(test)]
mod tests;

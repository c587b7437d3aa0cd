//! The validated stack: an inventory that passed every rule, with what the
//! rules guarantee written into its types, so nothing after them checks
//! again or guesses. Every role's settings are present (a valid inventory
//! has hosts of every role, and the decoder applies defaults), each host's
//! stage is known, and each host's listeners (which service on which port,
//! from its roles) are computed once here and read by the firewall, the
//! probes, the diagram and the rules alike.
//!
//! Built by `rules::validate` only when no error was found; render, the
//! topology, the diagram and every command take a [`Stack`], never the raw
//! [`Inventory`], which stays what the decoder and the rules see.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::inventory::{
    AppSettings, DatabaseSettings, FirewallSettings, Host, Inventory, LoadBalancerSettings, Networks, SshSettings,
    WebSettings,
};
use crate::role::{Role, role_order};
use crate::source::{LocalFiles, Span, Spanned};

/// An inventory that passed every rule.
#[derive(Clone, Debug)]
pub struct Stack {
    /// Where the inventory's local paths are resolved, and may lead.
    pub files: LocalFiles,
    pub ssh: SshSettings,
    pub templates: Option<Spanned<PathBuf>>,
    pub hosts: Vec<Host>,
    pub load_balancer: LoadBalancerSettings,
    pub web: WebSettings,
    pub app: AppSettings,
    pub database: DatabaseSettings,
    pub firewall: FirewallSettings,
    pub networks: Option<Networks>,
    /// Each host's stage and listeners, by host name.
    derived: BTreeMap<String, Derived>,
}

#[derive(Clone, Debug)]
struct Derived {
    stage: Role,
    listeners: Vec<Listener>,
}

/// A service a host runs that others connect to, on the port its role's
/// settings give it. SSH is not one: its port is the host's connection's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    pub role: Role,
    /// How an operator names it: `HAProxy`, `HAProxy (TLS)`, `Nginx`, …
    pub service: &'static str,
    pub port: u16,
    /// Where the port is set (or defaulted), for diagnostics.
    pub span: Span,
}

/// Why an inventory is not a stack: the rules let through something they
/// must not have (a bug in them, said rather than papered over).
#[derive(Debug, thiserror::Error)]
pub enum NotAStack {
    #[error("the inventory has no `{0}` section")]
    MissingSection(&'static str),
    #[error("host `{0}` has no role")]
    NoRole(String),
}

impl Stack {
    /// The stack of an inventory the rules found no error in.
    pub fn of(inventory: Inventory) -> Result<Stack, NotAStack> {
        let mut derived = BTreeMap::new();
        for host in &inventory.hosts {
            let stage = stage_of(host).ok_or_else(|| NotAStack::NoRole(host.name.value.clone()))?;
            derived.insert(host.name.value.clone(), Derived { stage, listeners: listeners(&inventory, host) });
        }
        Ok(Stack {
            load_balancer: inventory.load_balancer.ok_or(NotAStack::MissingSection("load_balancer"))?,
            web: inventory.web.ok_or(NotAStack::MissingSection("web"))?,
            app: inventory.app.ok_or(NotAStack::MissingSection("app"))?,
            database: inventory.database.ok_or(NotAStack::MissingSection("database"))?,
            firewall: inventory.firewall.ok_or(NotAStack::MissingSection("firewall"))?,
            networks: inventory.networks,
            files: inventory.files,
            ssh: inventory.ssh,
            templates: inventory.templates,
            hosts: inventory.hosts,
            derived,
        })
    }

    /// The stage `host`, one of this stack's hosts, is converged in.
    pub fn stage(&self, host: &Host) -> Option<Role> {
        self.derived.get(&host.name.value).map(|derived| derived.stage)
    }

    /// What `host` listens on for other hosts, in the order it lists its roles.
    pub fn listeners(&self, host: &Host) -> &[Listener] {
        self.derived.get(&host.name.value).map_or(&[], |derived| derived.listeners.as_slice())
    }

    /// The port `host`'s service of `role` listens on (the first, for a
    /// balancer: plain HTTP).
    pub fn port(&self, host: &Host, role: Role) -> Option<u16> {
        self.listeners(host).iter().find(|listener| listener.role == role).map(|listener| listener.port)
    }

    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |host| host.has_role(role))
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|host| host.name.value == name)
    }
}

/// The stage a host is converged in: the earliest of its roles in
/// dependency order, so that it is converged before anything that depends
/// on any of its roles.
pub fn stage_of(host: &Host) -> Option<Role> {
    role_order().into_iter().find(|role| host.has_role(*role))
}

/// What `host` listens on, from its roles and the inventory's settings for
/// them: the one place roles become ports. The rules call it on the raw
/// inventory (a section may be missing there: its role listens on nothing),
/// the stack once per host.
pub fn listeners(inventory: &Inventory, host: &Host) -> Vec<Listener> {
    let mut found = Vec::new();
    let mut listen = |role, service, port: &Spanned<u16>| {
        found.push(Listener { role, service, port: port.value, span: port.span });
    };
    for role in host.roles.iter().map(|role| role.value) {
        match role {
            Role::LoadBalancer => {
                if let Some(settings) = &inventory.load_balancer {
                    listen(role, "HAProxy", &settings.frontend_port);
                    if let Some(tls) = &settings.tls {
                        listen(role, "HAProxy (TLS)", &tls.port);
                    }
                }
            }
            Role::Web => {
                if let Some(web) = &inventory.web {
                    listen(role, "Nginx", &web.port);
                }
            }
            Role::App => {
                if let Some(app) = &inventory.app {
                    listen(role, "Gunicorn", &Spanned::new(app.bind.value.port(), app.bind.span));
                }
            }
            Role::Database => {
                if let Some(database) = &inventory.database {
                    listen(role, "MariaDB", &database.port);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::{VALID, broken, stack};

    #[test]
    fn every_host_of_the_valid_fixture_has_its_stage_and_listeners() {
        let stack = stack(VALID);
        let web = stack.host("web-01").expect("web-01");
        assert_eq!(stack.stage(web), Some(Role::Web));
        assert_eq!(stack.port(web, Role::Web), Some(80));
        let app = stack.host("app-01").expect("app-01");
        assert_eq!(stack.port(app, Role::App), Some(8000));
        assert_eq!(stack.port(app, Role::Web), None);
    }

    #[test]
    fn web_hosts_without_a_web_section_get_its_defaults() {
        let text = broken("web:\n  static_source: static\n", "");
        let stack = stack(&text);
        assert_eq!((stack.web.port.value, stack.web.server_name.value.as_str()), (80, "_"));
        let rendered = crate::render::render(&stack, crate::render::SecretMode::Placeholder).expect("renders");
        let web = rendered.state.hosts.iter().find(|host| host.name == "web-01").expect("web-01");
        assert!(web.files.iter().any(|file| file.path == "/etc/nginx/nginx.conf"), "web-01 gets Nginx");
    }
}

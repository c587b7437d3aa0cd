//! Rules that tie one tier to the next: HAProxy backends are the web hosts,
//! Nginx upstreams are the app hosts' Gunicorn binds, and the database listens
//! where the app hosts can reach it and grants exactly them.

use std::fmt::Display;
use std::net::IpAddr;

use crate::diagnostic::Diagnostic;
use crate::inventory::{Inventory, quoted_list};
use crate::source::Spanned;
use crate::topology::Role;

pub fn check(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    sections_match_roles(inventory, found);
    explicit_backends(inventory, found);
    explicit_upstreams(inventory, found);
    app_bind(inventory, found);
    database_bind(inventory, found);
    database_clients(inventory, found);
}

/// Roles whose settings have no defaults need their section; a section with
/// no host to use it is probably a typo in a role.
fn sections_match_roles(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let sections = [
        (Role::App, inventory.app.as_ref().map(|s| s.span), "`module` and `source`"),
        (Role::Database, inventory.database.as_ref().map(|s| s.span), "`name`, `user` and `password`"),
        (Role::Web, inventory.web.as_ref().map(|s| s.span), ""),
        (Role::LoadBalancer, inventory.load_balancer.as_ref().map(|s| s.span), ""),
    ];
    for (role, section, required) in sections {
        let first_host = inventory.hosts_with(role).next();
        match (first_host, section) {
            (Some(host), None) if !required.is_empty() && !inventory.declared_sections.contains(&role.name()) => found
                .push(
                    Diagnostic::error(
                        "missing-settings",
                        format!(
                            "hosts have the role `{}` but the inventory has no `{}` section",
                            role.name(),
                            role.name()
                        ),
                    )
                    .at(
                        host.roles.iter().find(|r| r.value == role).map_or(host.name.span, |r| r.span),
                        format!("`{}` role", role.name()),
                    )
                    .help(format!("add `{}:` with {required}", role.name())),
                ),
            (None, Some(span)) if !inventory.incomplete => found.push(
                Diagnostic::warning(
                    "unused-settings",
                    format!("the `{}` section is unused: no host has that role", role.name()),
                )
                .at(span, "unused"),
            ),
            _ => {}
        }
    }
}

/// Compares an explicit list with the derived one and reports each side's
/// extras; set lookups keep it linear in the length of both lists.
fn exactly<T: Eq + std::hash::Hash + Display>(
    explicit: &Spanned<Vec<Spanned<T>>>,
    derived: &[T],
    what: &str,
    expected: &str,
    code: &'static str,
    found: &mut Vec<Diagnostic>,
) {
    let derived_set: std::collections::HashSet<&T> = derived.iter().collect();
    let listed: std::collections::HashSet<&T> = explicit.value.iter().map(|item| &item.value).collect();
    for extra in explicit.value.iter().filter(|item| !derived_set.contains(&item.value)) {
        found.push(
            Diagnostic::error(code, format!("{what} lists `{extra}`, which is not {expected}"))
                .at(extra.span, format!("not {expected}")),
        );
    }
    let missing: Vec<String> = derived.iter().filter(|item| !listed.contains(item)).map(ToString::to_string).collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(String::as_str).collect();
        found.push(
            Diagnostic::error(code, format!("{what} leaves out {}", quoted_list(&names)))
                .at(explicit.span, format!("must list every one of {expected}"))
                .help(format!("remove the key to derive the list from the inventory, or add {}", quoted_list(&names))),
        );
    }
}

fn explicit_backends(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let Some(backends) = inventory.load_balancer.as_ref().and_then(|lb| lb.backends.as_ref()) else {
        return;
    };
    let web_hosts: Vec<String> = inventory.hosts_with(Role::Web).map(|host| host.name.value.clone()).collect();
    exactly(backends, &web_hosts, "`backends`", "a web host", "backends-not-web-hosts", found);
}

fn explicit_upstreams(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let Some(upstreams) = inventory.web.as_ref().and_then(|web| web.upstreams.as_ref()) else {
        return;
    };
    // What each app host's Gunicorn listens on, as the stack will say it.
    let binds: Vec<std::net::SocketAddr> = inventory
        .hosts_with(Role::App)
        .flat_map(|host| {
            crate::stack::listeners(inventory, host)
                .into_iter()
                .filter(|listener| listener.role == Role::App)
                .map(|listener| std::net::SocketAddr::new(host.address.value, listener.port))
        })
        .collect();
    exactly(upstreams, &binds, "`upstreams`", "an app host's Gunicorn bind", "upstreams-not-app-hosts", found);
}

/// Gunicorn listens on the bind of `app`; web hosts must be able to reach it
/// on every app host.
fn app_bind(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let Some(app) = &inventory.app else { return };
    let ip = app.bind.value.ip();
    if ip.is_unspecified() {
        return;
    }
    let reason = if ip.is_loopback() {
        "a loopback address: web hosts could not reach Gunicorn".to_string()
    } else {
        let others: Vec<&str> = inventory
            .hosts_with(Role::App)
            .filter(|host| host.address.value != ip)
            .map(|host| host.name.value.as_str())
            .collect();
        if others.is_empty() {
            return;
        }
        format!("not the address of {}", quoted_list(&others))
    };
    found.push(
        Diagnostic::error("app-bind-unreachable", format!("Gunicorn would bind {ip}, {reason}"))
            .at(app.bind.span, "bind address")
            .help(format!("bind `0.0.0.0:{}`; the firewall, not the bind, limits who connects", app.bind.value.port())),
    );
}

fn database_bind(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let Some(database) = &inventory.database else {
        return;
    };
    let Some(bind) = &database.bind_address else {
        return;
    };
    let Some(host) = inventory.hosts_with(Role::Database).next() else {
        return;
    };
    if bind.value.is_loopback() {
        found.push(
            Diagnostic::error(
                "database-bind-unreachable",
                format!("the database would listen on {}, which app hosts cannot reach", bind),
            )
            .at(bind.span, "loopback address")
            .help(format!("remove `bind_address` to listen on `{}` ({})", host.name, host.address)),
        );
    } else if bind.value.is_unspecified() {
        found.push(
            Diagnostic::warning(
                "database-bind-everywhere",
                format!("the database would listen on every interface of `{}`", host.name),
            )
            .at(bind.span, "all interfaces")
            .help(format!("remove `bind_address` to listen only on {}", host.address)),
        );
    } else if bind.value != host.address.value {
        found.push(
            Diagnostic::error(
                "database-bind-foreign",
                format!("`bind_address` {} is not an address of the database host `{}`", bind, host.name),
            )
            .at(bind.span, "not the database host's address")
            .also(host.address.span, "the database host's address"),
        );
    }
}

fn database_clients(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let Some(allowed) = inventory.database.as_ref().and_then(|database| database.allowed_hosts.as_ref()) else {
        return;
    };
    let clients: Vec<IpAddr> = inventory.hosts_with(Role::App).map(|host| host.address.value).collect();
    exactly(allowed, &clients, "`allowed_hosts`", "an app host's address", "grants-not-app-hosts", found);
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    #[test]
    fn backends_must_be_the_web_hosts() {
        let with =
            |list: &str| broken("  virtual_router_id: 51\n", &format!("  virtual_router_id: 51\n  backends: {list}\n"));
        assert_eq!(codes(&with("[web-01]")), Vec::<&str>::new());
        assert_eq!(codes(&with("[web-01, app-01]")), ["backends-not-web-hosts"]);
        assert_eq!(codes(&with("[]")), ["backends-not-web-hosts"]);
    }

    #[test]
    fn upstreams_must_be_the_app_binds() {
        let with = |list: &str| {
            broken("  static_source: static\n", &format!("  static_source: static\n  upstreams: {list}\n"))
        };
        assert_eq!(codes(&with("[\"10.20.0.31:8000\"]")), Vec::<&str>::new());
        assert_eq!(codes(&with("[\"10.20.0.31:9000\"]")), ["upstreams-not-app-hosts", "upstreams-not-app-hosts"]);
    }

    #[test]
    fn gunicorn_on_loopback_is_unreachable() {
        assert_eq!(codes(&broken("bind: 0.0.0.0:8000", "bind: 127.0.0.1:8000")), ["app-bind-unreachable"]);
    }

    #[test]
    fn database_on_loopback_is_unreachable() {
        assert_eq!(codes(&broken("  port: 3306\n", "  bind_address: 127.0.0.1\n")), ["database-bind-unreachable"]);
    }

    #[test]
    fn database_bind_of_another_host() {
        assert_eq!(codes(&broken("  port: 3306\n", "  bind_address: 10.20.0.31\n")), ["database-bind-foreign"]);
    }

    #[test]
    fn grants_must_be_the_app_hosts() {
        let with = |list: &str| broken("  port: 3306\n", &format!("  allowed_hosts: {list}\n"));
        assert_eq!(codes(&with("[10.20.0.31]")), Vec::<&str>::new());
        assert_eq!(codes(&with("[10.20.0.31, 10.20.0.21]")), ["grants-not-app-hosts"]);
    }

    #[test]
    fn a_role_without_its_settings() {
        let start = VALID.find("database:\n").expect("database section");
        let text = VALID[..start].to_string();
        assert_eq!(codes(&text), ["missing-settings"]);
    }
}

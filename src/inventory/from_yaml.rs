//! Builds an [`Inventory`] from the YAML node tree, one section at a time.
//!
//! Each function asks its mapping for the keys it knows (which is also how
//! unknown keys are found), applies documented defaults, and records a
//! diagnostic for anything it cannot use.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::decode::{Decoder, Fields, did_you_mean, quoted_list};
use super::grammar;
use super::model::*;
use super::yaml::{Node, Value};
use crate::debian::Debian;
use crate::diagnostic::Diagnostic;
use crate::role::Role;
use crate::source::{Span, Spanned};
use crate::transport::Privilege;

pub fn inventory(decoder: &mut Decoder, root: &Node, files: crate::source::LocalFiles) -> Option<Inventory> {
    let mut fields = decoder.fields(root, "the inventory")?;
    let ssh = fields.optional("ssh").map_or_else(SshSettings::default, |node| ssh(decoder, node, "`ssh`"));
    if let Some(host) = &ssh.host {
        decoder.report(
            Diagnostic::error(
                "ssh-host-not-per-host",
                "`host` of `ssh` is where one host's SSH goes, so it belongs to that host",
            )
            .at(host.span, "shared by every host here")
            .help("move it under the host it names: `hosts: [{name: ..., ssh: {host: ...}}]`"),
        );
    }
    let templates = fields.optional("templates").and_then(|node| decoder.path(node, "`templates`"));
    let hosts_node = fields.required(decoder, "hosts");
    let hosts = hosts_node.map(|node| hosts(decoder, node)).unwrap_or_default();
    let load_balancer = fields.optional("load_balancer").and_then(|node| load_balancer(decoder, node));
    let web = fields.optional("web").and_then(|node| web(decoder, node));
    let app = fields.optional("app").and_then(|node| app(decoder, node));
    let database = fields.optional("database").and_then(|node| database(decoder, node));
    let firewall = fields.optional("firewall").and_then(|node| firewall(decoder, node));
    let networks = fields.optional("networks").and_then(|node| networks(decoder, node));
    let hosts_span = hosts_node.map_or_else(|| fields.anchor(), |node| node.span);
    let declared_sections: Vec<&'static str> =
        ["load_balancer", "web", "app", "database"].into_iter().filter(|key| fields.has(key)).collect();
    // Every `web` setting has a default: web hosts without the section get
    // them (a section that failed to decode stays absent).
    let web = web.or_else(|| {
        let needed = !declared_sections.contains(&"web") && hosts.iter().any(|host| host.has_role(Role::Web));
        needed.then(|| WebSettings::defaults(fields.anchor()))
    });
    fields.finish(decoder);
    Some(Inventory {
        files,
        ssh,
        templates,
        hosts,
        hosts_span,
        load_balancer,
        web,
        app,
        database,
        firewall,
        networks,
        declared_sections,
        incomplete: decoder.diagnostics.iter().any(Diagnostic::is_error),
    })
}

fn ssh(decoder: &mut Decoder, node: &Node, what: &str) -> SshSettings {
    let Some(mut fields) = decoder.fields(node, what) else {
        return SshSettings::default();
    };
    let settings =
        SshSettings {
            user: fields.optional("user").and_then(|node| {
                decoder.grammar(node, &format!("`user` of {what}"), "invalid-user", grammar::user_name)
            }),
            port: fields.optional("port").and_then(|node| decoder.port(node, &format!("`port` of {what}"))),
            identity: fields.optional("identity").and_then(|node| decoder.path(node, &format!("`identity` of {what}"))),
            known_hosts: fields
                .optional("known_hosts")
                .and_then(|node| decoder.path(node, &format!("`known_hosts` of {what}"))),
            host: fields.optional("host").and_then(|node| {
                decoder.grammar(node, &format!("`host` of {what}"), "invalid-ssh-host", grammar::ssh_destination)
            }),
            privilege: fields.optional("become").and_then(|node| {
                decoder.parsed(node, &format!("`become` of {what}"), "`sudo` or `none`", "invalid-become", |text| {
                    match text {
                        "sudo" => Some(Privilege::Sudo),
                        "none" => Some(Privilege::Login),
                        _ => None,
                    }
                })
            }),
            jump: fields.optional("jump").and_then(|node| {
                decoder.parsed(
                    node,
                    &format!("`jump` of {what}"),
                    "a jump host `[user@]host[:port]`",
                    "invalid-jump",
                    grammar::jump,
                )
            }),
        };
    fields.finish(decoder);
    settings
}

fn hosts(decoder: &mut Decoder, node: &Node) -> Vec<Host> {
    let Some(items) = decoder.sequence(node, "`hosts`") else {
        return Vec::new();
    };
    items.iter().enumerate().filter_map(|(index, item)| host(decoder, item, index)).collect()
}

fn host(decoder: &mut Decoder, node: &Node, index: usize) -> Option<Host> {
    let mut fields = decoder.fields(node, &format!("host #{}", index + 1))?;
    let name = fields
        .required(decoder, "name")
        .and_then(|node| decoder.grammar(node, "the host name", "invalid-host-name", grammar::host_name));
    let label = name.as_ref().map_or_else(|| format!("host #{}", index + 1), |name| format!("host `{name}`"));
    fields.rename(label.clone());
    let address =
        fields.required(decoder, "address").and_then(|node| decoder.ipv4(node, &format!("`address` of {label}")));
    let public_address =
        fields.optional("public_address").and_then(|node| decoder.ipv4(node, &format!("`public_address` of {label}")));
    let roles = fields.required(decoder, "roles").map(|node| roles(decoder, node, &label)).unwrap_or_default();
    let ssh = fields
        .optional("ssh")
        .map_or_else(SshSettings::default, |node| ssh(decoder, node, &format!("`ssh` of {label}")));
    let vrrp = fields.optional("vrrp").map(|node| host_vrrp(decoder, node, &label)).unwrap_or_default();
    let lab = fields.optional("lab").map(|node| host_lab(decoder, node, &label)).unwrap_or_default();
    fields.finish(decoder);
    Some(Host { name: name?, address: address?, public_address, roles, ssh, vrrp, lab })
}

/// `lab: {release: trixie, sudo: password}`: how the lab boots the host.
fn host_lab(decoder: &mut Decoder, node: &Node, label: &str) -> HostLab {
    let what = format!("`lab` of {label}");
    let Some(mut fields) = decoder.fields(node, &what) else {
        return HostLab::default();
    };
    let release = fields.optional("release").and_then(|node| {
        decoder.parsed(
            node,
            &format!("`release` of {what}"),
            &format!("one of {}", quoted_list(&Debian::NAMES)),
            "unknown-release",
            Debian::from_codename,
        )
    });
    let sudo_password = fields.optional("sudo").and_then(|node| {
        decoder.parsed(node, &format!("`sudo` of {what}"), "`password` or `nopasswd`", "invalid-lab-sudo", |text| {
            match text {
                "password" => Some(true),
                "nopasswd" => Some(false),
                _ => None,
            }
        })
    });
    let preinstalled = fields.optional("preinstalled").and_then(|node| {
        let items = decoder.sequence(node, &format!("`preinstalled` of {what}"))?;
        let known = LAB_PREINSTALLABLE;
        let expected = format!("one of {}", quoted_list(&known));
        let parsed: Vec<_> = items
            .iter()
            .filter_map(|item| {
                decoder.parsed(item, "a preinstalled package", &expected, "unknown-lab-package", |text| {
                    known.contains(&text).then(|| text.to_string())
                })
            })
            .map(|package| package.value)
            .collect();
        Some(parsed)
    });
    fields.finish(decoder);
    HostLab {
        release,
        sudo_password: sudo_password.is_some_and(|sudo| sudo.value),
        preinstalled: preinstalled.unwrap_or_default(),
    }
}

fn roles(decoder: &mut Decoder, node: &Node, label: &str) -> Vec<Spanned<Role>> {
    let Some(items) = decoder.sequence(node, &format!("`roles` of {label}")) else {
        return Vec::new();
    };
    if items.is_empty() {
        decoder.report(
            Diagnostic::error("no-roles", format!("{label} has no roles"))
                .at(node.span, "empty role list")
                .help(format!("give it one or more of {}", quoted_list(&Role::NAMES))),
        );
    }
    let mut roles: Vec<Spanned<Role>> = Vec::new();
    for item in items {
        let Some(name) = decoder.string(item, &format!("a role of {label}")) else {
            continue;
        };
        match Role::from_name(&name.value) {
            Some(role) if roles.iter().any(|seen| seen.value == role) => decoder.report(
                Diagnostic::error("duplicate-role", format!("role `{name}` is listed twice for {label}"))
                    .at(name.span, "listed again here"),
            ),
            Some(role) => roles.push(Spanned::new(role, name.span)),
            None => {
                let mut diagnostic = Diagnostic::error("unknown-role", format!("unknown role `{name}` for {label}"))
                    .at(name.span, "unknown role");
                diagnostic = match did_you_mean(&name.value, &Role::NAMES) {
                    Some(suggestion) => diagnostic.help(format!("did you mean `{suggestion}`?")),
                    None => diagnostic.help(format!("the roles are {}", quoted_list(&Role::NAMES))),
                };
                decoder.report(diagnostic);
            }
        }
    }
    roles
}

fn host_vrrp(decoder: &mut Decoder, node: &Node, label: &str) -> HostVrrp {
    let what = format!("`vrrp` of {label}");
    let Some(mut fields) = decoder.fields(node, &what) else {
        return HostVrrp::default();
    };
    let vrrp = HostVrrp {
        priority: fields
            .optional("priority")
            .and_then(|node| decoder.integer(node, &format!("`priority` of {what}"), 1, 254)),
        virtual_router_id: fields
            .optional("virtual_router_id")
            .and_then(|node| decoder.integer(node, &format!("`virtual_router_id` of {what}"), 1, 255)),
        secret: fields.optional("secret").and_then(|node| decoder.secret(node, &format!("`secret` of {what}"))),
    };
    fields.finish(decoder);
    vrrp
}

/// A value with a default: the default is spanned at the section's first key,
/// so a rule about it still has somewhere to point.
fn or_default<T>(value: Option<Spanned<T>>, present: bool, default: T, fields: &Fields) -> Option<Spanned<T>> {
    match (value, present) {
        (Some(value), _) => Some(value),
        (None, false) => Some(Spanned::new(default, fields.anchor())),
        (None, true) => None,
    }
}

fn load_balancer(decoder: &mut Decoder, node: &Node) -> Option<LoadBalancerSettings> {
    let what = "`load_balancer`";
    let mut fields = decoder.fields(node, what)?;
    let virtual_ip = fields.required(decoder, "virtual_ip").and_then(|node| virtual_ip(decoder, node));
    let interface_node = fields.optional("interface");
    let interface =
        interface_node.and_then(|node| decoder.grammar(node, "`interface`", "invalid-interface", grammar::interface));
    let router_id = fields
        .required(decoder, "virtual_router_id")
        .and_then(|node| decoder.integer(node, "`virtual_router_id`", 1, 255));
    let secret = fields.required(decoder, "vrrp_secret").and_then(|node| decoder.secret(node, "`vrrp_secret`"));
    let port_node = fields.optional("frontend_port");
    let frontend_port = port_node.and_then(|node| decoder.port(node, "`frontend_port`"));
    let balance_node = fields.optional("balance");
    let balance = balance_node.and_then(|node| {
        decoder.parsed(
            node,
            "`balance`",
            &format!("one of {}", quoted_list(&Balance::NAMES)),
            "unknown-balance",
            Balance::from_name,
        )
    });
    let backends = fields.optional("backends").and_then(|node| string_list(decoder, node, "`backends`"));
    let tls_node = fields.optional("tls");
    let tls = tls_node.and_then(|node| tls(decoder, node));
    let settings = LoadBalancerSettings {
        span: node.span,
        interface: or_default(interface, interface_node.is_some(), "eth0".to_string(), &fields)?,
        interface_declared: interface_node.is_some(),
        frontend_port: or_default(frontend_port, port_node.is_some(), 80, &fields)?,
        balance: or_default(balance, balance_node.is_some(), Balance::RoundRobin, &fields)?,
        virtual_ip: virtual_ip?,
        virtual_router_id: router_id?,
        vrrp_secret: secret?,
        backends,
        tls,
    };
    if tls_node.is_some() && settings.tls.is_none() {
        return None;
    }
    fields.finish(decoder);
    Some(settings)
}

fn tls(decoder: &mut Decoder, node: &Node) -> Option<TlsSettings> {
    let mut fields = decoder.fields(node, "`tls`")?;
    let certificate =
        fields.required(decoder, "certificate").and_then(|node| decoder.path(node, "the TLS `certificate`"));
    let key = fields.required(decoder, "key").and_then(|node| decoder.secret(node, "the TLS `key`"));
    let port_node = fields.optional("port");
    let port = port_node.and_then(|node| decoder.port(node, "`port` of `tls`"));
    let redirect_node = fields.optional("redirect_http");
    let redirect_http = redirect_node.and_then(|node| decoder.boolean(node, "`redirect_http`"));
    let hsts_node = fields.optional("hsts");
    let hsts = hsts_node.and_then(|node| decoder.boolean(node, "`hsts`"));
    let settings = TlsSettings {
        span: node.span,
        port: or_default(port, port_node.is_some(), 443, &fields)?,
        redirect_http: or_default(redirect_http, redirect_node.is_some(), false, &fields)?,
        hsts: or_default(hsts, hsts_node.is_some(), false, &fields)?,
        certificate: certificate?,
        key: key?,
    };
    fields.finish(decoder);
    Some(settings)
}

fn firewall(decoder: &mut Decoder, node: &Node) -> Option<FirewallSettings> {
    let mut fields = decoder.fields(node, "`firewall`")?;
    let admin_cidrs = fields.required(decoder, "admin_cidrs").and_then(|node| {
        let items = decoder.sequence(node, "`admin_cidrs`")?;
        let parsed: Vec<_> = items.iter().filter_map(|item| decoder.network(item, "an admin CIDR")).collect();
        (parsed.len() == items.len()).then(|| Spanned::new(parsed, node.span))
    });
    fields.finish(decoder);
    Some(FirewallSettings { span: node.span, admin_cidrs: admin_cidrs? })
}

/// `networks: {public: {cidr, interface}, private: {cidr, interface}}`.
fn networks(decoder: &mut Decoder, node: &Node) -> Option<Networks> {
    let mut fields = decoder.fields(node, "`networks`")?;
    let mut one = |key: &'static str| {
        let node = fields.required(decoder, key)?;
        let what = format!("`networks.{key}`");
        let mut inner = decoder.fields(node, &what)?;
        let cidr = inner.required(decoder, "cidr").and_then(|node| decoder.network(node, &format!("`cidr` of {what}")));
        let interface = inner.required(decoder, "interface").and_then(|node| {
            decoder.grammar(node, &format!("`interface` of {what}"), "invalid-interface", grammar::interface)
        });
        inner.finish(decoder);
        Some(Network { cidr: cidr?, interface: interface? })
    };
    let (public, private) = (one("public"), one("private"));
    fields.finish(decoder);
    Some(Networks { span: node.span, public: public?, private: private? })
}

fn web(decoder: &mut Decoder, node: &Node) -> Option<WebSettings> {
    let mut fields = decoder.fields(node, "`web`")?;
    let port_node = fields.optional("port");
    let port = port_node.and_then(|node| decoder.port(node, "`port` of `web`"));
    let name_node = fields.optional("server_name");
    let server_name =
        name_node.and_then(|node| decoder.grammar(node, "`server_name`", "invalid-server-name", grammar::server_name));
    let root_node = fields.optional("static_root");
    let static_root =
        root_node.and_then(|node| decoder.grammar(node, "`static_root`", "invalid-path", grammar::host_directory));
    let static_source = fields.optional("static_source").and_then(|node| decoder.path(node, "`static_source`"));
    let upstreams = fields.optional("upstreams").and_then(|node| {
        let items = decoder.sequence(node, "`upstreams`")?;
        let parsed: Vec<_> = items.iter().filter_map(|item| socket_address(decoder, item, "an upstream")).collect();
        Some(Spanned::new(parsed, node.span))
    });
    let settings = WebSettings {
        span: node.span,
        port: or_default(port, port_node.is_some(), WEB_PORT, &fields)?,
        server_name: or_default(server_name, name_node.is_some(), SERVER_NAME.to_string(), &fields)?,
        static_root: or_default(static_root, root_node.is_some(), STATIC_ROOT.to_string(), &fields)?,
        static_source,
        upstreams,
    };
    fields.finish(decoder);
    Some(settings)
}

fn app(decoder: &mut Decoder, node: &Node) -> Option<AppSettings> {
    let mut fields = decoder.fields(node, "`app`")?;
    let module = fields.required(decoder, "module").and_then(|node| {
        decoder.parsed(node, "`module`", "a WSGI entry point `module:callable`", "invalid-module", |text| {
            is_wsgi_entry_point(text).then(|| text.to_string())
        })
    });
    let bind_node = fields.optional("bind");
    let bind = bind_node.and_then(|node| socket_address(decoder, node, "`bind`"));
    let workers_node = fields.optional("workers");
    let workers = workers_node.and_then(|node| decoder.integer(node, "`workers`", 1, 256));
    let source_node = fields.required(decoder, "source");
    let (source, revision) = match source_node.map(|node| app_source(decoder, node)) {
        Some(Some((source, revision))) => (Some(source), revision),
        _ => (None, None),
    };
    let directory_node = fields.optional("directory");
    let directory =
        directory_node.and_then(|node| decoder.grammar(node, "`directory`", "invalid-path", grammar::host_directory));
    let keep_node = fields.optional("keep_releases");
    // Two at least: the current release and the one a rollback goes back to.
    let keep = keep_node.and_then(|node| decoder.integer(node, "`keep_releases` of `app`", 2, 100));
    let requirements = fields
        .optional("requirements")
        .and_then(|node| decoder.grammar(node, "`requirements` of `app`", "invalid-path", grammar::source_file));
    let migrate = fields.optional("migrate").and_then(|node| app_command(decoder, node, "migrate", false));
    let before_switch = fields.optional("before_switch").map(|node| app_commands(decoder, node, "before_switch"));
    let after_switch = fields.optional("after_switch").map(|node| app_commands(decoder, node, "after_switch"));
    let env = fields.optional("env").map(|node| app_env(decoder, node)).unwrap_or_default();
    let python = fields
        .optional("python")
        .and_then(|node| decoder.grammar(node, "`python` of `app`", "invalid-python", grammar::python_requirement));
    let health = fields.optional("health").and_then(|node| app_health(decoder, node));
    let shared = fields.optional("shared").map(|node| app_shared(decoder, node)).unwrap_or_default();
    let processes = fields.optional("processes").map(|node| app_processes(decoder, node)).unwrap_or_default();
    let packages =
        fields.optional("packages").map(|node| debian_packages(decoder, node, "packages")).unwrap_or_default();
    let build_packages = fields
        .optional("build_packages")
        .map(|node| debian_packages(decoder, node, "build_packages"))
        .unwrap_or_default();
    let static_node = fields.optional("static");
    let static_files = static_node.and_then(|node| app_static(decoder, node));
    if static_node.is_some() {
        for (name, _) in env.iter().filter(|(name, _)| matches!(name.value.as_str(), "STATIC_URL" | "STATIC_ROOT")) {
            decoder.report(
                Diagnostic::error("invalid-env-name", format!("`{}` is set by infra when `app.static` is", name.value))
                    .at(name.span, "set here")
                    .help("remove it: each release's static files are served at `/static/RELEASE/`, which infra hands the app as `STATIC_URL`, and a build writes into the `STATIC_ROOT` infra names"),
            );
        }
    }
    let settings = AppSettings {
        span: node.span,
        static_files,
        packages,
        build_packages,
        shared,
        processes,
        before_switch: before_switch.unwrap_or_default(),
        after_switch: after_switch.unwrap_or_default(),
        env,
        python,
        health,
        migrate,
        requirements,
        keep_releases: or_default(keep, keep_node.is_some(), KEEP_RELEASES, &fields)?,
        bind: or_default(bind, bind_node.is_some(), SocketAddr::from(([0, 0, 0, 0], 8000)), &fields)?,
        workers: or_default(workers, workers_node.is_some(), 2, &fields)?,
        directory: or_default(directory, directory_node.is_some(), "/srv/app".to_string(), &fields)?,
        module: module?,
        source: source?,
        revision,
        inventory_revision: None,
    };
    fields.finish(decoder);
    Some(settings)
}

/// One command of the app (`migrate`, an entry of `before_switch`): the
/// words of its command line, each of [`grammar::command_word`]. `key`
/// names the setting; `entry` when the command is one of a list.
fn app_command(decoder: &mut Decoder, node: &Node, key: &str, entry: bool) -> Option<Spanned<Vec<String>>> {
    let what = if entry { format!("an entry of `{key}` of `app`") } else { format!("`{key}` of `app`") };
    let items = decoder.sequence(node, &what)?;
    if items.is_empty() {
        let remove = if entry { "the entry" } else { &format!("`{key}`") };
        decoder.report(
            Diagnostic::error("invalid-command", format!("{what} is an empty command"))
                .at(node.span, "no words")
                .help(format!("name the command, like `[python3, -m, alembic, upgrade, head]`, or remove {remove}")),
        );
        return None;
    }
    let word = format!("a word of `{key}`");
    let words: Vec<String> = items
        .iter()
        .filter_map(|item| decoder.grammar(item, &word, "invalid-command", grammar::command_word))
        .map(|word| word.value)
        .collect();
    (words.len() == items.len()).then(|| Spanned::new(words, node.span))
}

/// `before_switch` and `after_switch`: a list of commands, each a list of
/// words (`[[python3, manage.py, collectstatic, --noinput]]`).
fn app_commands(decoder: &mut Decoder, node: &Node, key: &str) -> Vec<Spanned<Vec<String>>> {
    let Some(items) = decoder.sequence(node, &format!("`{key}` of `app`")) else { return Vec::new() };
    items.iter().filter_map(|item| app_command(decoder, item, key, true)).collect()
}

/// `app.shared`: directories of [`grammar::shared_directory`], none inside
/// another (one link would hide the other).
fn app_shared(decoder: &mut Decoder, node: &Node) -> Vec<Spanned<String>> {
    let Some(items) = decoder.sequence(node, "`shared` of `app`") else { return Vec::new() };
    let mut shared: Vec<Spanned<String>> = Vec::new();
    for item in items {
        let Some(directory) =
            decoder.grammar(item, "a directory of `app.shared`", "invalid-path", grammar::shared_directory)
        else {
            continue;
        };
        let inside = |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}/"));
        if let Some(other) =
            shared.iter().find(|other| inside(&other.value, &directory.value) || inside(&directory.value, &other.value))
        {
            decoder.report(
                Diagnostic::error(
                    "overlapping-shared",
                    format!("`{}` and `{}` overlap in `app.shared`", other.value, directory.value),
                )
                .at(item.span, "overlaps an earlier entry")
                .help("list each shared directory once, and none inside another"),
            );
            continue;
        }
        shared.push(directory);
    }
    shared
}

/// `app.packages`, `app.build_packages`: Debian package names.
fn debian_packages(decoder: &mut Decoder, node: &Node, key: &str) -> Vec<Spanned<String>> {
    let Some(items) = decoder.sequence(node, &format!("`{key}` of `app`")) else { return Vec::new() };
    let what = format!("a package of `app.{key}`");
    items.iter().filter_map(|item| decoder.grammar(item, &what, "invalid-package", grammar::debian_package)).collect()
}

/// `app.static`: `{directory: static}` or `{build: [[…]]}`, exactly one.
fn app_static(decoder: &mut Decoder, node: &Node) -> Option<AppStatic> {
    let mut fields = decoder.fields(node, "`static` of `app`")?;
    let directory = fields.optional("directory").and_then(|node| {
        decoder.grammar(node, "`directory` of `app.static`", "invalid-path", grammar::shared_directory)
    });
    let build_node = fields.optional("build");
    let build = build_node.map(|node| app_commands(decoder, node, "static.build")).unwrap_or_default();
    fields.finish(decoder);
    let both = directory.is_some() && build_node.is_some();
    if both || (directory.is_none() && build_node.is_none()) {
        let problem = if both { "names both a `directory` and `build` commands" } else { "names neither" };
        decoder.report(
            Diagnostic::error("invalid-static", format!("`static` of `app` {problem}"))
                .at(node.span, "here")
                .help("publish a directory of the release as it is (`{directory: static}`), or the files commands write into `$STATIC_ROOT` (`{build: [[python, manage.py, collectstatic, --noinput]]}`)"),
        );
        return None;
    }
    if let Some(node) = build_node.filter(|_| build.is_empty()) {
        if matches!(&node.value, Value::Sequence(items) if items.is_empty()) {
            decoder.report(
                Diagnostic::error("invalid-command", "`build` of `app.static` has no commands")
                    .at(node.span, "empty")
                    .help("name the commands that fill `$STATIC_ROOT`, or publish a `directory` instead"),
            );
        }
        return None;
    }
    Some(AppStatic { span: node.span, directory, build })
}

/// `app.processes`: each a name (once), a command and a count.
fn app_processes(decoder: &mut Decoder, node: &Node) -> Vec<AppProcess> {
    let Some(items) = decoder.sequence(node, "`processes` of `app`") else { return Vec::new() };
    let mut processes: Vec<AppProcess> = Vec::new();
    for item in items {
        let Some(process) = app_process(decoder, item) else { continue };
        if processes.iter().any(|other| other.name.value == process.name.value) {
            decoder.report(
                Diagnostic::error(
                    "duplicate-process",
                    format!("two processes of `app.processes` are named `{}`", process.name.value),
                )
                .at(process.name.span, "named again here")
                .help("give each process its own name"),
            );
            continue;
        }
        processes.push(process);
    }
    processes
}

fn app_process(decoder: &mut Decoder, node: &Node) -> Option<AppProcess> {
    let mut fields = decoder.fields(node, "a process of `app.processes`")?;
    let name = fields
        .required(decoder, "name")
        .and_then(|node| decoder.grammar(node, "`name` of a process", "invalid-process-name", grammar::process_name));
    let command = fields.required(decoder, "command").and_then(|node| app_command(decoder, node, "command", false));
    let count_node = fields.optional("count");
    let count = count_node.and_then(|node| decoder.integer(node, "`count` of a process", 1, 32));
    let process = AppProcess {
        span: node.span,
        count: or_default(count, count_node.is_some(), 1, &fields)?,
        name: name?,
        command: command?,
    };
    fields.finish(decoder);
    Some(process)
}

/// `app.health`: `{path: /healthz, status: 200, host: www.example.com}`,
/// each optional.
fn app_health(decoder: &mut Decoder, node: &Node) -> Option<AppHealth> {
    let mut fields = decoder.fields(node, "`health` of `app`")?;
    let path_node = fields.optional("path");
    let path = path_node
        .and_then(|node| decoder.grammar(node, "`path` of `app.health`", "invalid-health-path", grammar::http_path));
    let status = fields.optional("status").and_then(|node| decoder.integer(node, "`status` of `app.health`", 100, 599));
    let host = fields
        .optional("host")
        .and_then(|node| decoder.grammar(node, "`host` of `app.health`", "invalid-host-name", grammar::host_header));
    let health = AppHealth {
        span: node.span,
        path: or_default(path, path_node.is_some(), "/".to_string(), &fields)?,
        status,
        host,
    };
    fields.finish(decoder);
    Some(health)
}

/// `app.source`: a directory (`./app`), or a git repository and the
/// revision to deploy from it (`{git: ../app, ref: main}`).
fn app_source(decoder: &mut Decoder, node: &Node) -> Option<(Spanned<PathBuf>, Option<Spanned<String>>)> {
    if !matches!(node.value, Value::Mapping(_)) {
        return Some((decoder.path(node, "`source` of `app`")?, None));
    }
    let mut fields = decoder.fields(node, "`source` of `app`")?;
    let repository = fields.required(decoder, "git").and_then(|node| decoder.path(node, "`git` of `app.source`"));
    let revision = fields
        .required(decoder, "ref")
        .and_then(|node| decoder.grammar(node, "`ref` of `app.source`", "invalid-git-ref", grammar::git_revision));
    fields.finish(decoder);
    Some((repository?, Some(revision?)))
}

fn database(decoder: &mut Decoder, node: &Node) -> Option<DatabaseSettings> {
    let mut fields = decoder.fields(node, "`database`")?;
    let name = (fields.required(decoder, "name"))
        .and_then(|node| decoder.grammar(node, "the database `name`", "invalid-identifier", grammar::database_name));
    let user = (fields.required(decoder, "user"))
        .and_then(|node| decoder.grammar(node, "the database `user`", "invalid-identifier", grammar::database_user));
    let password =
        fields.required(decoder, "password").and_then(|node| decoder.secret(node, "the database `password`"));
    let port_node = fields.optional("port");
    let port = port_node.and_then(|node| decoder.port(node, "`port` of `database`"));
    let bind_address = fields.optional("bind_address").and_then(|node| decoder.ipv4(node, "`bind_address`"));
    let allowed_hosts = fields.optional("allowed_hosts").and_then(|node| {
        let items = decoder.sequence(node, "`allowed_hosts`")?;
        let parsed: Vec<_> = items.iter().filter_map(|item| decoder.ipv4(item, "an allowed host")).collect();
        Some(Spanned::new(parsed, node.span))
    });
    // Backups are always taken: without the section (or when it failed to
    // decode, which is reported) its defaults apply.
    let backup = match fields.optional("backup") {
        Some(node) => backup(decoder, node).unwrap_or_else(|| BackupSettings::defaults(node.span)),
        None => BackupSettings::defaults(fields.anchor()),
    };
    let settings = DatabaseSettings {
        span: node.span,
        port: or_default(port, port_node.is_some(), 3306, &fields)?,
        name: name?,
        user: user?,
        password: password?,
        bind_address,
        allowed_hosts,
        backup,
    };
    fields.finish(decoder);
    Some(settings)
}

fn backup(decoder: &mut Decoder, node: &Node) -> Option<BackupSettings> {
    let what = "`database.backup`";
    let mut fields = decoder.fields(node, what)?;
    let directory_node = fields.optional("directory");
    let directory = directory_node.and_then(|node| {
        decoder.grammar(node, "`directory` of `database.backup`", "invalid-path", grammar::backup_directory)
    });
    let schedule_node = fields.optional("schedule");
    let schedule = schedule_node.and_then(|node| {
        decoder.grammar(node, "`schedule` of `database.backup`", "invalid-schedule", grammar::schedule)
    });
    let keep_node = fields.optional("keep");
    let keep = keep_node.and_then(|node| decoder.integer(node, "`keep` of `database.backup`", 1, 1000));
    let destination = fields.optional("destination").and_then(|node| backup_destination(decoder, node));
    let binlogs_node = fields.optional("binlogs");
    let binlogs = binlogs_node.and_then(|node| decoder.boolean(node, "`binlogs` of `database.backup`"));
    let before_apply_node = fields.optional("before_apply");
    let before_apply = before_apply_node.and_then(|node| decoder.boolean(node, "`before_apply` of `database.backup`"));
    let drill_host = fields.optional("drill_host").and_then(|node| {
        decoder.grammar(node, "`drill_host` of `database.backup`", "invalid-host-name", grammar::host_name)
    });
    let settings = BackupSettings {
        span: node.span,
        declared: true,
        directory: or_default(directory, directory_node.is_some(), BACKUP_DIRECTORY.to_string(), &fields)?,
        keep: or_default(keep, keep_node.is_some(), BACKUP_KEEP, &fields)?,
        schedule: or_default(schedule, schedule_node.is_some(), BACKUP_SCHEDULE.to_string(), &fields)?,
        binlogs: or_default(binlogs, binlogs_node.is_some(), BACKUP_BINLOGS, &fields)?,
        before_apply: or_default(before_apply, before_apply_node.is_some(), BACKUP_BEFORE_APPLY, &fields)?,
        destination,
        drill_host,
    };
    fields.finish(decoder);
    Some(settings)
}

fn backup_destination(decoder: &mut Decoder, node: &Node) -> Option<BackupDestination> {
    let what = "`database.backup.destination`";
    let mut fields = decoder.fields(node, what)?;
    let host = fields.required(decoder, "host").and_then(|node| {
        decoder.grammar(node, "`host` of `database.backup.destination`", "invalid-host-name", grammar::host_name)
    });
    let directory_node = fields.optional("directory");
    let directory = directory_node.and_then(|node| {
        decoder.grammar(node, "`directory` of `database.backup.destination`", "invalid-path", grammar::backup_directory)
    });
    let destination = BackupDestination {
        span: node.span,
        directory: or_default(directory, directory_node.is_some(), BACKUP_DIRECTORY.to_string(), &fields)?,
        host: host?,
    };
    fields.finish(decoder);
    Some(destination)
}

/// `app.env`: names to plain values (strings or numbers, written into
/// the app's environment file with systemd's quoting) or secret references.
fn app_env(decoder: &mut Decoder, node: &Node) -> Vec<(Spanned<String>, EnvValue)> {
    use super::yaml::Value;
    let Value::Mapping(entries) = &node.value else {
        decoder.fields(node, "`env` of `app`");
        return Vec::new();
    };
    let mut env = Vec::new();
    for (key, value) in entries {
        let Some(name) = decoder.grammar(key, "a name in `env` of `app`", "invalid-env-name", grammar::env_name) else {
            continue;
        };
        let what = format!("`{}` of `app.env`", name.value);
        let value = match &value.value {
            Value::Mapping(_) => decoder.secret(value, &what).map(EnvValue::Secret),
            Value::Integer(number) => Some(EnvValue::Plain(Spanned::new(number.to_string(), value.span))),
            _ => decoder.string(value, &what).map(EnvValue::Plain),
        };
        if let Some(value) = value {
            env.push((name, value));
        }
    }
    env
}

fn string_list(decoder: &mut Decoder, node: &Node, what: &str) -> Option<Spanned<Vec<Spanned<String>>>> {
    let items = decoder.sequence(node, what)?;
    let what = format!("an entry of {what}");
    let strings =
        items.iter().filter_map(|item| decoder.grammar(item, &what, "invalid-host-name", grammar::host_name)).collect();
    Some(Spanned::new(strings, node.span))
}

/// An IPv4 address and a port other than 0 (which would bind a random one).
fn socket_address(decoder: &mut Decoder, node: &Node, what: &str) -> Option<Spanned<SocketAddr>> {
    let expected = "an IPv4 address and a port from 1 to 65535 (like `0.0.0.0:8000`)";
    let address = decoder.parsed(node, what, expected, "invalid-address", |text| {
        text.parse::<SocketAddr>().ok().filter(|address| address.port() != 0)
    })?;
    let ip = address.value.ip();
    decoder.ipv4_only(address, ip, what)
}

/// The virtual IP: IPv4, with a prefix from /8 to /32 (keepalived adds the
/// prefix's route; /0 would claim every address).
fn virtual_ip(decoder: &mut Decoder, node: &Node) -> Option<Spanned<ipnet::IpNet>> {
    let expected = "an IPv4 address with a prefix length from 8 to 32 (like `10.20.0.10/24`)";
    let network = decoder.parsed(node, "`virtual_ip`", expected, "invalid-ip", |text| {
        text.parse::<ipnet::IpNet>().ok().filter(|network| network.addr().is_ipv6() || network.prefix_len() >= 8)
    })?;
    let ip = network.value.addr();
    decoder.ipv4_only(network, ip, "`virtual_ip`")
}

/// Database and user names go into SQL and config files: keep them to the
/// characters that need no quoting anywhere.
fn is_wsgi_entry_point(text: &str) -> bool {
    let is_identifier = |part: &str| {
        part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match text.split_once(':') {
        Some((module, callable)) => module.split('.').all(is_identifier) && is_identifier(callable),
        None => false,
    }
}

/// Where to point when a whole section is missing: the top of the file.
pub fn file_start() -> Span {
    Span::new(0, 0)
}

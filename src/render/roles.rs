//! What each role puts on a host: packages, files, services, hooks, health checks.
//!
//! One function per role, each reading like a checklist of that service's
//! setup. Template contexts are derived from the topology here, so a template
//! never computes cross-host facts itself.

use std::sync::Arc;

use minijinja::{Value, context};

use super::{RenderError, Secrets, TemplateRenderer, read_tree};
use crate::desired::{Checker, HealthCheck, Hook, HostState, ManagedFile, ManagedService};
use crate::firewall::{self, SshGuard};
use crate::inventory::{Host, Inventory};
use crate::topology::{self, Role, hosts_with};

/// Local files deployed verbatim, read once per run rather than once per host.
pub(crate) struct Sources {
    app: Vec<(String, super::Content)>,
    static_site: Vec<(String, super::Content)>,
}

impl Sources {
    pub(crate) fn read(inventory: &Inventory) -> Result<Sources, RenderError> {
        let app = match &inventory.app {
            Some(app) if topology::hosts_with(inventory, Role::App).next().is_some() => {
                read_tree(&inventory.base_dir.join(&app.source.value))?
            }
            _ => Vec::new(),
        };
        let static_site = match inventory.web.as_ref().and_then(|web| web.static_source.as_ref()) {
            Some(source) if topology::hosts_with(inventory, Role::Web).next().is_some() => {
                read_tree(&inventory.base_dir.join(&source.value))?
            }
            _ => Vec::new(),
        };
        Ok(Sources { app, static_site })
    }
}

/// Cross-host facts every template context needs, computed once per run.
/// Lists are minijinja values (reference-counted), so handing one to each of
/// 500 host contexts copies a pointer, not the list.
pub(crate) struct Derived {
    upstreams: Value,
    backends: Value,
    database_clients: Value,
    web_addresses: Value,
    /// The addresses requests reach the web tier from: every balancer and the virtual IP.
    proxy_addresses: Value,
    /// Each load balancer's name, address and effective VRRP priority.
    balancers: Vec<(String, String, u8)>,
    database_address: Value,
}

impl Derived {
    pub(crate) fn new(inventory: &Inventory) -> Derived {
        let balancers: Vec<&Host> = hosts_with(inventory, Role::LoadBalancer).collect();
        let database_address = hosts_with(inventory, Role::Database).next().map(|host| {
            let bind = inventory.database.as_ref().and_then(|database| database.bind_address.as_ref());
            bind.map_or(host.address.value, |bind| bind.value).to_string()
        });
        let strings = |items: Vec<String>| Value::from(items);
        Derived {
            upstreams: strings(topology::nginx_upstreams(inventory).iter().map(ToString::to_string).collect()),
            backends: Value::from(
                topology::haproxy_backends(inventory)
                    .into_iter()
                    .map(|(name, address)| context! { name => name, address => address.to_string() })
                    .collect::<Vec<_>>(),
            ),
            database_clients: strings(topology::database_clients(inventory).iter().map(ToString::to_string).collect()),
            web_addresses: strings(
                hosts_with(inventory, Role::Web).map(|host| host.address.value.to_string()).collect(),
            ),
            proxy_addresses: strings(
                balancers
                    .iter()
                    .map(|host| host.address.value.to_string())
                    .chain(inventory.load_balancer.as_ref().map(|lb| lb.virtual_ip.value.addr().to_string()))
                    .collect(),
            ),
            balancers: topology::vrrp_priorities(&balancers)
                .into_iter()
                .map(|(priority, _, host)| (host.name.value.clone(), host.address.value.to_string(), priority))
                .collect(),
            database_address: Value::from(database_address),
        }
    }
}

pub(crate) struct HostContext<'a> {
    pub inventory: &'a Inventory,
    pub host: &'a Host,
    pub secrets: &'a Secrets,
    pub renderer: &'a TemplateRenderer,
    pub sources: &'a Sources,
    pub derived: &'a Derived,
}

/// Two files for one path (a source file named like a rendered config,
/// the static root inside the app's directory) would silently replace each
/// other: refused, naming both origins.
fn refuse_collisions(state: &HostState) -> Result<(), RenderError> {
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::with_capacity(state.files.len());
    for file in &state.files {
        if let Some(first) = seen.insert(&file.path, &file.origin) {
            return Err(RenderError::Collision {
                host: state.name.clone(),
                path: file.path.clone(),
                first: first.to_string(),
                second: file.origin.clone(),
            });
        }
    }
    Ok(())
}

struct FileSpec<'s> {
    path: &'s str,
    template: &'s str,
    mode: u32,
    group: &'s str,
    checker: Option<Checker>,
}

impl HostContext<'_> {
    pub fn state(&self) -> Result<HostState, RenderError> {
        let mut state = HostState {
            name: self.host.name.value.clone(),
            address: self.host.address.value,
            roles: self.host.roles.iter().map(|role| role.value).collect(),
            stage: topology::stage_of(self.host).unwrap_or(Role::LoadBalancer),
            packages: Vec::new(),
            files: Vec::new(),
            services: Vec::new(),
            hooks: Vec::new(),
            health_checks: Vec::new(),
            ssh_guard: None,
        };
        for role in topology::role_order().into_iter().filter(|role| self.host.has_role(*role)) {
            match role {
                Role::Database => self.database(&mut state)?,
                Role::App => self.app(&mut state)?,
                Role::Web => self.web(&mut state)?,
                Role::LoadBalancer => self.load_balancer(&mut state)?,
            }
        }
        if self.inventory.firewall.is_some() {
            self.firewall(&mut state)?;
        }
        refuse_collisions(&state)?;
        Ok(state)
    }

    fn file(&self, state: &mut HostState, spec: FileSpec, context: minijinja::Value) -> Result<(), RenderError> {
        let rendered = self.renderer.render(spec.template, &self.host.name.value, context)?;
        Self::push_rendered(state, spec, rendered);
        Ok(())
    }

    fn push_rendered(state: &mut HostState, spec: FileSpec, rendered: super::RenderedTemplate) {
        state.files.push(ManagedFile {
            path: spec.path.to_string(),
            content: rendered.output,
            mode: spec.mode,
            owner: "root".to_string(),
            group: spec.group.to_string(),
            sensitive: rendered.sensitive,
            checker: spec.checker,
            origin: format!("template {}", spec.template),
        });
    }

    fn copies(state: &mut HostState, files: &[(String, super::Content)], destination: &str, origin: &str) {
        for (relative, content) in files {
            state.files.push(ManagedFile {
                path: format!("{destination}/{relative}"),
                content: Arc::clone(content),
                mode: 0o644,
                owner: "root".to_string(),
                group: "root".to_string(),
                sensitive: false,
                checker: None,
                origin: format!("{origin}/{relative}"),
            });
        }
    }

    fn host_context(&self) -> minijinja::Value {
        context! { name => self.host.name.value.clone(), address => self.host.address.value.to_string() }
    }

    fn database(&self, state: &mut HostState) -> Result<(), RenderError> {
        let Some(database) = &self.inventory.database else {
            return Ok(());
        };
        let bind_address = database.bind_address.as_ref().map_or(self.host.address.value, |bind| bind.value);
        let context = context! {
            host => self.host_context(),
            clients => self.derived.database_clients.clone(),
            database => context! {
                name => database.name.value.clone(), user => database.user.value.clone(), port => database.port.value,
                bind_address => bind_address.to_string(), password => self.secrets.get(&database.password),
            },
        };
        state.packages.push("mariadb-server".to_string());
        let config = "/etc/mysql/mariadb.conf.d/60-infra.cnf";
        let sql = "/etc/infra/database.sql";
        self.file(
            state,
            FileSpec {
                path: config,
                template: "mariadb.cnf.j2",
                mode: 0o644,
                group: "root",
                checker: Some(Checker::Mariadb),
            },
            context.clone(),
        )?;
        self.file(
            state,
            FileSpec { path: sql, template: "database.sql.j2", mode: 0o600, group: "root", checker: None },
            context,
        )?;
        state.services.push(ManagedService {
            name: "mariadb".into(),
            reload_on: vec![],
            restart_on: vec![config.into()],
            enabled: true,
        });
        state.hooks.push(Hook {
            name: "create database and grants".into(),
            command: format!("mariadb < {sql}"),
            triggered_by: vec![sql.into()],
        });
        state.health_checks.push(HealthCheck {
            description: "the database answers a query".into(),
            command: "mariadb --execute 'SELECT 1'".into(),
        });
        Ok(())
    }

    fn app(&self, state: &mut HostState) -> Result<(), RenderError> {
        let Some(app) = &self.inventory.app else {
            return Ok(());
        };
        let database = self.inventory.database.as_ref();
        let context = context! {
            host => self.host_context(),
            web_addresses => self.derived.web_addresses.clone(),
            app => context! {
                module => app.module.value.clone(), bind => app.bind.value.to_string(), workers => app.workers.value,
                directory => app.directory.value.clone(),
            },
            database => database.map(|database| context! {
                address => self.derived.database_address.clone(),
                port => database.port.value, name => database.name.value.clone(), user => database.user.value.clone(),
                password => self.secrets.get(&database.password),
            }),
        };
        state.packages.extend(["gunicorn", "python3-flask", "python3-pymysql"].map(String::from));
        let config = "/etc/infra/gunicorn.conf.py";
        let unit = "/etc/systemd/system/infra-app.service";
        let environment = "/etc/infra/app.env";
        self.file(
            state,
            FileSpec {
                path: config,
                template: "gunicorn.conf.py.j2",
                mode: 0o644,
                group: "root",
                checker: Some(Checker::Python),
            },
            context.clone(),
        )?;
        self.file(
            state,
            FileSpec {
                path: unit,
                template: "infra-app.service.j2",
                mode: 0o644,
                group: "root",
                checker: Some(Checker::SystemdUnit),
            },
            context.clone(),
        )?;
        self.file(
            state,
            FileSpec { path: environment, template: "app.env.j2", mode: 0o640, group: "www-data", checker: None },
            context,
        )?;
        let first_code_file = state.files.len();
        Self::copies(state, &self.sources.app, &app.directory.value, &app.source.value.display().to_string());
        let code: Vec<String> = state.files[first_code_file..].iter().map(|file| file.path.clone()).collect();
        state.services.push(ManagedService {
            name: "infra-app".into(),
            reload_on: std::iter::once(config.to_string()).chain(code).collect(),
            restart_on: vec![unit.into(), environment.into()],
            enabled: true,
        });
        let url = format!("http://{}:{}/", self.host.address.value, app.bind.value.port());
        state.health_checks.push(HealthCheck {
            description: "Gunicorn answers HTTP".into(),
            command: format!("curl -fsS -o /dev/null {url}"),
        });
        Ok(())
    }

    fn web(&self, state: &mut HostState) -> Result<(), RenderError> {
        let Some(web) = &self.inventory.web else {
            return Ok(());
        };
        let context = context! {
            host => self.host_context(),
            upstreams => self.derived.upstreams.clone(),
            proxies => self.derived.proxy_addresses.clone(),
            web => context! { port => web.port.value, server_name => web.server_name.value.clone(), static_root => web.static_root.value.clone() },
        };
        state.packages.push("nginx".to_string());
        let main = "/etc/nginx/nginx.conf";
        let site = "/etc/nginx/sites-enabled/infra.conf";
        self.file(
            state,
            FileSpec {
                path: main,
                template: "nginx.conf.j2",
                mode: 0o644,
                group: "root",
                checker: Some(Checker::Nginx),
            },
            context.clone(),
        )?;
        self.file(
            state,
            FileSpec {
                path: site,
                template: "nginx-site.conf.j2",
                mode: 0o644,
                group: "root",
                checker: Some(Checker::Nginx),
            },
            context,
        )?;
        if let Some(source) = &web.static_source {
            Self::copies(state, &self.sources.static_site, &web.static_root.value, &source.value.display().to_string());
        }
        state.services.push(ManagedService {
            name: "nginx".into(),
            reload_on: vec![main.into(), site.into()],
            restart_on: vec![],
            enabled: true,
        });
        let base = format!("http://127.0.0.1:{}", web.port.value);
        state.health_checks.push(HealthCheck {
            description: "Nginx answers".into(),
            command: format!("curl -fsS -o /dev/null {base}/healthz"),
        });
        state.health_checks.push(HealthCheck {
            description: "Nginx proxies to the app".into(),
            command: format!("curl -fsS -o /dev/null {base}/"),
        });
        Ok(())
    }

    fn load_balancer(&self, state: &mut HostState) -> Result<(), RenderError> {
        let Some(settings) = &self.inventory.load_balancer else {
            return Ok(());
        };
        let me = &self.host.name.value;
        let priority =
            self.derived.balancers.iter().find(|(name, _, _)| name == me).map_or(100, |(_, _, priority)| *priority);
        let peers: Vec<String> = self
            .derived
            .balancers
            .iter()
            .filter(|(name, _, _)| name != me)
            .map(|(_, address, _)| address.clone())
            .collect();
        let vrrp = &self.host.vrrp;
        let context = context! {
            host => self.host_context(),
            backends => self.derived.backends.clone(),
            load_balancer => context! { frontend_port => settings.frontend_port.value, balance => settings.balance.value.name() },
            tls => settings.tls.as_ref().map(|tls| context! {
                port => tls.port.value, redirect_http => tls.redirect_http.value, hsts => tls.hsts.value,
                certificate => crate::tls::CERTIFICATE_PATH,
            }),
            vrrp => context! {
                interface => settings.interface.value.clone(),
                virtual_router_id => vrrp.virtual_router_id.as_ref().unwrap_or(&settings.virtual_router_id).value,
                priority => priority,
                peers => peers,
                secret => self.secrets.get(vrrp.secret.as_ref().unwrap_or(&settings.vrrp_secret)),
                virtual_ip => settings.virtual_ip.value.to_string(),
            },
        };
        state.packages.extend(["haproxy", "keepalived"].map(String::from));
        let haproxy = "/etc/haproxy/haproxy.cfg";
        let keepalived = "/etc/keepalived/keepalived.conf";
        self.file(
            state,
            FileSpec {
                path: haproxy,
                template: "haproxy.cfg.j2",
                mode: 0o644,
                group: "root",
                checker: Some(Checker::Haproxy),
            },
            context.clone(),
        )?;
        self.file(
            state,
            FileSpec {
                path: keepalived,
                template: "keepalived.conf.j2",
                mode: 0o600,
                group: "root",
                checker: Some(Checker::Keepalived),
            },
            context,
        )?;
        if let Some(tls) = &settings.tls {
            self.tls_files(state, tls)?;
        }
        let mut haproxy_files = vec![haproxy.to_string()];
        if settings.tls.is_some() {
            haproxy_files.extend([crate::tls::CERTIFICATE_PATH, crate::tls::KEY_PATH].map(String::from));
        }
        state.services.push(ManagedService {
            name: "haproxy".into(),
            reload_on: haproxy_files,
            restart_on: vec![],
            enabled: true,
        });
        state.services.push(ManagedService {
            name: "keepalived".into(),
            reload_on: vec![keepalived.into()],
            restart_on: vec![],
            enabled: true,
        });
        let url = format!("http://127.0.0.1:{}/healthz", settings.frontend_port.value);
        state.health_checks.push(HealthCheck {
            description: "HAProxy answers on the frontend".into(),
            command: format!("curl -fsS -o /dev/null {url}"),
        });
        if let Some(tls) = &settings.tls {
            // Certificate trust is checked before apply; this checks HAProxy serves TLS.
            state.health_checks.push(HealthCheck {
                description: "HAProxy answers over TLS".into(),
                command: format!("curl -fsSk -o /dev/null https://127.0.0.1:{}/healthz", tls.port.value),
            });
        }
        Ok(())
    }

    /// The certificate chain as given, and the key beside it where HAProxy
    /// looks for it; only the key is secret.
    fn tls_files(&self, state: &mut HostState, tls: &crate::inventory::TlsSettings) -> Result<(), RenderError> {
        let path = self.inventory.base_dir.join(&tls.certificate.value);
        let chain = crate::source::read_bounded(&path, crate::source::limits::TEMPLATE)
            .map_err(|error| RenderError::ReadSource { path: path.clone(), error })?;
        let mut key = self.secrets.get(&tls.key).as_bytes().to_vec();
        if !key.ends_with(b"\n") {
            key.push(b'\n');
        }
        let files = [
            (crate::tls::CERTIFICATE_PATH, chain, 0o644, tls.certificate.value.display().to_string()),
            (crate::tls::KEY_PATH, key, 0o600, format!("secret from {}", tls.key.source)),
        ];
        for (target, content, mode, origin) in files {
            state.files.push(ManagedFile {
                path: target.into(),
                sensitive: target == crate::tls::KEY_PATH,
                content: content.into(),
                mode,
                owner: "root".into(),
                group: "root".into(),
                checker: Some(Checker::Haproxy),
                origin,
            });
        }
        Ok(())
    }

    /// The tier firewall, on every host: its rules come from the host's
    /// roles, its SSH port and (for a balancer, whose VRRP peers are the
    /// other balancers) its address; hosts alike in those share one render.
    fn firewall(&self, state: &mut HostState) -> Result<(), RenderError> {
        let admin = firewall::admin_networks(self.inventory);
        let ssh_port = firewall::ssh_port(self.inventory, self.host);
        let is_balancer = self.host.has_role(Role::LoadBalancer);
        let key = format!(
            "{:?} {ssh_port} {}",
            state.roles,
            if is_balancer { state.address.to_string() } else { String::new() }
        );
        let context = || self.firewall_context(ssh_port, &admin);
        state.packages.push("nftables".to_string());
        let ruleset = firewall::RULESET_PATH;
        let unit = firewall::UNIT_PATH;
        for (path, template, checker) in
            [(ruleset, "firewall.nft.j2", Checker::Nft), (unit, "infra-firewall.service.j2", Checker::SystemdUnit)]
        {
            let rendered = self.renderer.render_keyed(template, &self.host.name.value, &key, context)?;
            let spec = FileSpec { path, template, mode: 0o644, group: "root", checker: Some(checker) };
            Self::push_rendered(state, spec, rendered);
        }
        state.services.push(ManagedService {
            name: "infra-firewall".into(),
            reload_on: vec![ruleset.into()],
            restart_on: vec![unit.into()],
            enabled: true,
        });
        state.health_checks.push(HealthCheck {
            description: "the firewall is loaded".into(),
            command: "nft list table inet infra > /dev/null".into(),
        });
        state.ssh_guard = Some(SshGuard { ruleset: ruleset.into(), port: ssh_port, admin });
        Ok(())
    }

    fn firewall_context(&self, ssh_port: u16, admin: &[ipnet::IpNet]) -> Value {
        let split = |addresses: Vec<String>| -> (Vec<String>, Vec<String>) {
            addresses.into_iter().partition(|address| !address.contains(':'))
        };
        let (admin_v4, admin_v6) = split(admin.iter().map(ToString::to_string).collect());
        let rules: Vec<Value> = firewall::allowances(self.inventory, self.host)
            .into_iter()
            .map(|allowance| {
                let (from_v4, from_v6) =
                    split(allowance.from.iter().flatten().map(ToString::to_string).collect::<Vec<_>>());
                context! {
                    comment => allowance.comment, tcp_ports => allowance.tcp_ports,
                    anywhere => allowance.from.is_none(), from_v4 => from_v4, from_v6 => from_v6,
                }
            })
            .collect();
        context! {
            firewall => context! {
                ruleset => firewall::RULESET_PATH, ssh_port => ssh_port,
                admin_v4 => admin_v4, admin_v6 => admin_v6, rules => rules,
            },
        }
    }
}

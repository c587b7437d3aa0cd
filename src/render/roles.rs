//! What each role puts on a host: packages, files, services, hooks, health checks.
//!
//! One function per role, each reading like a checklist of that service's
//! setup. Template contexts are derived from the topology here, so a template
//! never computes cross-host facts itself.

use std::sync::Arc;

use minijinja::{Value, context};

use super::{RenderError, Secrets, TemplateRenderer, read_tree};
use crate::catalog::{self, ConfigFile, Service, Trigger};
use crate::desired::{Checker, HealthCheck, Hook, HostState, ManagedFile, ManagedService, Origin, Port, Releases};
use crate::firewall::SshGuard;
use crate::inventory::Host;
use crate::stack::Stack;
use crate::topology::{self, Role};

/// Local files deployed verbatim, read once per run rather than once per host.
pub(crate) struct Sources {
    app: Vec<(String, super::Content)>,
    /// Where the app's code came from, recorded with each release.
    origin: Option<Origin>,
    /// The release the inventory's own `ref` makes, when `infra deploy
    /// --source` deploys another.
    inventory_id: Option<String>,
    static_site: Vec<(String, super::Content)>,
}

impl Sources {
    pub(crate) fn read(stack: &Stack) -> Result<Sources, RenderError> {
        let (app, origin, inventory_id) = if stack.hosts_with(Role::App).next().is_some() {
            let (files, origin) = read_app(stack, &stack.app)?;
            (files, Some(origin), inventory_release(stack)?)
        } else {
            (Vec::new(), None, None)
        };
        let static_site = match &stack.web.static_source {
            Some(source) if stack.hosts_with(Role::Web).next().is_some() => read_tree(
                &stack
                    .files
                    .resolve(&source.value)
                    .map_err(|error| RenderError::ReadSource { path: source.value.clone(), error })?,
            )?,
            _ => Vec::new(),
        };
        Ok(Sources { app, origin, inventory_id, static_site })
    }

    /// The requirements file `file` of the app's source, parsed.
    fn requirements(&self, file: &str) -> Option<crate::desired::Requirements> {
        let (_, content) = self.app.iter().find(|(relative, _)| relative == file)?;
        let text = std::str::from_utf8(content).ok()?;
        let names = crate::requirements::parse(text).ok()?;
        let server = catalog::gunicorn::DISTRIBUTION;
        let (added, gunicorn) = if names.iter().any(|name| name == server) {
            (Vec::new(), crate::requirements::exact_pin(text, server))
        } else {
            let version = catalog::gunicorn::DEFAULT_VERSION;
            (vec![format!("{server}=={version}")], Some(version.to_string()))
        };
        // What the `.venv` holds: the file, what infra adds, and its
        // layout (isolated from Debian's packages since issue 27), so a
        // `.venv` of another layout is rebuilt, never reused.
        let digest = crate::requirements::digest(&format!("{text}\0{}\0isolated", added.join("\n")));
        Some(crate::desired::Requirements { file: file.to_string(), digest, names, added, gunicorn })
    }

    /// What is wrong with `app.requirements`: a file the source does not
    /// have, or a line infra cannot install offline.
    pub(crate) fn requirement_problems(&self, stack: &Stack) -> Vec<crate::diagnostic::Diagnostic> {
        use crate::diagnostic::Diagnostic;
        let app = &stack.app;
        let Some(file) = &app.requirements else {
            return Vec::new();
        };
        if self.app.is_empty() {
            return Vec::new();
        }
        let source = app.source.value.display();
        let Some((_, content)) = self.app.iter().find(|(relative, _)| *relative == file.value) else {
            return vec![
                Diagnostic::error(
                    "missing-requirements",
                    format!("the app's source `{source}` has no `{}`", file.value),
                )
                .at(file.span, "not in the source")
                .help("name a requirements file inside `source`, relative to it"),
            ];
        };
        let problem = match std::str::from_utf8(content) {
            Ok(text) => crate::requirements::parse(text).err().map(|error| error.to_string()),
            Err(_) => Some("1:1: the file is not UTF-8".to_string()),
        };
        problem
            .map(|problem| {
                Diagnostic::error("invalid-requirements", format!("{source}/{}:{problem}", file.value))
                    .at(file.span, "this file")
                    .help("pin distributions from PyPI by name and version, one per line (`Flask==3.1.0`)")
            })
            .into_iter()
            .collect()
    }
}

/// The app's files, from its directory or from one commit of its git
/// repository, and where they came from.
fn read_app(
    stack: &Stack,
    app: &crate::inventory::AppSettings,
) -> Result<(Vec<(String, super::Content)>, Origin), RenderError> {
    let path = stack
        .files
        .resolve(&app.source.value)
        .map_err(|error| RenderError::ReadSource { path: app.source.value.clone(), error })?;
    let shown = app.source.value.display().to_string();
    match &app.revision {
        None => Ok((read_tree(&path)?, Origin { source: shown, revision: None, commit: None })),
        Some(revision) => {
            let read = crate::git::read(&path, &revision.value)?;
            let files = read.files.into_iter().map(|(path, content)| (path, content.into())).collect();
            let origin = Origin { source: shown, revision: Some(revision.value.clone()), commit: Some(read.commit) };
            Ok((files, origin))
        }
    }
}

/// The id of the release the inventory's own `ref` names, when `infra
/// deploy --source` replaced it for this run; `None` when they are one.
fn inventory_release(stack: &Stack) -> Result<Option<String>, RenderError> {
    let app = &stack.app;
    let Some(revision) = &app.inventory_revision else { return Ok(None) };
    let path = stack
        .files
        .resolve(&app.source.value)
        .map_err(|error| RenderError::ReadSource { path: app.source.value.clone(), error })?;
    let read = crate::git::read(&path, revision)?;
    let files: Vec<(String, super::Content)> =
        read.files.into_iter().map(|(path, content)| (path, content.into())).collect();
    Ok(Some(release_id(&files, app)))
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
    database_ip: Option<std::net::IpAddr>,
}

impl Derived {
    pub(crate) fn new(stack: &Stack) -> Derived {
        let balancers: Vec<&Host> = stack.hosts_with(Role::LoadBalancer).collect();
        let database_address = stack
            .hosts_with(Role::Database)
            .next()
            .map(|host| stack.database.bind_address.as_ref().map_or(host.address.value, |bind| bind.value));
        let strings = |items: Vec<String>| Value::from(items);
        Derived {
            upstreams: strings(topology::nginx_upstreams(stack).iter().map(ToString::to_string).collect()),
            backends: Value::from(
                topology::haproxy_backends(stack)
                    .into_iter()
                    .map(|(name, address)| context! { name => name, address => address.to_string() })
                    .collect::<Vec<_>>(),
            ),
            database_clients: strings(topology::database_clients(stack).iter().map(ToString::to_string).collect()),
            web_addresses: strings(stack.hosts_with(Role::Web).map(|host| host.address.value.to_string()).collect()),
            proxy_addresses: strings(
                balancers
                    .iter()
                    .map(|host| host.address.value.to_string())
                    .chain([stack.load_balancer.virtual_ip.value.addr().to_string()])
                    .collect(),
            ),
            balancers: topology::vrrp_priorities(&balancers)
                .into_iter()
                .map(|(priority, _, host)| {
                    (host.name.value.clone(), topology::vrrp_address(stack, host).to_string(), priority)
                })
                .collect(),
            database_address: Value::from(database_address.map(|address| address.to_string())),
            database_ip: database_address,
        }
    }
}

pub(crate) struct HostContext<'a> {
    pub stack: &'a Stack,
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
        // Written at or through the release link, or among the releases, a
        // file would replace the link or change a release.
        if let Some(releases) = &state.releases
            && (file.path == releases.link
                || file.path.starts_with(&format!("{}/", releases.link))
                || file.path.starts_with(&format!("{}/", releases.directory)))
        {
            return Err(RenderError::Collision {
                host: state.name.clone(),
                path: file.path.clone(),
                first: "the app's releases".to_string(),
                second: file.origin.clone(),
            });
        }
    }
    Ok(())
}

impl HostContext<'_> {
    pub fn state(&self) -> Result<HostState, RenderError> {
        let stage = self.stack.stage(self.host).ok_or_else(|| RenderError::NoRole(self.host.name.value.clone()))?;
        let mut state = HostState {
            name: self.host.name.value.clone(),
            address: self.host.address.value,
            target: topology::ssh_target(self.stack, self.host),
            roles: self.host.roles.iter().map(|role| role.value).collect(),
            stage,
            packages: Vec::new(),
            files: Vec::new(),
            services: Vec::new(),
            hooks: Vec::new(),
            health_checks: Vec::new(),
            ssh_guard: None,
            ports: self
                .stack
                .listeners(self.host)
                .iter()
                .map(|listener| Port { port: listener.port, service: listener.service.to_string() })
                .collect(),
            interfaces: topology::interfaces(self.stack, self.host),
            backups: None,
            releases: None,
            static_releases: None,
        };
        for role in topology::role_order().into_iter().filter(|role| self.host.has_role(*role)) {
            match role {
                Role::Database => self.database(&mut state)?,
                Role::App => self.app(&mut state)?,
                Role::Web => self.web(&mut state)?,
                Role::LoadBalancer => self.load_balancer(&mut state)?,
            }
        }
        self.firewall(&mut state)?;
        refuse_collisions(&state)?;
        Ok(state)
    }

    /// Lays out `service` as the catalog describes it: its packages, its
    /// files rendered with `context`, the unit with what reloads and
    /// restarts it, and the hooks its files feed. With a `key`, each file
    /// is rendered once per distinct key ([`TemplateRenderer::render_keyed`]).
    fn install(
        &self,
        state: &mut HostState,
        service: &Service,
        key: Option<&str>,
        context: impl Fn() -> Value,
    ) -> Result<(), RenderError> {
        state.packages.extend(service.packages.iter().map(|package| package.to_string()));
        for file in service.files {
            let host = &self.host.name.value;
            let rendered = match key {
                Some(key) => self.renderer.render_keyed(file.template, host, key, &context)?,
                None => self.renderer.render(file.template, host, context())?,
            };
            Self::push_rendered(state, file, rendered);
            if let Trigger::Feed { name, program } = file.on_change {
                state.hooks.push(Hook {
                    name: name.into(),
                    command: format!("{program} < {}", file.path),
                    triggered_by: vec![file.path.into()],
                });
            }
        }
        state.services.push(ManagedService {
            name: service.unit.into(),
            reload_on: service.paths_on(Trigger::Reload).map(String::from).collect(),
            restart_on: service.paths_on(Trigger::Restart).map(String::from).collect(),
            enabled: true,
        });
        Ok(())
    }

    /// The service's probes, for a service listening on `port` (and
    /// `tls_port` where TLS is configured).
    fn probes(&self, state: &mut HostState, service: &Service, port: u16, tls_port: Option<u16>) {
        let app = app_request(self.stack.app.health.as_ref());
        for probe in service.probes {
            if let Some(command) = probe.command(self.host.address.value, port, tls_port, app) {
                state.health_checks.push(HealthCheck { description: probe.description().into(), command });
            }
        }
    }

    /// Files that trigger a reload of `unit` besides its templates (the
    /// app's code, the TLS chain).
    fn reload_also(state: &mut HostState, unit: &str, paths: impl IntoIterator<Item = String>) {
        if let Some(service) = state.services.iter_mut().find(|service| service.name == unit) {
            service.reload_on.extend(paths);
        }
    }

    fn push_rendered(state: &mut HostState, file: &ConfigFile, rendered: super::RenderedTemplate) {
        state.files.push(ManagedFile {
            path: file.path.to_string(),
            content: rendered.output,
            mode: file.mode,
            owner: "root".to_string(),
            group: file.group.to_string(),
            sensitive: rendered.sensitive,
            checker: file.checker,
            origin: format!("template {}", file.template),
        });
    }

    /// Source files deployed verbatim under `destination`; their paths.
    fn copies(
        state: &mut HostState,
        files: &[(String, super::Content)],
        destination: &str,
        origin: &str,
    ) -> Vec<String> {
        let first = state.files.len();
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
        state.files[first..].iter().map(|file| file.path.clone()).collect()
    }

    fn host_context(&self) -> minijinja::Value {
        context! { name => self.host.name.value.clone(), address => self.host.address.value.to_string() }
    }

    /// The port this host's service of `role` listens on ([`Stack::listeners`]).
    fn port(&self, role: Role) -> Result<u16, RenderError> {
        self.stack.port(self.host, role).ok_or_else(|| RenderError::NoRole(self.host.name.value.clone()))
    }

    fn database(&self, state: &mut HostState) -> Result<(), RenderError> {
        let database = &self.stack.database;
        let bind_address = database.bind_address.as_ref().map_or(self.host.address.value, |bind| bind.value);
        let context = context! {
            host => self.host_context(),
            clients => self.derived.database_clients.clone(),
            backup => backup_context(&database.backup),
            database => context! {
                name => database.name.value.clone(), user => database.user.value.clone(), port => database.port.value,
                bind_address => bind_address.to_string(), password => self.secrets.get(&database.password),
                migrations => self.stack.app.migrate.is_some(),
            },
        };
        self.install(state, &catalog::MARIADB, None, || context.clone())?;
        self.install(state, &catalog::BACKUP, None, || context.clone())?;
        state.backups = Some(crate::desired::Backups {
            directory: database.backup.directory.value.clone(),
            on_calendar: database.backup.schedule.value.clone(),
            before_apply: database.backup.before_apply.value,
        });
        let port = self.port(Role::Database)?;
        self.probes(state, &catalog::MARIADB, port, None);
        self.probes(state, &catalog::BACKUP, port, None);
        Ok(())
    }

    fn app(&self, state: &mut HostState) -> Result<(), RenderError> {
        let app = &self.stack.app;
        let database = &self.stack.database;
        let context = context! {
            host => self.host_context(),
            web_addresses => self.derived.web_addresses.clone(),
            app => context! {
                module => app.module.value.clone(), bind => app.bind.value.to_string(), workers => app.workers.value,
                user => catalog::gunicorn::USER,
                directory => format!("{}/current", app.directory.value),
                venv => app.requirements.is_some(),
                release_environment => crate::desired::release_marks::ENVIRONMENT,
                release_names => crate::desired::release_environment_names(app.static_files.is_some()),
                env => app.env.iter().map(|(name, value)| {
                    let value = match value {
                        crate::inventory::EnvValue::Plain(text) => text.value.as_str(),
                        crate::inventory::EnvValue::Secret(reference) => self.secrets.get(reference),
                    };
                    (name.value.clone(), value.to_string())
                }).collect::<Vec<_>>(),
            },
            database => context! {
                address => self.derived.database_address.clone(),
                port => database.port.value, name => database.name.value.clone(), user => database.user.value.clone(),
                password => self.secrets.get(&database.password),
                url => self.derived.database_ip.map(|address| database_url(
                    address, database.port.value, &database.name.value, &database.user.value, self.secrets.get(&database.password),
                )),
            },
        };
        self.install(state, &catalog::GUNICORN_SOCKET, None, || context.clone())?;
        let service = &catalog::GUNICORN;
        self.install(state, service, None, || context.clone())?;
        let id = release_id(&self.sources.app, app);
        // What the app and the builds of its source-only requirements need.
        for package in app.packages.iter().chain(&app.build_packages) {
            if !state.packages.contains(&package.value) {
                state.packages.push(package.value.clone());
            }
        }
        let releases = Releases {
            directory: format!("{}/releases", app.directory.value),
            link: format!("{}/current", app.directory.value),
            inventory_id: self.sources.inventory_id.clone().unwrap_or_else(|| id.clone()),
            deploy: None,
            id,
            keep: app.keep_releases.value,
            requirements: app.requirements.as_ref().and_then(|file| self.sources.requirements(&file.value)),
            files: self.sources.app.clone(),
            migrate: app.migrate.as_ref().map(|words| words.value.clone()),
            origin: self.sources.origin.clone().unwrap_or_default(),
            python: app.python.as_ref().map(|python| python.value.clone()),
            module: app.module.value.split(':').next().unwrap_or_default().to_string(),
            shared: app.shared.iter().map(|directory| directory.value.clone()).collect(),
            before_switch: app.before_switch.iter().map(|command| command.value.clone()).collect(),
            after_switch: app.after_switch.iter().map(|command| command.value.clone()).collect(),
            processes: catalog::process_instances(
                app.processes.iter().map(|process| (process.name.value.as_str(), process.count.value)),
            ),
            static_files: app.static_files.as_ref().map(|config| crate::desired::StaticFiles {
                root: self.stack.web.static_root.value.clone(),
                source: static_source(config),
            }),
        };
        // A release's files change nothing Gunicorn serves: the switch of
        // the link does.
        Self::reload_also(state, service.unit, [releases.link.clone()]);
        self.processes(state, &releases.link)?;
        state.releases = Some(releases);
        self.probes(state, service, self.port(Role::App)?, None);
        Ok(())
    }

    /// The app's processes (`app.processes`): a unit file each, and its
    /// instances as services, restarted when the unit, the environment or
    /// the release (`link`) changes.
    fn processes(&self, state: &mut HostState, link: &str) -> Result<(), RenderError> {
        for process in &self.stack.app.processes {
            let name = &process.name.value;
            let context = context! {
                app => context! { user => catalog::gunicorn::USER, directory => link },
                process => context! { name => name, count => process.count.value, command => process.command.value.clone() },
            };
            let rendered = self.renderer.render(catalog::APP_PROCESS_TEMPLATE, &self.host.name.value, context)?;
            let path = catalog::process_unit_path(name);
            state.files.push(ManagedFile {
                path: path.clone(),
                content: rendered.output,
                mode: 0o644,
                owner: "root".to_string(),
                group: "root".to_string(),
                sensitive: rendered.sensitive,
                checker: Some(Checker::SystemdUnit),
                origin: format!("template {}", catalog::APP_PROCESS_TEMPLATE),
            });
            for index in 1..=process.count.value {
                state.services.push(ManagedService {
                    name: catalog::process_instance(name, index),
                    reload_on: Vec::new(),
                    restart_on: vec![path.clone(), catalog::APP_ENVIRONMENT.path.to_string(), link.to_string()],
                    enabled: true,
                });
            }
        }
        Ok(())
    }

    fn web(&self, state: &mut HostState) -> Result<(), RenderError> {
        let web = &self.stack.web;
        let context = context! {
            host => self.host_context(),
            upstreams => self.derived.upstreams.clone(),
            proxies => self.derived.proxy_addresses.clone(),
            web => context! { port => web.port.value, server_name => web.server_name.value.clone(), static_root => web.static_root.value.clone() },
            // With two networks, Nginx answers on the private address (and
            // loopback, for its probes), never on a public one.
            listen => self.stack.networks.as_ref().map(|_| [self.host.address.value.to_string(), "127.0.0.1".to_string()]),
        };
        self.install(state, &catalog::NGINX, None, || context.clone())?;
        if let Some(source) = &web.static_source {
            Self::copies(state, &self.sources.static_site, &web.static_root.value, &source.value.display().to_string());
        }
        if self.stack.app.static_files.is_some() {
            state.static_releases = Some(web.static_root.value.clone());
        }
        self.probes(state, &catalog::NGINX, self.port(Role::Web)?, None);
        Ok(())
    }

    fn load_balancer(&self, state: &mut HostState) -> Result<(), RenderError> {
        let settings = &self.stack.load_balancer;
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
            haproxy => catalog::haproxy::template_context(),
            load_balancer => context! { frontend_port => settings.frontend_port.value, balance => settings.balance.value.name() },
            tls => settings.tls.as_ref().map(|tls| context! {
                port => tls.port.value, redirect_http => tls.redirect_http.value, hsts => tls.hsts.value,
                certificate => crate::tls::CERTIFICATE_PATH,
            }),
            vrrp => context! {
                interface => topology::vrrp_interface(self.stack),
                source => topology::vrrp_address(self.stack, self.host).to_string(),
                virtual_router_id => vrrp.virtual_router_id.as_ref().unwrap_or(&settings.virtual_router_id).value,
                priority => priority,
                peers => peers,
                secret => self.secrets.get(vrrp.secret.as_ref().unwrap_or(&settings.vrrp_secret)),
                virtual_ip => settings.virtual_ip.value.to_string(),
            },
        };
        self.install(state, &catalog::HAPROXY, None, || context.clone())?;
        self.install(state, &catalog::KEEPALIVED, None, || context.clone())?;
        if let Some(tls) = &settings.tls {
            self.tls_files(state, tls)?;
            let tls_files = [crate::tls::CERTIFICATE_PATH, crate::tls::KEY_PATH].map(String::from);
            Self::reload_also(state, catalog::HAPROXY.unit, tls_files);
        }
        let tls_port = settings.tls.as_ref().map(|tls| tls.port.value);
        self.probes(state, &catalog::HAPROXY, self.port(Role::LoadBalancer)?, tls_port);
        Ok(())
    }

    /// The certificate chain as given, and the key beside it where HAProxy
    /// looks for it; only the key is secret.
    fn tls_files(&self, state: &mut HostState, tls: &crate::inventory::TlsSettings) -> Result<(), RenderError> {
        let path = &tls.certificate.value;
        let chain = (self.stack.files.resolve(path))
            .and_then(|resolved| crate::source::read_bounded(&resolved, crate::source::limits::TEMPLATE))
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
        let admin = topology::admin_networks(self.stack);
        let ssh_port = topology::ssh_port(&self.stack.ssh, self.host);
        let is_balancer = self.host.has_role(Role::LoadBalancer);
        let key = format!(
            "{:?} {ssh_port} {}",
            state.roles,
            if is_balancer { state.address.to_string() } else { String::new() }
        );
        let service = &catalog::FIREWALL;
        self.install(state, service, Some(&key), || self.firewall_context(ssh_port, &admin))?;
        self.probes(state, service, ssh_port, None);
        state.ssh_guard = Some(SshGuard { ruleset: catalog::FIREWALL_RULESET.path.into(), port: ssh_port, admin });
        Ok(())
    }

    fn firewall_context(&self, ssh_port: u16, admin: &[ipnet::IpNet]) -> Value {
        let split = |addresses: Vec<String>| -> (Vec<String>, Vec<String>) {
            addresses.into_iter().partition(|address| !address.contains(':'))
        };
        let (admin_v4, admin_v6) = split(admin.iter().map(ToString::to_string).collect());
        let rules: Vec<Value> = topology::allowances(self.stack, self.host)
            .into_iter()
            .map(|allowance| {
                let (from_v4, from_v6) =
                    split(allowance.from.iter().flatten().map(ToString::to_string).collect::<Vec<_>>());
                context! {
                    comment => allowance.comment, tcp_ports => allowance.tcp_ports,
                    anywhere => allowance.from.is_none(), from_v4 => from_v4, from_v6 => from_v6,
                    interface => allowance.interface,
                }
            })
            .collect();
        context! {
            firewall => context! {
                ruleset => catalog::FIREWALL_RULESET.path, ssh_port => ssh_port,
                admin_v4 => admin_v4, admin_v6 => admin_v6, rules => rules,
            },
        }
    }
}

/// The backup script's, timer's and server's view of `database.backup`.
fn backup_context(backup: &crate::inventory::BackupSettings) -> minijinja::Value {
    let (directory, keep, schedule, binlogs) =
        (backup.directory.value.clone(), backup.keep.value, backup.schedule.value.clone(), backup.binlogs.value);
    let binlog_seconds = crate::backup::binlog_retention(&schedule, keep).as_secs();
    context! {
        directory, keep, binlogs, binlog_seconds, on_calendar => schedule,
        digest_awk => crate::backup::DIGEST_AWK, key_file => crate::catalog::BACKUP_SEALING_KEY.path,
    }
}

/// Where `app.static` takes a release's static files from.
fn static_source(config: &crate::inventory::AppStatic) -> crate::desired::StaticSource {
    match &config.directory {
        Some(directory) => crate::desired::StaticSource::Directory(directory.value.clone()),
        None => crate::desired::StaticSource::Build(config.build.iter().map(|command| command.value.clone()).collect()),
    }
}

/// The request `app.health` asks the app's probes to make, or the default
/// one (`GET /`, healthy below 400).
pub(crate) fn app_request(health: Option<&crate::inventory::AppHealth>) -> catalog::AppRequest<'_> {
    health.map_or_else(catalog::AppRequest::default, |health| catalog::AppRequest {
        path: &health.path.value,
        status: health.status.as_ref().map(|status| status.value),
        host: health.host.as_ref().map(|host| host.value.as_str()),
    })
}

/// `DATABASE_URL` as dj-database-url, SQLAlchemy and most twelve-factor
/// apps read it: `mysql://USER:PASSWORD@HOST:PORT/NAME`, the user, password
/// and name percent-encoded (a password may hold any character, and an
/// `@`, `:` or `/` in it would end its part of the URL).
fn database_url(address: std::net::IpAddr, port: u16, name: &str, user: &str, password: &str) -> String {
    let host = match address {
        std::net::IpAddr::V4(address) => address.to_string(),
        std::net::IpAddr::V6(address) => format!("[{address}]"),
    };
    format!("mysql://{}:{}@{host}:{port}/{}", percent_encode(user), percent_encode(password), percent_encode(name))
}

/// Every byte but RFC 3986's unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A release's id: the first 12 hex digits of a digest of its files (paths
/// and contents, in order), so every host computes the same id for the same
/// code, and unchanged code is no new release.
/// What the release is made of beside its files is part of it too: the
/// shared directories linked into it, and how its static files are made.
fn release_id(files: &[(String, super::Content)], app: &crate::inventory::AppSettings) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (relative, content) in files {
        hasher.update((relative.len() as u64).to_le_bytes());
        hasher.update(relative.as_bytes());
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(content);
    }
    // The shared directories are linked into the release: another set
    // makes another release (without any, the id is the code's alone).
    for directory in &app.shared {
        hasher.update(b"\0shared\0");
        hasher.update(directory.value.as_bytes());
    }
    // Without `app.static`, the id is what it was before there was one.
    if let Some(config) = &app.static_files {
        hasher.update(b"\0static\0");
        hasher.update(serde_json::to_vec(&static_source(config)).unwrap_or_default());
    }
    hasher.finalize().iter().take(6).map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::database_url;

    /// Issue 27: a process's unit runs its words through the `current`
    /// link with systemd's own expansions doubled away, and each instance
    /// is a service that a switch of the link restarts.
    #[test]
    fn a_process_is_a_unit_whose_instances_restart_with_the_release() {
        let inventory = crate::rules::test_support::VALID.replace(
            "  source: app\n",
            "  source: app\n  processes:\n    - {name: worker, command: [celery, -A, proj, worker, --pidfile=%n, \"$HOME\", \";\"], count: 2}\n",
        );
        let stack = crate::rules::test_support::stack(&inventory);
        let rendered = crate::render::render(&stack, crate::render::SecretMode::Placeholder).expect("renders");
        let host = rendered.state.hosts.iter().find(|host| host.releases.is_some()).expect("an app host");
        let unit = host.file("/etc/systemd/system/infra-app-worker@.service").expect("the process's unit");
        let text = String::from_utf8_lossy(&unit.content);
        assert!(
            text.contains(
                "ExecStart=/bin/sh -c 'exec \"$$@\"' worker celery -A proj worker --pidfile=%%n $$HOME \\;\n"
            ),
            "{text}"
        );
        assert!(text.contains("WorkingDirectory=/srv/app/current\n"), "{text}");
        let instances: Vec<&str> = host
            .services
            .iter()
            .map(|service| service.name.as_str())
            .filter(|name| name.starts_with("infra-app-worker"))
            .collect();
        assert_eq!(instances, ["infra-app-worker@1.service", "infra-app-worker@2.service"]);
        let first = host.services.iter().find(|service| service.name == instances[0]).expect("an instance");
        assert!(first.restart_on.contains(&"/srv/app/current".to_string()), "{:?}", first.restart_on);
        assert!(crate::catalog::is_process_instance(instances[1]));
        for other in [
            "infra-app.service",
            "infra-app-worker@0.service",
            "infra-app-worker@01.service",
            "ssh.service",
            "infra-app-Worker@1.service",
        ] {
            assert!(!crate::catalog::is_process_instance(other), "{other}");
        }
    }

    #[test]
    fn database_url_encodes_what_would_end_a_part() {
        let url = database_url("10.0.0.13".parse().expect("address"), 3306, "app", "app", "p@ss:w/rd%?#$ é");
        assert_eq!(url, "mysql://app:p%40ss%3Aw%2Frd%25%3F%23%24%20%C3%A9@10.0.0.13:3306/app");
        let url = database_url("fd00::13".parse().expect("address"), 3307, "app_db", "app", "secret");
        assert_eq!(url, "mysql://app:secret@[fd00::13]:3307/app_db");
    }
}

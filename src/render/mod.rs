//! Rendering: a checked inventory to the desired state of every host.
//!
//! This module resolves secrets (or stands in placeholders when only
//! validating), derives each template's context from the topology, renders
//! the templates and reads the application and static files to deploy. The
//! result is [`DesiredState`], in stage order; no host is contacted.

mod roles;
mod templates;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use minijinja::Environment;

pub use templates::{BUILT_IN, TemplateError};

use crate::desired::{DesiredState, HostState};
use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::secret::{Secret, SecretRef, SecretSource};
use crate::topology;

/// What to do about a secret that cannot be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretMode {
    /// Every secret must resolve (render for hosts, plan, apply).
    Require,
    /// Unresolvable secrets become placeholders with a note (offline validation in CI).
    Placeholder,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot render `{template}` for host `{host}`")]
    Render {
        template: String,
        host: String,
        #[source]
        error: minijinja::Error,
    },
    #[error("cannot read `{}`", path.display())]
    ReadSource {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

/// The output of rendering: the state, and any diagnostics about secrets.
pub struct Rendered {
    pub state: DesiredState,
    pub diagnostics: Vec<Diagnostic>,
}

/// Secrets by source, resolved once per run however often they are used.
pub(crate) struct Secrets {
    values: HashMap<SecretSource, Secret>,
}

impl Secrets {
    pub(crate) fn get(&self, reference: &SecretRef) -> &str {
        self.values.get(&reference.source).map_or("", Secret::expose)
    }

    fn all(&self) -> impl Iterator<Item = &Secret> {
        self.values.values()
    }
}

/// Renders every host of a checked inventory.
pub fn render(inventory: &Inventory, mode: SecretMode) -> Result<Rendered, RenderError> {
    let (secrets, diagnostics) = resolve_secrets(inventory, mode);
    let overrides = inventory.templates.as_ref().map(|path| inventory.base_dir.join(&path.value));
    let renderer = TemplateRenderer::new(templates::environment(overrides.as_deref())?);
    let sources = roles::Sources::read(inventory)?;
    let derived = roles::Derived::new(inventory);
    let mut hosts = Vec::with_capacity(inventory.hosts.len());
    for stage in topology::stages(inventory) {
        for host in stage.hosts {
            let context = roles::HostContext {
                inventory,
                host,
                secrets: &secrets,
                renderer: &renderer,
                sources: &sources,
                derived: &derived,
            };
            hosts.push(context.state()?);
        }
    }
    mark_sensitive(&mut hosts, &secrets);
    Ok(Rendered { state: DesiredState { hosts }, diagnostics })
}

/// keepalived's PASS authentication uses at most 8 characters and silently
/// truncates longer secrets, so two peers could disagree without noticing.
const VRRP_SECRET_MAX: usize = 8;

/// Every secret reference, with the longest value it may have.
fn secret_references(inventory: &Inventory) -> Vec<(&SecretRef, Option<usize>)> {
    let mut references: Vec<(&SecretRef, Option<usize>)> = Vec::new();
    if let Some(load_balancer) = &inventory.load_balancer {
        references.push((&load_balancer.vrrp_secret, Some(VRRP_SECRET_MAX)));
    }
    references.extend(
        inventory.hosts.iter().filter_map(|host| host.vrrp.secret.as_ref()).map(|r| (r, Some(VRRP_SECRET_MAX))),
    );
    if let Some(database) = &inventory.database {
        references.push((&database.password, None));
    }
    if let Some(tls) = inventory.load_balancer.as_ref().and_then(|lb| lb.tls.as_ref()) {
        references.push((&tls.key, None));
    }
    references
}

/// The TLS key must be the private half of the certificate: HAProxy refuses
/// to start otherwise, which on a reload would be an outage.
fn tls_key_mismatch(inventory: &Inventory, secrets: &Secrets) -> Option<Diagnostic> {
    let tls = inventory.load_balancer.as_ref()?.tls.as_ref()?;
    let key = secrets.values.get(&tls.key.source)?;
    if *key == Secret::placeholder() {
        return None;
    }
    let path = inventory.base_dir.join(&tls.certificate.value);
    // An unreadable certificate is already reported by the TLS rules.
    let certificate = crate::tls::read_certificate(&std::fs::read(&path).ok()?).ok()?;
    let message = match crate::tls::key_matches(&certificate, key.expose()) {
        Ok(true) => return None,
        Ok(false) => {
            format!("the TLS key from {} does not belong to the certificate `{}`", tls.key.source, path.display())
        }
        Err(error) => format!("cannot use the TLS key from {}: {error}", tls.key.source),
    };
    Some(
        Diagnostic::error("tls-key-mismatch", message)
            .at(tls.key.span, "this key")
            .also(tls.certificate.span, "this certificate")
            .help("name the key the certificate was issued for; `openssl x509 -noout -pubkey` and `openssl pkey -pubout` must print the same"),
    )
}

fn resolve_secrets(inventory: &Inventory, mode: SecretMode) -> (Secrets, Vec<Diagnostic>) {
    let mut values = HashMap::new();
    let mut diagnostics = Vec::new();
    for (reference, max_len) in secret_references(inventory) {
        if values.contains_key(&reference.source) {
            continue;
        }
        let value = match reference.resolve(&inventory.base_dir) {
            Ok(secret) if max_len.is_some_and(|max| secret.expose().chars().count() > max) => {
                diagnostics.push(
                    Diagnostic::error(
                        "vrrp-secret-too-long",
                        format!(
                            "the VRRP secret from {} is longer than {VRRP_SECRET_MAX} characters",
                            reference.source
                        ),
                    )
                    .at(reference.span, "keepalived would truncate it")
                    .help(format!("use a secret of at most {VRRP_SECRET_MAX} characters")),
                );
                continue;
            }
            Ok(secret) => secret,
            Err(error) if mode == SecretMode::Require => {
                diagnostics.push(
                    Diagnostic::error("secret-unavailable", error.to_string())
                        .at(reference.span, "needed to render the configuration")
                        .help(secret_help(&reference.source)),
                );
                continue;
            }
            Err(error) => {
                diagnostics.push(
                    Diagnostic::note("secret-placeholder", format!("{error}; validating with a placeholder value"))
                        .at(reference.span, "placeholder used"),
                );
                Secret::placeholder()
            }
        };
        values.insert(reference.source.clone(), value);
    }
    let secrets = Secrets { values };
    diagnostics.extend(tls_key_mismatch(inventory, &secrets));
    (secrets, diagnostics)
}

fn secret_help(source: &SecretSource) -> String {
    match source {
        SecretSource::Env(name) => {
            format!("set it with `export {name}=...` (plan and apply never fall back to an empty value)")
        }
        SecretSource::File(path) => format!("create `{}` with the secret on its first line", path.display()),
    }
}

/// A file is sensitive when its content holds any secret value, raw or as a
/// quoting filter escaped it, whatever template (built-in or override) put
/// it there.
fn mark_sensitive(hosts: &mut [HostState], secrets: &Secrets) {
    let forms: Vec<String> = secrets
        .all()
        .filter(|secret| !secret.expose().is_empty())
        .flat_map(|secret| templates::written_forms(secret.expose()))
        .collect();
    let finders: Vec<memchr::memmem::Finder> = forms.iter().map(memchr::memmem::Finder::new).collect();
    for file in hosts.iter_mut().flat_map(|host| host.files.iter_mut()) {
        if finders.iter().any(|finder| finder.find(&file.content).is_some()) {
            file.sensitive = true;
        }
    }
}

/// The context variables that differ from host to host. Every other context
/// variable is derived from the inventory as a whole, which is what makes the
/// render cache below correct.
const PER_HOST_VARIABLES: [&str; 3] = ["host", "vrrp", "firewall"];

/// Renders templates, once per run for those that use no per-host variable:
/// 500 web hosts share one Nginx site with 500 upstreams, rendered once.
pub(crate) struct TemplateRenderer {
    environment: Environment<'static>,
    shared_output: RefCell<HashMap<String, Rc<str>>>,
}

impl TemplateRenderer {
    fn new(environment: Environment<'static>) -> Self {
        TemplateRenderer { environment, shared_output: RefCell::new(HashMap::new()) }
    }

    pub(crate) fn render(&self, name: &str, host: &str, context: minijinja::Value) -> Result<Rc<str>, RenderError> {
        let render_error = |error| RenderError::Render { template: name.to_string(), host: host.to_string(), error };
        if let Some(output) = self.shared_output.borrow().get(name) {
            return Ok(Rc::clone(output));
        }
        let template = self.environment.get_template(name).map_err(render_error)?;
        let output: Rc<str> = template.render(context).map_err(render_error)?.into();
        let per_host =
            template.undeclared_variables(false).iter().any(|variable| PER_HOST_VARIABLES.contains(&variable.as_str()));
        if !per_host {
            self.shared_output.borrow_mut().insert(name.to_string(), Rc::clone(&output));
        }
        Ok(output)
    }
}

pub(crate) fn read_tree(root: &Path) -> Result<Vec<(String, Vec<u8>)>, RenderError> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let read_error = |error| RenderError::ReadSource { path: directory.clone(), error };
        for entry in std::fs::read_dir(&directory).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') || name == "__pycache__" {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                let content =
                    std::fs::read(&path).map_err(|error| RenderError::ReadSource { path: path.clone(), error })?;
                let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
                files.push((relative, content));
            }
        }
    }
    files.sort();
    Ok(files)
}

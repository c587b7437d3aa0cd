//! Rendering: a stack to the desired state of every host.
//!
//! This module resolves secrets (or stands in placeholders when only
//! validating), derives each template's context from the topology, renders
//! the templates and reads the application and static files to deploy. The
//! result is [`DesiredState`], in stage order; no host is contacted.

mod roles;
pub(crate) use roles::app_request;
mod templates;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use templates::{BUILT_IN, TemplateError, Templates};

use crate::desired::DesiredState;
use crate::diagnostic::Diagnostic;
use crate::inventory::grammar;
use crate::secret::{Secret, SecretRef, SecretSource};
use crate::source::{limits, read_bounded};
use crate::stack::Stack;
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
    #[error("cannot deploy `{}`: {problem}", path.display())]
    Source { path: PathBuf, problem: SourceProblem },
    #[error("host `{host}` would get two files at `{path}`: from {first} and from {second}")]
    Collision { host: String, path: String, first: String, second: String },
    /// The decoder refuses a host without roles; render of an inventory
    /// with errors is the caller's bug, said rather than guessed around.
    #[error("host `{0}` has no role: an inventory with errors cannot be rendered")]
    NoRole(String),
    #[error("cannot read the app's source")]
    Git(#[from] crate::git::GitError),
    #[error("cannot read `{}`", path.display())]
    ReadSource {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

/// Why a file of a source tree is not deployed.
#[derive(Debug, thiserror::Error)]
pub enum SourceProblem {
    #[error("its name is not plain UTF-8 text without control characters")]
    Name,
    #[error("it is neither a regular file nor a directory")]
    NotAFile,
    #[error("it is a symlink to `{}`, which is not a regular file inside the source tree that would be deployed itself (hidden files are not)", target.display())]
    LinkOutside { target: PathBuf },
    #[error("it is a hard link (the file has other names, perhaps outside the tree): copy it instead")]
    HardLink,
    #[error("the tree holds more than {limit_mib} MiB")]
    TooLarge { limit_mib: u64 },
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
}

/// Renders every host of a stack.
pub fn render(stack: &Stack, mode: SecretMode) -> Result<Rendered, RenderError> {
    let (secrets, mut diagnostics) = resolve_secrets(stack, mode);
    let overrides = (stack.templates.as_ref())
        .map(|path| {
            stack
                .files
                .resolve(&path.value)
                .map_err(|error| TemplateError::ReadOverrides { path: path.value.clone(), error })
        })
        .transpose()?;
    let renderer = TemplateRenderer::new(Templates::load(overrides.as_deref())?);
    let sources = roles::Sources::read(stack)?;
    diagnostics.extend(sources.requirement_problems(stack));
    let derived = roles::Derived::new(stack);
    let mut hosts = Vec::with_capacity(stack.hosts.len());
    for stage in topology::stages(stack) {
        for host in stage.hosts {
            let context = roles::HostContext {
                stack,
                host,
                secrets: &secrets,
                renderer: &renderer,
                sources: &sources,
                derived: &derived,
            };
            hosts.push(context.state()?);
        }
    }
    let virtual_ip = Some(stack.load_balancer.virtual_ip.value.addr());
    Ok(Rendered { state: DesiredState { hosts, virtual_ip, witnesses: Vec::new() }, diagnostics })
}

/// The grammar a secret's value must follow in the file it lands in.
struct SecretGrammar {
    code: &'static str,
    check: fn(&str) -> Result<(), String>,
    help: &'static str,
}

const VRRP_SECRET: SecretGrammar = SecretGrammar {
    code: "invalid-vrrp-secret",
    check: grammar::vrrp_secret,
    help: "use 1 to 8 printable ASCII characters without whitespace, quotes, `\\`, braces, `#` or `!`",
};

const PASSWORD: SecretGrammar = SecretGrammar {
    code: "invalid-password",
    check: grammar::password,
    help: "use a password of at most 256 bytes without control characters",
};

/// Every secret reference, with the grammar of the file it lands in
/// (keepalived's `auth_pass`, or SQL and an environment file; the TLS key
/// is checked against its certificate instead).
fn secret_references(stack: &Stack) -> Vec<(&SecretRef, Option<&'static SecretGrammar>)> {
    let mut references = vec![(&stack.load_balancer.vrrp_secret, Some(&VRRP_SECRET))];
    references.extend(stack.hosts.iter().filter_map(|host| host.vrrp.secret.as_ref()).map(|r| (r, Some(&VRRP_SECRET))));
    references.push((&stack.database.password, Some(&PASSWORD)));
    for (_, value) in &stack.app.env {
        if let crate::inventory::EnvValue::Secret(reference) = value {
            references.push((reference, Some(&PASSWORD)));
        }
    }
    if let Some(tls) = &stack.load_balancer.tls {
        references.push((&tls.key, None));
    }
    references
}

/// A secret value outside its grammar: said without showing the value.
fn invalid_secret(reference: &SecretRef, grammar: &SecretGrammar, problem: &str) -> Diagnostic {
    Diagnostic::error(grammar.code, format!("the secret from {} cannot be used: {problem}", reference.source))
        .at(reference.span, "this secret")
        .help(grammar.help)
}

/// The TLS key must be the private half of the certificate: HAProxy refuses
/// to start otherwise, which on a reload would be an outage.
fn tls_key_mismatch(stack: &Stack, secrets: &Secrets) -> Option<Diagnostic> {
    let tls = stack.load_balancer.tls.as_ref()?;
    let key = secrets.values.get(&tls.key.source)?;
    if *key == Secret::placeholder() {
        return None;
    }
    // An unreadable certificate is already reported by the TLS rules.
    let path = stack.files.resolve(&tls.certificate.value).ok()?;
    let certificate =
        crate::tls::read_certificate(&crate::source::read_bounded(&path, crate::source::limits::TEMPLATE).ok()?)
            .ok()?;
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

fn resolve_secrets(stack: &Stack, mode: SecretMode) -> (Secrets, Vec<Diagnostic>) {
    let mut values = HashMap::new();
    let mut diagnostics = Vec::new();
    for (reference, rule) in secret_references(stack) {
        if values.contains_key(&reference.source) {
            continue;
        }
        let value = match reference.resolve(&stack.files) {
            Ok(secret)
                if let Some((grammar, Err(problem))) =
                    rule.map(|grammar| (grammar, (grammar.check)(secret.expose()))) =>
            {
                diagnostics.push(invalid_secret(reference, grammar, &problem));
                continue;
            }
            Ok(secret) => secret,
            Err(error) if mode == SecretMode::Require || !error.is_absent() => {
                diagnostics.push(
                    Diagnostic::error("secret-unavailable", crate::diagnostic::error_chain(&error))
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
    diagnostics.extend(tls_key_mismatch(stack, &secrets));
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

/// The context variables that differ from host to host. Every other context
/// variable is derived from the inventory as a whole, which is what makes the
/// render cache below correct.
const PER_HOST_VARIABLES: [&str; 3] = ["host", "vrrp", "firewall"];

/// Template variables that hold a secret. A file is sensitive when its
/// template reads one of them, or the object holding one as a whole (as
/// `{{ database | tojson }}` would): decided by what the template uses, so
/// escaping cannot hide a secret from the check and no output is searched.
const SECRET_VARIABLES: [&str; 3] = ["database.password", "vrrp.secret", "app.env"];

/// A file's bytes, shared between every host that gets the same file.
pub(crate) type Content = Arc<[u8]>;

/// What rendering one template produced.
pub(crate) struct RenderedTemplate {
    pub output: Content,
    pub sensitive: bool,
}

/// What infra learns about a template by reading it, once per run.
#[derive(Clone, Copy)]
struct TemplateUse {
    per_host: bool,
    sensitive: bool,
}

/// Renders templates, once per run for those that use no per-host variable:
/// 500 web hosts share one Nginx site with 500 upstreams, rendered once.
pub(crate) struct TemplateRenderer {
    templates: Templates,
    uses: RefCell<HashMap<String, TemplateUse>>,
    /// Rendered output by (template, key); see [`TemplateRenderer::render_cached`].
    outputs: RefCell<HashMap<(String, String), Content>>,
}

impl TemplateRenderer {
    fn new(templates: Templates) -> Self {
        TemplateRenderer { templates, uses: RefCell::default(), outputs: RefCell::default() }
    }

    /// Renders `name` for `host`; once per run when the template uses no
    /// per-host variable.
    pub(crate) fn render(
        &self,
        name: &str,
        host: &str,
        context: minijinja::Value,
    ) -> Result<RenderedTemplate, RenderError> {
        self.render_cached(name, host, None, || context)
    }

    /// Renders `name` once per distinct `key`, for a per-host template whose
    /// output depends only on what `key` names (the firewall: a host's
    /// roles and SSH port). The context is built only on a miss: 10,000 app
    /// hosts share one ruleset listing 10,000 web servers, built once.
    pub(crate) fn render_keyed(
        &self,
        name: &str,
        host: &str,
        key: &str,
        context: impl FnOnce() -> minijinja::Value,
    ) -> Result<RenderedTemplate, RenderError> {
        self.render_cached(name, host, Some(key), context)
    }

    /// The one cache behind both: by template and key, the key being empty
    /// for a template shared by every host.
    fn render_cached(
        &self,
        name: &str,
        host: &str,
        key: Option<&str>,
        context: impl FnOnce() -> minijinja::Value,
    ) -> Result<RenderedTemplate, RenderError> {
        let render_error = |error| RenderError::Render { template: name.to_string(), host: host.to_string(), error };
        let template = self.templates.get(name).map_err(render_error)?;
        let template_use = *self.uses.borrow_mut().entry(name.to_string()).or_insert_with(|| {
            let variables = template.undeclared_variables(true);
            let top_level = |variable: &str| variable.split('.').next().unwrap_or(variable).to_string();
            TemplateUse {
                per_host: variables.iter().any(|variable| PER_HOST_VARIABLES.contains(&top_level(variable).as_str())),
                sensitive: variables.iter().any(|variable| {
                    SECRET_VARIABLES.iter().any(|secret| {
                        secret == variable
                            || secret.strip_prefix(variable.as_str()).is_some_and(|rest| rest.starts_with('.'))
                    })
                }),
            }
        });
        let cache_key = key.or((!template_use.per_host).then_some("")).map(|key| (name.to_string(), key.to_string()));
        let sensitive = template_use.sensitive;
        if let Some(output) = cache_key.as_ref().and_then(|cache_key| self.outputs.borrow().get(cache_key).cloned()) {
            return Ok(RenderedTemplate { output, sensitive });
        }
        let output: Content = render_bounded(&template, context()).map_err(render_error)?.into();
        if let Some(cache_key) = cache_key {
            self.outputs.borrow_mut().insert(cache_key, Arc::clone(&output));
        }
        Ok(RenderedTemplate { output, sensitive })
    }
}

/// The most one rendered file may hold: an override that repeats a
/// string in a loop stops here instead of filling memory.
const RENDERED_FILE_LIMIT: usize = 64 << 20;

/// Renders into a buffer that refuses to grow past [`RENDERED_FILE_LIMIT`].
fn render_bounded(
    template: &minijinja::Template<'_, '_>,
    context: minijinja::Value,
) -> Result<Vec<u8>, minijinja::Error> {
    struct Bounded(Vec<u8>);
    impl std::io::Write for Bounded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.0.len() + bytes.len() > RENDERED_FILE_LIMIT {
                return Err(std::io::Error::other(format!(
                    "the rendered file would be larger than {} MiB",
                    RENDERED_FILE_LIMIT >> 20
                )));
            }
            self.0.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut output = Bounded(Vec::new());
    template.render_captured_to(context, &mut output)?;
    Ok(output.0)
}

/// Reads every file of a source tree (`app.source`, `web.static_source`)
/// to deploy verbatim. Hidden files and `__pycache__` are skipped. A
/// symlink is followed only to a regular file inside the tree, so a link to
/// `/etc/shadow` cannot end up world-readable under the static root; devices,
/// FIFOs and names that are not plain UTF-8 are refused, and sizes are
/// bounded ([`limits`]).
pub(crate) fn read_tree(root: &Path) -> Result<Vec<(String, Content)>, RenderError> {
    let refuse = |path: &Path, problem| RenderError::Source { path: path.to_path_buf(), problem };
    let canonical_root =
        std::fs::canonicalize(root).map_err(|error| RenderError::ReadSource { path: root.to_path_buf(), error })?;
    let mut files = Vec::new();
    let mut total: u64 = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let read_error = |error| RenderError::ReadSource { path: directory.clone(), error };
        for entry in std::fs::read_dir(&directory).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
                return Err(refuse(&path, SourceProblem::Name));
            };
            if crate::source::left_out_of_sources(name) {
                continue;
            }
            if name.chars().any(char::is_control) {
                return Err(refuse(&path, SourceProblem::Name));
            }
            let metadata = std::fs::symlink_metadata(&path)
                .map_err(|error| RenderError::ReadSource { path: path.clone(), error })?;
            if metadata.is_dir() {
                pending.push(path);
                continue;
            }
            if metadata.file_type().is_symlink() {
                let target = std::fs::canonicalize(&path)
                    .map_err(|error| RenderError::ReadSource { path: path.clone(), error })?;
                let hidden = target.strip_prefix(&canonical_root).is_ok_and(|inside| {
                    inside
                        .components()
                        .any(|part| part.as_os_str().to_str().is_none_or(crate::source::left_out_of_sources))
                });
                if !target.starts_with(&canonical_root) || !target.is_file() || hidden {
                    return Err(refuse(&path, SourceProblem::LinkOutside { target }));
                }
            } else if !metadata.is_file() {
                return Err(refuse(&path, SourceProblem::NotAFile));
            } else if std::os::unix::fs::MetadataExt::nlink(&metadata) > 1 {
                // Another name of the same file may be anywhere on this
                // machine's file system (a key beside the repository).
                return Err(refuse(&path, SourceProblem::HardLink));
            }
            let content = read_bounded(&path, limits::SOURCE_FILE)
                .map_err(|error| RenderError::ReadSource { path: path.clone(), error })?;
            total += content.len() as u64;
            if total > limits::SOURCE_TREE {
                return Err(refuse(root, SourceProblem::TooLarge { limit_mib: limits::SOURCE_TREE >> 20 }));
            }
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            files.push((relative, content.into()));
        }
    }
    files.sort();
    Ok(files)
}

//! Rules about local files the inventory names: the application source, the
//! static site and the template overrides must exist before anything renders.

use std::path::Path;

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::source::Spanned;

pub fn check(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    if let Some(certificate) =
        inventory.load_balancer.as_ref().and_then(|lb| lb.tls.as_ref()).map(|tls| &tls.certificate)
    {
        confined(inventory, certificate, "`certificate`", found);
    }
    if let Some(app) = &inventory.app {
        match &app.revision {
            Some(revision) => git_source(inventory, app, revision, found),
            None if directory(inventory, &app.source, "`source` of `app`", found) => {
                app_module(inventory, app.source.value.as_path(), &app.module, found);
            }
            None => {}
        }
    }
    if let Some(source) = inventory.web.as_ref().and_then(|web| web.static_source.as_ref()) {
        directory(inventory, source, "`static_source`", found);
    }
    if let Some(templates) = &inventory.templates {
        directory(inventory, templates, "`templates`", found);
    }
}

/// The file or directory a local path names, or a diagnostic at it when it
/// leads outside the inventory's repository ([`crate::source::LocalFiles`]).
pub fn confined(
    inventory: &Inventory,
    path: &Spanned<std::path::PathBuf>,
    what: &str,
    found: &mut Vec<Diagnostic>,
) -> Option<std::path::PathBuf> {
    match inventory.files.resolve(&path.value) {
        Ok(resolved) => Some(resolved),
        Err(error) => {
            found.push(
                Diagnostic::error("path-outside-repository", format!("{what}: {error}"))
                    .at(path.span, "leads outside the repository")
                    .help("name a file inside the inventory's repository; an operator can allow another directory with `INFRA_ALLOW_PATHS=/that/directory`"),
            );
            None
        }
    }
}

/// Reports a missing directory; returns whether it exists.
fn directory(
    inventory: &Inventory,
    path: &Spanned<std::path::PathBuf>,
    what: &str,
    found: &mut Vec<Diagnostic>,
) -> bool {
    let Some(full) = confined(inventory, path, what, found) else { return false };
    if full.is_dir() {
        return true;
    }
    found.push(
        Diagnostic::error("missing-directory", format!("{what} `{}` is not a directory", full.display()))
            .at(path.span, "no such directory")
            .help("paths in an inventory are relative to the inventory file's directory"),
    );
    false
}

/// A git source: the repository has the revision, and its commit has the
/// module Gunicorn imports. Read from the repository on this machine, so
/// validate stays offline.
fn git_source(
    inventory: &Inventory,
    app: &crate::inventory::AppSettings,
    revision: &Spanned<String>,
    found: &mut Vec<Diagnostic>,
) {
    let Some(repository) = confined(inventory, &app.source, "`source` of `app`", found) else { return };
    let files = match crate::git::list(&repository, &revision.value) {
        Ok((_, files)) => files,
        Err(error) => {
            let span = if matches!(error, crate::git::GitError::UnknownRevision { .. }) {
                revision.span
            } else {
                app.source.span
            };
            found.push(
                Diagnostic::error("invalid-git-source", crate::diagnostic::error_chain(&error))
                    .at(span, "cannot be deployed")
                    .help("`git` is a repository on this machine (relative to the inventory), `ref` a branch, tag or commit in it"),
            );
            return;
        }
    };
    let module_path = module_path(&app.module.value);
    let candidates = [format!("{module_path}.py"), format!("{module_path}/__init__.py")];
    if !files.iter().any(|(path, _)| candidates.contains(path)) {
        found.push(
            Diagnostic::error(
                "missing-app-module",
                format!("module `{module_path}` is not in commit `{}` of `{}`", revision.value, repository.display()),
            )
            .at(app.module.span, format!("Gunicorn would fail to import `{module_path}`"))
            .help(format!("expected `{}` in the repository", candidates[0])),
        );
    }
}

/// `pkg/mod` of `pkg.mod:app`.
fn module_path(entry_point: &str) -> String {
    entry_point.split(':').next().unwrap_or_default().replace('.', "/")
}

/// Gunicorn imports `module:callable`; the module file must be in the source.
fn app_module(inventory: &Inventory, source: &Path, module: &Spanned<String>, found: &mut Vec<Diagnostic>) {
    let module_path = module_path(&module.value);
    let Ok(root) = inventory.files.resolve(source) else { return };
    let candidates = [root.join(format!("{module_path}.py")), root.join(&module_path).join("__init__.py")];
    if !candidates.iter().any(|candidate| candidate.is_file()) {
        found.push(
            Diagnostic::error(
                "missing-app-module",
                format!("module `{module_path}` is not in the application source `{}`", root.display()),
            )
            .at(module.span, format!("Gunicorn would fail to import `{module_path}`"))
            .help(format!("expected `{}`", candidates[0].display())),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    #[test]
    fn missing_application_source() {
        assert_eq!(codes(&broken("source: app", "source: no-such-dir")), ["missing-directory"]);
    }

    #[test]
    fn module_not_in_source() {
        assert_eq!(codes(&broken("module: \"app:app\"", "module: \"website:app\"")), ["missing-app-module"]);
    }
}

//! Rules about local files the inventory names: the application source, the
//! static site and the template overrides must exist before anything renders.

use std::path::Path;

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::source::Spanned;

pub fn check(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    if let Some(app) = &inventory.app
        && directory(inventory, &app.source, "`source` of `app`", found)
    {
        app_module(inventory, app.source.value.as_path(), &app.module, found);
    }
    if let Some(source) = inventory.web.as_ref().and_then(|web| web.static_source.as_ref()) {
        directory(inventory, source, "`static_source`", found);
    }
    if let Some(templates) = &inventory.templates {
        directory(inventory, templates, "`templates`", found);
    }
}

/// Reports a missing directory; returns whether it exists.
fn directory(
    inventory: &Inventory,
    path: &Spanned<std::path::PathBuf>,
    what: &str,
    found: &mut Vec<Diagnostic>,
) -> bool {
    let full = inventory.base_dir.join(&path.value);
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

/// Gunicorn imports `module:callable`; the module file must be in the source.
fn app_module(inventory: &Inventory, source: &Path, module: &Spanned<String>, found: &mut Vec<Diagnostic>) {
    let module_path = module.value.split(':').next().unwrap_or_default().replace('.', "/");
    let root = inventory.base_dir.join(source);
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
    use crate::check::test_support::*;

    #[test]
    fn missing_application_source() {
        assert_eq!(codes(&broken("source: app", "source: no-such-dir")), ["missing-directory"]);
    }

    #[test]
    fn module_not_in_source() {
        assert_eq!(codes(&broken("module: \"app:app\"", "module: \"website:app\"")), ["missing-app-module"]);
    }
}

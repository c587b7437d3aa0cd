//! The minijinja environment: embedded templates, per-file overrides, filters.
//!
//! Templates ship inside the binary so `infra` is one file to install. An
//! inventory may name a `templates:` directory; a file there with a built-in
//! template's name replaces that template, and any other file is an error
//! (a misspelt override would otherwise be silently ignored).

use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior};

/// The built-in templates, by the name an override file must have.
pub const BUILT_IN: [(&str, &str); 17] = [
    ("haproxy.cfg.j2", include_str!("../../templates/haproxy.cfg.j2")),
    ("keepalived.conf.j2", include_str!("../../templates/keepalived.conf.j2")),
    ("nginx.conf.j2", include_str!("../../templates/nginx.conf.j2")),
    ("nginx-site.conf.j2", include_str!("../../templates/nginx-site.conf.j2")),
    ("gunicorn.conf.py.j2", include_str!("../../templates/gunicorn.conf.py.j2")),
    ("infra-app.service.j2", include_str!("../../templates/infra-app.service.j2")),
    ("infra-app.socket.j2", include_str!("../../templates/infra-app.socket.j2")),
    ("infra-app-process.service.j2", include_str!("../../templates/infra-app-process.service.j2")),
    ("app.env.j2", include_str!("../../templates/app.env.j2")),
    ("mariadb.cnf.j2", include_str!("../../templates/mariadb.cnf.j2")),
    ("database.sql.j2", include_str!("../../templates/database.sql.j2")),
    ("infra-backup.sh.j2", include_str!("../../templates/infra-backup.sh.j2")),
    ("infra-backup.service.j2", include_str!("../../templates/infra-backup.service.j2")),
    ("backup-sealing.key.j2", include_str!("../../templates/backup-sealing.key.j2")),
    ("infra-backup.timer.j2", include_str!("../../templates/infra-backup.timer.j2")),
    ("firewall.nft.j2", include_str!("../../templates/firewall.nft.j2")),
    ("infra-firewall.service.j2", include_str!("../../templates/infra-firewall.service.j2")),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template overrides in `{}`", path.display())]
    ReadOverrides {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("`{}` in the template overrides is not a template infra knows; expected one of {known}", path.display())]
    UnknownOverride { path: PathBuf, known: String },
    #[error("template `{name}` is invalid")]
    Invalid {
        name: String,
        #[source]
        error: minijinja::Error,
    },
}

/// How much work one override may do in one render: a loop nested three
/// deep over `range(100000)` runs out instead of running forever. The
/// built-in templates, which are infra's own, are not metered.
const OVERRIDE_FUEL: u64 = 5_000_000;

/// The templates of one run: the built-in ones in one environment, each
/// override alone in an environment of its own.
///
/// Whether a file is sensitive, and whether its output may be shared
/// between hosts, is decided from the variables its template reads. An
/// override in the built-ins' environment could `include`, `import` or
/// `extends` another template (the database's, with the password) and read
/// variables that analysis never sees, or print the whole context with
/// `debug()`. Alone, with `debug` removed, it can read only what it names.
pub struct Templates {
    built_in: Environment<'static>,
    overrides: Vec<(String, Environment<'static>)>,
}

impl Templates {
    /// The built-in templates, replaced by the overrides in `overrides`.
    pub fn load(overrides: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut built_in = configured()?;
        for (name, text) in BUILT_IN {
            built_in.add_template(name, text).map_err(|error| TemplateError::Invalid { name: name.into(), error })?;
        }
        let mut isolated = Vec::new();
        for (name, text) in overrides.map(read_overrides).transpose()?.unwrap_or_default() {
            let mut environment = configured()?;
            environment.set_fuel(Some(OVERRIDE_FUEL));
            environment.remove_global("debug");
            environment
                .add_template_owned(name.clone(), text)
                .map_err(|error| TemplateError::Invalid { name: name.clone(), error })?;
            isolated.push((name, environment));
        }
        Ok(Templates { built_in, overrides: isolated })
    }

    /// The template of that name: an override's if there is one.
    pub fn get(&self, name: &str) -> Result<minijinja::Template<'_, '_>, minijinja::Error> {
        let environment =
            self.overrides.iter().find(|(overridden, _)| overridden == name).map_or(&self.built_in, |(_, env)| env);
        environment.get_template(name)
    }
}

/// An environment with infra's settings: strict undefined (a missing
/// variable is an error, never an empty string), trimmed blocks, and the
/// quoting filters.
fn configured() -> Result<Environment<'static>, TemplateError> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(true).build();
    environment.set_syntax(syntax.map_err(|error| TemplateError::Invalid { name: "syntax".into(), error })?);
    environment.add_filter("sql_string", sql_string);
    environment.add_filter("systemd_quote", systemd_quote);
    environment.add_filter("systemd_word", systemd_word);
    environment.add_filter("py_string", py_string);
    environment.add_filter("sh_string", sh_string);
    environment.add_filter("backup_sealing_key", |password: &str| crate::backup::sealing_key(password));
    Ok(environment)
}

/// The override files: regular files (never links) named after a
/// built-in template, each bounded.
fn read_overrides(directory: &Path) -> Result<Vec<(String, String)>, TemplateError> {
    let read_error = |error| TemplateError::ReadOverrides { path: directory.to_path_buf(), error };
    let mut overrides = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        if !BUILT_IN.iter().any(|(known, _)| *known == name) {
            let known = BUILT_IN.iter().map(|(known, _)| format!("`{known}`")).collect::<Vec<_>>().join(", ");
            return Err(TemplateError::UnknownOverride { path, known });
        }
        let text = crate::source::read_bounded_no_link(&path, crate::source::limits::TEMPLATE)
            .and_then(crate::source::utf8)
            .map_err(|error| TemplateError::ReadOverrides { path: path.clone(), error })?;
        overrides.push((name, text));
    }
    Ok(overrides)
}

/// A single-quoted SQL string literal, safe for any password.
fn sql_string(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'").replace('\0', "\\0");
    format!("'{escaped}'")
}

/// A value for a systemd `EnvironmentFile=` line, double-quoted and escaped.
fn systemd_quote(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$");
    format!("\"{escaped}\"")
}

/// One word of a systemd `ExecStart=` line, for words of
/// `grammar::command_word` (no space, quote or backslash): systemd's own
/// expansions (`$NAME`, `%i`) doubled away, and a lone `;` (which would
/// start another command) escaped.
fn systemd_word(value: &str) -> String {
    if value == ";" {
        return "\\;".to_string();
    }
    value.replace('$', "$$").replace('%', "%%")
}

/// A single-quoted shell word: nothing inside it is expanded.
fn sh_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A Python string literal that reads back as exactly `value`: quotes,
/// backslashes and every non-printable character escaped, as `repr` would.
/// gunicorn.conf.py is executed, so no value may end its string.
fn py_string(value: &str) -> String {
    let mut literal = String::with_capacity(value.len() + 2);
    literal.push('"');
    for c in value.chars() {
        match c {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => literal.push(c),
            c => literal.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    literal.push('"');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_filters_escape_everything_that_could_break_out() {
        assert_eq!(sql_string(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(sh_string("a'b $c"), r"'a'\''b $c'");
        assert_eq!(systemd_quote(r#"a"b$c\"#), r#""a\"b\$c\\""#);
    }

    #[test]
    fn python_strings_read_back_exactly() {
        assert_eq!(py_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(py_string("x\ny"), "\"x\\U0000000ay\"");
        assert_eq!(py_string("é"), "\"\\U000000e9\"");
    }

    #[test]
    fn undefined_variables_are_errors() {
        let templates = Templates::load(None).expect("built-in templates compile");
        let template = templates.get("mariadb.cnf.j2").expect("exists");
        assert!(template.render(minijinja::context! {}).is_err());
    }
}

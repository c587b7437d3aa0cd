//! Secrets: referenced in the inventory, resolved only when a value is needed,
//! and impossible to print by accident.
//!
//! An inventory never holds a secret value, only a [`SecretRef`] (`{env: NAME}`
//! or `{file: path}`). Resolving one yields a [`Secret`], whose `Debug` and
//! `Display` print `(sensitive)`; the only way to the value is the explicit
//! [`Secret::expose`], which keeps every use greppable. A missing or empty
//! secret is an error, never an empty password.

use std::fmt;
use std::path::PathBuf;

use crate::source::Span;

/// Where a secret's value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretSource {
    /// An environment variable of the process running `infra`.
    Env(String),
    /// A file, relative to the inventory's directory; trailing newlines are dropped.
    File(PathBuf),
}

/// A reference to a secret, as written in the inventory.
#[derive(Clone, Debug)]
pub struct SecretRef {
    pub source: SecretSource,
    pub span: Span,
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "environment variable `{name}`"),
            SecretSource::File(path) => write!(f, "file `{}`", path.display()),
        }
    }
}

/// Why a secret could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {source_ref} is not set")]
    NotSet { source_ref: SecretSource },
    #[error("secret {source_ref} is empty")]
    Empty { source_ref: SecretSource },
    #[error("cannot read secret file `{}`", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

impl SecretError {
    /// The secret is simply not provided here (unset variable, no such
    /// file), as in CI: validation may go on with a placeholder. A file
    /// that exists but cannot be used is an error everywhere.
    pub fn is_absent(&self) -> bool {
        match self {
            SecretError::NotSet { .. } | SecretError::Empty { .. } => true,
            SecretError::Unreadable { error, .. } => error.kind() == std::io::ErrorKind::NotFound,
        }
    }
}

/// A secret value. Printing it shows `(sensitive)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the few places that must write it into a file
    /// bound for a host.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A stand-in for a secret that is not available, used when rendering for
    /// validation only: plain characters, and short enough for every use
    /// (keepalived takes at most 8).
    pub fn placeholder() -> Secret {
        Secret("unset000".to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl SecretRef {
    /// Reads the value from the environment or from a file beside the inventory.
    pub fn resolve(&self, files: &crate::source::LocalFiles) -> Result<Secret, SecretError> {
        let value = match &self.source {
            SecretSource::Env(name) => {
                std::env::var(name).map_err(|_| SecretError::NotSet { source_ref: self.source.clone() })?
            }
            SecretSource::File(path) => {
                let full = files.base_dir.join(path);
                let text = (files.resolve(path))
                    .and_then(|resolved| {
                        crate::source::read_bounded_text(&resolved, crate::source::limits::SECRET_FILE)
                    })
                    .map_err(|error| SecretError::Unreadable { path: full.clone(), error })?;
                text.trim_end_matches(['\n', '\r']).to_string()
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty { source_ref: self.source.clone() });
        }
        Ok(Secret(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_their_value() {
        let secret = Secret("hunter2".to_string());
        assert_eq!(format!("{secret} {secret:?}"), "(sensitive) (sensitive)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_missing_variable_is_an_error_not_an_empty_password() {
        let reference =
            SecretRef { source: SecretSource::Env("INFRA_TEST_SURELY_UNSET".into()), span: Span::default() };
        let error = reference
            .resolve(&crate::source::LocalFiles::confined(std::path::Path::new("."), &[]))
            .expect_err("unset variable");
        assert_eq!(error.to_string(), "secret environment variable `INFRA_TEST_SURELY_UNSET` is not set");
    }

    #[test]
    fn file_secrets_drop_the_trailing_newline() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("pw"), "s3cret\n").expect("write");
        let reference = SecretRef { source: SecretSource::File("pw".into()), span: Span::default() };
        assert_eq!(
            reference.resolve(&crate::source::LocalFiles::confined(dir.path(), &[])).expect("readable").expose(),
            "s3cret"
        );
    }
}

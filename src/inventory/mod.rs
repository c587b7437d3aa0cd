//! The inventory: one YAML file naming the hosts, their roles and the
//! settings of each role. This module owns reading it (`yaml`), decoding it
//! into typed values with spans while collecting every problem (`decode`,
//! `from_yaml`) and the resulting model (`model`). It never talks to hosts.

mod decode;
pub mod discovery;
mod from_yaml;
pub mod grammar;
mod model;
pub mod schema;
pub mod yaml;
mod yaml_hint;

use std::path::{Path, PathBuf};

pub use decode::{did_you_mean, quoted_list};
pub use from_yaml::file_start;
pub use model::*;

use crate::diagnostic::Diagnostic;
use crate::source::{LocalFiles, SourceFile};

/// An inventory file, read and decoded as far as it could be.
pub struct Loaded {
    pub source: SourceFile,
    /// `None` when the file is not valid YAML or not a mapping at all.
    pub inventory: Option<Inventory>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reading the file itself failed; everything after that is a [`Diagnostic`].
#[derive(Debug, thiserror::Error)]
#[error("cannot read inventory `{}`", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    #[source]
    pub error: std::io::Error,
}

/// Reads and decodes an inventory file; its local paths may lead into its
/// repository and the directories in `also_allowed` ([`LocalFiles`]).
pub fn load(path: &Path, also_allowed: &[PathBuf]) -> Result<Loaded, ReadError> {
    let text = crate::source::read_bounded_text(path, crate::source::limits::INVENTORY)
        .map_err(|error| ReadError { path: path.to_path_buf(), error })?;
    let base_dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let base_dir = if base_dir.as_os_str().is_empty() { PathBuf::from(".") } else { base_dir };
    Ok(parse(SourceFile::new(path, text), LocalFiles::confined(&base_dir, also_allowed)))
}

/// Decodes inventory text; `files` anchors and confines the paths in it.
pub fn parse(source: SourceFile, files: LocalFiles) -> Loaded {
    let root = match yaml::parse(&source) {
        Ok(root) => root,
        Err(diagnostics) => {
            return Loaded { source, inventory: None, diagnostics };
        }
    };
    let mut decoder = decode::Decoder::default();
    let inventory = from_yaml::inventory(&mut decoder, &root, files);
    Loaded { source, inventory, diagnostics: decoder.diagnostics }
}

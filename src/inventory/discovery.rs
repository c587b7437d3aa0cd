//! Which inventory file a command reads when `-i` does not say: the one
//! `INFRA_INVENTORY` names, else the nearest `infra.yml` in the working
//! directory or one of its parents, as cargo finds `Cargo.toml`, owned by
//! this user or root. Kept apart from loading so the rule is one function,
//! tested without a terminal.

use std::path::{Path, PathBuf};

/// The name `infra init` writes and discovery looks for.
pub const FILE_NAME: &str = "infra.yml";

/// The environment variable that names an inventory.
pub const ENVIRONMENT: &str = "INFRA_INVENTORY";

/// Where the inventory's path came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `-i FILE`.
    Given,
    /// `INFRA_INVENTORY`.
    Environment,
    /// An `infra.yml` found from the working directory up.
    Discovered,
}

/// An inventory path and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub path: PathBuf,
    pub origin: Origin,
}

impl Chosen {
    /// What a command says on stderr before it reads a file the operator
    /// did not name on the command line; nothing for `-i`.
    pub fn announcement(&self) -> Option<String> {
        let path = self.path.display();
        match self.origin {
            Origin::Given => None,
            Origin::Environment => Some(format!("inventory: {path} (from {ENVIRONMENT})")),
            Origin::Discovered => Some(format!("inventory: {path}")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "no inventory: `-i FILE` was not given, `{ENVIRONMENT}` is not set, and there is no `{FILE_NAME}` in `{}` or any directory above it\n\nhint: `infra init` writes a starter `{FILE_NAME}` here; or pass `-i FILE`, or `export {ENVIRONMENT}=FILE`",
    start.display()
)]
pub struct NotFound {
    pub start: PathBuf,
}

/// The inventory to read: `given`, else `environment`, else the nearest
/// [`FILE_NAME`] from `start` up. An empty environment value counts as unset.
pub fn choose(given: Option<&Path>, environment: Option<&Path>, start: &Path) -> Result<Chosen, NotFound> {
    if let Some(path) = given {
        return Ok(Chosen { path: path.to_path_buf(), origin: Origin::Given });
    }
    if let Some(path) = environment.filter(|path| !path.as_os_str().is_empty()) {
        return Ok(Chosen { path: path.to_path_buf(), origin: Origin::Environment });
    }
    let found = start.ancestors().map(|directory| directory.join(FILE_NAME)).find(|path| trusted(path));
    let path = found.ok_or_else(|| NotFound { start: start.to_path_buf() })?;
    Ok(Chosen { path: relative_to(&path, start), origin: Origin::Discovered })
}

/// A regular file owned by this user or root: on a shared machine, an
/// `infra.yml` another user left in `/tmp` or `/home` is never read
/// unless named with `-i`.
fn trusted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(metadata) = std::fs::metadata(path) else { return false };
    let owner = metadata.uid();
    metadata.is_file() && (owner == 0 || owner == rustix::process::getuid().as_raw())
}

/// `path` as the operator would type it from `start`: `infra.yml`,
/// `../infra.yml`, `../../infra.yml`.
fn relative_to(path: &Path, start: &Path) -> PathBuf {
    let Some(directory) = path.parent() else { return path.to_path_buf() };
    let Ok(below) = start.strip_prefix(directory) else { return path.to_path_buf() };
    let mut relative: PathBuf = below.components().map(|_| "..").collect();
    relative.push(FILE_NAME);
    relative
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_environment_then_the_nearest_file() {
        let root = tempfile::tempdir().expect("tempdir");
        let nested = root.path().join("a/b");
        std::fs::create_dir_all(&nested).expect("dirs");
        std::fs::write(root.path().join(FILE_NAME), "").expect("write");

        let given = choose(Some(Path::new("x.yml")), Some(Path::new("y.yml")), &nested).expect("chosen");
        assert_eq!((given.path, given.origin), (PathBuf::from("x.yml"), Origin::Given));
        let environment = choose(None, Some(Path::new("y.yml")), &nested).expect("chosen");
        assert_eq!((environment.path, environment.origin), (PathBuf::from("y.yml"), Origin::Environment));
        let found = choose(None, Some(Path::new("")), &nested).expect("chosen");
        assert_eq!((found.path.clone(), found.origin.clone()), (PathBuf::from("../../infra.yml"), Origin::Discovered));
        assert_eq!(found.announcement().as_deref(), Some("inventory: ../../infra.yml"));

        std::fs::write(nested.join(FILE_NAME), "").expect("write");
        assert_eq!(choose(None, None, &nested).expect("chosen").path, PathBuf::from("infra.yml"));
    }

    #[test]
    fn a_file_another_user_owns_is_not_discovered() {
        let root = tempfile::tempdir().expect("tempdir");
        let planted = root.path().join(FILE_NAME);
        std::fs::write(&planted, "").expect("write");
        if rustix::process::getuid().is_root() {
            std::os::unix::fs::chown(&planted, Some(65534), None).expect("chown to nobody");
            assert!(choose(None, None, root.path()).is_err(), "nobody's infra.yml is not read");
        }
        assert_eq!(choose(Some(&planted), None, root.path()).expect("named").origin, Origin::Given);
    }

    #[test]
    fn nothing_found_says_every_way_to_name_one() {
        let root = tempfile::tempdir().expect("tempdir");
        let error = choose(None, None, root.path()).expect_err("nothing there");
        let message = error.to_string();
        assert!(message.contains("`infra init` writes a starter `infra.yml` here"), "{message}");
        assert!(message.contains("INFRA_INVENTORY"), "{message}");
    }
}

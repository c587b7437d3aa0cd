//! Source text and byte spans.
//!
//! Every value read from an inventory keeps the byte range it came from, so
//! that any later step (decoding, stack rules, rendering) can point at the
//! exact line and column that caused a problem. Spans are byte offsets into a
//! single [`SourceFile`]; line and column are computed only when a diagnostic
//! is printed, which keeps the hot path (1,000-host inventories) cheap.

use std::fmt;
use std::path::{Path, PathBuf};

/// A half-open byte range `start..end` into a [`SourceFile`]'s text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end: end.max(start) }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// A value together with the span it was read from.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned { value: f(self.value), span: self.span }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    /// Two spanned values are equal when their values are: spans are where a
    /// value came from, not part of what it is.
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// A named source text, usually an inventory file.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// A 1-based line and column (counted in characters, like rustc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineColumn {
    pub line: usize,
    pub column: usize,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        SourceFile { path: path.into(), text: text.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line and column of a byte offset, clamped to the text.
    pub fn line_column(&self, offset: usize) -> LineColumn {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        let column = before[line_start..].chars().count() + 1;
        LineColumn { line, column }
    }

    /// The byte offset of a 1-based line and character column, for parser
    /// errors that report only a line and column.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (index, text_line) in self.text.split_inclusive('\n').enumerate() {
            if index + 1 == line {
                let within =
                    text_line.char_indices().nth(column.saturating_sub(1)).map_or(text_line.len(), |(byte, _)| byte);
                return offset + within;
            }
            offset += text_line.len();
        }
        self.text.len()
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_not_bytes() {
        let file = SourceFile::new("x.yml", "a: 1\né: 2\n");
        assert_eq!(file.line_column(0), LineColumn { line: 1, column: 1 });
        assert_eq!(file.line_column(9), LineColumn { line: 2, column: 4 });
        assert_eq!(file.offset_of(2, 4), 9);
    }

    #[test]
    fn offsets_past_the_end_are_clamped() {
        let file = SourceFile::new("x.yml", "a: 1");
        assert_eq!(file.line_column(100), LineColumn { line: 1, column: 5 });
        assert_eq!(file.offset_of(9, 9), 4);
    }
}

/// Whether a file or directory name is left out of a source tree deployed
/// verbatim (`app.source`, `web.static_source`), from a directory or a git
/// commit alike: hidden names (`.git`, `.env`) and Python's `__pycache__`.
pub fn left_out_of_sources(name: &str) -> bool {
    name.starts_with('.') || name == "__pycache__"
}

/// Where the local paths of an inventory (`source`, `static_source`,
/// `templates`, `certificate`, `{file: …}`) may lead.
///
/// An inventory may come from a pull request that CI validates, so a path
/// in it must not reach the runner's other files (`~/.ssh` as a static
/// source would publish a private key). A path is resolved against the
/// inventory's directory, links included, and must stay inside the
/// repository the inventory is in (the nearest directory above it with a
/// `.git`, else the inventory's own directory) or a directory the operator
/// allowed: infra's lab state, or those in `INFRA_ALLOW_PATHS`.
#[derive(Clone, Debug)]
pub struct LocalFiles {
    /// The inventory's directory: relative paths start here.
    pub base_dir: PathBuf,
    /// Canonical directories a path may lead into.
    allowed: Vec<PathBuf>,
}

/// A local path that leads outside every allowed directory.
#[derive(Debug, thiserror::Error)]
#[error("`{}` leads outside `{}`, the repository the inventory is in: infra reads no file outside it", path.display(), root.display())]
pub struct OutsideError {
    pub path: PathBuf,
    pub root: PathBuf,
}

impl LocalFiles {
    /// Paths of an inventory in `base_dir`, confined to its repository and
    /// to `also_allowed` (directories that need not exist).
    pub fn confined(base_dir: &Path, also_allowed: &[PathBuf]) -> LocalFiles {
        let canonical = std::fs::canonicalize(base_dir).unwrap_or_else(|_| absolute(base_dir));
        let repository = canonical
            .ancestors()
            .find(|directory| std::fs::symlink_metadata(directory.join(".git")).is_ok())
            .unwrap_or(&canonical)
            .to_path_buf();
        let mut allowed = vec![repository];
        allowed.extend(also_allowed.iter().map(|path| std::fs::canonicalize(path).unwrap_or_else(|_| absolute(path))));
        LocalFiles { base_dir: base_dir.to_path_buf(), allowed }
    }

    /// The file `path` names, with every link resolved, if it is inside an
    /// allowed directory. A path that does not exist is judged by its
    /// text, so reading it then fails as not found.
    pub fn resolve(&self, path: &Path) -> std::io::Result<PathBuf> {
        let joined = self.base_dir.join(path);
        let resolved = std::fs::canonicalize(&joined).unwrap_or_else(|_| absolute(&joined));
        if self.allowed.iter().any(|root| resolved.starts_with(root)) {
            return Ok(resolved);
        }
        let root = self.allowed.first().cloned().unwrap_or_default();
        Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, OutsideError { path: path.to_path_buf(), root }))
    }
}

/// `path` made absolute and normalised by its text alone (`..` removed).
fn absolute(path: &Path) -> PathBuf {
    let joined = std::env::current_dir().map(|directory| directory.join(path)).unwrap_or_else(|_| path.to_path_buf());
    let mut normal = PathBuf::from("/");
    for component in joined.components() {
        match component {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::Normal(part) => normal.push(part),
            _ => {}
        }
    }
    normal
}

/// Limits on what infra reads from the machine it runs on, so a path that
/// names `/dev/zero` or a runaway file fails with a message instead of
/// eating memory. Documented in docs/inventory.md.
pub mod limits {
    /// The inventory file itself (a 20,000-host inventory is about 2 MiB).
    pub const INVENTORY: u64 = 64 << 20;
    /// A `{file:}` secret (a TLS key is a few KiB).
    pub const SECRET_FILE: u64 = 64 << 10;
    /// A template override or a TLS certificate chain.
    pub const TEMPLATE: u64 = 1 << 20;
    /// One file of `app.source` or `web.static_source`.
    pub const SOURCE_FILE: u64 = 64 << 20;
    /// All files of one source tree together.
    pub const SOURCE_TREE: u64 = 512 << 20;
}

/// Reads a regular file of at most `limit` bytes. Anything else (a device,
/// a FIFO, a bigger file) is an `InvalidData` error that says why. The file
/// is opened without blocking, so a FIFO is refused at once rather than
/// waiting forever for a writer.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    read_opened(open_nonblocking(path, false)?, limit)
}

/// [`read_bounded`] of a file that must not be a symbolic link itself.
pub fn read_bounded_no_link(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    read_opened(open_nonblocking(path, true)?, limit)
}

fn open_nonblocking(path: &Path, no_link: bool) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = rustix::fs::OFlags::NONBLOCK;
    if no_link {
        flags |= rustix::fs::OFlags::NOFOLLOW;
    }
    let flags = i32::try_from(flags.bits()).map_err(std::io::Error::other)?;
    let opened = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path);
    match opened {
        Err(error) if no_link && error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => Err(
            std::io::Error::new(std::io::ErrorKind::InvalidData, "a symbolic link, which infra does not follow here"),
        ),
        other => other,
    }
}

fn read_opened(file: std::fs::File, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a regular file"));
    }
    let mut content = Vec::with_capacity(usize::try_from(metadata.len().min(limit)).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut content)?;
    if content.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the limit of {} KiB", limit >> 10),
        ));
    }
    Ok(content)
}

/// [`read_bounded`] for text.
pub fn read_bounded_text(path: &Path, limit: u64) -> std::io::Result<String> {
    utf8(read_bounded(path, limit)?)
}

/// Bytes read as text, or an `InvalidData` error.
pub fn utf8(bytes: Vec<u8>) -> std::io::Result<String> {
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod bounded_tests {
    use super::*;

    #[test]
    fn reads_stop_at_their_limit_and_refuse_devices() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("secret");
        std::fs::write(&path, vec![b'x'; (limits::SECRET_FILE + 1) as usize]).expect("write");
        let error = read_bounded(&path, limits::SECRET_FILE).expect_err("over the limit");
        assert_eq!(error.to_string(), "larger than the limit of 64 KiB");
        std::fs::write(&path, b"fits").expect("write");
        assert_eq!(read_bounded(&path, limits::SECRET_FILE).expect("within the limit"), b"fits");
        let device = read_bounded(Path::new("/dev/zero"), limits::SECRET_FILE).expect_err("a device");
        assert_eq!(device.to_string(), "not a regular file");
    }

    /// Issue 22: a FIFO nobody writes to is refused at once, not waited on.
    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let directory = tempfile::tempdir().expect("temp dir");
        let fifo = directory.path().join("fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::RWXU, 0)
            .expect("mkfifo");
        let started = std::time::Instant::now();
        assert_eq!(read_bounded(&fifo, limits::SECRET_FILE).expect_err("a FIFO").to_string(), "not a regular file");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn local_paths_stay_inside_the_repository() {
        let repository = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(repository.path().join(".git")).expect("mkdir");
        std::fs::create_dir_all(repository.path().join("inventories")).expect("mkdir");
        std::fs::create_dir_all(repository.path().join("examples/app")).expect("mkdir");
        let outside = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::symlink(outside.path(), repository.path().join("examples/out")).expect("symlink");
        let files = LocalFiles::confined(&repository.path().join("inventories"), &[]);
        assert!(files.resolve(Path::new("../examples/app")).is_ok(), "inside the repository, above the inventory");
        assert!(files.resolve(Path::new("../examples/missing")).is_ok(), "judged by its text");
        for escape in ["../..", "/etc/passwd", "../examples/out", "../examples/app/../../.."] {
            let error = files.resolve(Path::new(escape)).expect_err(escape);
            assert!(error.to_string().contains("leads outside"), "{escape}: {error}");
        }
        let allowed = LocalFiles::confined(&repository.path().join("inventories"), &[outside.path().to_path_buf()]);
        assert!(allowed.resolve(Path::new("../examples/out")).is_ok(), "an allowed directory");
    }
}

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
/// a FIFO, a bigger file) is an `InvalidData` error that says why.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
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
    String::from_utf8(read_bounded(path, limit)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
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
}

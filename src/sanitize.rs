//! Text from outside infra made safe to print: what a host answers (a
//! file's current content in a diff, a release record, a backup manifest,
//! a script's stderr) and what a file on this machine holds. A compromised
//! host could otherwise send escape sequences that rewrite the operator's
//! terminal: hide a line of a plan, fake a prompt, set the window title.
//! Every such string passes through here before it reaches a terminal;
//! the text infra writes itself (colours) never does.

use std::borrow::Cow;

/// One line: every control character (newlines too) as a visible escape.
pub fn printable(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] }).collect()
}

/// Many lines: newlines and tabs kept, every other control character (the
/// escape that starts a terminal sequence, carriage returns, backspaces)
/// as a visible escape. Unchanged text is not copied.
pub fn multiline(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().flat_map(|c| if unsafe_char(c) { c.escape_default().collect() } else { vec![c] }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_never_reach_the_terminal() {
        assert_eq!(printable("a\u{1b}[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
        assert_eq!(multiline("keep\n\tindent\r\u{1b}]0;title\u{7}"), "keep\n\tindent\\r\\u{1b}]0;title\\u{7}");
        assert!(matches!(multiline("plain\n"), Cow::Borrowed(_)));
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m", "the one-byte CSI of C1 too");
    }
}

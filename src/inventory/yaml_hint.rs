//! What a YAML mistake means in an inventory, said in the words of the
//! file rather than the parser's: a tab in the indentation (found before
//! parsing, with the caret on the tab itself), a key indented differently
//! from the one above it, a value with an unquoted `: ` or a leading `@`,
//! and a key written twice (both places). The parser's message stays the
//! title; these add the label and the help a user acts on.

use crate::diagnostic::Diagnostic;
use crate::source::{SourceFile, Span};

use super::yaml::{Node, Value};

/// A diagnostic for every line indented with a tab: YAML forbids them, and
/// the parser reports one where its scanner noticed, often a line above.
pub fn tabs(source: &SourceFile) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut offset = 0;
    for line in source.text.split_inclusive('\n') {
        let indentation = line.len() - line.trim_start_matches([' ', '\t']).len();
        let content = line[indentation..].trim();
        if let Some(tab) = line[..indentation].find('\t').filter(|_| !content.is_empty() && !content.starts_with('#')) {
            let at = offset + tab;
            found.push(
                Diagnostic::error("yaml-tab", "a tab indents this line; YAML indents with spaces only")
                    .at(Span::new(at, at + 1), "tab")
                    .help("replace the tab with spaces, as many as the lines around it use"),
            );
        }
        offset += line.len();
    }
    found
}

/// The help for a syntax error at byte `at`, when its cause is one of the
/// common ones.
pub fn syntax_help(message: &str, at: usize, source: &SourceFile) -> Option<String> {
    let line = line_at(source, at);
    if let Some(unclosed) = unclosed_above(source, &line) {
        return Some(unclosed);
    }
    if message.contains("mapping values are not allowed") {
        if let Some((key, value)) = line.text.trim_start().split_once(": ").filter(|(_, value)| value.contains(": ")) {
            return Some(format!(
                "a value with `: ` in it must be quoted: `{key}: \"{}\"`",
                value.trim_end().replace('"', "\\\"")
            ));
        }
        return indentation_help(source, &line);
    }
    if message.contains("did not find expected") || message.contains("block sequence entries are not allowed") {
        return indentation_help(source, &line);
    }
    if message.contains("unexpected character") || message.contains("cannot start any token") {
        return Some(
            "a value starting with `@`, `` ` ``, `%`, `!`, `&` or `*` must be quoted: `\"@x\"` (YAML reserves them)"
                .to_string(),
        );
    }
    None
}

/// A `[` or `{` left open on a line above: the parser only notices lines later.
fn unclosed_above(source: &SourceFile, line: &Line<'_>) -> Option<String> {
    let (number, text) = source
        .text
        .lines()
        .enumerate()
        .take(line.number)
        .filter(|(_, text)| !text.trim_start().starts_with('#'))
        .find(|(_, text)| opens_more_than_it_closes(text))?;
    let (opening, kind, closing) =
        if text.matches('[').count() > text.matches(']').count() { ('[', "list", ']') } else { ('{', "mapping", '}') };
    Some(format!("line {} (`{}`) opens a `{opening}` {kind} it never closes: add `{closing}`", number + 1, text.trim()))
}

/// Whether a line opens more `[`/`{` than it closes, outside quotes.
fn opens_more_than_it_closes(text: &str) -> bool {
    let (mut depth, mut quote) = (0i32, None);
    for c in text.chars() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

/// A line of the source, by its 1-based number.
struct Line<'a> {
    number: usize,
    text: &'a str,
}

fn line_at(source: &SourceFile, at: usize) -> Line<'_> {
    let number = source.line_column(at).line;
    Line { number, text: source.text.lines().nth(number - 1).unwrap_or_default() }
}

fn indentation_of(text: &str) -> usize {
    text.len() - text.trim_start_matches(' ').len()
}

/// Compares the line with the nearest line above it that holds a key, or
/// a list item with the item above it.
fn indentation_help(source: &SourceFile, line: &Line<'_>) -> Option<String> {
    let lines_above = source
        .text
        .lines()
        .take(line.number.saturating_sub(1))
        .filter(|text| !text.trim().is_empty() && !text.trim_start().starts_with('#'));
    let spaces = |count: usize| if count == 1 { "1 space".to_string() } else { format!("{count} spaces") };
    if line.text.trim_start().starts_with("- ") {
        let item = lines_above.filter(|text| text.trim_start().starts_with("- ")).last()?;
        return Some(format!(
            "this list item is indented {}, the item above it (line `{}`) {}: items of one list start in the same column",
            spaces(indentation_of(line.text)),
            item.trim(),
            spaces(indentation_of(item))
        ));
    }
    let above = lines_above.last()?;
    let (this, that) = (key_of(line.text)?, key_of(above)?);
    Some(format!(
        "`{this}` is indented {}, `{that}` on the line above {}: keys of one mapping start in the same column, so indent `{this}` as `{that}` to put it beside it, or less to end that mapping (list items `- ` line up too)",
        spaces(key_column(line.text)),
        spaces(key_column(above))
    ))
}

/// The column a line's key starts at, past a `- ` list marker.
fn key_column(text: &str) -> usize {
    let indentation = indentation_of(text);
    let rest = &text[indentation..];
    match rest.strip_prefix("- ") {
        Some(after) => indentation + 2 + indentation_of(after),
        None => indentation,
    }
}

/// The key a line starts (after any `- `), if it is one.
fn key_of(text: &str) -> Option<&str> {
    let rest = text.trim_start().trim_start_matches("- ").trim_start();
    let (key, _) = rest.split_once(':')?;
    (!key.is_empty() && !key.contains(' ')).then_some(key)
}

/// Every key written twice in one mapping, pointing at both.
pub fn duplicate_keys(root: &Node) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut pending = vec![root];
    while let Some(node) = pending.pop() {
        match &node.value {
            Value::Mapping(entries) => {
                for (index, (key, value)) in entries.iter().enumerate() {
                    pending.push(value);
                    let Value::String(name) = &key.value else { continue };
                    let first = entries[..index]
                        .iter()
                        .find(|(earlier, _)| matches!(&earlier.value, Value::String(text) if text == name));
                    if let Some((first, _)) = first {
                        found.push(
                            Diagnostic::error("duplicate-key", format!("the key `{name}` is written twice"))
                                .at(key.span, "written again here")
                                .also(first.span, "first written here")
                                .help("keep one of them: YAML would not say which one counts"),
                        );
                    }
                }
            }
            Value::Sequence(items) => pending.extend(items),
            _ => {}
        }
    }
    found.sort_by_key(|diagnostic| diagnostic.labels.first().map(|label| label.span.start));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn help(text: &str, needle: &str) -> Option<String> {
        let source = SourceFile::new("t.yml", text);
        let at = text.find(needle).expect("needle");
        let message = match crate::inventory::yaml::parse(&source) {
            Err(diagnostics) => diagnostics[0].message.clone(),
            Ok(_) => panic!("invalid YAML expected"),
        };
        syntax_help(&message, at, &source)
    }

    #[test]
    fn a_tab_is_found_where_it_is() {
        let text = "hosts:\n  - name: a\n\taddress: 10.0.0.1\n";
        let diagnostics = tabs(&SourceFile::new("t.yml", text));
        assert_eq!(diagnostics.len(), 1);
        assert_eq!(diagnostics[0].labels[0].span.start, text.find('\t').expect("a tab"));
        assert!(tabs(&SourceFile::new("t.yml", "a: 1\t# a tab after the value is fine\n")).is_empty());
    }

    #[test]
    fn a_misindented_key_is_compared_with_the_one_above() {
        let hint = help("hosts:\n  - name: a\n    address: 10.0.0.1\n   roles: [web]\n", "roles").expect("a hint");
        assert!(hint.starts_with("`roles` is indented 3 spaces, `address` on the line above 4 spaces"), "{hint}");
        let hint = help("hosts:\n  - name: a\n    address: 10.0.0.1\n      roles: [web]\n", "roles").expect("hint");
        assert!(hint.starts_with("`roles` is indented 6 spaces, `address` on the line above 4 spaces"), "{hint}");
    }

    #[test]
    fn an_unclosed_list_is_named_by_its_line() {
        let hint = help("hosts:\n  - name: a\n    roles: [web\n  - name: b\n", "name: b").expect("a hint");
        assert_eq!(hint, "line 3 (`roles: [web`) opens a `[` list it never closes: add `]`");
        assert!(!opens_more_than_it_closes("a: \"[x\" # [ in a comment"));
    }

    #[test]
    fn an_unquoted_colon_is_told_to_be_quoted() {
        let hint = help("web:\n  server_name: a: b\n", "a: b").expect("a hint");
        assert_eq!(hint, "a value with `: ` in it must be quoted: `server_name: \"a: b\"`");
    }

    #[test]
    fn duplicate_keys_point_at_both() {
        let text = "hosts:\n  - name: a\n    address: 10.0.0.1\n    name: b\n";
        let diagnostics = match crate::inventory::yaml::parse(&SourceFile::new("t.yml", text)) {
            Err(diagnostics) => diagnostics,
            Ok(_) => panic!("duplicate expected"),
        };
        assert_eq!(diagnostics.len(), 1);
        let labels: Vec<usize> = diagnostics[0].labels.iter().map(|label| label.span.start).collect();
        assert_eq!(labels, [text.rfind("name").expect("second"), text.find("name").expect("first")]);
    }
}

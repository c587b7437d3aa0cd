//! The YAML layer: text to a tree of nodes that each know their byte span.
//!
//! serde-saphyr parses (it is maintained, panic-free, budgets alias bombs and
//! reports locations). We deliberately do not derive the inventory structs
//! straight from serde: serde stops at the first unknown key or wrong type,
//! and users should see every problem in one run. Instead the document
//! becomes a generic [`Node`] tree here, and `decode` walks it collecting
//! diagnostics.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, SnippetMode};

use crate::diagnostic::Diagnostic;
use crate::source::{SourceFile, Span};

/// A YAML value with the span it was written at.
#[derive(Clone, Debug)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Integer(i128),
    Float(f64),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

impl Value {
    /// How a user would name this kind of value in a "expected X, found Y"
    /// message.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Sequence(_) => "a list",
            Value::Mapping(_) => "a mapping",
        }
    }
}

/// Parses YAML text into a [`Node`] tree, or the diagnostics that stop
/// it: every tab in an indentation, the syntax error, a tag, or every key
/// written twice. Duplicates pass through the parser so both places can be shown.
pub fn parse(source: &SourceFile) -> Result<Node, Vec<Diagnostic>> {
    let tabs = super::yaml_hint::tabs(source);
    if !tabs.is_empty() {
        return Err(tabs);
    }
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    };
    let root = match serde_saphyr::from_str_with_options::<serde_saphyr::Spanned<RawValue>>(&source.text, options) {
        Ok(root) => root,
        Err(error) => return Err(vec![syntax_diagnostic(&error, source)]),
    };
    if let Some(diagnostic) = first_tag(source) {
        return Err(vec![diagnostic]);
    }
    let root = into_node(root, source);
    let duplicates = super::yaml_hint::duplicate_keys(&root);
    if duplicates.is_empty() { Ok(root) } else { Err(duplicates) }
}

/// The first explicit tag in the document, as a diagnostic. serde decodes
/// `!!binary` into bytes and ignores unknown tags, so a value could mean
/// something other than it reads as; the inventory format has no tags.
fn first_tag(source: &SourceFile) -> Option<Diagnostic> {
    for event in granit_parser::Parser::new_from_str(&source.text) {
        let Ok((event, span)) = event else { return None };
        let tag = match event {
            granit_parser::Event::Scalar(_, _, _, tag)
            | granit_parser::Event::SequenceStart(_, _, tag)
            | granit_parser::Event::MappingStart(_, _, tag) => tag,
            _ => None,
        };
        if tag.is_some() {
            let marker = span.tag_start.unwrap_or(span.start);
            let start = marker.byte_offset().unwrap_or_else(|| source.offset_of(marker.line(), marker.col() + 1));
            let end = source.text[start..].find(char::is_whitespace).map_or(source.text.len(), |len| start + len);
            return Some(
                Diagnostic::error("yaml-tag", "YAML tags are not part of the inventory format")
                    .at(Span::new(start, end), "explicit tag")
                    .help("remove the tag; write the value as a plain string, number, list or mapping"),
            );
        }
    }
    None
}

fn syntax_diagnostic(error: &serde_saphyr::Error, source: &SourceFile) -> Diagnostic {
    let options = serde_saphyr::render_options! { snippets: SnippetMode::Off };
    let rendered = error.without_snippet().render_with_options(options);
    let message = strip_location_prefix(rendered.trim());
    let diagnostic = Diagnostic::error("yaml-syntax", format!("invalid YAML: {message}"));
    match error.location() {
        Some(location) if location != Location::UNKNOWN => {
            let span = span_of(&location, source);
            let diagnostic = diagnostic.at(span, "here");
            match super::yaml_hint::syntax_help(&message, span.start, source) {
                Some(help) => diagnostic.help(help),
                None => diagnostic,
            }
        }
        _ => diagnostic,
    }
}

/// serde-saphyr's plain rendering repeats the location that our own
/// `--> file:line:column` already shows; keep only the message.
fn strip_location_prefix(message: &str) -> String {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = match message.strip_prefix("line ") {
        Some(rest) => rest.split_once(": ").map_or(message, |(_, after)| after),
        None => message,
    };
    let message = message.split(" at line ").next().unwrap_or(message);
    // Advice addressed to programs using serde-saphyr, not to our users.
    let message = message.split(", set DuplicateKeyPolicy").next().unwrap_or(message);
    message.to_string()
}

fn span_of(location: &Location, source: &SourceFile) -> Span {
    let span = location.span();
    match (span.byte_offset(), span.byte_len()) {
        (Some(start), Some(len)) => {
            let start = usize::try_from(start).unwrap_or(usize::MAX).min(source.text.len());
            let len = usize::try_from(len).unwrap_or(0);
            Span::new(start, start.saturating_add(len).min(source.text.len()))
        }
        _ => {
            let line = usize::try_from(location.line()).unwrap_or(usize::MAX);
            let column = usize::try_from(location.column()).unwrap_or(usize::MAX);
            let start = source.offset_of(line, column);
            Span::new(start, start)
        }
    }
}

/// Containers are reported at their first character; widen them to their
/// last child so a label underlines the whole `{env: NAME}`.
fn into_node(raw: serde_saphyr::Spanned<RawValue>, source: &SourceFile) -> Node {
    let mut node = into_node_shallow(raw, source);
    let children_end = match &node.value {
        Value::Sequence(items) => items.iter().map(|item| item.span.end).max(),
        Value::Mapping(entries) => entries.iter().map(|(_, value)| value.span.end).max(),
        _ => None,
    };
    if let Some(end) = children_end {
        let closing = source.text.get(end..).and_then(|rest| {
            rest.find(|c: char| !c.is_whitespace())
                .filter(|&i| matches!(rest.as_bytes()[i], b'}' | b']'))
                .map(|i| i + 1)
        });
        let starts_flow = matches!(source.text.as_bytes().get(node.span.start), Some(b'{' | b'['));
        node.span.end = node.span.end.max(end + if starts_flow { closing.unwrap_or(0) } else { 0 });
    }
    node
}

fn into_node_shallow(raw: serde_saphyr::Spanned<RawValue>, source: &SourceFile) -> Node {
    let span = span_of(&raw.referenced, source);
    let value = match raw.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(value) => Value::Bool(value),
        RawValue::Integer(value) => Value::Integer(value),
        RawValue::Float(value) => Value::Float(value),
        RawValue::String(value) => Value::String(value),
        RawValue::Sequence(items) => Value::Sequence(items.into_iter().map(|item| into_node(item, source)).collect()),
        RawValue::Mapping(entries) => Value::Mapping(
            entries.into_iter().map(|(key, value)| (into_node(key, source), into_node(value, source))).collect(),
        ),
    };
    Node { span, value }
}

/// The serde-facing twin of [`Value`]: children still carry serde-saphyr's
/// locations, converted to byte spans by [`into_node`].
enum RawValue {
    Null,
    Bool(bool),
    Integer(i128),
    Float(f64),
    String(String),
    Sequence(Vec<serde_saphyr::Spanned<RawValue>>),
    Mapping(Vec<(serde_saphyr::Spanned<RawValue>, serde_saphyr::Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawValueVisitor)
    }
}

struct RawValueVisitor;

impl<'de> Visitor<'de> for RawValueVisitor {
    type Value = RawValue;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }

    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(deserializer)
    }

    fn visit_bool<E>(self, value: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<RawValue, E> {
        Ok(RawValue::Integer(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<RawValue, E> {
        Ok(RawValue::Integer(value.into()))
    }

    fn visit_i128<E>(self, value: i128) -> Result<RawValue, E> {
        Ok(RawValue::Integer(value))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<RawValue, E> {
        i128::try_from(value).map(RawValue::Integer).map_err(|_| E::custom("integer is too large"))
    }

    fn visit_f64<E>(self, value: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<RawValue, E> {
        Ok(RawValue::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<RawValue, E> {
        Ok(RawValue::String(value))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawValue, E> {
        Err(E::custom("binary values are not supported in an inventory"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = sequence.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut mapping: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = mapping.next_entry()? {
            entries.push(entry);
        }
        Ok(RawValue::Mapping(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Node, Diagnostic> {
        parse(&SourceFile::new("t.yml", text)).map_err(|mut diagnostics| diagnostics.remove(0))
    }

    #[test]
    fn keys_and_values_carry_byte_spans() {
        let node = parse_text("a: 1\nbé: \"x\"\n").expect("valid YAML");
        let Value::Mapping(entries) = node.value else { panic!("mapping expected") };
        assert_eq!(entries[1].0.span, Span::new(5, 8));
        assert_eq!(entries[1].1.span, Span::new(10, 13));
    }

    #[test]
    fn syntax_errors_point_at_the_error() {
        let diagnostic = parse_text("a: [1, 2\nb: 3").expect_err("invalid YAML");
        assert_eq!(diagnostic.code, "yaml-syntax");
        assert!(!diagnostic.message.contains("line 2"), "{}", diagnostic.message);
        assert_eq!(diagnostic.labels[0].span.start, 10);
    }

    #[test]
    fn tags_are_refused_where_they_are_written() {
        for (text, tag) in [("a: !!binary aGVsbG8=\n", "!!binary"), ("a:\n  b: !custom x\n", "!custom")] {
            let diagnostic = parse_text(text).expect_err("tagged value");
            assert_eq!(diagnostic.code, "yaml-tag");
            let span = diagnostic.labels[0].span;
            assert_eq!(&text[span.start..span.end], tag);
        }
        assert!(parse_text("a: 'not ! a tag'\n").is_ok());
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let diagnostic = parse_text("a: 1\na: 2\n").expect_err("duplicate key");
        assert_eq!(diagnostic.code, "duplicate-key");
    }
}

//! Typed reads from a [`Node`] tree that report problems instead of stopping.
//!
//! Each read returns `Option<T>`: `None` means "a diagnostic was recorded",
//! so decoding goes on and one run lists every problem. A [`Fields`] reader
//! remembers the keys the decoder asked for, which is how unknown keys are
//! found and "did you mean" suggestions made without a second list of keys.

use std::net::IpAddr;
use std::path::PathBuf;

use super::grammar::{MAX_STRING_BYTES, canonical_ip, printable};
use super::yaml::{Node, Value};
use crate::diagnostic::Diagnostic;
use crate::secret::{SecretRef, SecretSource};
use crate::source::{Span, Spanned};

/// Collects diagnostics while typed values are read from nodes.
#[derive(Default)]
pub struct Decoder {
    pub diagnostics: Vec<Diagnostic>,
}

impl Decoder {
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        self.report(
            Diagnostic::error("wrong-type", format!("expected {expected} for {what}, found {}", node.value.kind()))
                .at(node.span, format!("expected {expected}")),
        );
    }

    /// Opens a mapping for keyed reads; `what` names it in messages.
    pub fn fields<'n>(&mut self, node: &'n Node, what: &str) -> Option<Fields<'n>> {
        match &node.value {
            Value::Mapping(entries) => Some(Fields {
                span: node.span,
                entries,
                asked: Vec::new(),
                reported: Vec::new(),
                what: what.to_string(),
            }),
            _ => {
                self.wrong_type(node, what, "a mapping");
                None
            }
        }
    }

    pub fn sequence<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Sequence(items) => Some(items),
            _ => {
                self.wrong_type(node, what, "a list");
                None
            }
        }
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        match &node.value {
            Value::String(text) if text.trim().is_empty() => {
                self.report(Diagnostic::error("empty-value", format!("{what} is empty")).at(node.span, "empty"));
                None
            }
            Value::String(text) if text.len() > MAX_STRING_BYTES => {
                self.report(
                    Diagnostic::error("value-too-long", format!("{what} is {} bytes long", text.len()))
                        .at(node.span, format!("at most {MAX_STRING_BYTES} bytes")),
                );
                None
            }
            Value::String(text) if text.chars().any(char::is_control) => {
                self.report(
                    Diagnostic::error(
                        "control-character",
                        format!("{what} `{}` contains a control character", printable(text)),
                    )
                    .at(node.span, "control character in here")
                    .help("tabs, newlines and other control characters are never valid in an inventory value"),
                );
                None
            }
            Value::String(text) => Some(Spanned::new(text.clone(), node.span)),
            _ => {
                self.wrong_type(node, what, "a string");
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, what: &str) -> Option<Spanned<bool>> {
        match node.value {
            Value::Bool(value) => Some(Spanned::new(value, node.span)),
            _ => {
                self.wrong_type(node, what, "`true` or `false`");
                None
            }
        }
    }

    /// A network with a prefix length; a bare address is a network of one.
    pub fn network(&mut self, node: &Node, what: &str) -> Option<Spanned<ipnet::IpNet>> {
        self.parsed(node, what, "a network like `192.0.2.0/24` or an address", "invalid-cidr", |text| {
            text.parse::<ipnet::IpNet>()
                .map(|network| network.trunc())
                .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
                .ok()
        })
    }

    /// An integer in `min..=max`.
    pub fn integer<T: TryFrom<i128> + Copy>(
        &mut self,
        node: &Node,
        what: &str,
        min: i128,
        max: i128,
    ) -> Option<Spanned<T>> {
        let Value::Integer(value) = node.value else {
            self.wrong_type(node, what, "an integer");
            return None;
        };
        match T::try_from(value) {
            Ok(typed) if (min..=max).contains(&value) => Some(Spanned::new(typed, node.span)),
            _ => {
                self.report(
                    Diagnostic::error("out-of-range", format!("{what} must be between {min} and {max}, found {value}"))
                        .at(node.span, "out of range"),
                );
                None
            }
        }
    }

    pub fn port(&mut self, node: &Node, what: &str) -> Option<Spanned<u16>> {
        self.integer(node, what, 1, 65535)
    }

    /// Any IP address; an IPv4-mapped IPv6 address is read as the IPv4 one.
    pub fn ip(&mut self, node: &Node, what: &str) -> Option<Spanned<IpAddr>> {
        self.parsed(node, what, "an IP address", "invalid-ip", |text| text.parse::<IpAddr>().ok().map(canonical_ip))
    }

    /// An address that reaches HAProxy, keepalived, Nginx or MariaDB
    /// configs, which infra renders for IPv4 only: an IPv6 one is refused
    /// here rather than rendered into IPv4-only `listen` and `bind` lines.
    pub fn ipv4(&mut self, node: &Node, what: &str) -> Option<Spanned<IpAddr>> {
        let address = self.ip(node, what)?;
        let ip = address.value;
        self.ipv4_only(address, ip, what)
    }

    /// `value` when `address` (its IP) is IPv4; an IPv6 one is reported.
    pub fn ipv4_only<T>(&mut self, value: Spanned<T>, address: IpAddr, what: &str) -> Option<Spanned<T>> {
        if address.is_ipv6() {
            self.report(ipv6_unsupported(what, value.span));
            return None;
        }
        Some(value)
    }

    /// A string that must match one of the rules in [`super::grammar`].
    pub fn grammar(
        &mut self,
        node: &Node,
        what: &str,
        code: &'static str,
        rule: fn(&str) -> Result<String, &'static str>,
    ) -> Option<Spanned<String>> {
        let text = self.string(node, what)?;
        match rule(&text.value) {
            Ok(value) => Some(Spanned::new(value, text.span)),
            Err(expected) => {
                self.report(
                    Diagnostic::error(code, format!("{what} `{}` is not {expected}", printable(&text.value)))
                        .at(text.span, format!("not {}", expected.split(':').next().unwrap_or(expected))),
                );
                None
            }
        }
    }

    pub fn path(&mut self, node: &Node, what: &str) -> Option<Spanned<PathBuf>> {
        self.string(node, what).map(|text| text.map(PathBuf::from))
    }

    /// A string parsed by `parse`; `None` from `parse` is reported as "not `expected`".
    pub fn parsed<T>(
        &mut self,
        node: &Node,
        what: &str,
        expected: &str,
        code: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Option<Spanned<T>> {
        let text = match &node.value {
            Value::String(_) => self.string(node, what)?.value,
            Value::Integer(_) | Value::Float(_) => {
                self.wrong_type(node, what, expected);
                return None;
            }
            _ => return self.string(node, what).and(None),
        };
        match parse(&text) {
            Some(value) => Some(Spanned::new(value, node.span)),
            None => {
                self.report(
                    Diagnostic::error(code, format!("{what} `{}` is not {expected}", printable(&text)))
                        .at(node.span, format!("not {expected}")),
                );
                None
            }
        }
    }

    /// A secret reference, `{env: NAME}` or `{file: path}`; a plain value is refused.
    pub fn secret(&mut self, node: &Node, what: &str) -> Option<SecretRef> {
        if let Value::String(_) | Value::Integer(_) = node.value {
            self.report(
                Diagnostic::error("plain-secret", format!("{what} is written as a plain value; secrets must be references"))
                    .at(node.span, "secret value in the inventory")
                    .help("write `{env: NAME}` to read it from an environment variable, or `{file: path}` to read it from a file"),
            );
            return None;
        }
        let mut fields = self.fields(node, what)?;
        let env = fields.optional("env");
        let file = fields.optional("file");
        fields.finish(self);
        let source = match (env, file) {
            (Some(env), None) => SecretSource::Env(self.string(env, &format!("`env` of {what}"))?.value),
            (None, Some(file)) => SecretSource::File(self.path(file, &format!("`file` of {what}"))?.value),
            _ => {
                self.report(
                    Diagnostic::error("secret-reference", format!("{what} must name exactly one of `env` or `file`"))
                        .at(node.span, "ambiguous secret reference")
                        .help("write `{env: NAME}` or `{file: path}`"),
                );
                return None;
            }
        };
        Some(SecretRef { source, span: node.span })
    }
}

/// The rendered configurations are IPv4-only; saying so beats rendering an
/// IPv6 address into `listen 80` lines that never bind it.
fn ipv6_unsupported(what: &str, span: Span) -> Diagnostic {
    Diagnostic::error("ipv6-unsupported", format!("{what} is an IPv6 address; infra renders IPv4 configurations only"))
        .at(span, "IPv6")
        .help("give the hosts, the virtual IP and the service addresses IPv4 addresses; `firewall.admin_cidrs` may list IPv6 networks")
}

#[cfg(test)]
thread_local! {
    /// Every key the decoder asked for on this thread: the schema test's
    /// record of what the decoder reads.
    pub static ASKED: std::cell::RefCell<std::collections::BTreeSet<&'static str>> = Default::default();
}

/// The keys of one mapping, read one by one.
pub struct Fields<'n> {
    pub span: Span,
    entries: &'n [(Node, Node)],
    asked: Vec<&'static str>,
    /// Keys already reported as a typo of a required key.
    reported: Vec<Span>,
    what: String,
}

impl<'n> Fields<'n> {
    /// The value of `key`, or `None` when it is absent or explicitly empty.
    pub fn optional(&mut self, key: &'static str) -> Option<&'n Node> {
        self.asked.push(key);
        #[cfg(test)]
        ASKED.with(|asked| asked.borrow_mut().insert(key));
        self.entries
            .iter()
            .find(|(name, _)| matches!(&name.value, Value::String(text) if text == key))
            .map(|(_, value)| value)
            .filter(|value| !matches!(value.value, Value::Null))
    }

    /// The value of `key`, reporting its absence.
    /// A key spelt nearly like `key` (`adress`) is the one error, with
    /// the suggestion, not also a missing `key`: reported here, since a
    /// caller may stop at the missing value before [`Self::finish`].
    pub fn required(&mut self, decoder: &mut Decoder, key: &'static str) -> Option<&'n Node> {
        let value = self.optional(key);
        if value.is_some() {
            return value;
        }
        if let Some((typo, span)) = self.misspelling_of(key) {
            decoder.report(
                Diagnostic::error("unknown-key", format!("unknown key `{typo}` in {}", self.what))
                    .at(span, "unknown key")
                    .help(format!("did you mean `{key}`? (it is required)")),
            );
            self.reported.push(span);
        } else {
            decoder.report(
                Diagnostic::error("missing-key", format!("{} has no `{key}`", self.what))
                    .at(self.anchor(), format!("`{key}` is required here")),
            );
        }
        value
    }

    /// Another key of the mapping that is a typo of `key`: one edit away
    /// (two for a long key). Closer than [`did_you_mean`]'s likeness, so a
    /// valid sibling (`virtual_ip` beside a missing `virtual_router_id`) is
    /// never taken for one.
    fn misspelling_of(&self, key: &str) -> Option<(&'n str, Span)> {
        let near = |text: &str| {
            let edits = strsim::damerau_levenshtein(text, key);
            edits == 1 || (edits == 2 && key.len() >= 6)
        };
        self.entries.iter().find_map(|(name, _)| match &name.value {
            Value::String(text) if !self.asked.contains(&text.as_str()) && near(text) => {
                Some((text.as_str(), name.span))
            }
            _ => None,
        })
    }

    /// Renames the mapping in messages, once it is known (a host by its name).
    pub fn rename(&mut self, what: String) {
        self.what = what;
    }

    /// Whether the mapping has `key`, even with a value that failed to
    /// decode; a key with no value (`web:`) is absent, as to [`Self::optional`].
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(name, value)| {
            matches!(&name.value, Value::String(text) if text == key) && !matches!(value.value, Value::Null)
        })
    }

    /// Where to point for a problem with the mapping as a whole: its first key.
    pub fn anchor(&self) -> Span {
        self.entries.first().map_or(self.span, |(key, _)| key.span)
    }

    /// Reports every key that was never asked for, with a suggestion.
    pub fn finish(self, decoder: &mut Decoder) {
        for (key, _) in self.entries {
            let Value::String(name) = &key.value else {
                decoder.report(
                    Diagnostic::error(
                        "key-type",
                        format!("keys in {} must be strings, found {}", self.what, key.value.kind()),
                    )
                    .at(key.span, "not a string"),
                );
                continue;
            };
            if self.asked.contains(&name.as_str()) || self.reported.contains(&key.span) {
                continue;
            }
            let mut diagnostic = Diagnostic::error("unknown-key", format!("unknown key `{name}` in {}", self.what))
                .at(key.span, "unknown key");
            diagnostic = match did_you_mean(name, &self.asked) {
                Some(suggestion) => diagnostic.help(format!("did you mean `{suggestion}`?")),
                None => diagnostic.help(format!("expected one of {}", quoted_list(&self.asked))),
            };
            decoder.report(diagnostic);
        }
    }
}

/// The closest candidate to `input`, when one is close enough to be a typo.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::jaro_winkler(input, candidate), *candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

pub fn quoted_list(items: &[&str]) -> String {
    items.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(did_you_mean("adress", &["name", "address", "roles"]), Some("address"));
        assert_eq!(did_you_mean("colour", &["name", "address", "roles"]), None);
    }
}

//! Diagnostics: problems found in an inventory, with where and how to fix them.
//!
//! Loading, decoding and the stack rules all report through [`Diagnostic`]
//! rather than returning early, so one run shows every problem at once. A
//! diagnostic is plain data (severity, stable code, message, labelled spans,
//! help lines); this module is the only place that turns it into text, using
//! annotate-snippets for the rustc-style `--> file:line:column` view with the
//! offending line and a caret, or into JSON for CI.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use crate::source::{LineColumn, SourceFile, Span};

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// A span with a short message, shown under the source line.
#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

/// One problem found in an inventory.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable, kebab-case identifier for the rule, for CI filters and docs.
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::with_severity(Severity::Error, code, message)
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::with_severity(Severity::Warning, code, message)
    }

    pub fn note(code: &'static str, message: impl Into<String>) -> Self {
        Self::with_severity(Severity::Note, code, message)
    }

    fn with_severity(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic { severity, code, message: message.into(), labels: Vec::new(), help: Vec::new() }
    }

    /// The place the problem is, with what is wrong there.
    pub fn at(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { span, message: message.into(), primary: true });
        self
    }

    /// A second place that explains the first (the other duplicate, say).
    pub fn also(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { span, message: message.into(), primary: false });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|label| label.primary).or(self.labels.first()).map(|label| label.span)
    }
}

/// Whether to colour rendered diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Colored,
}

/// Renders diagnostics the way rustc does: title, `--> file:line:column`,
/// the source line with a caret, then help lines.
pub fn render(diagnostics: &[Diagnostic], source: &SourceFile, style: Style) -> String {
    let renderer = match style {
        Style::Plain => Renderer::plain(),
        Style::Colored => Renderer::styled(),
    };
    let path = source.path().display().to_string();
    let mut out = String::new();
    for diagnostic in diagnostics {
        let level = match diagnostic.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
            Severity::Note => Level::NOTE,
        };
        let title = level.primary_title(diagnostic.message.as_str()).id(diagnostic.code);
        let mut snippet = Snippet::source(source.text.as_str()).path(path.as_str()).fold(true);
        for label in &diagnostic.labels {
            let kind = if label.primary { AnnotationKind::Primary } else { AnnotationKind::Context };
            snippet = snippet.annotation(kind.span(label.span.range()).label(label.message.as_str()));
        }
        let mut report =
            vec![if diagnostic.labels.is_empty() { Group::with_title(title) } else { title.element(snippet) }];
        for help in &diagnostic.help {
            report.push(Group::with_title(Level::HELP.secondary_title(help.as_str())));
        }
        out.push_str(&renderer.render(&report));
        out.push_str("\n\n");
    }
    out
}

/// The JSON shape of one diagnostic (part of the versioned `validate` output).
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    pub severity: Severity,
    pub code: &'static str,
    pub message: &'a str,
    pub file: String,
    pub start: Option<LineColumn>,
    pub end: Option<LineColumn>,
    pub labels: Vec<JsonLabel<'a>>,
    pub help: &'a [String],
}

#[derive(Serialize)]
pub struct JsonLabel<'a> {
    pub message: &'a str,
    pub primary: bool,
    pub start: LineColumn,
    pub end: LineColumn,
}

impl Diagnostic {
    pub fn to_json<'a>(&'a self, source: &SourceFile) -> JsonDiagnostic<'a> {
        let primary = self.primary_span();
        JsonDiagnostic {
            severity: self.severity,
            code: self.code,
            message: &self.message,
            file: source.path().display().to_string(),
            start: primary.map(|span| source.line_column(span.start)),
            end: primary.map(|span| source.line_column(span.end)),
            labels: self
                .labels
                .iter()
                .map(|label| JsonLabel {
                    message: &label.message,
                    primary: label.primary,
                    start: source.line_column(label.span.start),
                    end: source.line_column(label.span.end),
                })
                .collect(),
            help: &self.help,
        }
    }
}

/// An error and each of its causes on one line, `: `-separated, for a
/// diagnostic's message or a log field where a chain cannot be printed.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Counts of diagnostics by severity, for the summary line.
pub fn summary(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diagnostics.iter().filter(|d| d.severity == Severity::Warning).count();
    (errors, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_and_caret() {
        let source = SourceFile::new("inv.yml", "hosts:\n  - name: web-01\n");
        let diagnostic =
            Diagnostic::error("example", "something is wrong").at(Span::new(17, 23), "here").help("do this instead");
        let text = render(&[diagnostic], &source, Style::Plain);
        assert!(text.contains("--> inv.yml:2:11"), "{text}");
        assert!(text.contains("^^^^^^ here"), "{text}");
        assert!(text.contains("help: do this instead"), "{text}");
    }
}

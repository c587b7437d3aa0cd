//! The app's Python requirements (`app.requirements`, a requirements.txt
//! in the app's source): the subset infra resolves on the controller and
//! installs on hosts with no internet. Each line is a distribution name
//! with optional extras, version specifiers and an environment marker;
//! anything that would make a host reach out (an index option, a URL, an
//! editable or local path) is refused with its line and column. Also the
//! app's Python requirement (`app.python`, `>=3.11`) and whether a host's
//! Python satisfies it.

use sha2::{Digest, Sha256};

/// Where a requirements file stops being something infra installs offline.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct RequirementError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The distribution names a requirements file asks for, in order.
pub fn parse(text: &str) -> Result<Vec<String>, RequirementError> {
    Ok(entries(text)?.into_iter().map(|(name, _)| name).collect())
}

/// The version `name` (normalised, as [`parse`] gives it) is pinned to
/// with a single `==`, no wildcard and no marker: what pip will install,
/// known before it runs. `None` when the file does not pin it that way.
pub fn exact_pin(text: &str, name: &str) -> Option<String> {
    let (_, line) = entries(text).ok()?.into_iter().find(|(entry, _)| entry == name)?;
    let rest = line[line.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))?..].trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(extras) => extras[extras.find(']')? + 1..].trim_start(),
        None => rest,
    };
    let version = rest.strip_prefix("==")?.trim();
    let exact =
        !version.is_empty() && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!'));
    exact.then(|| version.to_string())
}

/// `text` without the lines that require `name` (normalised, as [`parse`]
/// gives it), comments and other lines kept as written; `None` when no
/// line requires it (a dependency of another distribution).
pub fn without(text: &str, name: &str) -> Option<String> {
    let requires = |line: &str| entries(line).ok().is_some_and(|found| found.iter().any(|(entry, _)| entry == name));
    let kept: Vec<&str> = text.lines().filter(|line| !requires(line)).collect();
    (kept.len() < text.lines().count()).then(|| kept.iter().map(|line| format!("{line}\n")).collect())
}

/// One requirement that differs between two releases.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum RequirementChange {
    Added { line: String },
    Removed { line: String },
    Changed { from: String, to: String },
}

impl std::fmt::Display for RequirementChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequirementChange::Added { line } => write!(f, "+ {line}"),
            RequirementChange::Removed { line } => write!(f, "- {line}"),
            RequirementChange::Changed { from, to } => write!(f, "~ {from} → {to}"),
        }
    }
}

/// What changes from the requirements `old` to `new`, by distribution (in
/// `new`'s order, removals last). A file that does not parse counts as
/// empty, so a diff never fails; the deployed one was checked at load time.
pub fn diff(old: &str, new: &str) -> Vec<RequirementChange> {
    let lines = |text: &str| entries(text).unwrap_or_default();
    let (old, new) = (lines(old), lines(new));
    let find = |list: &[(String, String)], name: &str| list.iter().find(|(other, _)| other == name).cloned();
    let mut changes = Vec::new();
    for (name, line) in &new {
        match find(&old, name) {
            None => changes.push(RequirementChange::Added { line: line.clone() }),
            Some((_, before)) if before != *line => {
                changes.push(RequirementChange::Changed { from: before, to: line.clone() })
            }
            Some(_) => {}
        }
    }
    for (name, line) in &old {
        if find(&new, name).is_none() {
            changes.push(RequirementChange::Removed { line: line.clone() });
        }
    }
    changes
}

/// Each requirement's normalised distribution name and its line as
/// written (without a comment).
fn entries(text: &str) -> Result<Vec<(String, String)>, RequirementError> {
    let mut names = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let content = raw.split(" #").next().unwrap_or_default();
        let content = if content.trim_start().starts_with('#') { "" } else { content };
        let trimmed = content.trim();
        if trimmed.is_empty() {
            continue;
        }
        let column = raw.len() - raw.trim_start().len() + 1;
        let error =
            |offset: usize, message: String| RequirementError { line: index + 1, column: column + offset, message };
        if trimmed.starts_with('-') {
            return Err(error(
                0,
                format!(
                    "`{trimmed}`: options (indexes, editables, includes) are not supported; list each distribution with its version"
                ),
            ));
        }
        if trimmed.contains("://") || trimmed.contains(" @ ") || trimmed.starts_with('.') || trimmed.starts_with('/') {
            return Err(error(
                0,
                format!("`{trimmed}`: URLs and paths are not supported; name a distribution from PyPI"),
            ));
        }
        let name_length = trimmed
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(trimmed.len());
        let name = &trimmed[..name_length];
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(error(0, format!("`{trimmed}` does not start with a distribution name")));
        }
        let rest = trimmed[name_length..].trim_start();
        let rest = match rest.strip_prefix('[') {
            Some(extras) => match extras.find(']') {
                Some(end) if extras[..end].split(',').all(|extra| is_name(extra.trim())) => {
                    extras[end + 1..].trim_start()
                }
                _ => return Err(error(name_length, format!("`{trimmed}`: extras must be names in `[...]`"))),
            },
            None => rest,
        };
        if is_archive_name(name) {
            return Err(error(0, format!("`{name}` names a file, not a distribution: name a distribution from PyPI")));
        }
        let (specifiers, marker) = match rest.split_once(';') {
            Some((specifiers, marker)) => (specifiers, Some(marker)),
            None => (rest, None),
        };
        if let Some(marker) = marker
            && let Err(problem) = check_marker(marker)
        {
            let offset = raw.find(marker.trim()).map_or(0, |found| found + 1 - column);
            return Err(error(
                offset,
                format!("`{}` is not an environment marker infra reads: {problem}", marker.trim()),
            ));
        }
        for specifier in specifiers.split(',').map(str::trim).filter(|specifier| !specifier.is_empty()) {
            if !is_specifier(specifier) {
                let offset = raw.find(specifier).map_or(0, |found| found + 1 - column);
                return Err(error(
                    offset,
                    format!("`{specifier}` is not a version specifier (like `==3.1.0` or `>=2,<3`)"),
                ));
            }
        }
        names.push((name.to_ascii_lowercase().replace(['_', '.'], "-"), trimmed.to_string()));
    }
    Ok(names)
}

/// What pip would read as a local archive, not a name on an index
/// (`evil-1.0.tar.gz`, `x.whl`): pip would build it on this machine.
fn is_archive_name(name: &str) -> bool {
    const ARCHIVES: [&str; 12] = [
        ".whl",
        ".zip",
        ".tar",
        ".tar.gz",
        ".tgz",
        ".tar.bz2",
        ".tbz",
        ".tar.xz",
        ".txz",
        ".tlz",
        ".tar.lz",
        ".tar.lzma",
    ];
    let lower = name.to_ascii_lowercase();
    ARCHIVES.iter().any(|extension| lower.ends_with(extension))
}

/// The variables of PEP 508 environment markers.
const MARKER_VARIABLES: [&str; 12] = [
    "python_version",
    "python_full_version",
    "os_name",
    "sys_platform",
    "platform_release",
    "platform_system",
    "platform_version",
    "platform_machine",
    "platform_python_implementation",
    "implementation_name",
    "implementation_version",
    "extra",
];

/// A PEP 508 marker in a closed grammar: comparisons of a marker variable
/// and a quoted string of letters, digits and `. _ * + ! -` (or two such
/// strings), joined by `and`/`or`, in parentheses. Nothing else, so no
/// `${VAR}` that pip would expand (and print) ever reaches it.
fn check_marker(marker: &str) -> Result<(), String> {
    let tokens = marker_tokens(marker)?;
    let mut position = 0;
    marker_expression(&tokens, &mut position, 0)?;
    if position != tokens.len() {
        return Err(format!("unexpected `{}`", tokens[position]));
    }
    Ok(())
}

fn marker_tokens(marker: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = marker.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
        } else if c == '(' || c == ')' {
            tokens.push(c.to_string());
            chars.next();
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut text = String::from(c);
            loop {
                match chars.next() {
                    Some(end) if end == c => break,
                    Some(inner) if inner.is_ascii_alphanumeric() || "._*+!- ".contains(inner) => text.push(inner),
                    Some(other) => return Err(format!("`{other}` inside a quoted value")),
                    None => return Err("an unterminated quoted value".into()),
                }
            }
            tokens.push(text);
        } else if "<>=!~".contains(c) {
            let mut operator = String::new();
            while let Some(&next) = chars.peek().filter(|next| "<>=!~".contains(**next)) {
                operator.push(next);
                chars.next();
            }
            tokens.push(operator);
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut word = String::new();
            while let Some(&next) = chars.peek().filter(|next| next.is_ascii_alphanumeric() || **next == '_') {
                word.push(next);
                chars.next();
            }
            tokens.push(word);
        } else {
            return Err(format!("`{c}`"));
        }
    }
    Ok(tokens)
}

/// `comparison ((and|or) comparison)*`, a comparison possibly a
/// parenthesised expression; `depth` bounds the nesting.
fn marker_expression(tokens: &[String], position: &mut usize, depth: usize) -> Result<(), String> {
    if depth > 8 {
        return Err("parentheses nested too deep".into());
    }
    loop {
        if tokens.get(*position).is_some_and(|token| token == "(") {
            *position += 1;
            marker_expression(tokens, position, depth + 1)?;
            if tokens.get(*position).is_none_or(|token| token != ")") {
                return Err("a `(` without its `)`".into());
            }
            *position += 1;
        } else {
            marker_comparison(tokens, position)?;
        }
        match tokens.get(*position).map(String::as_str) {
            Some("and" | "or") => *position += 1,
            _ => return Ok(()),
        }
    }
}

fn marker_comparison(tokens: &[String], position: &mut usize) -> Result<(), String> {
    const OPERATORS: [&str; 8] = ["<=", "<", "!=", "==", ">=", ">", "~=", "==="];
    let operand = |token: Option<&String>| match token {
        Some(token) if token.starts_with(['"', '\'']) => Ok(()),
        Some(token) if MARKER_VARIABLES.contains(&token.as_str()) => Ok(()),
        Some(token) => Err(format!("`{token}` is not a marker variable (like `python_version`) or a quoted value")),
        None => Err("a comparison ends early".into()),
    };
    operand(tokens.get(*position))?;
    *position += 1;
    match tokens.get(*position).map(String::as_str) {
        Some(operator) if OPERATORS.contains(&operator) || operator == "in" => *position += 1,
        Some("not") if tokens.get(*position + 1).is_some_and(|token| token == "in") => *position += 2,
        Some(other) => return Err(format!("`{other}` is not a comparison")),
        None => return Err("a comparison ends early".into()),
    }
    operand(tokens.get(*position))?;
    *position += 1;
    Ok(())
}

fn is_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_specifier(text: &str) -> bool {
    let version =
        ["===", "==", "~=", "!=", ">=", "<=", ">", "<"].iter().find_map(|operator| text.strip_prefix(operator));
    version.is_some_and(|version| {
        let version = version.trim();
        !version.is_empty()
            && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '!' | '-'))
    })
}

/// A digest of the requirements as written: releases with the same one
/// share their installed packages.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(6).map(|byte| format!("{byte:02x}")).collect()
}

/// One `OPERATOR VERSION` of a Python requirement (`app.python`), split.
pub fn python_specifier(text: &str) -> Option<(&str, Vec<u32>)> {
    let operator = ["==", "!=", ">=", "<=", ">", "<"].into_iter().find(|operator| text.starts_with(operator))?;
    let version = text[operator.len()..].trim();
    let parts: Option<Vec<u32>> = version.split('.').map(|part| part.parse().ok()).collect();
    parts.filter(|parts| (1..=3).contains(&parts.len())).map(|parts| (operator, parts))
}

/// Whether Python `version` (`3.13`) satisfies every specifier of
/// `requirement` (`>=3.11,<3.14`), compared as numbers part by part, the
/// shorter padded with zeros (`3` is `3.0`).
pub fn python_satisfies(version: &str, requirement: &str) -> bool {
    let have: Vec<u32> = version.split('.').filter_map(|part| part.parse().ok()).collect();
    requirement.split(',').all(|specifier| {
        let Some((operator, wanted)) = python_specifier(specifier.trim()) else {
            return false;
        };
        let (mut have, mut wanted) = (have.clone(), wanted);
        let length = have.len().max(wanted.len());
        have.resize(length, 0);
        wanted.resize(length, 0);
        let order = have.cmp(&wanted);
        match operator {
            "==" => order.is_eq(),
            "!=" => order.is_ne(),
            ">=" => order.is_ge(),
            "<=" => order.is_le(),
            ">" => order.is_gt(),
            _ => order.is_lt(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_versions_compare_as_numbers() {
        assert!(python_satisfies("3.13", ">=3.11"));
        assert!(python_satisfies("3.11", ">=3.11,<3.14"));
        assert!(!python_satisfies("3.11", ">=3.12"));
        assert!(python_satisfies("3.9", "<3.10"), "3.9 is older than 3.10, not newer as text");
        assert!(!python_satisfies("3.13", "==3.11"));
        assert!(!python_satisfies("3.13", "==3"), "3 is 3.0, as in PEP 440");
    }

    #[test]
    fn names_specifiers_extras_and_markers_parse() {
        let text = "# the app\nFlask==3.1.0\nSQLAlchemy[asyncio]>=2.0,<2.1  # ORM\n\nzope.interface==7.1 ; python_version >= \"3.11\"\n";
        assert_eq!(parse(text), Ok(vec!["flask".into(), "sqlalchemy".into(), "zope-interface".into()]));
    }

    #[test]
    fn only_a_single_exact_pin_says_which_version_pip_installs() {
        let text = "Flask==3.1.0\ngunicorn[gevent] == 22.0.0  # the server\nwerkzeug>=3\nclick==8.*\nsix==1.16 ; python_version < \"4\"\n";
        assert_eq!(exact_pin(text, "gunicorn").as_deref(), Some("22.0.0"));
        assert_eq!(exact_pin(text, "flask").as_deref(), Some("3.1.0"));
        assert_eq!(exact_pin(text, "werkzeug"), None, "a range");
        assert_eq!(exact_pin(text, "click"), None, "a wildcard");
        assert_eq!(exact_pin(text, "six"), None, "a marker may leave it out");
        assert_eq!(exact_pin(text, "humanize"), None, "not named");
    }

    #[test]
    fn a_distribution_is_taken_out_by_name_and_the_rest_stays_as_written() {
        let text =
            "# pinned\nmysqlclient==2.2.4  # the driver\nDjango==5.1\nMySQLclient[x]>=2 ; python_version > \"3\"\n";
        assert_eq!(without(text, "mysqlclient").as_deref(), Some("# pinned\nDjango==5.1\n"));
        assert_eq!(without(text, "sqlparse"), None, "a dependency, not a line of the file");
    }

    #[test]
    fn a_diff_names_added_removed_and_changed_pins() {
        let old = "Flask==3.0.0\nPyMySQL==1.1.1\nsix==1.16.0\n";
        let new = "flask==3.1.0  # newer\nPyMySQL==1.1.1\nhumanize==4.11.0\n";
        let shown: Vec<String> = diff(old, new).iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["~ Flask==3.0.0 → flask==3.1.0", "+ humanize==4.11.0", "- six==1.16.0"]);
        assert!(diff(new, new).is_empty());
    }

    #[test]
    fn what_would_reach_out_is_refused_at_its_line_and_column() {
        let refused = |text: &str| parse(text).expect_err("refused");
        assert_eq!(
            refused("flask\n  --index-url https://example.org/simple\n")
                .to_string()
                .split(':')
                .take(2)
                .collect::<Vec<_>>(),
            ["2", "3"]
        );
        assert_eq!(refused("-e .\n").line, 1);
        assert_eq!(refused("app @ https://example.org/app.tar.gz\n").column, 1);
        let bad_version = refused("flask==3.1.0\nalembic=1.14\n");
        assert_eq!((bad_version.line, bad_version.column), (2, 8), "{bad_version}");
    }

    /// Issue 22: a local archive would be built by pip on this machine, and
    /// pip expands `${VAR}` (and prints it) in a marker.
    #[test]
    fn local_archives_and_variables_in_markers_are_refused() {
        let refused = |text: &str| parse(text).expect_err(text).message;
        assert!(refused("evil-1.0.tar.gz\n").contains("names a file"));
        assert!(refused("x.whl\n").contains("names a file"));
        assert!(refused("flask==3.1.0 ; ${INFRA_DB_PASSWORD}\n").contains("not an environment marker"));
        assert!(refused("flask==3.1.0 ; python_version >= \"${X}\"\n").contains("inside a quoted value"));
        assert!(refused("flask ; os.system('x')\n").contains("not an environment marker"));
        assert!(refused("flask==3.1.0 ; python_version >=\n").contains("ends early"));
        let accepted = "a==1 ; python_version >= \"3.11\" and (sys_platform == 'linux' or extra == \"x\")\n\
                        b==2 ; platform_machine not in \"arm64 aarch64\"\n";
        assert_eq!(parse(accepted), Ok(vec!["a".into(), "b".into()]));
    }
}

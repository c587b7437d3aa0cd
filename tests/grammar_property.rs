//! Issue 13's property: for an arbitrary string in any free-text field that
//! reaches a config, either validation refuses it, or it is rendered exactly
//! once, whole, on the line meant for it, in every file it belongs to, and
//! the rendered files still parse with the services' own checkers (the
//! `accepted_edge_values_pass_the_real_checkers` test runs those on the
//! hardest values the grammar accepts).
//!
//! Strings are drawn from an alphabet rich in every format's metacharacters
//! (quotes, `;`, braces, `#`, `$`, `\`, whitespace and newlines, `/` and
//! `..`), half of them shaped like the field's valid values so the accepted
//! side is exercised as much as the refused one.

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use infra::desired::DesiredState;
use infra::inventory;
use infra::source::SourceFile;
use proptest::prelude::*;

const VALID: &str = include_str!("fixtures/minimal.yml");

/// The characters that end a word, a string, a directive or a block in one
/// of the formats, plus plain ones.
const ALPHABET: &str = "[a-zA-Z0-9./_*:@ ;{}#$\"'`\\\\\n\t!()=,<>|&~^%-]";

/// Renders `text` with placeholders, or `None` when anything refuses it.
fn rendered(text: String) -> Option<DesiredState> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let loaded =
        inventory::parse(SourceFile::new("property.yml", text), infra::source::LocalFiles::confined(&base, &[]));
    let inventory = loaded.inventory.filter(|_| !loaded.diagnostics.iter().any(|d| d.is_error()))?;
    if infra::rules::run(&inventory).iter().any(|d| d.is_error()) {
        return None;
    }
    let stack = infra::stack::Stack::of(inventory).ok()?;
    let rendered = infra::render::render(&stack, infra::render::SecretMode::Placeholder).ok()?;
    (!rendered.diagnostics.iter().any(|d| d.is_error())).then_some(rendered.state)
}

/// The file `path` of `host`, as text.
fn file(state: &DesiredState, host: &str, path: &str) -> String {
    let host = state.hosts.iter().find(|candidate| candidate.name == host).expect("host rendered");
    let file = host.file(path).unwrap_or_else(|| panic!("{path} rendered"));
    String::from_utf8(file.content.to_vec()).expect("UTF-8")
}

/// A value no template writes by itself, standing in for the real one.
const SENTINEL: &str = "zqxv7";

/// `rendered` is what the inventory with `value` in the field produced;
/// `reference` what the same inventory with [`SENTINEL`] produced. The
/// sentinel sits exactly once, on the line meant for it (`line`), and the
/// two renders are equal once `value` takes the sentinel's place: the value
/// went there, whole, and changed nothing else.
fn in_place_of_the_sentinel(rendered: &str, reference: &str, line: &str, value: &str) {
    assert_eq!(reference.matches(SENTINEL).count(), 1, "the sentinel should occur once in:\n{reference}");
    assert!(reference.lines().any(|candidate| candidate == line), "no line `{line}` in:\n{reference}");
    assert_eq!(rendered, reference.replace(SENTINEL, value), "`{value}` did not land where the sentinel did");
}

/// Renders the inventory `edit` makes with `value` and with the sentinel,
/// and checks `path` of `host` (a host name may itself be the field).
fn check_field(edit: impl Fn(&str) -> String, value: &str, host: &str, path: &str, line: &str, written: &str) {
    let Some(state) = rendered(edit(value)) else { return };
    let reference = rendered(edit(SENTINEL)).expect("the sentinel is a valid value for every field");
    let host_with = |name: &str| if host == "{value}" { name.to_string() } else { host.to_string() };
    let actual = file(&state, &host_with(value), path);
    let expected = file(&reference, &host_with(SENTINEL), path);
    in_place_of_the_sentinel(&actual, &expected, &line.replace("{value}", SENTINEL), written);
}

/// A YAML double-quoted scalar holding exactly `value`.
fn yaml_string(value: &str) -> String {
    serde_json::to_string(value).expect("a JSON string is a YAML string")
}

/// [`check_field`] for a directory, which the sentinel alone is not: the
/// reference inventory has `/srv/SENTINEL`, and its render is compared with
/// that path standing for the value.
fn check_directory_field(after: &str, key: &str, value: &str, (host, path): (&str, &str), line: &str) {
    let edit = |value: &str| {
        let directory = if value == SENTINEL { format!("/srv/{SENTINEL}") } else { value.to_string() };
        VALID.replacen(after, &format!("{after}\n  {key}: {}", yaml_string(&directory)), 1)
    };
    let Some(state) = rendered(edit(value)) else { return };
    let reference = file(&rendered(edit(SENTINEL)).expect("valid"), host, path);
    let actual = file(&state, host, path);
    let reference = reference.replace(&format!("/srv/{SENTINEL}"), SENTINEL);
    in_place_of_the_sentinel(&actual, &reference, &line.replace("{value}", SENTINEL), value);
}

fn field(shaped: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![proptest::string::string_regex(&format!("{ALPHABET}{{0,24}}")).expect("regex"), shaped]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn host_names(value in field("[a-z0-9][a-z0-9-]{0,8}[a-z0-9 #/.-]{0,2}")) {
        let edit = |value: &str| VALID.replacen("name: web-01", &format!("name: {}", yaml_string(value)), 1);
        let line = "    server {value} 10.20.0.21:80 check inter 2s fall 2 rise 2";
        check_field(edit, &value, "lb-01", "/etc/haproxy/haproxy.cfg", line, &value);
    }

    #[test]
    fn balancer_names(value in field("[a-z0-9][a-z0-9-]{0,8}[a-z0-9 #/.-]{0,2}")) {
        let edit = |value: &str| VALID.replacen("name: lb-01", &format!("name: {}", yaml_string(value)), 1);
        check_field(edit, &value, "{value}", "/etc/keepalived/keepalived.conf", "    router_id {value}", &value);
    }

    #[test]
    fn server_names(value in field("(\\*\\.)?[a-z0-9-]{1,8}(\\.[a-z0-9-]{1,8}){0,2}[ ;}$.]{0,1}")) {
        let edit = |value: &str| {
            VALID.replacen("  static_source: static", &format!("  static_source: static\n  server_name: {}", yaml_string(value)), 1)
        };
        let site = "/etc/nginx/sites-enabled/infra.conf";
        check_field(edit, &value, "web-01", site, "    server_name {value};", &value.to_ascii_lowercase());
    }

    #[test]
    fn static_roots(value in field("/(var/www|srv|opt)(/[a-zA-Z0-9._-]{1,6}){0,3}[/ ;}\"$.]{0,1}")) {
        let site = ("web-01", "/etc/nginx/sites-enabled/infra.conf");
        check_directory_field("  static_source: static", "static_root", &value, site, "        alias {value}/;");
    }

    #[test]
    fn app_directories(value in field("/(srv|opt|var)(/[a-zA-Z0-9._-]{1,6}){0,3}[/ ;\"'\\\\.]{0,1}")) {
        let config = ("app-01", "/etc/infra/gunicorn.conf.py");
        check_directory_field("  source: app", "directory", &value, config, "chdir = \"{value}/current\"");
    }

    #[test]
    fn backup_directories(value in field("/(srv|opt|var)(/[a-zA-Z0-9._-]{1,6}){0,3}[/ ;\"'$\\.]{0,1}")) {
        let script = ("db-01", "/usr/local/sbin/infra-backup");
        check_directory_field("  port: 3306", "backup:\n    directory", &value, script, "directory='{value}'");
    }

    /// `app.health` reaches a shell command line: whatever the grammar
    /// accepts arrives at curl as exactly the URL and `Host` header meant.
    #[test]
    fn health_requests(
        path in field("/[a-z0-9?&=._~-]{0,10}[ ;'\"$`#]{0,1}"),
        host in field("[a-z0-9-]{1,8}(\\.[a-z0-9-]{1,8}){0,2}[ ;'$]{0,1}"),
    ) {
        let health = format!("  source: app\n  health: {{path: {}, status: 200, host: {}}}", yaml_string(&path), yaml_string(&host));
        let Some(state) = rendered(VALID.replacen("  source: app", &health, 1)) else { return Ok(()) };
        let arguments = curl_arguments(&state, "app-01", "Gunicorn answers HTTP");
        prop_assert_eq!(arguments.last().cloned(), Some(format!("http://10.20.0.31:8000{path}")), "{:?}", arguments);
        let header = format!("Host: {}", host.to_ascii_lowercase());
        prop_assert!(arguments.contains(&header), "{:?}", arguments);
    }

    #[test]
    fn interfaces(value in field("[a-z0-9._-]{1,16}[ #}]{0,1}")) {
        let edit = |value: &str| VALID.replacen("interface: eth0", &format!("interface: {}", yaml_string(value)), 1);
        let Some(state) = rendered(edit(&value)) else { return Ok(()) };
        let reference = file(&rendered(edit(SENTINEL)).expect("valid"), "lb-01", "/etc/keepalived/keepalived.conf");
        let actual = file(&state, "lb-01", "/etc/keepalived/keepalived.conf");
        // The interface appears twice, by design: the instance and the address.
        prop_assert_eq!(reference.matches(SENTINEL).count(), 2);
        let (instance, address) = (format!("    interface {SENTINEL}\n"), format!("        10.20.0.10/24 dev {SENTINEL}\n"));
        prop_assert!(reference.contains(&instance) && reference.contains(&address));
        prop_assert_eq!(actual, reference.replace(SENTINEL, &value));
    }
}

/// Runs the health check `description` of `host` with a `curl` that writes
/// each argument it was given on a line of its own (and says `200`).
fn curl_arguments(state: &DesiredState, host: &str, description: &str) -> Vec<String> {
    let host = state.hosts.iter().find(|candidate| candidate.name == host).expect("host rendered");
    let check = host.health_checks.iter().find(|check| check.description == description).expect("the probe");
    let bin = tempfile::tempdir().expect("temporary directory");
    let curl = bin.path().join("curl");
    std::fs::write(
        &curl,
        "#!/bin/sh
for argument; do printf '%s\\n' \"$argument\" >&2; done\necho 200\n",
    )
    .expect("write");
    Command::new("chmod").arg("+x").arg(&curl).status().expect("chmod");
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let output = Command::new("sh").args(["-c", &check.command]).env("PATH", path).output().expect("sh runs");
    assert!(output.status.success(), "{}: {}", check.command, String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).lines().map(String::from).collect()
}

/// The hardest values the grammar accepts, through `infra validate` with
/// the real checkers (haproxy -c, nginx -t, keepalived --config-test,
/// python3 -m py_compile): accepted means the services read them as meant.
/// (The interface stays `eth0`: keepalived's check wants it to exist here.)
#[test]
fn accepted_edge_values_pass_the_real_checkers() {
    let directory = tempfile::tempdir().expect("temp dir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = VALID
        .replacen("name: web-01", "name: 0-9", 1)
        .replacen("name: lb-01", "name: a", 1)
        .replacen(
            "  static_source: static",
            "  static_source: static\n  server_name: \"*.x-1.example\"\n  static_root: /var/www/a.b_c-d/e..f",
            1,
        )
        .replacen("  source: app", "  source: app\n  directory: /opt/-x_/.hidden/Z9", 1)
        .replace("static_source: static", &format!("static_source: {}", fixtures.join("static").display()))
        .replace("source: app", &format!("source: {}", fixtures.join("app").display()));
    let validate = |text: &str| {
        let inventory = directory.path().join("edge.yml");
        std::fs::write(&inventory, text).expect("write");
        let mut command = Command::cargo_bin("infra").expect("built");
        command
            .args(["validate", "-i"])
            .arg(&inventory)
            .env("INFRA_ALLOW_PATHS", &fixtures)
            .env_remove("INFRA_VRRP_SECRET")
            .env_remove("INFRA_DB_PASSWORD");
        let output = command.output().expect("infra runs");
        (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (_, stderr) = validate(&text);
    // `/opt/-x_` starts a component with `-` and `.hidden` with `.`: refused, everything else accepted.
    assert!(stderr.contains("`directory` `/opt/-x_/.hidden/Z9` is not"), "{stderr}");
    let (valid, stderr) = validate(&text.replace("/opt/-x_/.hidden/Z9", "/opt/x_/h.idden/Z9"));
    assert!(valid, "{stderr}");
    assert!(!stderr.contains("FAILED"), "{stderr}");
}

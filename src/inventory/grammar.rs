//! The grammar of every inventory value that can reach a rendered file.
//!
//! Each function takes the text as written and returns the value the rest
//! of infra may trust, or what was expected instead. They are pure and
//! small so they can be read as the specification (docs/inventory.md quotes
//! them) and tested on arbitrary strings. The character sets are chosen so a
//! value that passes needs no quoting in any of the formats it lands in
//! (HAProxy, keepalived, Nginx, Python, systemd, SQL, shell), and escaping
//! filters are a second line, not the only one.

use std::net::IpAddr;

/// The longest string any field accepts; configs have no use for more.
pub const MAX_STRING_BYTES: usize = 4096;

/// A host name: an RFC 1123 DNS label, lowercase. It names a folder under
/// `render --out`, a HAProxy `server`, keepalived's `router_id` and lines in
/// plans, so nothing but letters, digits and inner hyphens.
pub fn host_name(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str =
        "a DNS label: lowercase letters, digits and `-`, at most 63, not starting or ending with `-`";
    let bytes = text.as_bytes();
    let valid = (1..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-');
    if valid { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// When backups run: `hourly`, `daily` or `weekly`, or a daily time
/// `HH:MM`; returned as systemd's `OnCalendar=` value. A closed set, so
/// nothing else reaches the timer unit.
pub fn schedule(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "`hourly`, `daily`, `weekly`, or a daily time `HH:MM` (24-hour, UTC on a UTC host)";
    if ["hourly", "daily", "weekly"].contains(&text) {
        return Ok(text.to_string());
    }
    let time = text.split_once(':').and_then(|(hour, minute)| {
        let two_digits = |part: &str| part.len() == 2 && part.bytes().all(|byte| byte.is_ascii_digit());
        (two_digits(hour) && two_digits(minute)).then(|| (hour.parse::<u8>().ok(), minute.parse::<u8>().ok()))
    });
    match time {
        Some((Some(hour), Some(minute))) if hour < 24 && minute < 60 => Ok(format!("*-*-* {hour:02}:{minute:02}:00")),
        _ => Err(EXPECTED),
    }
}

/// Where web content and the app may live on a host. An allow-list, not
/// a list of system directories: merged-/usr aliases (`/lib` is `/usr/lib`),
/// home directories, `/var/lib/mysql` or infra's own state can never be
/// named by a spelling the list forgot.
const CONTENT_ROOTS: [&str; 3] = ["/srv", "/var/www", "/opt"];

/// Where backups may be written (never under a web root, which would
/// serve them).
const BACKUP_ROOTS: [&str; 2] = ["/var/backups", "/srv"];

/// A directory on a host that infra fills (the static root, the app's
/// directory): below `/srv`, `/var/www` or `/opt`, normalised, each
/// component starting with a letter or digit and made of `[A-Za-z0-9._-]`.
/// It is pasted into Nginx (`alias`), Python (`chdir`) and shell scripts,
/// so the character set is what keeps it inert; no hidden component, so
/// `/srv/x/.ssh` is never a place infra writes.
pub fn host_directory(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "an absolute, normalised path below `/srv`, `/var/www` or `/opt` (like `/srv/app`), each component letters, digits, `.`, `_` and `-` starting with a letter or digit";
    directory_below(text, &CONTENT_ROOTS).ok_or(EXPECTED)
}

/// A directory backups are written to: [`host_directory`]'s grammar below
/// `/var/backups` or `/srv`.
pub fn backup_directory(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "an absolute, normalised path below `/var/backups` or `/srv` (like `/var/backups/infra`), each component letters, digits, `.`, `_` and `-` starting with a letter or digit";
    directory_below(text, &BACKUP_ROOTS).ok_or(EXPECTED)
}

fn directory_below(text: &str, roots: &[&str]) -> Option<String> {
    let component_ok = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let below = roots.iter().find_map(|root| text.strip_prefix(root)?.strip_prefix('/'))?;
    (text.len() <= 255 && below.split('/').all(component_ok)).then(|| text.to_string())
}

/// A file inside the app's source (`app.requirements`): relative, made of
/// `[A-Za-z0-9._-]` components, never `..`. It is pasted into the scripts
/// that build a release's packages.
pub fn source_file(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str =
        "a path inside the app's source, of letters, digits, `.`, `_` and `-` (like `requirements.txt`)";
    let component_ok = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && !part.starts_with('-')
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if text.len() > 255 || text.starts_with('/') || !text.split('/').all(component_ok) {
        return Err(EXPECTED);
    }
    Ok(text.to_string())
}

/// A directory of `app.shared` (`media`, `var/uploads`): relative to a
/// release, of [`host_directory`]'s components (so no `..`, nothing
/// hidden: a release's `.venv` and marks are never shared), at most four
/// deep. It is pasted into the unpack script and names a link in every
/// release.
pub fn shared_directory(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "a directory inside each release, like `media` or `var/uploads`: components of letters, digits, `.`, `_` and `-` starting with a letter or digit";
    let component_ok = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let valid = (1..=128).contains(&text.len()) && text.split('/').count() <= 4 && text.split('/').all(component_ok);
    if valid { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// A Debian package name (`libmariadb-dev`, `python3-dev`, `g++`): a
/// lowercase letter or digit, then lowercase letters, digits, `+ - .`, at
/// most 64 (Debian Policy 5.6.1). It reaches `apt-get install`'s command
/// line, quoted, and nothing else.
pub fn debian_package(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "a Debian package name like `libmariadb-dev`: lowercase letters, digits, `+`, `-` and `.`, starting with a letter or digit, at least two characters";
    let valid = (2..=64).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if valid { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// The name of one of `app.processes`: a lowercase letter, then lowercase
/// letters, digits and inner `-`, at most 24 (`worker`, `beat`). It names
/// systemd units (`infra-app-worker@1`) and a file under /etc/systemd.
pub fn process_name(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str =
        "a lowercase letter, then lowercase letters, digits and `-` (like `worker` or `beat`), at most 24 characters";
    if crate::catalog::is_process_name(text) { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// A git revision to deploy (`app.source.ref`, `infra deploy --source`):
/// a branch, tag or commit name as git writes them, never starting with
/// `-` (it would read as an option) and without git's revision operators
/// (`..`, `@{`, `^`, `~`, `:`), so it names one commit and nothing else.
pub fn git_revision(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str =
        "a branch, tag or commit of letters, digits, `/`, `.`, `_` and `-` (like `main`, `v1.4.0` or `3f2a9c1`)";
    let valid = (1..=200).contains(&text.len())
        && !text.starts_with(['-', '/', '.'])
        && !text.ends_with(['/', '.'])
        && !text.contains("..")
        && !text.contains("//")
        && !text.ends_with(".lock")
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
    if valid { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// `app.python`: version specifiers for the hosts' Python, `>=3.11` or
/// `>=3.11,<3.14`: operators and dotted numbers only.
pub fn python_requirement(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "Python version specifiers like `>=3.11` or `>=3.11,<3.14`";
    let valid = text.len() <= 64
        && text.split(',').all(|specifier| crate::requirements::python_specifier(specifier.trim()).is_some());
    if valid { Ok(text.split(',').map(str::trim).collect::<Vec<_>>().join(",")) } else { Err(EXPECTED) }
}

/// Environment names `app.env` may not set: those infra writes itself,
/// and those that change what runs or how, past the validated
/// `gunicorn.conf.py` (`GUNICORN_CMD_ARGS` overrides its bind, workers and
/// forwarded addresses) and the release's own `.venv` (the loader's
/// `LD_*`, `PATH`, `PYTHON*`).
const RESERVED_ENV_NAMES: [&str; 5] = ["GUNICORN_CMD_ARGS", "PATH", "HOME", "SHELL", "IFS"];
const RESERVED_ENV_PREFIXES: [&str; 4] = ["DATABASE_", "LD_", "PYTHON", "INFRA_"];

/// A name in `app.env`: an environment variable's, uppercase, and not one
/// infra writes itself or one that changes what runs ([`RESERVED_ENV_NAMES`]).
/// Each refusal says which rule it is: a reserved name is spelled right.
pub fn env_name(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "an environment variable name of `A-Z`, `0-9` and `_` (like `SECRET_KEY`), not starting with a digit, at most 64 characters";
    const DATABASE: &str = "a name `app.env` may set: infra writes every `DATABASE_*` name itself, from the `database` section (`DATABASE_HOST`, `DATABASE_PORT`, `DATABASE_NAME`, `DATABASE_USER`, `DATABASE_PASSWORD`, and `DATABASE_URL` as `mysql://USER:PASSWORD@HOST:PORT/NAME`): read those in the app";
    const RUNTIME: &str = "a name `app.env` may set: `GUNICORN_CMD_ARGS`, `PATH`, `HOME`, `SHELL`, `IFS` and the `LD_*`, `PYTHON*` and `INFRA_*` names would change what runs, past the checked Gunicorn config and the release's own `.venv`";
    let valid = (1..=64).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !text.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        Err(EXPECTED)
    } else if text.starts_with("DATABASE_") {
        Err(DATABASE)
    } else if RESERVED_ENV_NAMES.contains(&text) || RESERVED_ENV_PREFIXES.iter().any(|prefix| text.starts_with(prefix))
    {
        Err(RUNTIME)
    } else {
        Ok(text.to_string())
    }
}

/// One word of `app.migrate`: printable ASCII without quotes or `\`, at
/// most 256 bytes. Each word is quoted for the shell that runs it.
pub fn command_word(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str =
        "a word of printable ASCII without spaces, quotes or `\\` (like `upgrade`), at most 256 characters";
    let valid = (1..=256).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\' | b'`'));
    if valid { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// An Nginx `server_name`: `_` (any), a host name, or a wildcard
/// `*.example.com`. Labels are letters, digits and inner hyphens.
pub fn server_name(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "`_`, a host name like `www.example.com`, or a wildcard like `*.example.com`";
    if text == "_" {
        return Ok(text.to_string());
    }
    let name = text.strip_prefix("*.").unwrap_or(text);
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        (1..=63).contains(&bytes.len())
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-')
    };
    if text.len() <= 253 && name.split('.').all(label_ok) { Ok(text.to_ascii_lowercase()) } else { Err(EXPECTED) }
}

/// The path of an HTTP request (`app.health.path`): `/` and then RFC 3986's
/// path and query characters, without `%`-escapes, quotes, backslashes or spaces,
/// at most 256 bytes. It reaches a shell command line (quoted) and a URL.
pub fn http_path(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "a request path starting with `/` (like `/healthz` or `/up?full=1`): letters, digits and `/ - . _ ~ ? & = + : @ ! , ;`, at most 256 characters";
    let valid = text.starts_with('/')
        && text.len() <= 256
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._~?&=+:@!,;".contains(&b));
    if valid { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// A `Host` header (`app.health.host`): a host name, as `server_name`
/// takes one, but never `_` or a wildcard.
pub fn host_header(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "a host name like `www.example.com`";
    if text == "_" || text.starts_with("*.") {
        return Err(EXPECTED);
    }
    server_name(text).map_err(|_| EXPECTED)
}

/// A Linux network interface name (keepalived's `interface`): at most 15
/// bytes of letters, digits, `_`, `.` and `-`, as the kernel allows.
pub fn interface(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "an interface name: at most 15 letters, digits, `_`, `.` or `-`";
    let valid = (1..=15).contains(&text.len())
        && text != "."
        && text != ".."
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// Database and user names MariaDB keeps for itself: the app's grants on
/// `mysql` would reach every account, and the app's user named `root`
/// would replace the administrator's.
const RESERVED_DATABASES: [&str; 5] = ["mysql", "information_schema", "performance_schema", "sys", "test"];
const RESERVED_DATABASE_USERS: [&str; 5] = ["root", "mysql", "mariadb_sys", "debian_sys_maint", "public"];

/// A database name (`database.name`): letters, digits and `_`, at most
/// 32, and not one of MariaDB's own schemas.
pub fn database_name(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "a name of letters, digits and `_` (at most 32), not `mysql`, `information_schema`, `performance_schema`, `sys` or `test`";
    sql_identifier(text, &RESERVED_DATABASES).ok_or(EXPECTED)
}

/// A database user (`database.user`): [`database_name`]'s characters, and
/// not an account MariaDB or Debian keep (`root`, `mysql`, …).
pub fn database_user(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "a name of letters, digits and `_` (at most 32), not `root`, `mysql`, `mariadb_sys`, `debian_sys_maint` or `public`";
    sql_identifier(text, &RESERVED_DATABASE_USERS).ok_or(EXPECTED)
}

fn sql_identifier(text: &str, reserved: &[&str]) -> Option<String> {
    let valid = !text.is_empty()
        && text.len() <= 32
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !reserved.contains(&text.to_ascii_lowercase().as_str());
    valid.then(|| text.to_string())
}

/// A login name for SSH: POSIX portable user names, at most 32.
pub fn user_name(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str =
        "a user name: a lowercase letter or `_`, then lowercase letters, digits, `_` or `-` (at most 32)";
    let bytes = text.as_bytes();
    let valid = (1..=32).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if valid { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// Where SSH goes for a host (`ssh.host`) or a jump (`ssh.jump`): an IPv4
/// address, a DNS name or a `~/.ssh/config` alias, at most 253 bytes of
/// letters, digits, `.`, `-` and `_`. It is handed to `ssh` as its
/// destination, so it must never start with `-`, where ssh would read an
/// option (`-oProxyCommand=…` runs a program on this machine).
pub fn ssh_destination(text: &str) -> Result<String, &'static str> {
    const EXPECTED: &str = "an address, a DNS name or an ssh_config alias: letters, digits, `.`, `-` and `_` (at most 253), not starting with `-`";
    let valid = (1..=253).contains(&text.len())
        && !text.starts_with(['-', '.'])
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if valid { Ok(text.to_string()) } else { Err(EXPECTED) }
}

/// A jump host as `ssh -J` writes it: `[user@]host[:port]`, each part by
/// its own grammar ([`user_name`], [`ssh_destination`], a port 1–65535).
pub fn jump(text: &str) -> Option<crate::transport::Jump> {
    let (user, rest) = match text.split_once('@') {
        Some((user, rest)) => (Some(user_name(user).ok()?), rest),
        None => (None, text),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse::<u16>().ok().filter(|port| *port > 0)?)),
        None => (rest, None),
    };
    Some(crate::transport::Jump { destination: ssh_destination(host).ok()?, user, port })
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`) is the IPv4 address: it
/// must be compared, checked for loopback and rendered as such.
pub fn canonical_ip(address: IpAddr) -> IpAddr {
    address.to_canonical()
}

/// A keepalived `auth_pass`: keepalived uses the first 8 *bytes* and its
/// parser splits on whitespace and treats `#` and `!` as comments, so the
/// secret is 1 to 8 printable ASCII characters without those.
pub fn vrrp_secret(value: &str) -> Result<(), String> {
    if value.len() > 8 {
        return Err(format!("it is {} bytes long; keepalived uses only the first 8", value.len()));
    }
    match value.chars().find(|c| !c.is_ascii_graphic() || matches!(c, '#' | '!' | '"' | '\'' | '\\' | '{' | '}')) {
        Some(c) => {
            Err(format!("it contains {c:?}; keepalived reads whitespace, quotes, `\\`, braces, `#` and `!` as syntax"))
        }
        None => Ok(()),
    }
}

/// A password that reaches SQL and a systemd environment file: any
/// characters the filters escape, but no control characters (a newline
/// ends an environment line) and at most 256 bytes.
pub fn password(value: &str) -> Result<(), String> {
    if value.len() > 256 {
        return Err(format!("it is {} bytes long; at most 256 are accepted", value.len()));
    }
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!("it contains the control character {c:?}")),
        None => Ok(()),
    }
}

pub use crate::sanitize::printable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_requirements_are_specifiers_of_dotted_numbers() {
        assert_eq!(python_requirement(">=3.11, <3.14").as_deref(), Ok(">=3.11,<3.14"));
        for bad in ["3.11", ">=3.x", "~=3.11", ">=3.11;rm", ">=", ""] {
            assert!(python_requirement(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn git_revisions_name_one_commit_and_never_an_option() {
        for good in ["main", "v1.4.0", "release/2026-11", "3f2a9c1", "feature_x"] {
            assert_eq!(git_revision(good).as_deref(), Ok(good));
        }
        for bad in
            ["", "-c", "--upload-pack=x", "main..evil", "HEAD~1", "main^", "a:b", "@{1}", "a b", "x.lock", "/x", "a//b"]
        {
            assert!(git_revision(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ssh_destinations_never_read_as_an_option() {
        for good in ["203.0.113.7", "web-01.example.com", "prod_bastion", "a"] {
            assert_eq!(ssh_destination(good).as_deref(), Ok(good));
        }
        for bad in ["", "-oProxyCommand=touch", "-J", ".x", "a b", "a;b", "user@host", "host:22", "$(x)", "[::1]"] {
            assert!(ssh_destination(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn jumps_are_user_at_host_colon_port() {
        let parsed = jump("admin@bastion.example.com:2222").expect("parsed");
        assert_eq!(
            (parsed.user.as_deref(), parsed.destination.as_str(), parsed.port),
            (Some("admin"), "bastion.example.com", Some(2222))
        );
        let bare = jump("192.0.2.1").expect("parsed");
        assert_eq!((bare.user, bare.port), (None, None));
        for bad in ["", "-oProxyCommand=x", "admin@", "@host", "Admin@host", "host:0", "host:99999", "host:", "a@b@c"] {
            assert!(jump(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn schedules_are_a_closed_set() {
        assert_eq!(schedule("daily").as_deref(), Ok("daily"));
        assert_eq!(schedule("03:30").as_deref(), Ok("*-*-* 03:30:00"));
        for bad in ["", "24:00", "3:30", "03:60", "daily; rm", "*-*-* 03:00:00", "minutely"] {
            assert!(schedule(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_names_are_dns_labels() {
        for good in ["web-01", "a", "db1", &"a".repeat(63)] {
            assert!(host_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Web-01", "web 01", "web#1", "web/..", "..", "-web", "web-", "web.example", &"a".repeat(64)] {
            assert!(host_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_database_and_environment_names_are_refused() {
        assert!(database_name("app").is_ok() && database_user("app").is_ok());
        for name in ["mysql", "MySQL", "information_schema", "sys"] {
            assert!(database_name(name).is_err(), "{name}");
        }
        for user in ["root", "Root", "mysql", "mariadb_sys"] {
            assert!(database_user(user).is_err(), "{user}");
        }
        assert!(env_name("SECRET_KEY").is_ok());
        for name in ["GUNICORN_CMD_ARGS", "LD_PRELOAD", "PATH", "PYTHONPATH", "PYTHONSTARTUP", "DATABASE_HOST"] {
            assert!(env_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn host_directories_are_normalised_and_not_system_ones() {
        for good in ["/srv/app", "/var/www/infra", "/srv/app-v2/current", "/opt/site", "/var/www/a.b_c-d/e..f"] {
            assert!(host_directory(good).is_ok(), "{good}");
        }
        for bad in [
            "/lib/systemd/system/multi-user.target.wants",
            "/bin/x",
            "/sbin/x",
            "/lib64/x",
            "/home/ana/site",
            "/root/.ssh",
            "/srv/site/.ssh",
            "/srv/.hidden",
            "/var/lib/infra",
            "/var/lib/mysql",
            "/var/spool/cron",
            "/var/lib/dpkg",
            "/var/log/x",
            "/var/backups/infra",
            "/opt",
            "/var/www",
        ] {
            assert!(host_directory(bad).is_err(), "{bad:?}");
        }
        assert!(backup_directory("/var/backups/infra").is_ok());
        assert!(backup_directory("/var/www/backups").is_err(), "a web root would serve them");
        for bad in [
            "/",
            "srv/app",
            "/srv//app",
            "/srv/./app",
            "/srv/../etc",
            "/srv/app/",
            "/etc",
            "/etc/nginx",
            "/var",
            "/srv",
            "/usr/share/x",
            "/srv/a b",
            "/srv/a;b",
            "/srv/a\"b",
            "/srv/$x",
            "/srv/a}",
            "/srv/-rf",
            "/proc/1",
        ] {
            assert!(host_directory(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn server_names_are_host_names_or_wildcards() {
        for good in ["_", "example.com", "*.example.com", "localhost", "WWW.Example.com"] {
            assert!(server_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a;b", "exa$mple", "*", "*.", "a..b", "-a.com", "a.com;", "~^(.*)$", "a}"] {
            assert!(server_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn vrrp_secrets_count_bytes_and_refuse_syntax() {
        assert!(vrrp_secret("abcd1234").is_ok());
        assert!(vrrp_secret("abcdéfg").is_err(), "8 characters but 9 bytes");
        for bad in ["a b", "a#b", "a!b", "a}", "a\"b", "a\nb"] {
            assert!(vrrp_secret(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mapped_addresses_are_their_ipv4_address() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("address");
        assert!(canonical_ip(mapped).is_loopback());
        assert!(canonical_ip(mapped).is_ipv4());
    }
}

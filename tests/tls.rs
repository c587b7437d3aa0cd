//! `infra validate` on TLS material: each problem HAProxy would only find at
//! reload time (or a client at connect time) is an error with its exact
//! message, before any host is touched.

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

struct Material {
    certificate: String,
    key: String,
}

/// A self-signed pair for `names`, valid from `from_days` to `to_days` relative to now.
fn material(names: &[&str], from_days: i64, to_days: i64) -> Material {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|name| name.to_string()).collect::<Vec<_>>()).expect("params");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from_days);
    params.not_after = now + time::Duration::days(to_days);
    let certificate = params.self_signed(&key).expect("self-signed");
    Material { certificate: certificate.pem(), key: key.serialize_pem() }
}

/// Validates the minimal inventory with TLS from `certificate` and `key`;
/// returns the exit code and stderr with the temporary directory as `TMP`.
fn validate(certificate: &Material, key: &Material) -> (i32, String) {
    let directory = tempfile::tempdir().expect("temp dir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let inventory = std::fs::read_to_string(fixtures.join("minimal.yml"))
        .expect("fixture")
        .replace(
            "static_source: static",
            &format!("static_source: {}/static\n  server_name: www.example.test", fixtures.display()),
        )
        .replace("source: app", &format!("source: {}/app", fixtures.display()))
        .replace(
            "  vrrp_secret: {env: INFRA_VRRP_SECRET}\n",
            "  vrrp_secret: {env: INFRA_VRRP_SECRET}\n  tls:\n    certificate: cert.pem\n    key: {file: key.pem}\n",
        );
    std::fs::write(directory.path().join("inventory.yml"), inventory).expect("write inventory");
    std::fs::write(directory.path().join("cert.pem"), &certificate.certificate).expect("write certificate");
    std::fs::write(directory.path().join("key.pem"), &key.key).expect("write key");
    let output = Command::cargo_bin("infra")
        .expect("infra")
        .args(["validate", "--no-checkers", "-i"])
        .arg(directory.path().join("inventory.yml"))
        .env("INFRA_ALLOW_PATHS", &fixtures)
        .env("NO_COLOR", "1")
        .output()
        .expect("infra runs");
    let stderr = String::from_utf8_lossy(&output.stderr).replace(&directory.path().display().to_string(), "TMP");
    (output.status.code().unwrap_or(-1), stderr)
}

#[test]
fn a_good_certificate_and_its_key_validate() {
    let pair = material(&["www.example.test"], -1, 365);
    let (code, stderr) = validate(&pair, &pair);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_key_of_another_certificate_is_an_error() {
    let (certificate, other) = (material(&["www.example.test"], -1, 365), material(&["www.example.test"], -1, 365));
    let (code, stderr) = validate(&certificate, &other);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "error[tls-key-mismatch]: the TLS key from file `key.pem` does not belong to the certificate `TMP/cert.pem`"
        ),
        "{stderr}"
    );
}

#[test]
fn an_expired_certificate_is_an_error() {
    let pair = material(&["www.example.test"], -60, -1);
    let date = (time::OffsetDateTime::now_utc() - time::Duration::days(1)).date();
    let (code, stderr) = validate(&pair, &pair);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr
            .contains(&format!("error[tls-certificate-expired]: the TLS certificate `TMP/cert.pem` expired on {date}")),
        "{stderr}"
    );
}

#[test]
fn a_certificate_expiring_within_30_days_is_a_warning() {
    let pair = material(&["www.example.test"], -1, 10);
    let date = (time::OffsetDateTime::now_utc() + time::Duration::days(10)).date();
    let (code, stderr) = validate(&pair, &pair);
    assert_eq!(code, 0, "{stderr}");
    // 9 or 10 whole days, depending on the second the test runs in.
    let message = with_day_count_elided(&stderr);
    assert_eq!(
        message.as_deref(),
        Some(
            format!(
                "warning[tls-certificate-expiring]: the TLS certificate `TMP/cert.pem` expires in N days, on {date}"
            )
            .as_str()
        ),
        "{stderr}"
    );
}

#[test]
fn a_certificate_for_other_names_is_an_error() {
    let pair = material(&["api.example.test", "10.20.0.10"], -1, 365);
    let (code, stderr) = validate(&pair, &pair);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "error[tls-name-mismatch]: the TLS certificate `TMP/cert.pem` does not cover `www.example.test`; it names `api.example.test`, `10.20.0.10`"
        ),
        "{stderr}"
    );
}

/// The expiry warning's line with its day count replaced by `N`.
fn with_day_count_elided(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|line| line.starts_with("warning[tls-certificate-expiring]"))?;
    let (before, rest) = line.split_once("expires in ")?;
    let (_, after) = rest.split_once(" days")?;
    Some(format!("{before}expires in N days{after}"))
}

//! Rules about the certificate HAProxy will serve: it must be readable, in
//! date, and name the site. Whether the key belongs to it is checked where
//! the key (a secret) is resolved, in `render`.

use crate::diagnostic::Diagnostic;
use crate::inventory::{Inventory, TlsSettings};
use crate::tls::{self, EXPIRY_WARNING_DAYS};

pub fn check(inventory: &Inventory, found: &mut Vec<Diagnostic>) {
    let Some(settings) = inventory.load_balancer.as_ref().and_then(|lb| lb.tls.as_ref()) else {
        return;
    };
    // A path outside the repository is reported by the file rules.
    let Ok(path) = inventory.files.resolve(&settings.certificate.value) else { return };
    let span = settings.certificate.span;
    let certificate = match crate::source::read_bounded(&path, crate::source::limits::TEMPLATE)
        .map_err(|error| error.to_string())
        .and_then(|pem| tls::read_certificate(&pem).map_err(|error| error.to_string()))
    {
        Ok(certificate) => certificate,
        Err(reason) => {
            found.push(
                Diagnostic::error("tls-certificate-unreadable", format!("cannot use the TLS certificate `{}`: {reason}", path.display()))
                    .at(span, "needs a PEM certificate chain, leaf first")
                    .help("paths are relative to the inventory; for a lab inventory `infra lab up` generates a self-signed one"),
            );
            return;
        }
    };
    expiry(settings, &path.display().to_string(), &certificate, found);
    let domain = inventory.web.as_ref().map(|web| web.server_name.clone()).filter(|name| name.value != "_");
    if let Some(domain) = domain
        && !certificate.covers(&domain.value)
    {
        found.push(
            Diagnostic::error(
                "tls-name-mismatch",
                format!(
                    "the TLS certificate `{}` does not cover `{}`; it names {}",
                    path.display(),
                    domain.value,
                    quoted(&certificate.names())
                ),
            )
            .at(span, "this certificate")
            .also(domain.span, "the site's name")
            .help("use a certificate whose subjectAltName includes the site's name (or a wildcard for its parent)"),
        );
    }
}

fn expiry(settings: &TlsSettings, path: &str, certificate: &tls::CertificateInfo, found: &mut Vec<Diagnostic>) {
    let days_left = (certificate.not_after - tls::now()).div_euclid(86_400);
    let date = &certificate.not_after_date;
    if certificate.not_after <= tls::now() {
        found.push(
            Diagnostic::error("tls-certificate-expired", format!("the TLS certificate `{path}` expired on {date}"))
                .at(settings.certificate.span, "expired")
                .help("renew it; HAProxy would serve it and every client would refuse the connection"),
        );
    } else if days_left < EXPIRY_WARNING_DAYS {
        found.push(
            Diagnostic::warning(
                "tls-certificate-expiring",
                format!("the TLS certificate `{path}` expires in {days_left} days, on {date}"),
            )
            .at(settings.certificate.span, format!("expires within {EXPIRY_WARNING_DAYS} days"))
            .help("renew it before it expires"),
        );
    }
}

fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "no names".into();
    }
    names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

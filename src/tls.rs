//! TLS material for HAProxy: reading a certificate's names and validity,
//! matching a private key to it, and making a self-signed pair for the lab.
//!
//! These checks run before anything reaches a host, because HAProxy's own
//! reaction to a bad certificate is to refuse to start: a key that belongs to
//! another certificate, an expired certificate or one that does not name the
//! site would otherwise surface as an outage or a browser warning.

use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// Where HAProxy reads the certificate chain; the key sits beside it as
/// `infra.pem.key`, which HAProxy loads on its own (`ssl-load-extra-files`).
pub const CERTIFICATE_PATH: &str = "/etc/haproxy/certs/infra.pem";
pub const KEY_PATH: &str = "/etc/haproxy/certs/infra.pem.key";

/// A certificate warns this many days before it expires.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TlsError {
    #[error("it holds no PEM certificate")]
    NoCertificate,
    /// The parser's error is shown, not chained: a certificate problem is
    /// reported as one diagnostic line.
    #[error("it is not a valid X.509 certificate: {0}")]
    InvalidCertificate(x509_parser::nom::Err<x509_parser::error::X509Error>),
    #[error(
        "the key is not a PKCS#8 PEM private key (`BEGIN PRIVATE KEY`); convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY`"
    )]
    UnsupportedKey,
    #[error("cannot generate a certificate: {0}")]
    Generate(rcgen::Error),
}

/// What the checks need from the leaf certificate (the first in the chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// DNS names from subjectAltName, or the common name when there is none.
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// Seconds since the epoch.
    pub not_after: i64,
    /// `YYYY-MM-DD`, for messages.
    pub not_after_date: String,
    /// The raw subjectPublicKey bits, compared with the key's public half.
    public_key: Vec<u8>,
}

impl CertificateInfo {
    /// Whether the certificate is valid for `domain`, wildcards included
    /// (`*.example.test` covers `www.example.test`, not `a.b.example.test`).
    pub fn covers(&self, domain: &str) -> bool {
        if let Ok(address) = domain.parse::<IpAddr>() {
            return self.ip_addresses.contains(&address);
        }
        let domain = domain.to_ascii_lowercase();
        self.dns_names.iter().map(|name| name.to_ascii_lowercase()).any(|name| match name.strip_prefix("*.") {
            Some(parent) => domain.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => name == domain,
        })
    }

    /// The names, for messages.
    pub fn names(&self) -> Vec<String> {
        self.dns_names.iter().cloned().chain(self.ip_addresses.iter().map(ToString::to_string)).collect()
    }
}

/// Reads the first certificate of a PEM chain.
pub fn read_certificate(pem: &[u8]) -> Result<CertificateInfo, TlsError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| TlsError::NoCertificate)?;
    if block.label != "CERTIFICATE" {
        return Err(TlsError::NoCertificate);
    }
    let (_, certificate) =
        x509_parser::certificate::X509Certificate::from_der(&block.contents).map_err(TlsError::InvalidCertificate)?;
    let (mut dns_names, mut ip_addresses) = (Vec::new(), Vec::new());
    if let Ok(Some(extension)) = certificate.subject_alternative_name() {
        for name in &extension.value.general_names {
            match name {
                GeneralName::DNSName(name) => dns_names.push(name.to_string()),
                GeneralName::IPAddress(bytes) => ip_addresses.extend(ip_from_bytes(bytes)),
                _ => {}
            }
        }
    } else {
        let common_names = certificate.subject().iter_common_name().filter_map(|name| name.as_str().ok());
        dns_names.extend(common_names.map(str::to_string));
    }
    let not_after = certificate.validity().not_after;
    Ok(CertificateInfo {
        dns_names,
        ip_addresses,
        not_after: not_after.timestamp(),
        not_after_date: not_after.to_datetime().date().to_string(),
        public_key: certificate.public_key().subject_public_key.data.to_vec(),
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Whether `key_pem` is the private half of the certificate's public key.
pub fn key_matches(certificate: &CertificateInfo, key_pem: &str) -> Result<bool, TlsError> {
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|_| TlsError::UnsupportedKey)?;
    Ok(key.public_key_raw() == certificate.public_key.as_slice())
}

/// A self-signed certificate and its key (both PEM) for `names` (DNS names or
/// addresses), valid from yesterday for `days`.
pub fn self_signed(names: &[String], days: i64) -> Result<(String, String), TlsError> {
    let generate = TlsError::Generate;
    let key = rcgen::KeyPair::generate().map_err(generate)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(generate)?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    if let Some(first) = names.first() {
        params.distinguished_name.push(rcgen::DnType::CommonName, first.clone());
    }
    let certificate = params.self_signed(&key).map_err(generate)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str], days: i64) -> (CertificateInfo, String) {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let (certificate, key) = self_signed(&names, days).expect("generate");
        (read_certificate(certificate.as_bytes()).expect("parse"), key)
    }

    #[test]
    fn a_generated_pair_matches_and_names_what_was_asked() {
        let (certificate, key) = pair(&["www.example.test", "10.20.0.10"], 30);
        assert!(key_matches(&certificate, &key).expect("pkcs8 key"));
        assert!(certificate.covers("www.example.test"));
        assert!(certificate.covers("10.20.0.10"));
        assert!(!certificate.covers("example.test"));
        assert!(certificate.not_after > now());
    }

    #[test]
    fn another_certificates_key_does_not_match() {
        let (certificate, _) = pair(&["www.example.test"], 30);
        let (_, other_key) = pair(&["www.example.test"], 30);
        assert!(!key_matches(&certificate, &other_key).expect("pkcs8 key"));
    }

    #[test]
    fn wildcards_cover_one_label() {
        let (certificate, _) = pair(&["*.example.test"], 30);
        assert!(certificate.covers("www.example.test"));
        assert!(certificate.covers("WWW.Example.Test"));
        assert!(!certificate.covers("a.b.example.test"));
        assert!(!certificate.covers("example.test"));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(read_certificate(b"hello"), Err(TlsError::NoCertificate));
    }
}

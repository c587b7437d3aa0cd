//! A self-signed certificate for a lab inventory that asks for TLS: made
//! once, where the inventory says the certificate and key are, so the lab
//! serves HTTPS without anyone running openssl. Existing files are never
//! replaced.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::inventory::Inventory;
use crate::secret::SecretSource;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

/// The certificate made, if one was: its path and the names it covers.
pub struct Generated {
    pub certificate: PathBuf,
    pub names: Vec<String>,
}

/// Makes the certificate and key the inventory names when neither exists
/// yet and the key is a `{file: ...}` secret; otherwise leaves everything alone.
pub fn ensure(inventory: &Inventory) -> Result<Option<Generated>, CertificateError> {
    let Some(load_balancer) = &inventory.load_balancer else { return Ok(None) };
    let Some(tls) = &load_balancer.tls else { return Ok(None) };
    let SecretSource::File(key) = &tls.key.source else { return Ok(None) };
    let (certificate, key) =
        (inventory.files.base_dir.join(&tls.certificate.value), inventory.files.base_dir.join(key));
    if certificate.exists() || key.exists() {
        return Ok(None);
    }
    let mut names: Vec<String> =
        inventory.web.iter().map(|web| web.server_name.value.clone()).filter(|name| name != "_").collect();
    names.push(load_balancer.virtual_ip.value.addr().to_string());
    let (certificate_pem, key_pem) = crate::tls::self_signed(&names, 365)?;
    write(&key, &key_pem, 0o600)?;
    write(&certificate, &certificate_pem, 0o644)?;
    Ok(Some(Generated { certificate, names }))
}

fn write(path: &Path, content: &str, mode: u32) -> Result<(), CertificateError> {
    let error = |error| CertificateError::Write { path: path.to_path_buf(), error };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(error)?;
    file.write_all(content.as_bytes()).map_err(error)
}

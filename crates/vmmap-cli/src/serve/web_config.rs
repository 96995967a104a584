//! The web configuration file of Prometheus exporters (exporter-toolkit's
//! `--web.config.file`): TLS and basic auth, in the same YAML so that one
//! file serves node_exporter and vmmap alike.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: /etc/vmmap/cert.pem
//!   key_file: /etc/vmmap/key.pem
//! basic_auth_users:
//!   prometheus: $2y$10$...   # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':')
//! ```
//!
//! Parsed with serde_norway, the maintained fork of serde_yaml (which is
//! unmaintained). Unknown settings are refused rather than ignored: a
//! `client_auth_type` that silently did nothing would be worse than an
//! error. Relative paths are relative to the file's directory, as in
//! exporter-toolkit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::rustls;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// What the file asks for, checked and loaded.
pub(crate) struct WebConfig {
    /// TLS, when `tls_server_config` is given.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User name to bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
}

/// Reads and checks the file; the error says what is wrong and where.
pub(crate) fn load(path: &Path) -> Result<WebConfig, String> {
    let at = |what: String| format!("web config {}: {what}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("cannot read it: {e}")))?;
    let file: File = if text.trim().is_empty() {
        File::default()
    } else {
        serde_norway::from_str(&text).map_err(|e| at(format!("malformed: {e}")))?
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tls = match file.tls_server_config {
        None => None,
        Some(t) => {
            let (Some(cert), Some(key)) = (t.cert_file, t.key_file) else {
                return Err(at(
                    "tls_server_config needs both cert_file and key_file".into()
                ));
            };
            Some(Arc::new(
                tls_config(&dir.join(cert), &dir.join(key)).map_err(at)?,
            ))
        }
    };
    let users = file.basic_auth_users.unwrap_or_default();
    for (user, hash) in &users {
        if user.contains(':') {
            return Err(at(format!(
                "basic_auth_users: user name {user:?} contains ':', which basic auth cannot carry"
            )));
        }
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(at(format!(
                "basic_auth_users: the password of {user:?} is not a bcrypt hash ($2y$...); make one with `htpasswd -nBC 10 \"\" | tr -d ':'`"
            )));
        }
    }
    Ok(WebConfig { tls, users })
}

fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cert_file {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "cert_file {}: no PEM certificate in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("key_file {}: {e}", key.display()))?;
    // ring rather than rustls's default aws-lc-rs: no C toolchain build of
    // aws-lc. rustls deprecates it only for lacking post-quantum key
    // exchange, which a scrape endpoint's short-lived figures do not need.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| format!("cert_file {} and key_file: {e}", cert.display()))
}

//! TLS termination settings: one rustls `ServerConfig` per listener, shared by every worker so that session
//! resumption works whichever worker a returning client lands on. TLS 1.2 (which WeChat mini-programs require) and
//! 1.3 only; ALPN `http/1.1`, since a WebSocket upgrade is an HTTP/1.1 request.
//!
//! A listener serves one certificate, or several chosen by the client's SNI ([`sni`]); [`inspect`] says what is
//! wrong with them before a client finds out (names not covered, expiry).

pub mod inspect;
mod sni;

use crate::acme;
use crate::private_file::write_private;
use anyhow::{Context, Result, anyhow};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ResolvesServerCert;
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wssgate_config::TlsFiles;

/// Builds the listener's TLS settings, generating the development certificate first if it is due. An ACME
/// listener's certificates come from `acme`, the slot its ACME client fills.
pub fn server_config(
    files: &TlsFiles,
    port: u16,
    acme: Option<Arc<acme::Slot>>,
) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut alpn = vec![b"http/1.1".to_vec()];
    let resolver: Arc<dyn ResolvesServerCert> = match files {
        TlsFiles::Pem { cert, key } => {
            Arc::new(sni::SniResolver::single(certified(cert, key, &provider)?))
        }
        TlsFiles::Development { dir } => {
            let (cert, key) = ensure_dev_certificate(dir, port)?;
            Arc::new(sni::SniResolver::single(certified(&cert, &key, &provider)?))
        }
        TlsFiles::BySni(certificates) => {
            let mut loaded = Vec::with_capacity(certificates.len());
            for c in certificates {
                loaded.push((certified(&c.cert, &c.key, &provider)?, c.names.clone()));
            }
            Arc::new(sni::SniResolver::by_names(loaded))
        }
        TlsFiles::Acme(_) => {
            let slot = acme.ok_or_else(|| anyhow!("an ACME listener needs its ACME client"))?;
            // Validation handshakes (TLS-ALPN-01) offer only acme-tls/1, which then gets chosen.
            alpn.push(acme::ACME_TLS_ALPN.to_vec());
            Arc::new(acme::AcmeResolver(slot))
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS 1.2/1.3 with the ring provider")?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn;
    config.ticketer = rustls::crypto::ring::Ticketer::new().context("TLS session ticketer")?;
    Ok(Arc::new(config))
}

/// The certificate chain at `cert` with the private key at `key`, checked to fit each other.
fn certified(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>> {
    let chain = load_chain(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        anyhow!(
            "{}: cannot read a PEM private key (PKCS#8, RSA or EC): {e}",
            key.display()
        )
    })?;
    let certified = CertifiedKey::from_der(chain, key_der, provider).map_err(|e| {
        anyhow!(
            "{} and {}: the key does not fit the certificate: {e}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// The certificate files of a listener, with the names each is listed for (none for a single certificate).
pub(crate) fn certificate_files(files: &TlsFiles) -> Vec<(PathBuf, Vec<String>)> {
    match files {
        TlsFiles::Pem { cert, .. } => vec![(cert.clone(), Vec::new())],
        TlsFiles::Development { .. } | TlsFiles::Acme(_) => Vec::new(),
        TlsFiles::BySni(certificates) => certificates
            .iter()
            .map(|c| (c.cert.clone(), c.names.clone()))
            .collect(),
    }
}

pub(crate) fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow!(
                "{}: cannot read a PEM certificate chain: {e}",
                path.display()
            )
        })?;
    if chain.is_empty() {
        return Err(anyhow!("{}: holds no PEM certificate", path.display()));
    }
    Ok(chain)
}

/// The development certificate's files in `dir`: the certificate and its key.
fn dev_certificate_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    (dir.join("localhost.pem"), dir.join("localhost-key.pem"))
}

/// Whether `dir` holds a development certificate already. `check` generates none (it may run as another user than
/// the gateway, who must own the key): it reads one that exists, and otherwise says the first start will make it.
pub fn has_dev_certificate(dir: &Path) -> bool {
    let (cert, key) = dev_certificate_files(dir);
    cert.is_file() && key.is_file()
}

/// Returns the development certificate and key in `dir`, generating them the first time. Kept on disk so that the
/// certificate a browser accepted once stays valid on every later start.
fn ensure_dev_certificate(
    dir: &Path,
    port: u16,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (cert, key) = dev_certificate_files(dir);
    if !has_dev_certificate(dir) {
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let generated = rcgen::generate_simple_self_signed(names)
            .context("generating the development certificate")?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
        std::fs::write(&cert, generated.cert.pem())
            .with_context(|| format!("{}: cannot write", cert.display()))?;
        write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
        tracing::info!(
            "generated a self-signed development certificate in {}",
            dir.display()
        );
    }
    tracing::info!(
        "using the development certificate {}: open https://localhost:{port}/ once in your browser and accept it (a WebSocket cannot show a certificate prompt)",
        cert.display()
    );
    Ok((cert, key))
}

//! The ACME cache folder: the account's credentials and the current certificate with its key, kept with owner-only
//! permissions so a restart reuses them instead of ordering again.

use super::Issued;
use crate::private_file::write_private;
use anyhow::{Context, Result, anyhow};
use instant_acme::AccountCredentials;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use x509_parser::prelude::{FromDer, X509Certificate};

const ACCOUNT: &str = "account.json";
/// The directory URL the cached account and certificate come from: a cache of another ACME server (staging, say)
/// is not used.
const SOURCE: &str = "directory-url";
const CERTIFICATE: &str = "certificate.pem";
const KEY: &str = "certificate-key.pem";

/// Creates the cache folder (mode 0700) if it is missing and makes an existing one owner-only.
pub fn prepare(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("{}: cannot create the ACME cache folder", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("{}: cannot make the ACME cache owner-only", dir.display()))
}

/// Whether the cache holds what `directory` issued.
fn from(dir: &Path, directory: &str) -> bool {
    std::fs::read_to_string(dir.join(SOURCE)).is_ok_and(|source| source.trim() == directory)
}

pub fn load_account(dir: &Path, directory: &str) -> Result<Option<AccountCredentials>> {
    if !from(dir, directory) {
        return Ok(None);
    }
    let path = dir.join(ACCOUNT);
    match std::fs::read_to_string(&path) {
        Ok(json) => serde_json::from_str(&json)
            .map(Some)
            .with_context(|| format!("{}: not ACME account credentials", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

/// Keeps a new account, made at `directory`; a certificate cached from another directory is dropped with the old
/// account.
pub(crate) fn save_account(
    dir: &Path,
    directory: &str,
    credentials: &AccountCredentials,
) -> Result<()> {
    if !from(dir, directory) {
        for stale in [CERTIFICATE, KEY] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
    }
    write_private(
        &dir.join(ACCOUNT),
        serde_json::to_string(credentials)?.as_bytes(),
    )?;
    write_private(&dir.join(SOURCE), directory.as_bytes())
}

/// Drops the cached account (the ACME server no longer knows it); the next order creates one.
pub(crate) fn forget_account(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(ACCOUNT));
}

/// The cached certificate, if `directory` issued it for exactly `domains` and it has not expired.
pub(crate) fn load_certificate(
    dir: &Path,
    domains: &[String],
    directory: &str,
) -> Result<Option<Issued>> {
    let (cert, key) = (dir.join(CERTIFICATE), dir.join(KEY));
    if !cert.is_file() || !key.is_file() || !from(dir, directory) {
        return Ok(None);
    }
    let issued = issued_from_pem(
        &std::fs::read_to_string(&cert)?,
        &std::fs::read_to_string(&key)?,
    )
    .with_context(|| format!("{}", cert.display()))?;
    let names = names_of(&issued, &cert)?;
    let mut wanted = domains.to_vec();
    wanted.sort();
    if names != wanted || issued.not_after <= SystemTime::now() {
        return Ok(None);
    }
    Ok(Some(issued))
}

pub fn save_certificate(dir: &Path, issued: &Issued) -> Result<()> {
    write_private(&dir.join(CERTIFICATE), issued.chain_pem.as_bytes())?;
    write_private(&dir.join(KEY), issued.key_pem.as_bytes())
}

/// A certificate chain and private key in PEM, checked to fit, with the leaf's validity.
pub(crate) fn issued_from_pem(chain_pem: &str, key_pem: &str) -> Result<Issued> {
    let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("not a PEM certificate chain: {e}"))?;
    let leaf = chain
        .first()
        .ok_or_else(|| anyhow!("an empty certificate chain"))?;
    let (_, parsed) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|e| anyhow!("cannot parse the certificate: {e}"))?;
    let at = |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
    let (not_before, not_after) = (
        at(parsed.validity().not_before.timestamp()),
        at(parsed.validity().not_after.timestamp()),
    );
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| anyhow!("not a PEM private key: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider)?;
    Ok(Issued {
        key: Arc::new(key),
        chain_pem: chain_pem.to_owned(),
        key_pem: key_pem.to_owned(),
        not_before,
        not_after,
    })
}

/// The DNS names of the certificate at `path`, sorted.
fn names_of(issued: &Issued, path: &Path) -> Result<Vec<String>> {
    let (_, parsed) = X509Certificate::from_der(issued.key.cert[0].as_ref())
        .map_err(|e| anyhow!("{}: cannot parse the certificate: {e}", path.display()))?;
    let mut names = crate::tls::inspect::dns_names(&parsed, path)?;
    names.sort();
    Ok(names)
}

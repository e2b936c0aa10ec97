//! What is wrong with a listener's certificates, said before a client finds out: a certificate listed for names it
//! does not cover, one that expires within [`EXPIRY_WARNING_DAYS`] days (warnings), or one that has expired (an
//! error). `wssgate check` prints them; `serve` and a reload log the warnings and refuse an expired certificate.

use anyhow::{Result, anyhow};
use std::path::Path;
use wssgate_config::TlsFiles;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Days before expiry from which a certificate is warned about.
pub(crate) const EXPIRY_WARNING_DAYS: i64 = 14;

/// What [`inspect`] found.
#[derive(Default)]
pub struct Report {
    pub warnings: Vec<String>,
    /// The earliest expiry among the listener's certificates (Unix seconds), if it has certificate files.
    pub expires: Option<i64>,
}

/// The warnings about a listener's certificates, or an error naming an expired or unreadable one.
pub fn inspect(files: &TlsFiles) -> Result<Report> {
    let mut report = Report::default();
    let warnings = &mut report.warnings;
    for (path, names) in super::certificate_files(files) {
        let chain = super::load_chain(&path)?;
        let (_, certificate) = X509Certificate::from_der(chain[0].as_ref())
            .map_err(|e| anyhow!("{}: cannot parse the certificate: {e}", path.display()))?;
        let expires = certificate.validity().not_after.timestamp();
        report.expires = Some(report.expires.map_or(expires, |e| e.min(expires)));
        let left = expires - now();
        if left <= 0 {
            return Err(anyhow!(
                "{}: the certificate expired on {}",
                path.display(),
                certificate.validity().not_after
            ));
        }
        if left < EXPIRY_WARNING_DAYS * 24 * 3600 {
            warnings.push(format!(
                "{}: the certificate expires in {} days, on {}",
                path.display(),
                left / (24 * 3600),
                certificate.validity().not_after
            ));
        }
        let covered = dns_names(&certificate, &path)?;
        for name in names.iter().filter(|n| !covers(&covered, n)) {
            warnings.push(format!(
                "{}: listed for `{name}`, which the certificate does not cover (it covers: {})",
                path.display(),
                covered.join(", ")
            ));
        }
    }
    Ok(report)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The DNS names of the certificate's subject alternative names, in lower case; errors name `path`.
pub(crate) fn dns_names(certificate: &X509Certificate<'_>, path: &Path) -> Result<Vec<String>> {
    let san = certificate
        .subject_alternative_name()
        .map_err(|e| anyhow!("{}: bad subject alternative names: {e}", path.display()))?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Whether a certificate for `covered` names serves `name` (both may be wildcards).
fn covers(covered: &[String], name: &str) -> bool {
    covered.iter().any(|c| {
        c == name
            || c.strip_prefix("*.").is_some_and(|parent| {
                !name.starts_with("*.")
                    && name.split_once('.').is_some_and(|(_, rest)| rest == parent)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn a_wildcard_covers_one_label_only() {
        let covered = vec!["*.example.com".to_owned(), "example.com".to_owned()];
        assert!(covers(&covered, "a.example.com"));
        assert!(covers(&covered, "example.com"));
        assert!(covers(&covered, "*.example.com"));
        assert!(!covers(&covered, "a.b.example.com"));
        assert!(!covers(&covered, "example.org"));
    }
}

//! Choosing a listener's certificate by the server name the client asks for (SNI): an exact name first, then a
//! wildcard one label up, then the first certificate listed — also for clients that send no name.

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct SniResolver {
    /// The first certificate: for no name and unknown names.
    default: Arc<CertifiedKey>,
    /// By exact lower-case name.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// By the name after `*.`: `example.com` for `*.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl SniResolver {
    /// One certificate for every name.
    pub fn single(certificate: Arc<CertifiedKey>) -> Self {
        SniResolver {
            default: certificate,
            exact: HashMap::new(),
            wildcard: HashMap::new(),
        }
    }

    /// Certificates with the names each serves, the first the default; a name listed twice goes to the first.
    pub(crate) fn by_names(certificates: Vec<(Arc<CertifiedKey>, Vec<String>)>) -> Self {
        let default = certificates
            .first()
            .map(|(c, _)| c.clone())
            .expect("a listener's certificate list is never empty");
        let mut resolver = SniResolver::single(default);
        for (certificate, names) in certificates {
            for name in names {
                let table = match name.strip_prefix("*.") {
                    Some(parent) => resolver.wildcard.entry(parent.to_owned()),
                    None => resolver.exact.entry(name),
                };
                table.or_insert_with(|| certificate.clone());
            }
        }
        resolver
    }

    /// The certificate for server name `name` (lower case).
    fn choose(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = name else {
            return self.default.clone();
        };
        if let Some(exact) = self.exact.get(name) {
            return exact.clone();
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
            .clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello.server_name().map(str::to_ascii_lowercase);
        Some(self.choose(name.as_deref()))
    }
}

//! `[[upstream]]`: a backend the operator names, with the caps that bound what plugins may ask of it.
//!
//! The URL is split here into the parts a request may never change (scheme, authority) and the base path a
//! plugin's path is appended to, so that the request code builds URIs from checked parts only.

use anyhow::{Context, Result, anyhow, bail};
use http::uri::{Authority, Scheme};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Below the default `accept_timeout_ms` (10 s), so a deferred upgrade waiting on a backend gets the backend's
/// failure (502/504 from the plugin) before the gateway's own 504.
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_MAX_IN_FLIGHT: usize = 1_024;
const DEFAULT_MAX_RESPONSE_BYTES: usize = 1 << 20;
const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;
const DEFAULT_POOL_MAX_IDLE: usize = 256;
const DEFAULT_POOL_IDLE_TIMEOUT_MS: u64 = 60_000;

/// `[[upstream]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    name: String,
    url: String,
    ca: Option<String>,
    timeout_ms: Option<u64>,
    max_in_flight: Option<usize>,
    max_in_flight_per_route: Option<usize>,
    max_response_bytes: Option<usize>,
    max_request_bytes: Option<usize>,
    pool_max_idle: Option<usize>,
    pool_idle_timeout_ms: Option<u64>,
}

/// One upstream, checked.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// What routes grant and plugins name.
    pub name: String,
    pub scheme: Scheme,
    /// Host and port every request goes to; a plugin cannot change it.
    pub authority: Authority,
    /// The URL's path without its trailing `/` (empty for the root): a plugin's path is appended to it.
    pub base_path: String,
    /// A PEM file of roots to trust instead of the system's (a private CA).
    pub ca: Option<PathBuf>,
    /// The longest a request may take, connect to last body byte; a plugin may ask for less.
    pub timeout: Duration,
    /// Requests in flight per worker.
    pub max_in_flight: usize,
    /// Requests in flight per worker from one route's plugin (the route's share of `max_in_flight`), so that one
    /// route granted this upstream cannot take every place and starve the others granted it. Set from
    /// `max_in_flight_per_route` by [`UpstreamConfig::share_among`] once the routes are known.
    pub max_in_flight_per_route: usize,
    /// `max_in_flight_per_route` as written, if it was.
    route_share: Option<usize>,
    pub max_response_bytes: usize,
    pub max_request_bytes: usize,
    /// Idle keep-alive connections kept per worker.
    pub pool_max_idle: usize,
    pub pool_idle_timeout: Duration,
    /// For https: the roots its certificate is checked against, built when the config loads.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl UpstreamConfig {
    /// Checks one `[[upstream]]`; `resolve` anchors a relative `ca` at the config's folder. Errors name the field.
    pub(crate) fn from_raw(
        raw: RawUpstream,
        resolve: impl Fn(&str) -> PathBuf,
    ) -> Result<Self, String> {
        let name = raw.name;
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if name.is_empty() || name.len() > 64 || !name.chars().all(allowed) {
            return Err(format!(
                "[[upstream]] `name` {name:?} must be 1 to 64 letters, digits, `-`, `_` or `.`"
            ));
        }
        let uri: http::Uri = raw
            .url
            .parse()
            .map_err(|e| format!("[[upstream]] {name}: `url` {:?} is not a URL: {e}", raw.url))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => {
                return Err(format!(
                    "[[upstream]] {name}: `url` {:?} must start with http:// or https://",
                    raw.url
                ));
            }
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("[[upstream]] {name}: `url` {:?} names no host", raw.url))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "[[upstream]] {name}: `url` must not carry credentials; plugins send them as headers"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("[[upstream]] {name}: `url` must not carry a query"));
        }
        let positive = |value: Option<u64>, default: u64, key: &str| match value {
            Some(0) => Err(format!("[[upstream]] {name}: `{key}` must be at least 1")),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let count = |value: Option<usize>, default: usize, key: &str| {
            positive(value.map(|v| v as u64), default as u64, key).map(|v| v as usize)
        };
        let mut upstream = UpstreamConfig {
            tls: None,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            ca: raw.ca.as_deref().map(resolve),
            timeout: Duration::from_millis(positive(
                raw.timeout_ms,
                DEFAULT_TIMEOUT_MS,
                "timeout_ms",
            )?),
            max_in_flight: count(raw.max_in_flight, DEFAULT_MAX_IN_FLIGHT, "max_in_flight")?,
            max_in_flight_per_route: 0,
            route_share: raw
                .max_in_flight_per_route
                .map(|share| count(Some(share), 0, "max_in_flight_per_route"))
                .transpose()?,
            max_response_bytes: count(
                raw.max_response_bytes,
                DEFAULT_MAX_RESPONSE_BYTES,
                "max_response_bytes",
            )?,
            max_request_bytes: count(
                raw.max_request_bytes,
                DEFAULT_MAX_REQUEST_BYTES,
                "max_request_bytes",
            )?,
            pool_max_idle: raw.pool_max_idle.unwrap_or(DEFAULT_POOL_MAX_IDLE),
            pool_idle_timeout: Duration::from_millis(positive(
                raw.pool_idle_timeout_ms,
                DEFAULT_POOL_IDLE_TIMEOUT_MS,
                "pool_idle_timeout_ms",
            )?),
            name,
            scheme,
            authority,
        };
        upstream.tls = upstream.tls_config().map_err(|e| format!("{e:#}"))?;
        upstream.share_among(1);
        Ok(upstream)
    }

    /// Sets each route's share of `max_in_flight`, given how many routes grant this upstream: as written (at most
    /// `max_in_flight`), or by default all of it for a route that has the upstream to itself and half of it (at
    /// least 1) when routes share it, so that one route, whatever its clients do, leaves the others room.
    pub(crate) fn share_among(&mut self, routes: usize) {
        let default = if routes > 1 {
            (self.max_in_flight / 2).max(1)
        } else {
            self.max_in_flight
        };
        self.max_in_flight_per_route = self.route_share.unwrap_or(default).min(self.max_in_flight);
    }

    /// Whether `other` is the same upstream with the same settings (a reload keeps its client and pool).
    pub fn same_as(&self, other: &UpstreamConfig) -> bool {
        (
            &self.name,
            &self.scheme,
            &self.authority,
            &self.base_path,
            &self.ca,
        ) == (
            &other.name,
            &other.scheme,
            &other.authority,
            &other.base_path,
            &other.ca,
        ) && (self.timeout, self.pool_idle_timeout) == (other.timeout, other.pool_idle_timeout)
            && (
                self.max_in_flight,
                self.max_in_flight_per_route,
                self.max_response_bytes,
                self.max_request_bytes,
                self.pool_max_idle,
            ) == (
                other.max_in_flight,
                other.max_in_flight_per_route,
                other.max_response_bytes,
                other.max_request_bytes,
                other.pool_max_idle,
            )
    }

    /// The TLS settings for an https upstream: its `ca` alone when set, else the system's roots. Built when the
    /// config loads, so `wssgate check` reports an unreadable `ca`.
    fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>> {
        if self.scheme != Scheme::HTTPS {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?;
        let config = match &self.ca {
            Some(ca) => builder
                .with_root_certificates(read_roots(ca).with_context(|| {
                    format!("[[upstream]] {}: `ca` {}", self.name, ca.display())
                })?)
                .with_no_client_auth(),
            None => {
                use rustls_platform_verifier::BuilderVerifierExt;
                builder
                    .with_platform_verifier()
                    .map_err(|e| anyhow!("[[upstream]] {}: the system's roots: {e}", self.name))?
                    .with_no_client_auth()
            }
        };
        Ok(Some(Arc::new(config)))
    }
}

/// Every certificate in a PEM file, as roots.
fn read_roots(path: &Path) -> Result<rustls::RootCertStore> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).context("cannot read it")? {
        roots
            .add(cert.context("not a PEM certificate")?)
            .context("not a usable root certificate")?;
    }
    if roots.is_empty() {
        bail!("holds no certificate");
    }
    Ok(roots)
}

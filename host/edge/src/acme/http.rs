//! The ACME client's HTTP: a hyper client over rustls on ring, like instant-acme's own, wrapped to remember the
//! `Retry-After` an ACME server sends with a refusal (429, 503), which instant-acme does not pass on with its
//! errors, so the back-off can honour it.

use bytes::Bytes;
use http::HeaderMap;
use http::header::RETRY_AFTER;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use wssgate_hub::sync;

/// When the ACME server last asked to be left alone until.
pub type RetryAfter = Arc<Mutex<Option<SystemTime>>>;

pub struct AcmeHttp {
    inner: Client<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
    retry_after: RetryAfter,
}

impl AcmeHttp {
    /// A client trusting `ca` (a private ACME server's root) or else the system's roots; refusals' `Retry-After`
    /// goes into `retry_after`.
    pub fn new(ca: Option<&Path>, retry_after: RetryAfter) -> anyhow::Result<AcmeHttp> {
        use anyhow::Context;
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match ca {
            Some(ca) => {
                use rustls::pki_types::pem::PemObject;
                let root =
                    rustls::pki_types::CertificateDer::from_pem_file(ca).with_context(|| {
                        format!("{}: cannot read the ACME server's root", ca.display())
                    })?;
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(root)
                    .with_context(|| format!("{}: not a usable root certificate", ca.display()))?;
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                builder.with_tls_config(config)
            }
            None => builder
                .try_with_platform_verifier()
                .context("the system's root certificates")?,
        };
        let connector = builder.https_only().enable_http1().enable_http2().build();
        Ok(AcmeHttp {
            inner: Client::builder(TokioExecutor::new()).build(connector),
            retry_after,
        })
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let response = HttpClient::request(&self.inner, request);
        let retry_after = self.retry_after.clone();
        Box::pin(async move {
            let response = response.await?;
            let status = response.parts.status.as_u16();
            if (status == 429 || status == 503)
                && let Some(at) = parse_retry_after(&response.parts.headers, SystemTime::now())
            {
                *sync::lock(&retry_after) = Some(at);
            }
            Ok(response)
        })
    }
}

/// `Retry-After` as a time: delay-seconds or an HTTP-date (RFC 9110 section 10.2.3).
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<SystemTime> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let at = match u64::from_str(value) {
        Ok(seconds) => now
            .checked_add(Duration::from_secs(seconds))
            .unwrap_or(now + MAX_WAIT),
        Err(_) => httpdate::parse_http_date(value).ok()?,
    };
    // A server cannot park the renewals for longer than a day at a time.
    Some(at.min(now + MAX_WAIT))
}

/// The longest wait a `Retry-After` is taken for.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

/// How long from now until `at`, if the server asked to wait.
pub fn take_wait(retry_after: &RetryAfter) -> Option<Duration> {
    let at = sync::lock(retry_after).take()?;
    at.duration_since(SystemTime::now()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(
            parse_retry_after(&headers, now),
            Some(now + Duration::from_secs(120))
        );
        headers.insert(
            RETRY_AFTER,
            "Sun, 09 Sep 2001 01:48:20 GMT".parse().unwrap(),
        );
        assert_eq!(
            parse_retry_after(&headers, now),
            Some(now + Duration::from_secs(100)),
            "now is 01:46:40"
        );
        headers.insert(RETRY_AFTER, "99999999999999999999".parse().unwrap());
        assert_eq!(
            parse_retry_after(&headers, now),
            None,
            "not a u64, not a date"
        );
        headers.insert(RETRY_AFTER, "18446744073709551615".parse().unwrap());
        assert_eq!(parse_retry_after(&headers, now), Some(now + MAX_WAIT));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&headers, now), None);
    }
}

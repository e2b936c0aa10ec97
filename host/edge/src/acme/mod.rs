//! Automatic certificates over ACME (RFC 8555), validated with TLS-ALPN-01 on the listener's own port.
//!
//! A listener with `[listener.acme]` serves at once: with the cached certificate if there is one, or, until the
//! first is obtained, only the `acme-tls/1` validation handshakes (other TLS clients are refused, and the log says
//! why). A background thread obtains the certificate, then renews it at about two thirds of its lifetime; a new
//! certificate applies to the next handshake and no connection is dropped. Failures are logged with the ACME
//! server's problem document and retried with a back-off that doubles, and waits at least as long as the server
//! asked (`Retry-After`, a rate limit).

mod cache;
mod http;
mod issue;

use anyhow::{Context, Result};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use wssgate_config::AcmeConfig;
use wssgate_hub::metrics::Metrics;
use wssgate_hub::sync;

/// The ALPN protocol of TLS-ALPN-01 validation handshakes (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// The first wait before retrying a failed order; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(3600);

/// A listener's ACME certificate as handshakes see it, shared with the thread that obtains and renews it.
pub struct Slot {
    /// The certificate served now, with its validity; `None` until the first is obtained.
    current: RwLock<Option<Issued>>,
    /// TLS-ALPN-01 challenge certificates by domain, while an order is being validated.
    challenges: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    /// Set once a refused handshake has been logged, so a busy listener logs it once.
    refusal_logged: AtomicBool,
    /// The listener's address, for log lines and the expiry metric.
    listener: String,
    /// The time the ACME server last asked to be left alone until (its `Retry-After`).
    retry_after: http::RetryAfter,
}

/// An obtained certificate.
#[derive(Clone)]
struct Issued {
    key: Arc<CertifiedKey>,
    /// The chain and key as the ACME server and the order gave them, for the cache.
    chain_pem: String,
    key_pem: String,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Issued {
    /// When to renew: two thirds into the certificate's lifetime.
    fn renew_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + lifetime * 2 / 3
    }
}

impl Slot {
    fn new(listener: String) -> Slot {
        Slot {
            current: RwLock::new(None),
            challenges: Mutex::default(),
            refusal_logged: AtomicBool::new(false),
            listener,
            retry_after: Arc::default(),
        }
    }

    fn install(&self, issued: Issued, metrics: &Metrics) {
        metrics.certificate_expiry(&self.listener, "acme", unix_seconds(issued.not_after));
        *sync::write(&self.current) = Some(issued);
    }

    fn current(&self) -> Option<Issued> {
        sync::read(&self.current).clone()
    }

    fn set_challenge(&self, domain: &str, certificate: Option<Arc<CertifiedKey>>) {
        let mut challenges = sync::lock(&self.challenges);
        match certificate {
            Some(c) => challenges.insert(domain.to_owned(), c),
            None => challenges.remove(domain),
        };
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "acme::Slot({})", self.listener)
    }
}

/// Chooses the certificate of a handshake on an ACME listener.
#[derive(Debug)]
pub struct AcmeResolver(pub Arc<Slot>);

impl ResolvesServerCert for AcmeResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // RFC 8737: a validation offers acme-tls/1 and nothing else.
        let validation = client_hello.alpn().is_some_and(|protocols| {
            let offered: Vec<&[u8]> = protocols.collect();
            offered == [ACME_TLS_ALPN]
        });
        if validation {
            let name = client_hello.server_name()?.to_ascii_lowercase();
            let challenges = sync::lock(&self.0.challenges);
            return challenges.get(&name).cloned();
        }
        let current = self.0.current().map(|issued| issued.key);
        if current.is_none() && !self.0.refusal_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(listener = %self.0.listener,
                "no ACME certificate yet: refusing TLS clients until one is obtained (validation handshakes are served)");
        }
        current
    }
}

/// Starts obtaining and renewing the certificate of the listener at `listener`: loads the cached one into the slot
/// it returns, and runs the ACME client on a thread of its own for the rest of the process's life.
pub fn start(config: &AcmeConfig, listener: String, metrics: Arc<Metrics>) -> Result<Arc<Slot>> {
    let slot = Arc::new(Slot::new(listener));
    cache::prepare(&config.cache)?;
    match cache::load_certificate(&config.cache, &config.domains, &config.directory) {
        Ok(Some(issued)) => {
            tracing::info!(listener = %slot.listener, "ACME: using the cached certificate for {}", config.domains.join(", "));
            slot.install(issued, &metrics);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(listener = %slot.listener, "ACME: ignoring the cached certificate: {e:#}")
        }
    }
    let (config, worker_slot) = (config.clone(), slot.clone());
    std::thread::Builder::new()
        .name("wssgate-acme".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the ACME thread's runtime");
            runtime.block_on(keep_certified(config, worker_slot, metrics));
        })
        .context("spawning the ACME thread")?;
    Ok(slot)
}

/// Obtains a certificate whenever none is valid or renewal is due, forever; retries failures with a back-off.
async fn keep_certified(config: AcmeConfig, slot: Arc<Slot>, metrics: Arc<Metrics>) {
    let mut retry = FIRST_RETRY;
    loop {
        if let Some(issued) = slot.current() {
            let wait = issued
                .renew_at()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::time::sleep(wait).await;
        }
        match issue::obtain(&config, &slot).await {
            Ok(issued) => {
                tracing::info!(listener = %slot.listener,
                    "ACME: obtained a certificate for {} valid until {}; renewing at {}",
                    config.domains.join(", "), unix_seconds(issued.not_after), unix_seconds(issued.renew_at()));
                if let Err(e) = cache::save_certificate(&config.cache, &issued) {
                    tracing::warn!(listener = %slot.listener, "ACME: cannot cache the certificate: {e:#}");
                }
                slot.install(issued, &metrics);
                retry = FIRST_RETRY;
            }
            Err(failure) => {
                // The longest of the back-off and what the server asked for.
                let asked = [failure.retry_after, http::take_wait(&slot.retry_after)];
                let wait = asked.into_iter().flatten().fold(retry, Duration::max);
                tracing::error!(listener = %slot.listener, directory = %config.directory,
                    "ACME: obtaining a certificate for {} failed, retrying in {wait:?}: {:#}",
                    config.domains.join(", "), failure.error);
                tokio::time::sleep(wait).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

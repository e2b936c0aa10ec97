//! One ACME order: the account (from the cache, or created), the order for the listener's domains, a TLS-ALPN-01
//! challenge certificate per domain served by the listener itself while the server validates, and the certificate.

use super::http::AcmeHttp;
use super::{Issued, Slot, cache};
use anyhow::{Context, anyhow};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use std::sync::Arc;
use std::time::Duration;
use wssgate_config::AcmeConfig;

/// How long to poll an order for validation and for the certificate.
const POLLING: RetryPolicy = RetryPolicy::new().timeout(Duration::from_secs(60));
/// How long to wait after the ACME server said we are rate limited.
const RATE_LIMITED_WAIT: Duration = Duration::from_secs(3600);

/// Why an order failed, and when the server asked to be tried again, if it said.
pub(crate) struct Failure {
    pub error: anyhow::Error,
    pub retry_after: Option<Duration>,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        let retry_after = error
            .downcast_ref::<instant_acme::Error>()
            .and_then(server_wait);
        Failure { error, retry_after }
    }
}

/// The wait an ACME error asks for: a rate limit, or an order the server said to poll later.
fn server_wait(error: &instant_acme::Error) -> Option<Duration> {
    match error {
        error if is_problem(error, "rateLimited") => Some(RATE_LIMITED_WAIT),
        instant_acme::Error::Timeout(Some(at)) => {
            Some(at.saturating_duration_since(std::time::Instant::now()))
        }
        _ => None,
    }
}

/// Runs one order for `config.domains` and returns the certificate.
pub(crate) async fn obtain(config: &AcmeConfig, slot: &Slot) -> Result<Issued, Failure> {
    let account = account(config, slot).await?;
    let identifiers: Vec<Identifier> = config
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = match account.new_order(&NewOrder::new(&identifiers)).await {
        Ok(order) => order,
        Err(e) => {
            if is_problem(&e, "accountDoesNotExist") || is_problem(&e, "unauthorized") {
                tracing::warn!(
                    "ACME: the server refused the cached account ({e}); the next attempt creates one"
                );
                cache::forget_account(&config.cache);
            }
            return Err(anyhow::Error::new(e).context("placing the order").into());
        }
    };
    let mut validating = Vec::new();
    let result = async {
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.context("reading an authorization")?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(anyhow!("an authorization is {other:?}")),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| anyhow!("the ACME server offers no tls-alpn-01 challenge"))?;
            let domain = challenge.identifier().to_string();
            let proof =
                challenge_certificate(&domain, challenge.key_authorization().digest().as_ref())?;
            slot.set_challenge(&domain, Some(proof));
            validating.push(domain);
            challenge
                .set_ready()
                .await
                .context("answering the challenge")?;
        }
        let status = order
            .poll_ready(&POLLING)
            .await
            .context("waiting for validation")?;
        if status != OrderStatus::Ready {
            return Err(anyhow!("the order is {status:?} after validation"));
        }
        let key_pem = order.finalize().await.context("finalizing the order")?;
        let chain_pem = order
            .poll_certificate(&POLLING)
            .await
            .context("downloading the certificate")?;
        cache::issued_from_pem(&chain_pem, &key_pem)
    }
    .await;
    for domain in &validating {
        slot.set_challenge(domain, None);
    }
    Ok(result?)
}

/// Whether `error` is the ACME problem `urn:ietf:params:acme:error:<kind>`.
fn is_problem(error: &instant_acme::Error, kind: &str) -> bool {
    matches!(error, instant_acme::Error::Api(problem)
        if problem.r#type.as_deref().and_then(|t| t.strip_prefix("urn:ietf:params:acme:error:")) == Some(kind))
}

/// The cached account of this directory, or a new one (cached) when there is none; an account the server refuses
/// is forgotten when an order fails (see [`obtain`]).
async fn account(config: &AcmeConfig, slot: &Slot) -> anyhow::Result<Account> {
    if let Some(credentials) = cache::load_account(&config.cache, &config.directory)? {
        match builder(config, slot)?.from_credentials(credentials).await {
            Ok(account) => return Ok(account),
            Err(e) => {
                tracing::warn!("ACME: the cached account is not usable ({e}); creating a new one")
            }
        }
    }
    let contact = config.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contacts,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials): (Account, AccountCredentials) = builder(config, slot)?
        .create(&new, config.directory.clone(), None)
        .await
        .with_context(|| format!("creating an account at {}", config.directory))?;
    cache::save_account(&config.cache, &config.directory, &credentials)?;
    Ok(account)
}

fn builder(config: &AcmeConfig, slot: &Slot) -> anyhow::Result<instant_acme::AccountBuilder> {
    let http = AcmeHttp::new(config.ca.as_deref(), slot.retry_after.clone())?;
    Ok(Account::builder_with_http(Box::new(http)))
}

/// The self-signed certificate that answers a TLS-ALPN-01 validation for `domain` (RFC 8737): it carries the
/// key authorization's digest in the critical acmeIdentifier extension.
fn challenge_certificate(domain: &str, digest: &[u8]) -> anyhow::Result<Arc<CertifiedKey>> {
    let mut params = CertificateParams::new(vec![domain.to_owned()])?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let key = KeyPair::generate()?;
    let certificate = params.self_signed(&key)?;
    let provider = rustls::crypto::ring::default_provider();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![certificate.der().clone()];
    // `CertifiedKey::from_der` would parse the certificate to match the key, and refuse the critical
    // acmeIdentifier extension it does not know; the key is the one just generated for it.
    let signer = provider.key_provider.load_private_key(key_der)?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

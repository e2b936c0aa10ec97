//! A route's keys in a JetStream KV bucket (history 1), written as the KV convention lays them out: the subject
//! `$KV.<bucket>.<key token>`, a deletion as a message with `KV-Operation: DEL`.
//!
//! A key's revision is its message's stream sequence, so revisions grow with every write of the route and are never
//! 0. Compare-and-set publishes with `Nats-Expected-Last-Subject-Sequence`: the sequence of the subject's last
//! message, whatever it is (a live value, an expired one, a deletion marker), once the live revision (0 for none)
//! matched what the plugin gave; a refusal means someone wrote in between, and the write reads again.
//!
//! nats-server 2.9 has no per-message TTL, so a value's expiry travels in a `Wssgate-Expires` header (ms since the
//! Unix epoch): an expired value reads as absent and is deleted when a read finds it. A deletion publishes its
//! marker, then purges the key's messages up to it, so a removed key leaves nothing that counts toward `max_keys`.
//!
//! The quotas are the bucket's limits, with discard-new: `max_keys` is `max_msgs` (with history 1, one message per
//! key; a deletion marker counts only until its purge, right after it), `max_bytes` is the bucket's `max_bytes`.
//! Two ways they differ from counting keys and values: JetStream counts each message's stored size, so the key's
//! subject, the headers and some 30 bytes of framing count too (about 90 bytes a key with a short name, up to 200
//! with a hashed one); and an expired value counts toward both until a read finds it or a write replaces or removes
//! it. A write that replaces a key's value at the `max_keys` cap is taken (JetStream lets a message replace its
//! subject's last at the limit).

use super::broker::{Broker, Refusal};
use super::names::RouteNames;
use crate::{StoreError, Stored, now_ms};
use async_nats::HeaderMap;
use async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use std::time::Duration;
use wssgate_config::memory::StorageConfig;

const EXPIRES: &str = "Wssgate-Expires";
const OPERATION: &str = "KV-Operation";
/// Writes that keep losing the race to other writers of the same key give up after this many tries.
const MAX_ATTEMPTS: usize = 64;

/// A key's subject as it is now.
struct Current {
    /// The sequence of the subject's last message, of any kind.
    sequence: Option<u64>,
    /// The value, when it is live (not deleted, not expired).
    live: Option<Stored>,
}

impl Current {
    fn revision(&self) -> u64 {
        self.live.as_ref().map_or(0, |stored| stored.revision)
    }
}

async fn current(broker: &Broker, names: &RouteNames, subject: &str) -> Result<Current, Refusal> {
    let stream = broker
        .js
        .get_stream_no_info(names.kv_stream())
        .await
        .map_err(|e| Refusal::Failed(e.to_string()))?;
    let message = match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => message,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
            return Ok(Current {
                sequence: None,
                live: None,
            });
        }
        Err(e) => return Err(Refusal::of_get(&e)),
    };
    let deleted = message.headers.get(OPERATION).is_some();
    let expires_at_ms = message
        .headers
        .get(EXPIRES)
        .and_then(|v| v.as_str().parse::<u64>().ok());
    let expired = expires_at_ms.is_some_and(|at| at <= now_ms());
    Ok(Current {
        sequence: Some(message.sequence),
        live: (!deleted && !expired).then(|| Stored {
            value: message.payload.to_vec(),
            revision: message.sequence,
            expires_at_ms,
        }),
    })
}

/// Runs `write` against the bucket until it is done, making the bucket when it is missing, retrying while another
/// writer of the key comes first.
async fn retrying<F, Fut, T>(
    broker: &Broker,
    names: &RouteNames,
    caps: &StorageConfig,
    mut write: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Attempt>>,
{
    let mut refusal = Refusal::WrongLast;
    // Bounded: MAX_ATTEMPTS.
    for _ in 0..MAX_ATTEMPTS {
        if let Err(e) = broker.kv_stream(names, caps).await {
            return Err(e.into_error());
        }
        refusal = match write().await {
            Ok(done) => return Ok(done),
            Err(Attempt::Done(error)) => return Err(error),
            Err(Attempt::Refused(refusal)) => refusal,
        };
        match refusal {
            Refusal::WrongLast => {}
            Refusal::NoStream => broker.forget_kv(names),
            _ => break,
        }
    }
    Err(refusal.into_error())
}

/// Why one try of a write did not finish: a final answer, or a refusal `retrying` may retry.
enum Attempt {
    Done(StoreError),
    Refused(Refusal),
}

impl From<Refusal> for Attempt {
    fn from(refusal: Refusal) -> Self {
        Attempt::Refused(refusal)
    }
}

/// Publishes `payload` on the key's subject; the new message's sequence.
async fn publish(
    broker: &Broker,
    subject: &str,
    headers: HeaderMap,
    payload: Vec<u8>,
) -> Result<u64, Refusal> {
    let acked = match broker
        .js
        .publish_with_headers(subject.to_owned(), headers, payload.into())
        .await
    {
        Ok(ack) => ack.await,
        Err(e) => Err(e),
    };
    acked
        .map(|ack| ack.sequence)
        .map_err(|e| Refusal::of_publish(&e))
}

/// Deletes the key's value at `sequence` (if it is still the last message): a deletion marker, then a purge of the
/// key's messages up to the marker. The marker's sequence.
async fn delete(
    broker: &Broker,
    names: &RouteNames,
    subject: &str,
    sequence: u64,
) -> Result<u64, Refusal> {
    let mut headers = HeaderMap::new();
    headers.insert(OPERATION, "DEL");
    headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, sequence.to_string());
    let marker = publish(broker, subject, headers, Vec::new()).await?;
    // Only messages up to the marker: a value written after it stays. A failed purge leaves the marker, which counts
    // toward `max_keys` until the key is written or removed again.
    if let Ok(stream) = broker.js.get_stream_no_info(names.kv_stream()).await
        && let Err(e) = stream
            .purge()
            .filter(subject)
            .sequence(marker.saturating_add(1))
            .await
    {
        tracing::debug!("JetStream store: purging a deleted key: {e}");
    }
    Ok(marker)
}

pub(super) async fn get(
    broker: &Broker,
    names: &RouteNames,
    caps: &StorageConfig,
    key: &str,
) -> Result<Option<Stored>, StoreError> {
    let subject = names.key_subject(key);
    retrying(broker, names, caps, || async {
        let now = current(broker, names, &subject).await?;
        if now.live.is_none()
            && let Some(sequence) = now.sequence
        {
            // An expired value, or a marker a purge missed: cleared now, so it stops counting toward the quotas.
            // Conditional on it still being the last message; a failure changes nothing for the reader.
            let _ = delete(broker, names, &subject, sequence).await;
        }
        Ok(now.live)
    })
    .await
}

pub(super) async fn set(
    broker: &Broker,
    names: &RouteNames,
    caps: &StorageConfig,
    key: &str,
    value: Vec<u8>,
    ttl: Option<Duration>,
    if_revision: Option<u64>,
) -> Result<u64, StoreError> {
    let subject = names.key_subject(key);
    retrying(broker, names, caps, || async {
        let mut headers = HeaderMap::new();
        let now = current(broker, names, &subject).await?;
        if if_revision.is_some_and(|expected| now.revision() != expected) {
            return Err(Attempt::Done(StoreError::Conflict(now.revision())));
        }
        // Every write names the message it replaces, also without `if_revision` (then a race with another writer is
        // retried, and the last one wins): a publish the client kept queued while the broker was away, and that
        // this store already answered `unavailable`, cannot land later over a newer acknowledged write.
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            now.sequence.unwrap_or(0).to_string(),
        );
        if let Some(ttl) = ttl {
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            headers.insert(EXPIRES, now_ms().saturating_add(ttl_ms).to_string());
        }
        Ok(publish(broker, &subject, headers, value.clone()).await?)
    })
    .await
}

pub(super) async fn remove(
    broker: &Broker,
    names: &RouteNames,
    caps: &StorageConfig,
    key: &str,
    if_revision: Option<u64>,
) -> Result<u64, StoreError> {
    let subject = names.key_subject(key);
    retrying(broker, names, caps, || async {
        let now = current(broker, names, &subject).await?;
        if if_revision.is_some_and(|expected| expected != now.revision()) {
            return Err(Attempt::Done(StoreError::Conflict(now.revision())));
        }
        // Like every write, removing a key that does not exist takes a revision of its own: a deletion marker expected
        // to be the subject's first message (sequence 0), purged at once.
        Ok(delete(broker, names, &subject, now.sequence.unwrap_or(0)).await?)
    })
    .await
}

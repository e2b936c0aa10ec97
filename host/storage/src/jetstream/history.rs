//! Group history in a JetStream stream: one stream per route, one subject per group.
//!
//! Each message carries its position in headers (`Wssgate-Offset`, `Wssgate-Epoch`), with `Wssgate-Binary` and
//! `Wssgate-At`. An append reads the group's last message, takes the next offset in its epoch (or offset 1 of a fresh
//! epoch when the group keeps nothing), and publishes with `Nats-Expected-Last-Subject-Sequence` set to that
//! message's sequence (0 for none): when another node appended first, JetStream refuses, and the append reads again
//! and retries. So offsets stay consecutive however many nodes append, and an epoch starts only on an empty group.
//!
//! The stream's limits do the retention: `max_msgs_per_subject` = `size`, `max_age` = `ttl`, `max_bytes` with
//! discard-new. `max_bytes` counts each message's stored size: the body, its subject and its headers (about 260
//! bytes a message with a short group name). `max_groups` is checked against the stream's `num_subjects` (see
//! [`GroupCount`]).
//!
//! A read goes through the group's messages with an ephemeral pull consumer filtered on the group's subject, oldest
//! first, in fetches of bounded size, keeping only the page: a latest page goes through all the group keeps (at most
//! `size` messages), a page since a position stops once it has `limit` messages.

use super::broker::{Broker, Refusal, lock};
use super::names::{RouteNames, new_epoch};
use crate::{Entry, Message, Page, Position, StoreError, now_ms};
use async_nats::HeaderMap;
use async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{ConsumerErrorKind, LastRawMessageErrorKind};
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wssgate_config::memory::HistoryConfig;

const OFFSET: &str = "Wssgate-Offset";
const EPOCH: &str = "Wssgate-Epoch";
const BINARY: &str = "Wssgate-Binary";
const AT: &str = "Wssgate-At";

/// Appends that lose the race to another node this many times in a row give up (`Unavailable`).
const MAX_ATTEMPTS: usize = 64;
/// How long a group count read from the stream is trusted.
const COUNT_FRESH: Duration = Duration::from_secs(1);
/// A read takes the group's messages in fetches of at most this many messages and about this many bytes, so the
/// client never holds more than one fetch it has not looked at.
const FETCH_MESSAGES: usize = 256;
const FETCH_BYTES: usize = 8 << 20;
/// An ephemeral read consumer the store could not delete goes away on its own after this.
const CONSUMER_IDLE: Duration = Duration::from_secs(10);

/// Groups with history per route, as the stream last said, plus the groups this node started since.
///
/// How exact: JetStream 2.9 checks no group limit itself, so `max_groups` is checked here before an append starts a
/// group, against `num_subjects` from the stream's info, fetched at most once a second per route. The node counts
/// the groups it starts in between, so one node never passes the quota; several nodes starting groups within the
/// same second can together pass it by up to what the others started in that second. A group whose messages all
/// expired stops counting when the broker removes them.
#[derive(Default)]
pub(super) struct GroupCount {
    routes: Mutex<HashMap<String, (Instant, u64)>>,
}

impl GroupCount {
    /// Whether a new group fits in the route's quota; counts it when it does.
    async fn admit(
        &self,
        broker: &Broker,
        names: &RouteNames,
        max_groups: u64,
    ) -> Result<bool, Refusal> {
        let fresh = lock(&self.routes)
            .get(&names.history_stream)
            .filter(|(at, _)| at.elapsed() < COUNT_FRESH)
            .map(|&(_, count)| count);
        let count = match fresh {
            Some(count) => count,
            None => {
                let stream = broker
                    .js
                    .get_stream_no_info(&names.history_stream)
                    .await
                    .map_err(|e| Refusal::Failed(e.to_string()))?;
                let info = stream
                    .get_info()
                    .await
                    .map_err(|e| Refusal::Failed(format!("stream info: {e}")))?;
                info.state.subjects_count
            }
        };
        let admitted = count < max_groups;
        let mut routes = lock(&self.routes);
        let entry = routes
            .entry(names.history_stream.clone())
            .or_insert((Instant::now(), 0));
        if fresh.is_none() {
            entry.0 = Instant::now();
        }
        entry.1 = count + u64::from(admitted);
        Ok(admitted)
    }
}

/// Where a stored message says it sits, if it is one of ours.
fn position(headers: Option<&HeaderMap>) -> Option<Position> {
    let headers = headers?;
    // u64::MAX has no next offset: such a message is not one of ours.
    let offset = headers
        .get(OFFSET)?
        .as_str()
        .parse()
        .ok()
        .filter(|&offset| offset < u64::MAX)?;
    let epoch = headers.get(EPOCH)?.as_str();
    (!epoch.is_empty()).then(|| Position {
        offset,
        epoch: epoch.to_owned(),
    })
}

pub(super) async fn append(
    broker: &Broker,
    space: &RouteNames,
    caps: &HistoryConfig,
    group: &str,
    message: Message,
) -> Result<Position, StoreError> {
    let subject = space.group_subject(group);
    let payload = bytes::Bytes::from(message.body);
    let mut refusal = Refusal::WrongLast;
    // Bounded: MAX_ATTEMPTS.
    for _ in 0..MAX_ATTEMPTS {
        if let Err(e) = broker.history_stream(space, caps).await {
            return Err(e.into_error());
        }
        let stream = broker
            .js
            .get_stream_no_info(&space.history_stream)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // The group's last message: its sequence is what the publish expects, its position the one before ours.
        let (expect, last) = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(last) => (last.sequence, position(Some(&last.headers))),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => (0, None),
            Err(e) => {
                refusal = Refusal::of_get(&e);
                if let Refusal::NoStream = refusal {
                    broker.forget_history(space);
                    continue;
                }
                break;
            }
        };
        let next = match last {
            Some(last) => Position {
                offset: last.offset + 1,
                epoch: last.epoch,
            },
            None => {
                if expect == 0
                    && !broker
                        .groups
                        .admit(broker, space, caps.max_groups)
                        .await
                        .map_err(Refusal::into_error)?
                {
                    return Err(StoreError::QuotaExceeded);
                }
                // A fresh epoch: the group keeps nothing (or only a message that is not ours).
                let epoch = new_epoch()
                    .map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
                Position { offset: 1, epoch }
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, expect.to_string());
        headers.insert(OFFSET, next.offset.to_string());
        headers.insert(EPOCH, next.epoch.as_str());
        headers.insert(BINARY, if message.binary { "1" } else { "0" });
        headers.insert(AT, now_ms().to_string());
        let acked = match broker
            .js
            .publish_with_headers(subject.clone(), headers, payload.clone())
            .await
        {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match acked {
            Ok(_) => return Ok(next),
            Err(e) => refusal = Refusal::of_publish(&e),
        }
        match refusal {
            Refusal::WrongLast => continue,
            Refusal::NoStream => broker.forget_history(space),
            _ => break,
        }
    }
    Err(refusal.into_error())
}

/// What a read keeps of the messages it goes through, oldest first.
struct Collect {
    since: Option<Position>,
    limit: usize,
    /// The epoch and first offset of the messages seen (the group's current ones), and the last offset seen.
    epoch: Option<String>,
    first: u64,
    last: u64,
    entries: VecDeque<Entry>,
    /// Message bytes in `entries`, held within [`crate::MAX_PAGE_BYTES`].
    bytes: usize,
}

impl Collect {
    /// Takes one message; false once nothing after it is needed.
    fn take(&mut self, at: Position, entry: Entry) -> bool {
        if self.epoch.as_deref() != Some(at.epoch.as_str()) {
            // The first message, or (rarely) a new epoch that began while reading, after everything older
            // expired: the newer one is the group's.
            self.epoch = Some(at.epoch.clone());
            self.first = at.offset;
            self.entries.clear();
            self.bytes = 0;
        }
        let size = entry.message.body.len();
        self.last = at.offset;
        match &self.since {
            None => {
                self.entries.push_back(entry);
                self.bytes += size;
                // The newest within the page's limits.
                while self.entries.len() > self.limit
                    || (self.bytes > crate::MAX_PAGE_BYTES && self.entries.len() > 1)
                {
                    if let Some(old) = self.entries.pop_front() {
                        self.bytes -= old.message.body.len();
                    }
                }
                true
            }
            Some(since) if since.epoch == at.epoch && at.offset <= since.offset => true,
            // After the position, or (another epoch) the oldest messages kept: until the page is full.
            Some(_) => {
                if !self.entries.is_empty() && self.bytes + size > crate::MAX_PAGE_BYTES {
                    return false;
                }
                self.entries.push_back(entry);
                self.bytes += size;
                self.entries.len() < self.limit
            }
        }
    }

    fn page(self) -> Page {
        let complete = match (&self.since, &self.epoch) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(since), Some(epoch)) => {
                since.epoch == *epoch
                    && since.offset.saturating_add(1) >= self.first
                    && since.offset <= self.last
            }
        };
        Page {
            epoch: self.epoch.unwrap_or_default(),
            entries: self.entries.into(),
            complete,
        }
    }
}

pub(super) async fn read(
    broker: &Broker,
    space: &RouteNames,
    caps: &HistoryConfig,
    group: &str,
    since: Option<Position>,
    limit: u32,
) -> Result<Page, StoreError> {
    let mut collect = Collect {
        since,
        limit: limit.min(caps.size).max(1) as usize,
        epoch: None,
        first: 0,
        last: 0,
        entries: VecDeque::new(),
        bytes: 0,
    };
    // Bounded: a missing stream is made again once.
    let mut attempts = 0;
    let (stream, consumer) = loop {
        attempts += 1;
        broker
            .history_stream(space, caps)
            .await
            .map_err(Refusal::into_error)?;
        let stream = broker
            .js
            .get_stream_no_info(&space.history_stream)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let config = pull::Config {
            filter_subject: space.group_subject(group),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: CONSUMER_IDLE,
            memory_storage: true,
            ..Default::default()
        };
        match stream.create_consumer(config).await {
            Ok(consumer) => break (stream, consumer),
            Err(e) => {
                let refusal = match e.kind() {
                    ConsumerErrorKind::JetStream(e) => Refusal::of_jetstream(&e),
                    _ => Refusal::Failed(format!("creating a read consumer: {e}")),
                };
                match refusal {
                    Refusal::NoStream if attempts < 2 => broker.forget_history(space),
                    refusal => return Err(refusal.into_error()),
                }
            }
        }
    };
    let result = fill(&consumer, caps, &mut collect).await;
    let name = consumer.cached_info().name.clone();
    // Best effort: an ephemeral consumer left behind ends after CONSUMER_IDLE.
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.delete_consumer(&name)).await;
    result.map(|()| collect.page())
}

/// Goes through the group's messages, oldest first, until `collect` has what it needs or none is left.
async fn fill(
    consumer: &async_nats::jetstream::consumer::PullConsumer,
    caps: &HistoryConfig,
    collect: &mut Collect,
) -> Result<(), StoreError> {
    let failed =
        |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("reading history: {e}"));
    let mut pending = consumer.cached_info().num_pending;
    let per_fetch = (FETCH_BYTES / caps.max_message_bytes.max(1)).clamp(1, FETCH_MESSAGES);
    // Bounded: a group keeps at most `size` messages; appends during the read can add as many again.
    let mut budget = 2 * u64::from(caps.size) + FETCH_MESSAGES as u64;
    while pending > 0 && budget > 0 {
        let mut batch = consumer
            .fetch()
            .max_messages(per_fetch)
            .max_bytes(FETCH_BYTES)
            .messages()
            .await
            .map_err(|e| failed(&e))?;
        let mut got = 0;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| failed(&e))?;
            got += 1;
            budget = budget.saturating_sub(1);
            let info = message.info().map_err(|e| failed(&e))?;
            pending = info.pending;
            let published = (info.published.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
            let Some(at) = position(message.headers.as_ref()) else {
                continue;
            };
            let headers = message.headers.as_ref();
            let entry = Entry {
                offset: at.offset,
                message: Message {
                    binary: headers
                        .and_then(|h| h.get(BINARY))
                        .is_some_and(|v| v.as_str() == "1"),
                    body: message.payload.to_vec(),
                },
                appended_at_ms: headers
                    .and_then(|h| h.get(AT))
                    .and_then(|v| v.as_str().parse().ok())
                    .unwrap_or(published),
            };
            if !collect.take(at, entry) {
                return Ok(());
            }
        }
        if got == 0 {
            break;
        }
    }
    Ok(())
}

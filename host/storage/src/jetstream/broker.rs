//! The JetStream store's side of the broker: the client and its JetStream context, the streams each route needs
//! (made on first use, remade when a broker lost them), what a refusal from JetStream means for a plugin, and the
//! store's health.

use super::history::GroupCount;
use super::names::RouteNames;
use crate::{Health, Namespace, StoreError};
use async_nats::connection::State;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::response::Response;
use async_nats::jetstream::stream::{
    Config, DiscardPolicy, LastRawMessageErrorKind, RawMessageError, StorageType,
};
use async_nats::jetstream::{self, ErrorCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use wssgate_config::memory::{HistoryConfig, StorageConfig};

/// How often the health is checked while the broker answers, and while it does not.
const CHECK_HEALTHY: Duration = Duration::from_secs(2);
const CHECK_DEGRADED: Duration = Duration::from_millis(250);

/// A lock that a panicking holder did not spoil: every value kept under one is whole after each statement.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What JetStream's refusal of a write means here.
pub(super) enum Refusal {
    /// `Nats-Expected-Last-Subject-Sequence` did not match: someone wrote first; read again and retry.
    WrongLast,
    /// A stream limit with discard-new (`max_bytes`, `max_msgs`): the route's quota.
    Quota,
    /// The stream is gone (a broker that lost its data, or an operator who deleted it): make it again.
    NoStream,
    Failed(String),
}

impl Refusal {
    pub fn of_publish(error: &PublishError) -> Refusal {
        match error.kind() {
            PublishErrorKind::WrongLastSequence => Refusal::WrongLast,
            PublishErrorKind::StreamNotFound => Refusal::NoStream,
            PublishErrorKind::TimedOut => Refusal::Failed("no answer from the broker".into()),
            PublishErrorKind::MaxPayloadExceeded => {
                Refusal::Failed("the message is larger than the broker's max_payload".into())
            }
            _ => match std::error::Error::source(error)
                .and_then(|source| source.downcast_ref::<jetstream::Error>())
            {
                Some(refusal) => Refusal::of_jetstream(refusal),
                None => Refusal::Failed(error.to_string()),
            },
        }
    }

    pub fn of_jetstream(error: &jetstream::Error) -> Refusal {
        let code = error.error_code();
        // A discard-new stream refuses with "maximum messages exceeded" or "maximum bytes exceeded" (10077, as
        // nats-server 2.9 to 2.11 say it); an account's own JetStream limits are the operator's, not a quota.
        if code == ErrorCode::STREAM_STORE_FAILED && error.to_string().contains("maximum") {
            Refusal::Quota
        } else if code == ErrorCode::STREAM_NOT_FOUND {
            Refusal::NoStream
        } else if code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE {
            Refusal::WrongLast
        } else {
            Refusal::Failed(error.to_string())
        }
    }

    /// A failed read of a stream's message (`NoMessageFound` is not a failure and is handled by the caller).
    pub fn of_get(error: &RawMessageError) -> Refusal {
        match error.kind() {
            LastRawMessageErrorKind::JetStream(refusal) => Refusal::of_jetstream(&refusal),
            _ => Refusal::Failed(error.to_string()),
        }
    }

    /// The error a plugin gets, once retrying is over.
    pub fn into_error(self) -> StoreError {
        match self {
            Refusal::Quota => StoreError::QuotaExceeded,
            Refusal::WrongLast => StoreError::Unavailable("too many concurrent writers".into()),
            Refusal::NoStream => StoreError::Unavailable("the route's stream is missing".into()),
            Refusal::Failed(why) => StoreError::Unavailable(why),
        }
    }
}

/// The connection and what the store knows of the broker's streams.
pub(super) struct Broker {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    /// The cluster's `prefix`, which every name starts with.
    pub prefix: String,
    /// Copies JetStream keeps of each stream (`[cluster] replicas`).
    replicas: usize,
    /// History streams made (or updated) with these caps since this store started, by stream name.
    history_streams: Mutex<HashMap<String, HistoryConfig>>,
    /// The same for the key-value buckets' streams.
    kv_streams: Mutex<HashMap<String, StorageConfig>>,
    /// Groups per route, for `max_groups`.
    pub groups: GroupCount,
}

impl Broker {
    pub fn new(
        client: async_nats::Client,
        js: jetstream::Context,
        (prefix, replicas): (String, usize),
    ) -> Broker {
        Broker {
            client,
            js,
            prefix,
            replicas,
            history_streams: Mutex::default(),
            kv_streams: Mutex::default(),
            groups: GroupCount::default(),
        }
    }

    pub fn names(&self, space: &Namespace) -> RouteNames {
        RouteNames::new(&self.prefix, &space.route)
    }

    /// Makes the route's history stream, or sets its limits, once per store (and again after `forget_history`): with
    /// the caps of the store's first use, which are the config's at start. A reload that changes a route's caps
    /// applies on restart, so a retired instance's requests (old caps) and a new one's never make the stream's limits
    /// flip back and forth — each smaller limit would delete history for good.
    pub async fn history_stream(
        &self,
        names: &RouteNames,
        caps: &HistoryConfig,
    ) -> Result<(), Refusal> {
        if lock(&self.history_streams).contains_key(&names.history_stream) {
            return Ok(());
        }
        let config = Config {
            name: names.history_stream.clone(),
            subjects: vec![format!("{}.>", names.history_subjects)],
            // The last `size` messages of each group, for `ttl`, and new messages refused past `max_bytes` rather
            // than other groups' history dropped to make room. Discard-new does not apply to the per-subject
            // limit (before 2.10's `discard_new_per_subject`, which stays off): a full group drops its oldest.
            max_messages_per_subject: i64::from(caps.size),
            max_age: caps.ttl,
            max_bytes: i64::try_from(caps.max_bytes).unwrap_or(i64::MAX),
            discard: DiscardPolicy::New,
            storage: StorageType::File,
            num_replicas: self.replicas,
            ..Default::default()
        };
        self.make_stream(config).await?;
        lock(&self.history_streams).insert(names.history_stream.clone(), caps.clone());
        Ok(())
    }

    pub fn forget_history(&self, names: &RouteNames) {
        lock(&self.history_streams).remove(&names.history_stream);
    }

    /// Makes the route's key-value bucket, or sets its limits, once per store (as `history_stream`).
    pub async fn kv_stream(&self, names: &RouteNames, caps: &StorageConfig) -> Result<(), Refusal> {
        if lock(&self.kv_streams).contains_key(&names.bucket) {
            return Ok(());
        }
        // A KV bucket as the KV convention lays it out (so `nats kv` tools read it), with history 1 and
        // discard-new limits: `max_msgs` counts keys (and deletion markers, which the store purges right after
        // writing them), `max_bytes` the messages' stored size.
        let config = Config {
            name: names.kv_stream(),
            subjects: vec![format!("$KV.{}.>", names.bucket)],
            max_messages_per_subject: 1,
            max_messages: i64::try_from(caps.max_keys).unwrap_or(i64::MAX),
            max_bytes: i64::try_from(caps.max_bytes).unwrap_or(i64::MAX),
            discard: DiscardPolicy::New,
            storage: StorageType::File,
            num_replicas: self.replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            ..Default::default()
        };
        self.make_stream(config).await?;
        lock(&self.kv_streams).insert(names.bucket.clone(), caps.clone());
        Ok(())
    }

    pub fn forget_kv(&self, names: &RouteNames) {
        lock(&self.kv_streams).remove(&names.bucket);
    }

    async fn make_stream(&self, config: Config) -> Result<(), Refusal> {
        let name = config.name.clone();
        self.js
            .create_or_update_stream(config)
            .await
            .map(drop)
            .map_err(|e| Refusal::Failed(format!("setting up stream {name}: {e}")))
    }

    /// Whether the broker answers JetStream requests now.
    async fn health(&self) -> Health {
        if self.client.connection_state() != State::Connected {
            return Health::Degraded("the NATS broker is unreachable".into());
        }
        // The account's JetStream info, read as plain JSON: the client's typed `Account` wants fields that servers
        // before 2.10 do not send.
        let info = self
            .js
            .request::<_, _, Response<serde_json::Value>>("INFO", &());
        match tokio::time::timeout(CHECK_HEALTHY, info).await {
            Ok(Ok(Response::Ok(_))) => Health::Ok,
            Ok(Ok(Response::Err { error })) => {
                Health::Degraded(format!("JetStream is not enabled on the broker ({error})"))
            }
            Ok(Err(e)) => Health::Degraded(format!("JetStream is not enabled on the broker ({e})")),
            Err(_) => Health::Degraded("the broker does not answer JetStream requests".into()),
        }
    }

    /// Keeps `health` current for as long as the store runs, and sets up the routes' streams once the broker
    /// first answers (so a stream the broker refuses shows in the log at start, not at a plugin's first call).
    pub async fn watch(
        self: Arc<Self>,
        health: Arc<Mutex<Health>>,
        usage: Arc<Mutex<Vec<(String, crate::Usage)>>>,
        spaces: Vec<Arc<Namespace>>,
    ) {
        let mut set_up = false;
        // Bounded: it ends when the store's runtime does.
        loop {
            let now = self.health().await;
            let healthy = now == Health::Ok;
            *lock(&health) = now;
            if healthy && !set_up {
                set_up = true;
                for space in &spaces {
                    if let Err(Refusal::Failed(why)) = self.set_up(space).await {
                        tracing::warn!(route = %space.route, "JetStream store: {why}");
                    }
                }
            }
            if healthy {
                let mut now = Vec::with_capacity(spaces.len());
                for space in &spaces {
                    now.push((space.route.clone(), self.usage_of(space).await));
                }
                *lock(&usage) = now;
            }
            tokio::time::sleep(if healthy {
                CHECK_HEALTHY
            } else {
                CHECK_DEGRADED
            })
            .await;
        }
    }

    /// What the route's stream and bucket hold (zero for one the broker does not answer about).
    async fn usage_of(&self, space: &Namespace) -> crate::Usage {
        let names = self.names(space);
        let state = |name: String| async move {
            let stream = self.js.get_stream_no_info(&name).await.ok()?;
            let info = tokio::time::timeout(CHECK_HEALTHY, stream.get_info())
                .await
                .ok()?
                .ok()?;
            Some(info.state)
        };
        let mut usage = crate::Usage::default();
        if space.history.is_some()
            && let Some(s) = state(names.history_stream.clone()).await
        {
            usage.history_groups = s.subjects_count;
            usage.history_bytes = s.bytes;
        }
        if space.storage.is_some()
            && let Some(s) = state(names.kv_stream()).await
        {
            usage.keys = s.messages;
            usage.key_bytes = s.bytes;
        }
        usage
    }

    async fn set_up(&self, space: &Namespace) -> Result<(), Refusal> {
        let names = self.names(space);
        if let Some(caps) = &space.history {
            self.history_stream(&names, caps).await?;
        }
        if let Some(caps) = &space.storage {
            self.kv_stream(&names, caps).await?;
        }
        Ok(())
    }
}

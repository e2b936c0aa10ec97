//! The `history` and `storage` interfaces of `wit/plugin.wit` (contract 1.2): a plugin's requests to its route's
//! memory, handed to the gateway's [`Store`](wssgate_storage::Store), and their answers delivered through
//! `history-events` and `storage-events`.
//!
//! What a hostile plugin could do with them, and what stops it: read or write another route's data (the route's
//! namespace is fixed by the host, never named by the plugin), fill the disk or the broker (each route's quotas:
//! `max_groups` and `max_bytes` of history, `max_keys` and `max_bytes` of storage, refused with `quota-exceeded`;
//! `size` messages per group; bounded names, messages and values), queue unbounded work in the host
//! (`max_storage_requests_per_instance` waiting requests per instance), or make a callback wait on a disk or a network
//! (nothing here waits: every answer is an event). A hostile client can only make its plugin do these things, which
//! the same caps bound — to its own route.

use super::bindings::exports::wssgate::plugin::{history_events, storage_events};
use super::bindings::wssgate::plugin::{history, storage, storage_types, types};
use super::host_calls::HostState;
use crate::owned::DueEvent;
use crate::worker::Worker;
use std::time::Duration;
use wssgate_hub::metrics::CapHit;
use wssgate_storage::{Answer, Message, Position, Request, StoreError};

use storage_types::StorageRefusal;

/// History reads one instance may have waiting at once: each answer is a page of up to
/// [`wssgate_storage::MAX_PAGE_BYTES`], held in the host until the plugin takes it, so the pages one instance can make
/// the host hold stay within 16 MiB whatever `max_storage_requests_per_instance` says.
const MAX_READS_PER_INSTANCE: usize = 16;

impl storage_types::Host for HostState {}

impl HostState {
    /// Checks what every request shares and hands `request` to the store; its answer comes back as an event.
    fn submit_memory(
        &mut self,
        owner: Option<u64>,
        request: Request,
    ) -> Result<u64, StorageRefusal> {
        if self.in_init {
            return Err(StorageRefusal::NotNow);
        }
        let store = self
            .links
            .store
            .clone()
            .ok_or(StorageRefusal::NotConfigured)?;
        let worker = Worker::current();
        // An owner must be one of this instance's connections: its close cancels the request, and only this
        // instance gets the answer.
        if let Some(owner) = owner
            && !worker
                .connections
                .is_served_by(owner, &self.route.path, self.instance_uid)
        {
            return Err(StorageRefusal::UnknownConnection);
        }
        let reading = matches!(request, Request::Read { .. });
        // Waiting for their events (this incarnation's, not cancelled), or held by the store (the instance's,
        // cancelled or not): either way the host holds them.
        let max = self.links.limits.max_storage_requests_per_instance;
        let (in_store, reads_in_store) = self.in_store.counts();
        if worker.storage.count(self.incarnation).max(in_store) >= max
            || (reading
                && worker.storage.reads(self.incarnation).max(reads_in_store)
                    >= MAX_READS_PER_INSTANCE)
        {
            self.links.cap_hit(CapHit::StorageRequests);
            return Err(StorageRefusal::TooManyPending);
        }
        // Answers go back to the instance that asked, retired by a reload or not: it still serves its connections (a
        // chat's `say` is published from its answer), and every request it waits for counts against its cap.
        let id = worker.storage.start(self.incarnation, owner, reading);
        let token = self.in_store.enter(reading);
        let (address, incarnation) = (self.links.address.clone(), self.incarnation);
        let (metrics, worker_index) = (self.links.metrics.clone(), self.links.worker);
        store.submit(
            &self.route.memory,
            request,
            Box::new(move |answer| {
                // The store is done with it: it no longer counts as held there.
                drop(token);
                let quota = matches!(
                    answer,
                    Answer::Appended(Err(StoreError::QuotaExceeded))
                        | Answer::Written(Err(StoreError::QuotaExceeded))
                );
                if quota {
                    metrics.cap_hit(worker_index, CapHit::StorageQuota);
                }
                address.send(
                    incarnation,
                    owner,
                    DueEvent::Stored {
                        request: id,
                        answer,
                    },
                );
            }),
        );
        Ok(id)
    }

    /// Refuses a group name that is empty or over `max_name_bytes`, like every other name a plugin gives.
    fn check_group(&self, group: &str) -> Result<(), StorageRefusal> {
        if group.is_empty() || group.len() > self.links.limits.max_name_bytes {
            return Err(StorageRefusal::InvalidName);
        }
        Ok(())
    }

    /// The route's history table, or `not-configured`.
    fn history_config(&self) -> Result<&wssgate_config::memory::HistoryConfig, StorageRefusal> {
        self.route
            .memory
            .history
            .as_ref()
            .ok_or(StorageRefusal::NotConfigured)
    }

    /// The route's storage table, or `not-configured`.
    fn storage_config(&self) -> Result<&wssgate_config::memory::StorageConfig, StorageRefusal> {
        self.route
            .memory
            .storage
            .as_ref()
            .ok_or(StorageRefusal::NotConfigured)
    }

    /// Refuses a key that is empty or over the route's `max_key_bytes`.
    fn check_key(&self, key: &str) -> Result<(), StorageRefusal> {
        let config = self.storage_config()?;
        if key.is_empty() || key.len() > config.max_key_bytes {
            return Err(StorageRefusal::InvalidName);
        }
        Ok(())
    }
}

fn stored_message(message: types::MessageResult) -> Message {
    match message {
        types::MessageResult::Text(text) => Message {
            binary: false,
            body: text.into_bytes(),
        },
        types::MessageResult::Binary(body) => Message { binary: true, body },
    }
}

impl history::Host for HostState {
    fn append(
        &mut self,
        group: String,
        message: types::MessageResult,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        let config = self.history_config()?;
        let message = stored_message(message);
        if message.body.len() > config.max_message_bytes {
            return Err(StorageRefusal::TooLarge);
        }
        self.check_group(&group)?;
        self.submit_memory(owner, Request::Append { group, message })
    }

    fn read(
        &mut self,
        group: String,
        since: Option<history::PositionResult>,
        limit: u32,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        self.history_config()?;
        self.check_group(&group)?;
        let since = since.map(|p| Position {
            offset: p.offset,
            epoch: p.epoch,
        });
        self.submit_memory(
            owner,
            Request::Read {
                group,
                since,
                limit,
            },
        )
    }
}

impl storage::Host for HostState {
    fn get(&mut self, key: String, owner: Option<u64>) -> Result<u64, StorageRefusal> {
        self.check_key(&key)?;
        self.submit_memory(owner, Request::Get { key })
    }

    fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
        if_revision: Option<u64>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        if value.len() > self.storage_config()?.max_value_bytes {
            return Err(StorageRefusal::TooLarge);
        }
        self.check_key(&key)?;
        let request = Request::Set {
            key,
            value,
            ttl: ttl_ms.map(Duration::from_millis),
            if_revision,
        };
        self.submit_memory(owner, request)
    }

    fn remove(
        &mut self,
        key: String,
        if_revision: Option<u64>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        self.check_key(&key)?;
        self.submit_memory(owner, Request::Remove { key, if_revision })
    }
}

fn wit_error(error: &StoreError) -> storage_types::StorageError<'_> {
    match error {
        StoreError::Conflict(revision) => storage_types::StorageError::Conflict(*revision),
        StoreError::QuotaExceeded => storage_types::StorageError::QuotaExceeded,
        StoreError::Unavailable(why) => storage_types::StorageError::Unavailable(why),
    }
}

fn wit_message(message: &Message) -> types::MessageParam<'_> {
    if message.binary {
        types::MessageParam::Binary(&message.body)
    } else {
        // The host stored it from a WIT string, so it is UTF-8; a damaged file's bytes are replaced, not trusted.
        match std::str::from_utf8(&message.body) {
            Ok(text) => types::MessageParam::Text(text),
            Err(_) => types::MessageParam::Binary(&message.body),
        }
    }
}

/// Calls the event that answers a history or storage request. `None` when the plugin does not export the
/// interface the answer belongs to (refused at load for a plugin that imports it, so only a reload race gets here).
pub fn deliver(
    (history, storage): (
        Option<&history_events::Guest>,
        Option<&storage_events::Guest>,
    ),
    store: &mut wasmtime::Store<HostState>,
    request: u64,
    owner: Option<u64>,
    answer: &Answer,
) -> wasmtime::Result<()> {
    match (answer, history, storage) {
        (Answer::Appended(result), Some(events), _) => {
            let result = match result {
                Ok(p) => Ok(history::PositionParam {
                    offset: p.offset,
                    epoch: &p.epoch,
                }),
                Err(e) => Err(wit_error(e)),
            };
            events.call_on_appended(store, request, owner, result)
        }
        (Answer::History(result), Some(events), _) => {
            let entries: Vec<history::HistoryEntry<'_>>;
            let result = match result {
                Ok(page) => {
                    entries = page
                        .entries
                        .iter()
                        .map(|e| history::HistoryEntry {
                            offset: e.offset,
                            message: wit_message(&e.message),
                            appended_at_ms: e.appended_at_ms,
                        })
                        .collect();
                    Ok(history::HistoryPage {
                        epoch: &page.epoch,
                        entries: &entries,
                        complete: page.complete,
                    })
                }
                Err(e) => Err(wit_error(e)),
            };
            events.call_on_history(store, request, owner, result)
        }
        (Answer::Value(result), _, Some(events)) => {
            let result = match result {
                Ok(value) => Ok(value.as_ref().map(|v| storage::StoredValue {
                    value: &v.value,
                    revision: v.revision,
                    expires_at_ms: v.expires_at_ms,
                })),
                Err(e) => Err(wit_error(e)),
            };
            events.call_on_read(store, request, owner, result)
        }
        (Answer::Written(result), _, Some(events)) => {
            let result = result.as_ref().copied().map_err(wit_error);
            events.call_on_written(store, request, owner, result)
        }
        _ => Ok(()),
    }
}

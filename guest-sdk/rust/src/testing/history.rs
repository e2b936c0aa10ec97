//! The mock's group history: the route's `[route.history]` kept in memory with the contract's rules — offsets
//! consecutive from 1 in each epoch, a new epoch when a group's stream starts again, retention by `size` and `ttl`
//! on the mock's clock, the `max_groups` and `max_bytes` quotas, and `complete` as `history.read` defines it.

use super::MockHost;
use super::state::{MockState, StoreAnswer};
use crate::history::{HistoryEntry, HistoryPage, Position};
use crate::message::Payload;
use crate::runtime::Exported;
use crate::{Message, StorageError, StorageRefusal};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// A route's `[route.history]` table, as a test turns it on with [`MockHost::with_history`]; `Default` is the table
/// with no keys (the gateway's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Messages kept per group: appending one more drops the oldest (`size`, default 100).
    pub size: u32,
    /// How long a message is kept (`ttl_secs`, default 24 hours).
    pub ttl: Duration,
    /// The largest message `append` takes (default 64 KiB); a larger one is refused with
    /// [`StorageRefusal::TooLarge`].
    pub max_message_bytes: usize,
    /// Groups with history at once (default 10,000); an append that would start one more fails with
    /// [`StorageError::QuotaExceeded`].
    pub max_groups: u64,
    /// Bytes of messages the route's history holds (default 256 MiB); an append past it fails with
    /// [`StorageError::QuotaExceeded`].
    pub max_bytes: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            size: 100,
            ttl: Duration::from_secs(86_400),
            max_message_bytes: 64 << 10,
            max_groups: 10_000,
            max_bytes: 256 << 20,
        }
    }
}

/// One group's stream: its epoch, the next offset, and the messages kept, oldest first.
struct Stream {
    epoch: String,
    next: u64,
    entries: VecDeque<HistoryEntry>,
}

/// Every group's stream.
#[derive(Default)]
pub(super) struct Histories {
    groups: BTreeMap<String, Stream>,
    /// How many epochs were started: each new one is named after the count, so none repeats.
    epochs: u64,
}

/// The most message bytes one page holds, as in the gateway (the WIT's `history.read`).
const MAX_PAGE_BYTES: u64 = 4 << 20;

fn size_of(entry: &HistoryEntry) -> u64 {
    entry.message.as_bytes().len() as u64
}

impl Histories {
    /// Drops the messages that outlived the ttl at `now_ms`, and the groups left without any: their next append
    /// starts a new epoch.
    fn expire(&mut self, config: &HistoryConfig, now_ms: u64) {
        let ttl = config.ttl.as_millis() as u64;
        for stream in self.groups.values_mut() {
            while stream
                .entries
                .front()
                .is_some_and(|e| e.appended_at_ms.saturating_add(ttl) <= now_ms)
            {
                stream.entries.pop_front();
            }
        }
        self.groups.retain(|_, s| !s.entries.is_empty());
    }

    fn bytes(&self) -> u64 {
        self.groups
            .values()
            .flat_map(|s| s.entries.iter())
            .map(size_of)
            .sum()
    }

    fn append(
        &mut self,
        config: &HistoryConfig,
        group: &str,
        message: Message,
        now_ms: u64,
    ) -> Result<Position, StorageError> {
        self.expire(config, now_ms);
        let held = self.groups.get(group).map_or(0, |s| s.entries.len() as u64);
        if held == 0 && self.groups.len() as u64 >= config.max_groups {
            return Err(StorageError::QuotaExceeded);
        }
        // What `size` will drop to make room, so that a full group still takes a message within `max_bytes`.
        let dropping = (held + 1).saturating_sub(u64::from(config.size)) as usize;
        let freed: u64 = self
            .groups
            .get(group)
            .map_or(0, |s| s.entries.iter().take(dropping).map(size_of).sum());
        let size = message.as_bytes().len() as u64;
        if self.bytes() - freed + size > config.max_bytes {
            return Err(StorageError::QuotaExceeded);
        }
        if held == 0 {
            self.epochs += 1;
            let stream = Stream {
                epoch: format!("mock-epoch-{}", self.epochs),
                next: 1,
                entries: VecDeque::new(),
            };
            self.groups.insert(group.to_owned(), stream);
        }
        let stream = self.groups.get_mut(group).expect("inserted above");
        stream.entries.drain(..dropping);
        let offset = stream.next;
        stream.next += 1;
        stream.entries.push_back(HistoryEntry {
            offset,
            message,
            appended_at_ms: now_ms,
        });
        Ok(Position {
            offset,
            epoch: stream.epoch.clone(),
        })
    }

    fn read(
        &mut self,
        config: &HistoryConfig,
        group: &str,
        (since, limit): (Option<&Position>, u32),
        now_ms: u64,
    ) -> HistoryPage {
        self.expire(config, now_ms);
        let limit = u64::from(limit.clamp(1, config.size));
        let Some(stream) = self.groups.get(group) else {
            // No history: complete only as "the latest page" — a position names a stream that is gone.
            return HistoryPage {
                epoch: String::new(),
                entries: Vec::new(),
                complete: since.is_none(),
            };
        };
        let oldest = stream.entries.front().map_or(stream.next, |e| e.offset);
        let next = stream.next;
        let (start, complete) = match since {
            None => (oldest.max(next.saturating_sub(limit)), true),
            Some(p) if p.epoch != stream.epoch => (oldest, false),
            // A position past the end is not one of this stream's.
            Some(p) if p.offset >= next => (next, false),
            Some(p) => ((p.offset + 1).max(oldest), p.offset + 1 >= oldest),
        };
        let mut entries: Vec<HistoryEntry> = Vec::new();
        let mut held = 0;
        for entry in stream
            .entries
            .iter()
            .filter(|e| e.offset >= start)
            .take(limit as usize)
        {
            // A page since a position ends at the page's byte budget (always one message).
            if since.is_some() && !entries.is_empty() && held + size_of(entry) > MAX_PAGE_BYTES {
                break;
            }
            held += size_of(entry);
            entries.push(entry.clone());
        }
        // The latest page keeps the newest that fit.
        let mut from = 0;
        while held > MAX_PAGE_BYTES && entries.len() - from > 1 {
            held -= size_of(&entries[from]);
            from += 1;
        }
        entries.drain(..from);
        HistoryPage {
            epoch: stream.epoch.clone(),
            entries,
            complete,
        }
    }
}

impl MockState {
    fn history_config(&self) -> Result<HistoryConfig, StorageRefusal> {
        assert!(
            self.history_events,
            "the plugin uses history but does not export its events, so the gateway would refuse to load it \
             (\"imports `wssgate:plugin/history` but does not export `wssgate:plugin/history-events`\"): implement \
             `HistoryEvents` and export it with `export_plugin!(YourPlugin, history)`"
        );
        self.history_config
            .clone()
            .ok_or(StorageRefusal::NotConfigured)
    }

    fn check_group(&self, group: &str) -> Result<(), StorageRefusal> {
        if group.is_empty() || group.len() > self.limits.name_bytes {
            return Err(StorageRefusal::InvalidName);
        }
        Ok(())
    }

    pub(super) fn append_history(
        &mut self,
        group: &str,
        message: Payload<'_>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        let config = self.history_config()?;
        let message = message.to_message();
        if message.as_bytes().len() > config.max_message_bytes {
            return Err(StorageRefusal::TooLarge);
        }
        self.check_group(group)?;
        self.check_request(owner)?;
        let now = self.now_ms();
        let answer = match self.store_failure.clone() {
            Some(why) => Err(StorageError::Unavailable(why)),
            None => self.history.append(&config, group, message, now),
        };
        Ok(self.take_request(owner, StoreAnswer::Appended(answer)))
    }

    pub(super) fn read_history(
        &mut self,
        group: &str,
        since: Option<&Position>,
        limit: u32,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        let config = self.history_config()?;
        self.check_group(group)?;
        self.check_request(owner)?;
        let now = self.now_ms();
        let answer = match self.store_failure.clone() {
            Some(why) => Err(StorageError::Unavailable(why)),
            None => Ok(self.history.read(&config, group, (since, limit), now)),
        };
        Ok(self.take_request(owner, StoreAnswer::History(answer)))
    }
}

impl<P: Exported> MockHost<P> {
    /// Gives the route a `[route.history]` table: without one, history calls are refused with
    /// [`StorageRefusal::NotConfigured`], as the gateway refuses them.
    pub fn with_history(self, config: HistoryConfig) -> Self {
        self.state.borrow_mut().history_config = Some(config);
        self
    }

    /// The messages `group`'s history keeps now, oldest first.
    pub fn history(&self, group: &str) -> Vec<HistoryEntry> {
        let mut state = self.state.borrow_mut();
        let now = state.now_ms();
        let Some(config) = state.history_config.clone() else {
            return Vec::new();
        };
        state
            .history
            .read(&config, group, (None, config.size), now)
            .entries
    }

    /// `group`'s current epoch; `None` when it has no history.
    pub fn history_epoch(&self, group: &str) -> Option<String> {
        let mut state = self.state.borrow_mut();
        let now = state.now_ms();
        let config = state.history_config.clone()?;
        let page = state.history.read(&config, group, (None, 1), now);
        Some(page.epoch).filter(|e| !e.is_empty())
    }

    /// Loses the route's history, as a store whose data was lost or reset: every group starts a new epoch, at
    /// offset 1, with its next append.
    pub fn reset_history(&self) {
        self.state.borrow_mut().history.groups.clear();
    }
}

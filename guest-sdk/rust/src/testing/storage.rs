//! The mock's key-value storage: the route's `[route.storage]` kept in memory with the contract's rules — one
//! revision counter for the route's writes (never 0), compare-and-set on it (0: only when the key does not exist),
//! time to live on the mock's clock, and the `max_keys` and `max_bytes` quotas.

use super::MockHost;
use super::state::{MockState, StoreAnswer};
use crate::runtime::Exported;
use crate::storage::StoredValue;
use crate::{StorageError, StorageRefusal};
use std::collections::BTreeMap;

/// A route's `[route.storage]` table, as a test turns it on with [`MockHost::with_storage`]; `Default` is the table
/// with no keys (the gateway's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// The longest key (default 256 bytes); an empty or longer one is refused with
    /// [`StorageRefusal::InvalidName`].
    pub max_key_bytes: usize,
    /// The largest value (default 64 KiB); a larger one is refused with [`StorageRefusal::TooLarge`].
    pub max_value_bytes: usize,
    /// Keys at once (default 100,000); a write that would create one more fails with
    /// [`StorageError::QuotaExceeded`].
    pub max_keys: u64,
    /// Bytes of keys and values together (default 256 MiB); a write past it fails with
    /// [`StorageError::QuotaExceeded`].
    pub max_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            max_key_bytes: 256,
            max_value_bytes: 64 << 10,
            max_keys: 100_000,
            max_bytes: 256 << 20,
        }
    }
}

/// The route's keys.
#[derive(Default)]
pub(super) struct Keys {
    values: BTreeMap<String, StoredValue>,
    /// The revision of the route's last write.
    revision: u64,
}

/// What a write does to its key.
enum Write<'a> {
    Set {
        value: &'a [u8],
        ttl_ms: Option<u64>,
    },
    Remove,
}

impl Keys {
    /// Forgets the values that expired by `now_ms`: they read as absent, and no longer count against the quotas.
    fn expire(&mut self, now_ms: u64) {
        self.values
            .retain(|_, v| v.expires_at_ms.is_none_or(|at| at > now_ms));
    }

    fn get(&mut self, key: &str, now_ms: u64) -> Option<StoredValue> {
        self.expire(now_ms);
        self.values.get(key).cloned()
    }

    fn write(
        &mut self,
        config: &StorageConfig,
        key: &str,
        (write, if_revision): (Write<'_>, Option<u64>),
        now_ms: u64,
    ) -> Result<u64, StorageError> {
        self.expire(now_ms);
        let old = self.values.get(key);
        let current = old.map_or(0, |v| v.revision);
        if if_revision.is_some_and(|r| r != current) {
            return Err(StorageError::Conflict(current));
        }
        let old_bytes = old.map_or(0, |v| (key.len() + v.value.len()) as u64);
        let new = match write {
            Write::Set { value, ttl_ms } => {
                let keys = self.values.len() as u64 + u64::from(old.is_none());
                let bytes: u64 = self
                    .values
                    .iter()
                    .map(|(k, v)| (k.len() + v.value.len()) as u64)
                    .sum();
                if keys > config.max_keys
                    || bytes - old_bytes + (key.len() + value.len()) as u64 > config.max_bytes
                {
                    return Err(StorageError::QuotaExceeded);
                }
                Some((value, ttl_ms.map(|t| now_ms.saturating_add(t))))
            }
            Write::Remove => None,
        };
        // A removal is a write too: it gets a revision of its own, whether or not the key existed.
        self.revision += 1;
        match new {
            Some((value, expires_at_ms)) => {
                let stored = StoredValue {
                    value: value.to_vec(),
                    revision: self.revision,
                    expires_at_ms,
                };
                self.values.insert(key.to_owned(), stored);
            }
            None => {
                self.values.remove(key);
            }
        }
        Ok(self.revision)
    }
}

impl MockState {
    /// The route's storage table, or `not-configured`.
    fn storage_table(&self) -> Result<StorageConfig, StorageRefusal> {
        assert!(
            self.storage_events,
            "the plugin uses storage but does not export its events, so the gateway would refuse to load it \
             (\"imports `wssgate:plugin/storage` but does not export `wssgate:plugin/storage-events`\"): implement \
             `StorageEvents` and export it with `export_plugin!(YourPlugin, storage)`"
        );
        self.storage_config
            .clone()
            .ok_or(StorageRefusal::NotConfigured)
    }

    /// The route's storage table, once `key` passed it.
    fn storage_config(&self, key: &str) -> Result<StorageConfig, StorageRefusal> {
        let config = self.storage_table()?;
        if key.is_empty() || key.len() > config.max_key_bytes {
            return Err(StorageRefusal::InvalidName);
        }
        Ok(config)
    }

    pub(super) fn get_key(&mut self, key: &str, owner: Option<u64>) -> Result<u64, StorageRefusal> {
        self.storage_config(key)?;
        self.check_request(owner)?;
        let now = self.now_ms();
        let answer = match self.store_failure.clone() {
            Some(why) => Err(StorageError::Unavailable(why)),
            None => Ok(self.keys.get(key, now)),
        };
        Ok(self.take_request(owner, StoreAnswer::Read(answer)))
    }

    pub(super) fn write_key(
        &mut self,
        key: &str,
        (value, ttl_ms): (Option<&[u8]>, Option<u64>),
        if_revision: Option<u64>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal> {
        // The contract's order: the table, then the value's size, then the key.
        let config = self.storage_table()?;
        if value.is_some_and(|v| v.len() > config.max_value_bytes) {
            return Err(StorageRefusal::TooLarge);
        }
        self.storage_config(key)?;
        self.check_request(owner)?;
        let now = self.now_ms();
        let write = match value {
            Some(value) => Write::Set { value, ttl_ms },
            None => Write::Remove,
        };
        let answer = match self.store_failure.clone() {
            Some(why) => Err(StorageError::Unavailable(why)),
            None => self.keys.write(&config, key, (write, if_revision), now),
        };
        Ok(self.take_request(owner, StoreAnswer::Written(answer)))
    }
}

impl<P: Exported> MockHost<P> {
    /// Gives the route a `[route.storage]` table: without one, storage calls are refused with
    /// [`StorageRefusal::NotConfigured`], as the gateway refuses them.
    pub fn with_storage(self, config: StorageConfig) -> Self {
        self.state.borrow_mut().storage_config = Some(config);
        self
    }

    /// A key's value as the store holds it now; `None` when it does not exist or has expired.
    pub fn stored(&self, key: &str) -> Option<StoredValue> {
        let mut state = self.state.borrow_mut();
        let now = state.now_ms();
        state.keys.get(key, now)
    }
}

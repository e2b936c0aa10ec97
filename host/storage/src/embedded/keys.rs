//! Key-value storage in the single-node store: get, set and remove with compare-and-set on a revision, time to live,
//! and the route's quotas, as the WIT's `storage` interface defines them.
//!
//! An expired value reads as absent at once; it keeps its place (and counts against the quotas) until a write of the
//! key or the sweep removes it.

use super::records::{EXPIRY, KEYS, KeyRecord, Usage, decode, encode};
use crate::{StoreError, Stored};
use redb::{ReadableTable, Table};
use std::time::Duration;
use wssgate_config::memory::StorageConfig;

type Keys<'t> = Table<'t, (&'static str, &'static str), &'static [u8]>;
type Expiry<'t> = Table<'t, (u64, &'static str, &'static str), ()>;

/// The key's record, live or expired.
fn record(
    keys: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    (route, key): (&str, &str),
) -> Result<Option<KeyRecord>, redb::Error> {
    keys.get((route, key))?
        .map(|v| decode::<KeyRecord>(v.value()))
        .transpose()
}

fn live(record: &KeyRecord, now: u64) -> bool {
    record.expires_at_ms.is_none_or(|at| at > now)
}

/// The key's value, unless absent or expired.
pub(super) fn get(
    keys: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    name: (&str, &str),
    now: u64,
) -> Result<Option<Stored>, redb::Error> {
    Ok(record(keys, name)?
        .filter(|r| live(r, now))
        .map(|r| Stored {
            value: r.value,
            revision: r.revision,
            expires_at_ms: r.expires_at_ms,
        }))
}

/// What a write is.
pub(super) enum Write<'a> {
    Set {
        value: &'a [u8],
        ttl: Option<Duration>,
    },
    Remove,
}

/// Sets or removes the key when `if_revision` matches its current revision (0: absent); returns the write's
/// revision, `Conflict` with the current one, or `QuotaExceeded` (nothing written).
pub(super) fn write(
    (keys, expiry): (&mut Keys<'_>, &mut Expiry<'_>),
    config: &StorageConfig,
    (route, key): (&str, &str),
    usage: &mut Usage,
    (write, if_revision): (Write<'_>, Option<u64>),
    now: u64,
) -> Result<Result<u64, StoreError>, redb::Error> {
    let old = record(&*keys, (route, key))?;
    let current = old
        .as_ref()
        .filter(|r| live(r, now))
        .map_or(0, |r| r.revision);
    if if_revision.is_some_and(|r| r != current) {
        return Ok(Err(StoreError::Conflict(current)));
    }
    let old_bytes = old
        .as_ref()
        .map_or(0, |r| (key.len() + r.value.len()) as u64);
    let new = match write {
        Write::Set { value, ttl } => {
            let bytes = (key.len() + value.len()) as u64;
            let keys_after = usage.keys + u64::from(old.is_none());
            if keys_after > config.max_keys
                || usage.key_bytes - old_bytes.min(usage.key_bytes) + bytes > config.max_bytes
            {
                return Ok(Err(StoreError::QuotaExceeded));
            }
            Some((
                value,
                ttl.map(|t| now.saturating_add(t.as_millis() as u64)),
                bytes,
            ))
        }
        Write::Remove => None,
    };
    usage.revision += 1;
    let revision = usage.revision;
    if let Some(at) = old.as_ref().and_then(|r| r.expires_at_ms) {
        expiry.remove((at, route, key))?;
    }
    if old.is_some() {
        usage.keys = usage.keys.saturating_sub(1);
        usage.key_bytes = usage.key_bytes.saturating_sub(old_bytes);
    }
    if let Some((value, expires_at_ms, bytes)) = new {
        let record = KeyRecord {
            revision,
            expires_at_ms,
            value: value.to_vec(),
        };
        keys.insert((route, key), encode(&record).as_slice())?;
        if let Some(at) = expires_at_ms {
            expiry.insert((at, route, key), ())?;
        }
        usage.keys += 1;
        usage.key_bytes += bytes;
    } else if old.is_some() {
        keys.remove((route, key))?;
    }
    Ok(Ok(revision))
}

/// Removes up to `budget` keys that expired by `now`; returns how many, and the routes whose usage changed
/// with what they freed (keys, bytes).
pub(super) fn sweep(
    (keys, expiry): (&mut Keys<'_>, &mut Expiry<'_>),
    now: u64,
    budget: usize,
) -> Result<Vec<(String, u64)>, redb::Error> {
    let due: Vec<(u64, String, String)> = expiry
        .range((0, "", "")..(now.saturating_add(1), "", ""))?
        .take(budget)
        .map(|item| {
            item.map(|(k, _)| {
                let (at, route, key) = k.value();
                (at, route.to_owned(), key.to_owned())
            })
        })
        .collect::<Result<_, _>>()?;
    let mut freed = Vec::new();
    for (at, route, key) in due {
        expiry.remove((at, route.as_str(), key.as_str()))?;
        let Some(old) = record(&*keys, (&route, &key))? else {
            continue;
        };
        if old.expires_at_ms == Some(at) && !live(&old, now) {
            keys.remove((route.as_str(), key.as_str()))?;
            freed.push((route, (key.len() + old.value.len()) as u64));
        }
    }
    Ok(freed)
}

/// Opens the two storage tables of a write transaction.
pub(super) fn open(txn: &redb::WriteTransaction) -> Result<(Keys<'_>, Expiry<'_>), redb::Error> {
    Ok((txn.open_table(KEYS)?, txn.open_table(EXPIRY)?))
}

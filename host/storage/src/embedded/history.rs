//! Group history in the single-node store: appending (with retention by count and age, and the route's quotas) and
//! reading a page since a position, as the WIT's `history` interface defines them.
//!
//! A group's entries are appended in time order, so the expired ones are always its oldest: retention only ever cuts
//! a prefix, and `complete` compares a position with the oldest offset still live.

use super::records::{
    ENTRIES, GROUPS, GroupRecord, Usage, decode, encode, entry_bytes, entry_message, entry_time,
};
use crate::{Entry, Message, Page, Position, StoreError};
use redb::{ReadableTable, Table};
use wssgate_config::memory::HistoryConfig;

type Groups<'t> = Table<'t, (&'static str, &'static str), &'static [u8]>;
type Entries<'t> = Table<'t, (&'static str, &'static str, u64), &'static [u8]>;

/// Whether an entry appended at `at_ms` has outlived `config`'s ttl at `now`.
fn expired(config: &HistoryConfig, at_ms: u64, now: u64) -> bool {
    at_ms.saturating_add(config.ttl.as_millis() as u64) <= now
}

/// A fresh epoch: random, so that a stream started again (after the data file was lost, or everything expired)
/// never repeats an old one.
fn new_epoch() -> String {
    let mut bytes = [0u8; 8];
    // Without the system's randomness, the clock still tells epochs apart.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = (crate::now_ms() ^ u64::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Removes the group's expired entries, at most `budget` of them (counted down), and the group itself when nothing is
/// left, keeping `group` and `usage` in step. Returns the group's record, or `None` when it has no history now.
pub(super) fn trim(
    (groups, entries): (&mut Groups<'_>, &mut Entries<'_>),
    config: &HistoryConfig,
    (route, group): (&str, &str),
    (usage, budget): (&mut Usage, &mut usize),
    now: u64,
) -> Result<Option<GroupRecord>, redb::Error> {
    let Some(mut record) = groups
        .get((route, group))?
        .map(|v| decode::<GroupRecord>(v.value()))
        .transpose()?
    else {
        return Ok(None);
    };
    let before = record.first;
    while record.first < record.next && *budget > 0 {
        let key = (route, group, record.first);
        let Some(at_ms) = entries.get(key)?.and_then(|v| entry_time(v.value())) else {
            record.first += 1;
            continue;
        };
        if !expired(config, at_ms, now) {
            break;
        }
        *budget -= 1;
        if let Some(old) = entries.remove(key)? {
            let size = old.value().len().saturating_sub(9) as u64;
            record.bytes = record.bytes.saturating_sub(size);
            usage.history_bytes = usage.history_bytes.saturating_sub(size);
        }
        record.first += 1;
    }
    if record.first == record.next {
        groups.remove((route, group))?;
        usage.groups = usage.groups.saturating_sub(1);
        return Ok(None);
    }
    if record.first != before {
        groups.insert((route, group), encode(&record).as_slice())?;
    }
    Ok(Some(record))
}

/// Appends `message` to the group's stream: the next offset of its epoch, or offset 1 of a new epoch when the group
/// has no history. Refused with `QuotaExceeded` (nothing written) past `max_groups` or `max_bytes`; the oldest
/// entries beyond `size` are dropped.
pub(super) fn append(
    (groups, entries): (&mut Groups<'_>, &mut Entries<'_>),
    config: &HistoryConfig,
    (route, group): (&str, &str),
    usage: &mut Usage,
    message: &Message,
    now: u64,
) -> Result<Result<Position, StoreError>, redb::Error> {
    // Everything expired in this group goes: at most `size` entries.
    let mut budget = usize::MAX;
    let current = trim(
        (groups, entries),
        config,
        (route, group),
        (usage, &mut budget),
        now,
    )?;
    let size = message.body.len() as u64;
    let is_new = current.is_none();
    let mut record = match current {
        Some(record) => record,
        None if usage.groups >= config.max_groups => return Ok(Err(StoreError::QuotaExceeded)),
        None => GroupRecord {
            epoch: new_epoch(),
            first: 1,
            next: 1,
            bytes: 0,
        },
    };
    // What the size retention will drop to make room, so that a full group can still take a message.
    let held = record.next - record.first;
    let dropping = (held + 1).saturating_sub(u64::from(config.size));
    let mut freed = 0;
    for offset in record.first..record.first + dropping {
        if let Some(old) = entries.get((route, group, offset))? {
            freed += old.value().len().saturating_sub(9) as u64;
        }
    }
    if usage.history_bytes - freed.min(usage.history_bytes) + size > config.max_bytes {
        return Ok(Err(StoreError::QuotaExceeded));
    }
    for offset in record.first..record.first + dropping {
        entries.remove((route, group, offset))?;
    }
    record.first += dropping;
    record.bytes = record.bytes.saturating_sub(freed) + size;
    usage.history_bytes = usage.history_bytes.saturating_sub(freed) + size;
    let offset = record.next;
    entries.insert(
        (route, group, offset),
        entry_bytes(now, message.binary, &message.body).as_slice(),
    )?;
    record.next += 1;
    groups.insert((route, group), encode(&record).as_slice())?;
    if is_new {
        usage.groups += 1;
    }
    Ok(Ok(Position {
        offset,
        epoch: record.epoch,
    }))
}

/// A page of the group's history since `since` (or the latest), as the WIT's `history.read` says. Reads only: an
/// expired entry not yet removed is skipped, not removed.
pub(super) fn read(
    groups: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    entries: &impl ReadableTable<(&'static str, &'static str, u64), &'static [u8]>,
    config: &HistoryConfig,
    (route, group): (&str, &str),
    (since, limit): (Option<&Position>, u32),
    now: u64,
) -> Result<Page, redb::Error> {
    let limit = u64::from(limit.clamp(1, config.size));
    let nothing = |complete| Page {
        epoch: String::new(),
        entries: Vec::new(),
        complete,
    };
    let Some(record) = groups
        .get((route, group))?
        .map(|v| decode::<GroupRecord>(v.value()))
        .transpose()?
    else {
        return Ok(nothing(since.is_none()));
    };
    // The oldest live offset: past the expired prefix, and within `size` of the end (the size may have shrunk).
    let mut oldest = record
        .first
        .max(record.next.saturating_sub(u64::from(config.size)));
    for item in entries.range((route, group, oldest)..(route, group, record.next))? {
        let (key, value) = item?;
        match entry_time(value.value()) {
            Some(at_ms) if !expired(config, at_ms, now) => break,
            _ => oldest = key.value().2 + 1,
        }
    }
    if oldest >= record.next {
        return Ok(nothing(since.is_none()));
    }
    let last = record.next - 1;
    let (start, complete) = match since {
        None => (oldest.max(record.next.saturating_sub(limit)), true),
        Some(p) if p.epoch != record.epoch => (oldest, false),
        Some(p) if p.offset > last => (record.next, false),
        Some(p) => ((p.offset + 1).max(oldest), p.offset + 1 >= oldest),
    };
    let end = start.saturating_add(limit).min(record.next);
    let mut page = Vec::new();
    if start < end {
        let range = entries.range((route, group, start)..(route, group, end))?;
        // Within the page's byte budget (always one): a page since a position is read from its start and ends early;
        // the latest page is read from its end, so it keeps the newest and never copies more than the budget.
        let items: Box<dyn Iterator<Item = _>> = if since.is_some() {
            Box::new(range)
        } else {
            Box::new(range.rev())
        };
        let mut held = 0;
        for item in items {
            let (key, value) = item?;
            let bytes = value.value();
            let (Some(at_ms), Some((binary, body))) = (entry_time(bytes), entry_message(bytes))
            else {
                continue;
            };
            if !page.is_empty() && held + body.len() > crate::MAX_PAGE_BYTES {
                break;
            }
            held += body.len();
            page.push(Entry {
                offset: key.value().2,
                message: Message {
                    binary,
                    body: body.to_vec(),
                },
                appended_at_ms: at_ms,
            });
        }
        if since.is_none() {
            page.reverse();
        }
    }
    Ok(Page {
        epoch: record.epoch,
        entries: page,
        complete,
    })
}

/// Opens the two history tables of a write transaction.
pub(super) fn open(txn: &redb::WriteTransaction) -> Result<(Groups<'_>, Entries<'_>), redb::Error> {
    Ok((txn.open_table(GROUPS)?, txn.open_table(ENTRIES)?))
}

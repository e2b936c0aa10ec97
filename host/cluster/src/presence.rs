//! Presence across nodes: who is in which group and which user has which connections, for the whole cluster,
//! answered without waiting on the network (a plugin's `group-size`, `is-user-online` and `connections-of-user`
//! run inside its callback, which must stay synchronous and bounded).
//!
//! Each node announces its own part on one subject: every second a heartbeat with the number of its last change;
//! every 100 ms the changes since the last (absolute values: a group's member count on the node, a user's
//! connections on it, so announcing one twice does no harm); and a full snapshot when another node asks for one —
//! a node it has not heard of yet, or one that missed a change (its numbers skip). Each node keeps the others'
//! parts in a [`RemoteView`] and adds them to its own answers. A node not heard from for [`DEAD_AFTER`] is out of
//! presence: it died, or the broker (or the way to it) is down; a node that stops cleanly says so and is out at once.

use super::wire::{Reader, put_str};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wssgate_hub::registry::ConnectionId;
use wssgate_hub::sync::lock;

/// How often a node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard from for this long is out of presence.
pub const DEAD_AFTER: Duration = Duration::from_secs(3);
/// How often a node announces its changes: the staleness of a live node's part of presence, plus transit.
pub const CHANGES_EVERY: Duration = Duration::from_millis(100);
/// The least time between two snapshots a node sends, however often it is asked.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

pub use wssgate_hub::peers::{PresenceKey as Key, PresenceValue as Value};

/// Pieces of presence that changed on this node since its last announcement: the hub marks them, the link reads
/// their values from the hub when it announces. A set, so a group that churns is announced once per round.
#[derive(Default)]
pub struct Changes(Mutex<HashSet<Key>>);

impl Changes {
    pub fn mark(&self, key: Key) {
        lock(&self.0).insert(key);
    }

    pub fn take(&self) -> HashSet<Key> {
        std::mem::take(&mut *lock(&self.0))
    }
}

/// The most connections of one user one node announces (a piece must fit in one NATS message): the others' view of
/// a user with more connections than this on one node lists this many of them. Less on a broker whose
/// `max_payload` is small: what fits in half of it.
pub const MAX_ANNOUNCED_IDS: usize = 65_536;

/// How many of one user's connections fit in an announcement on a broker taking `max_payload` bytes.
fn max_ids(max_payload: usize) -> usize {
    (max_payload / 2 / 8).clamp(1, MAX_ANNOUNCED_IDS)
}

/// What an announcement is.
const HEARTBEAT_KIND: u8 = b'h';
const CHANGES_KIND: u8 = b'd';
const SNAPSHOT_KIND: u8 = b's';
const LEAVING_KIND: u8 = b'l';

/// Who announces: the node's tag (the top bits of its connection ids), its name, and the number of its last change.
pub struct Announcer<'a> {
    pub tag: u32,
    pub node: &'a str,
    pub seq: u64,
}

impl Announcer<'_> {
    fn header(&self, kind: u8) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&self.tag.to_be_bytes());
        put_str(&mut out, self.node);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out
    }

    pub fn heartbeat(&self) -> Vec<u8> {
        self.header(HEARTBEAT_KIND)
    }

    pub fn leaving(&self) -> Vec<u8> {
        self.header(LEAVING_KIND)
    }

    /// Changes as messages of at most `max_payload` bytes; each takes the next number (`seq` advances).
    pub fn changes(&mut self, pieces: &[(Key, Value)], max_payload: usize) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        for part in split(pieces, max_payload) {
            self.seq += 1;
            let mut out = self.header(CHANGES_KIND);
            put_pieces(&mut out, part, max_ids(max_payload));
            messages.push(out);
        }
        messages
    }

    /// The node's whole presence, as of change `seq`, as snapshot `number`'s parts of at most `max_payload` bytes.
    pub fn snapshot(
        &self,
        number: u64,
        pieces: &[(Key, Value)],
        max_payload: usize,
    ) -> Vec<Vec<u8>> {
        let parts = split(pieces, max_payload);
        let count = parts.len().max(1) as u32;
        let mut messages = Vec::new();
        for index in 0..count {
            let mut out = self.header(SNAPSHOT_KIND);
            out.extend_from_slice(&number.to_be_bytes());
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
            let part = parts.get(index as usize).copied().unwrap_or(&[]);
            put_pieces(&mut out, part, max_ids(max_payload));
            messages.push(out);
        }
        messages
    }
}

/// What one piece costs in an announcement that lists at most `max_ids` connections of a user.
fn size(piece: &(Key, Value), max_ids: usize) -> usize {
    let names = match &piece.0 {
        Key::Group { route, group } => route.len() + group.len(),
        Key::User { route, uid } => route.len() + uid.len(),
    };
    let value = match &piece.1 {
        Value::Members(_) => 4,
        Value::Connections(ids) => 4 + ids.len().min(max_ids) * 8,
    };
    1 + 8 + names + value
}

/// `pieces` in runs that each fit a message of `max_payload` bytes (with room for the header).
fn split(pieces: &[(Key, Value)], max_payload: usize) -> Vec<&[(Key, Value)]> {
    let room = max_payload.saturating_sub(256).max(1024);
    let mut parts = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, piece) in pieces.iter().enumerate() {
        let cost = size(piece, max_ids(max_payload));
        if i > start && used + cost > room {
            parts.push(&pieces[start..i]);
            (start, used) = (i, 0);
        }
        used += cost;
    }
    if start < pieces.len() {
        parts.push(&pieces[start..]);
    }
    parts
}

fn put_pieces(out: &mut Vec<u8>, pieces: &[(Key, Value)], max_ids: usize) {
    out.extend_from_slice(&(pieces.len() as u32).to_be_bytes());
    for (key, value) in pieces {
        match (key, value) {
            (Key::Group { route, group }, Value::Members(count)) => {
                out.push(b'g');
                put_str(out, route);
                put_str(out, group);
                out.extend_from_slice(&count.to_be_bytes());
            }
            (Key::User { route, uid }, Value::Connections(ids)) => {
                out.push(b'u');
                put_str(out, route);
                put_str(out, uid);
                let ids = &ids[..ids.len().min(max_ids)];
                out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
                for id in ids {
                    out.extend_from_slice(&id.to_be_bytes());
                }
            }
            // The hub pairs every key with its kind of value.
            _ => {}
        }
    }
}

/// One other node's part of presence, as last announced.
struct NodeView {
    name: String,
    heard: Instant,
    /// The number of the last change applied.
    seq: u64,
    /// Whether the view holds everything up to `seq`: false until a snapshot arrives, and after a missed change.
    synced: bool,
    /// A snapshot being received: it replaces the view once its last part is in.
    staging: Option<Staging>,
    /// When this node last asked for the other's snapshot, so a burst of changes asks once.
    asked: Option<Instant>,
    groups: HashMap<(String, String), u32>,
    users: HashMap<(String, String), Vec<ConnectionId>>,
}

/// A snapshot's parts received so far.
#[derive(Default)]
struct Staging {
    number: u64,
    next: u32,
    groups: HashMap<(String, String), u32>,
    users: HashMap<(String, String), Vec<ConnectionId>>,
}

impl NodeView {
    fn new(name: &str, now: Instant) -> Self {
        NodeView {
            name: name.to_owned(),
            heard: now,
            seq: 0,
            synced: false,
            staging: None,
            asked: None,
            groups: HashMap::new(),
            users: HashMap::new(),
        }
    }

    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.heard) < DEAD_AFTER
    }

    /// Applies a snapshot's part: the first starts a staging copy, each next one adds to it, the last replaces the
    /// view. A part out of order drops the staging copy and leaves the view as it was, not synced.
    fn apply_snapshot_part(&mut self, seq: u64, reader: &mut Reader) -> Option<()> {
        let (number, index, count) = (reader.u64()?, reader.u32()?, reader.u32()?);
        if index == 0 {
            self.staging = Some(Staging {
                number,
                ..Staging::default()
            });
        }
        let Some(staging) = self
            .staging
            .as_mut()
            .filter(|s| s.number == number && s.next == index)
        else {
            self.staging = None;
            self.synced = false;
            return Some(());
        };
        apply_pieces(&mut staging.groups, &mut staging.users, reader)?;
        staging.next += 1;
        if staging.next == count {
            let staging = self.staging.take()?;
            (self.groups, self.users) = (staging.groups, staging.users);
            self.seq = seq;
            self.synced = true;
        }
        Some(())
    }

    /// Whether to ask the node for a snapshot now: not synced, not asked within the last second, and no snapshot
    /// on its way (a large one takes a while).
    fn should_ask(&mut self, now: Instant) -> bool {
        let since = |wait| self.asked.is_some_and(|at| now.duration_since(at) < wait);
        if self.synced || since(SNAPSHOT_EVERY) || (self.staging.is_some() && since(DEAD_AFTER)) {
            return false;
        }
        self.asked = Some(now);
        true
    }
}

/// Reads pieces into `groups` and `users`: a zero count or an empty list takes a piece out.
fn apply_pieces(
    groups: &mut HashMap<(String, String), u32>,
    users: &mut HashMap<(String, String), Vec<ConnectionId>>,
    reader: &mut Reader,
) -> Option<()> {
    let count = reader.u32()?;
    for _ in 0..count {
        let kind = reader.u8()?;
        let key = (reader.str()?.to_owned(), reader.str()?.to_owned());
        match kind {
            b'g' => match reader.u32()? {
                0 => groups.remove(&key),
                members => groups.insert(key, members),
            },
            b'u' => {
                let n = reader.u32()? as usize;
                let mut ids = Vec::with_capacity(n.min(MAX_ANNOUNCED_IDS));
                for _ in 0..n {
                    ids.push(reader.u64()?);
                }
                if ids.is_empty() {
                    users.remove(&key);
                } else {
                    users.insert(key, ids);
                }
                None
            }
            _ => return None,
        };
    }
    Some(())
}

/// The other nodes' presence.
#[derive(Default)]
pub struct RemoteView {
    nodes: Mutex<HashMap<u32, NodeView>>,
    /// When two other nodes sharing a name were last reported, so the log says it once a minute.
    twins_reported: Mutex<Option<Instant>>,
}

/// What a node learned from an announcement.
pub enum Heard {
    Nothing,
    /// Ask the node with this tag for a snapshot.
    AskSnapshot(u32),
    /// Another node uses this node's tag: its connection ids could be taken for this node's.
    Clash(String),
    /// Another node (this tag) uses this node's name.
    SameName(u32),
}

impl RemoteView {
    /// Applies one announcement from another node.
    pub fn apply(&self, bytes: &[u8], own_tag: u32, own_name: &str) -> Heard {
        self.apply_at(bytes, own_tag, own_name, Instant::now())
            .unwrap_or(Heard::Nothing)
    }

    fn apply_at(&self, bytes: &[u8], own_tag: u32, own_name: &str, now: Instant) -> Option<Heard> {
        let mut reader = Reader::new(bytes);
        let kind = reader.u8()?;
        let tag = reader.u32()?;
        let name = reader.str()?;
        let seq = reader.u64()?;
        if tag == own_tag {
            return Some(if name == own_name {
                Heard::Nothing
            } else {
                Heard::Clash(name.to_owned())
            });
        }
        let mut nodes = lock(&self.nodes);
        if kind == LEAVING_KIND {
            nodes.remove(&tag);
            return Some(Heard::Nothing);
        }
        if !nodes.contains_key(&tag) {
            // A node that restarted comes back with a new tag: its old part is gone with its old process — unless
            // that one still speaks (two nodes given one name), which this node's log then reports.
            let twin = nodes
                .values()
                .any(|old| old.name == name && now.duration_since(old.heard) < 2 * HEARTBEAT);
            if twin {
                self.twin_seen(name, now);
            } else {
                nodes.retain(|_, old| old.name != name);
            }
        }
        let view = nodes.entry(tag).or_insert_with(|| NodeView::new(name, now));
        if view.name != name || !view.alive(now) {
            // The tag went to another node, or the node came back after it was counted out: start over.
            *view = NodeView::new(name, now);
        }
        view.heard = now;
        match kind {
            HEARTBEAT_KIND => {
                if seq != view.seq {
                    view.synced = false;
                }
            }
            CHANGES_KIND => {
                if seq != view.seq + 1 {
                    view.synced = false;
                }
                view.seq = seq;
                apply_pieces(&mut view.groups, &mut view.users, &mut reader)?;
            }
            SNAPSHOT_KIND => view.apply_snapshot_part(seq, &mut reader)?,
            _ => return None,
        }
        Some(if name == own_name {
            Heard::SameName(tag)
        } else if view.should_ask(now) {
            Heard::AskSnapshot(tag)
        } else {
            Heard::Nothing
        })
    }

    /// Two live nodes speak under one name: logged (once a minute), since their parts cannot be told from a restart.
    fn twin_seen(&self, name: &str, now: Instant) {
        let mut reported = lock(&self.twins_reported);
        if reported.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60)) {
            *reported = Some(now);
            tracing::error!(
                "cluster: two nodes named {name} spoke within 2 s of each other: give each node its own \
                 `node` name (or one of them restarted that fast)"
            );
        }
    }

    /// Takes out the nodes not heard from for [`DEAD_AFTER`]; returns their names.
    pub fn expire(&self) -> Vec<String> {
        let now = Instant::now();
        let mut gone = Vec::new();
        lock(&self.nodes).retain(|_, view| {
            let alive = view.alive(now);
            if !alive {
                gone.push(view.name.clone());
            }
            alive
        });
        gone
    }

    /// How many other nodes are in presence.
    pub fn nodes(&self) -> usize {
        let now = Instant::now();
        lock(&self.nodes).values().filter(|v| v.alive(now)).count()
    }

    /// Whether a node with this tag is in presence.
    pub fn knows(&self, tag: u32) -> bool {
        lock(&self.nodes)
            .get(&tag)
            .is_some_and(|v| v.alive(Instant::now()))
    }

    /// Members of `group` on the other nodes.
    pub fn group_size(&self, route: &str, group: &str) -> usize {
        let key = (route.to_owned(), group.to_owned());
        let now = Instant::now();
        lock(&self.nodes)
            .values()
            .filter(|v| v.alive(now))
            .filter_map(|v| v.groups.get(&key))
            .map(|&n| n as usize)
            .sum()
    }

    /// Connections of `uid` on the other nodes.
    pub fn connections_of_user(&self, route: &str, uid: &str) -> Vec<ConnectionId> {
        let key = (route.to_owned(), uid.to_owned());
        let now = Instant::now();
        lock(&self.nodes)
            .values()
            .filter(|v| v.alive(now))
            .filter_map(|v| v.users.get(&key))
            .flatten()
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> Key {
        Key::Group {
            route: "/chat".into(),
            group: name.into(),
        }
    }

    #[test]
    fn a_view_follows_changes_asks_for_a_snapshot_when_one_is_missed_and_forgets_a_silent_node() {
        let view = RemoteView::default();
        let mut b = Announcer {
            tag: 2,
            node: "b",
            seq: 0,
        };
        let t0 = Instant::now();
        // First heard of: asks for a snapshot, but applies what it hears meanwhile.
        let first = b.changes(&[(group("room"), Value::Members(3))], 1 << 20);
        assert!(matches!(
            view.apply_at(&first[0], 1, "a", t0),
            Some(Heard::AskSnapshot(2))
        ));
        assert_eq!(view.group_size("/chat", "room"), 3);
        let snapshot = b.snapshot(1, &[(group("room"), Value::Members(4))], 1 << 20);
        view.apply_at(&snapshot[0], 1, "a", t0);
        assert_eq!(view.group_size("/chat", "room"), 4);
        // A change is missed: the next one shows the gap, and the view asks again.
        b.changes(&[(group("room"), Value::Members(5))], 1 << 20);
        let next = b.changes(&[(group("hall"), Value::Members(1))], 1 << 20);
        let later = t0 + SNAPSHOT_EVERY;
        assert!(matches!(
            view.apply_at(&next[0], 1, "a", later),
            Some(Heard::AskSnapshot(2))
        ));
        // A user's connections; an empty list takes the user out.
        let user = |ids: Vec<u64>| {
            (
                Key::User {
                    route: "/chat".into(),
                    uid: "ann".into(),
                },
                Value::Connections(ids),
            )
        };
        view.apply_at(&b.changes(&[user(vec![7, 8])], 1 << 20)[0], 1, "a", later);
        assert_eq!(view.connections_of_user("/chat", "ann"), vec![7, 8]);
        view.apply_at(&b.changes(&[user(vec![])], 1 << 20)[0], 1, "a", later);
        assert!(view.connections_of_user("/chat", "ann").is_empty());
        // Another node with this node's tag is a clash.
        let clash = Announcer {
            tag: 1,
            node: "c",
            seq: 0,
        };
        assert!(matches!(
            view.apply_at(&clash.heartbeat(), 1, "a", later),
            Some(Heard::Clash(name)) if name == "c"
        ));
        // Leaving takes it out at once.
        view.apply_at(&b.leaving(), 1, "a", later);
        assert_eq!(view.nodes(), 0);
    }

    #[test]
    fn large_announcements_are_split_under_the_payload_limit() {
        let pieces: Vec<(Key, Value)> = (0..5000)
            .map(|i| (group(&format!("group-{i}")), Value::Members(1)))
            .collect();
        let mut a = Announcer {
            tag: 1,
            node: "a",
            seq: 0,
        };
        let messages = a.changes(&pieces, 16 * 1024);
        assert!(messages.len() > 5 && messages.iter().all(|m| m.len() <= 16 * 1024));
        assert_eq!(a.seq, messages.len() as u64);
        let view = RemoteView::default();
        for part in a.snapshot(1, &pieces, 16 * 1024) {
            view.apply(&part, 9, "z");
        }
        assert_eq!(view.group_size("/chat", "group-4999"), 1);
        assert!(lock(&view.nodes)[&1].synced);
    }

    #[test]
    fn a_snapshot_with_a_lost_part_changes_nothing_and_a_restarted_node_replaces_its_old_self() {
        let view = RemoteView::default();
        let pieces: Vec<(Key, Value)> = (0..3000)
            .map(|i| (group(&format!("g{i}")), Value::Members(2)))
            .collect();
        let b = Announcer {
            tag: 2,
            node: "b",
            seq: 0,
        };
        for part in b.snapshot(1, &pieces, 16 * 1024) {
            view.apply(&part, 1, "a");
        }
        assert_eq!(view.group_size("/chat", "g0"), 2);
        let smaller: Vec<(Key, Value)> = (0..3000)
            .map(|i| (group(&format!("g{i}")), Value::Members(1)))
            .collect();
        let parts = b.snapshot(2, &smaller, 16 * 1024);
        assert!(parts.len() > 2);
        for (i, part) in parts.iter().enumerate() {
            if i != 1 {
                view.apply(part, 1, "a");
            }
        }
        assert_eq!(view.group_size("/chat", "g0"), 2, "the old view stands");
        assert!(!lock(&view.nodes)[&2].synced);
        // Node b restarts with another tag: its old part goes.
        let b_again = Announcer {
            tag: 3,
            node: "b",
            seq: 0,
        };
        let later = Instant::now() + 2 * HEARTBEAT;
        view.apply_at(&b_again.heartbeat(), 1, "a", later);
        assert_eq!(view.nodes(), 1);
        assert_eq!(view.group_size("/chat", "g0"), 0);
        // A node named like this one is reported.
        let twin = Announcer {
            tag: 4,
            node: "a",
            seq: 0,
        };
        assert!(matches!(
            view.apply(&twin.heartbeat(), 1, "a"),
            Heard::SameName(4)
        ));
    }
}

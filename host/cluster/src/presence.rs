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

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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

pub use wssgate_hub::peers::{PresenceKey as Key, PresencePiece as Piece};

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

/// The first byte of every announcement: the version of its layout. An announcement of another version is dropped
/// like any unreadable one (nodes of two presence versions do not see each other's presence).
const VERSION: u8 = 1;

/// An announcement as it crosses: `[VERSION]` then this, in postcard. Strings and the piece list are
/// length-prefixed (varints); connection ids are 8 bytes each, big-endian.
#[derive(Serialize, Deserialize)]
struct Announcement<'a> {
    /// The node's tag (the top bits of its connection ids).
    tag: u32,
    #[serde(borrow)]
    node: Cow<'a, str>,
    /// The number of the node's last change.
    seq: u64,
    #[serde(borrow)]
    kind: Kind<'a>,
}

/// What an announcement is.
#[derive(Serialize, Deserialize)]
enum Kind<'a> {
    Heartbeat,
    Leaving,
    Changes(#[serde(borrow)] Pieces<'a>),
    /// Part `index` of `count` of snapshot `number`.
    Snapshot {
        number: u64,
        index: u32,
        count: u32,
        #[serde(borrow)]
        pieces: Pieces<'a>,
    },
}

/// One piece as it crosses: a group always with its member count, a user always with its connections.
#[derive(Serialize, Deserialize)]
enum WirePiece<'a> {
    Group {
        #[serde(borrow)]
        route: Cow<'a, str>,
        #[serde(borrow)]
        group: Cow<'a, str>,
        members: u32,
    },
    User {
        #[serde(borrow)]
        route: Cow<'a, str>,
        #[serde(borrow)]
        uid: Cow<'a, str>,
        #[serde(with = "ids")]
        ids: Cow<'a, [ConnectionId]>,
    },
}

impl<'a> WirePiece<'a> {
    /// `piece`, listing at most `max_ids` connections of a user.
    fn of(piece: &'a Piece, max_ids: usize) -> Self {
        match piece {
            Piece::Group {
                route,
                group,
                members,
            } => WirePiece::Group {
                route: route.into(),
                group: group.into(),
                members: *members,
            },
            Piece::User { route, uid, ids } => WirePiece::User {
                route: route.into(),
                uid: uid.into(),
                ids: ids[..ids.len().min(max_ids)].into(),
            },
        }
    }
}

/// The pieces of an announcement. Read without reserving room for the count the sender claims: the list grows with
/// the pieces actually read, so a crafted count costs nothing.
struct Pieces<'a>(Vec<WirePiece<'a>>);

impl Serialize for Pieces<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Pieces<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct List<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for List<'a> {
            type Value = Pieces<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of presence pieces")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pieces<'a>, A::Error> {
                let mut pieces = Vec::new();
                while let Some(piece) = seq.next_element()? {
                    pieces.push(piece);
                }
                Ok(Pieces(pieces))
            }
        }
        deserializer.deserialize_seq(List(std::marker::PhantomData))
    }
}

/// A user's connection ids as one byte string of 8 bytes each, big-endian (ids carry the node's tag in their top
/// bits: as varints most would take 10 bytes). Read into exactly as many ids as the bytes present hold.
mod ids {
    use super::*;

    pub fn serialize<S: Serializer>(
        ids: &[ConnectionId],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
        serializer.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, 'a, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Cow<'a, [ConnectionId]>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<ConnectionId>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("connection ids, 8 bytes each")
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<ConnectionId>, E> {
                if !bytes.len().is_multiple_of(8) {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                let mut ids = Vec::with_capacity(bytes.len() / 8);
                for id in bytes.chunks_exact(8) {
                    ids.push(u64::from_be_bytes(id.try_into().map_err(E::custom)?));
                }
                Ok(ids)
            }
        }
        deserializer.deserialize_bytes(Bytes).map(Cow::Owned)
    }
}

/// An announcement's bytes.
fn encode(announcement: &Announcement) -> Vec<u8> {
    let out = vec![VERSION];
    // Writing to a Vec fails only for a type serde cannot write, and these are all plain.
    postcard::to_extend(announcement, out).unwrap_or_else(|_| vec![VERSION])
}

/// Reads an announcement; `None` for another version, or bytes that are not a whole announcement and nothing else.
fn decode(bytes: &[u8]) -> Option<Announcement<'_>> {
    let (&version, rest) = bytes.split_first()?;
    if version != VERSION {
        return None;
    }
    match postcard::take_from_bytes(rest) {
        Ok((announcement, [])) => Some(announcement),
        _ => None,
    }
}

/// Who announces: the node's tag (the top bits of its connection ids), its name, and the number of its last change.
pub struct Announcer<'a> {
    pub tag: u32,
    pub node: &'a str,
    pub seq: u64,
}

impl Announcer<'_> {
    fn message(&self, kind: Kind) -> Vec<u8> {
        encode(&Announcement {
            tag: self.tag,
            node: self.node.into(),
            seq: self.seq,
            kind,
        })
    }

    pub fn heartbeat(&self) -> Vec<u8> {
        self.message(Kind::Heartbeat)
    }

    pub fn leaving(&self) -> Vec<u8> {
        self.message(Kind::Leaving)
    }

    /// Changes as messages of at most `max_payload` bytes; each takes the next number (`seq` advances).
    pub fn changes(&mut self, pieces: &[Piece], max_payload: usize) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        for part in split(pieces, max_payload) {
            // Never reached (one change a round); the receiver takes a wrap for a missed change.
            self.seq = self.seq.wrapping_add(1);
            let pieces = wire_pieces(part, max_payload);
            messages.push(self.message(Kind::Changes(pieces)));
        }
        messages
    }

    /// The node's whole presence, as of change `seq`, as snapshot `number`'s parts of at most `max_payload` bytes.
    pub fn snapshot(&self, number: u64, pieces: &[Piece], max_payload: usize) -> Vec<Vec<u8>> {
        let parts = split(pieces, max_payload);
        let count = parts.len().max(1) as u32;
        let mut messages = Vec::new();
        for index in 0..count {
            let part = parts.get(index as usize).copied().unwrap_or(&[]);
            messages.push(self.message(Kind::Snapshot {
                number,
                index,
                count,
                pieces: wire_pieces(part, max_payload),
            }));
        }
        messages
    }
}

fn wire_pieces(part: &[Piece], max_payload: usize) -> Pieces<'_> {
    let max_ids = max_ids(max_payload);
    Pieces(part.iter().map(|p| WirePiece::of(p, max_ids)).collect())
}

/// How many bytes postcard's varint of `n` takes: 7 bits a byte.
fn varint(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()).div_ceil(7).max(1) as usize
}

/// What one piece costs in an announcement that lists at most `max_ids` connections of a user: exactly its encoded
/// size (the variant, each string's length and bytes, the member count's varint or the ids' length and bytes).
fn size(piece: &Piece, max_ids: usize) -> usize {
    let text = |s: &str| varint(s.len()) + s.len();
    let body = match piece {
        Piece::Group {
            route,
            group,
            members,
        } => text(route) + text(group) + varint(*members as usize),
        Piece::User { route, uid, ids } => {
            let bytes = ids.len().min(max_ids) * 8;
            text(route) + text(uid) + varint(bytes) + bytes
        }
    };
    1 + body
}

/// `pieces` in runs that each fit a message of `max_payload` bytes (with room for the header).
fn split(pieces: &[Piece], max_payload: usize) -> Vec<&[Piece]> {
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

/// The most pieces (groups and users) of one other node this node's view holds, and the most bytes they take:
/// past them a node's further pieces are not taken (counted in `wssgate_cluster_presence_refused_total`, logged
/// once a minute) and its part of presence is incomplete. A snapshot being received is held beside the view, so
/// one node costs at most twice this.
pub const MAX_VIEW_ENTRIES: usize = 1 << 20;
pub const MAX_VIEW_BYTES: usize = 128 << 20;
/// The most other nodes in the view: announcements from further ones are not taken (counted the same way) until
/// one leaves or falls silent.
pub const MAX_NODES: usize = 1024;
/// What a piece costs beyond its names and ids: its map entry and strings.
const ENTRY_OVERHEAD: usize = 96;

/// What a view may hold: [`MAX_VIEW_ENTRIES`], [`MAX_VIEW_BYTES`] and [`MAX_NODES`] (smaller in tests).
#[derive(Clone, Copy)]
struct Caps {
    entries: usize,
    bytes: usize,
    nodes: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            entries: MAX_VIEW_ENTRIES,
            bytes: MAX_VIEW_BYTES,
            nodes: MAX_NODES,
        }
    }
}

/// One node's groups and users, and the bytes they take.
#[derive(Default)]
struct Part {
    groups: HashMap<(String, String), u32>,
    users: HashMap<(String, String), Vec<ConnectionId>>,
    bytes: usize,
}

impl Part {
    /// Applies pieces: a zero count or an empty list takes a piece out. A piece that would take the part past
    /// `caps` is not taken (a piece it replaces stays as it was); returns how many were not.
    fn apply(&mut self, pieces: Pieces, caps: Caps) -> u64 {
        let mut refused = 0;
        for piece in pieces.0 {
            let fits = |part: &Part, new: bool, old: usize, cost: usize| {
                let entries = part.groups.len() + part.users.len() + usize::from(new);
                entries <= caps.entries && part.bytes - old + cost <= caps.bytes
            };
            match piece {
                WirePiece::Group {
                    route,
                    group,
                    members,
                } => {
                    let key = (route.into_owned(), group.into_owned());
                    let cost = ENTRY_OVERHEAD + key.0.len() + key.1.len();
                    let present = self.groups.contains_key(&key);
                    if members == 0 {
                        if self.groups.remove(&key).is_some() {
                            self.bytes -= cost;
                        }
                    } else if present {
                        self.groups.insert(key, members);
                    } else if fits(self, true, 0, cost) {
                        self.groups.insert(key, members);
                        self.bytes += cost;
                    } else {
                        refused += 1;
                    }
                }
                WirePiece::User { route, uid, ids } => {
                    let key = (route.into_owned(), uid.into_owned());
                    let names = ENTRY_OVERHEAD + key.0.len() + key.1.len();
                    let old = self.users.get(&key).map(|ids| names + ids.len() * 8);
                    if ids.is_empty() {
                        if self.users.remove(&key).is_some() {
                            self.bytes -= old.unwrap_or(0);
                        }
                        continue;
                    }
                    let cost = names + ids.len() * 8;
                    if fits(self, old.is_none(), old.unwrap_or(0), cost) {
                        self.users.insert(key, ids.into_owned());
                        self.bytes = self.bytes - old.unwrap_or(0) + cost;
                    } else {
                        refused += 1;
                    }
                }
            }
        }
        refused
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
    part: Part,
}

/// A snapshot's parts received so far.
#[derive(Default)]
struct Staging {
    number: u64,
    next: u32,
    part: Part,
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
            part: Part::default(),
        }
    }

    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.heard) < DEAD_AFTER
    }

    /// Applies a snapshot's part: the first starts a staging copy, each next one adds to it, the last replaces the
    /// view. A part out of order drops the staging copy and leaves the view as it was, not synced. Returns the
    /// pieces not taken (over the caps).
    fn apply_snapshot_part(
        &mut self,
        seq: u64,
        (number, index, count): (u64, u32, u32),
        pieces: Pieces,
        caps: Caps,
    ) -> u64 {
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
            return 0;
        };
        let refused = staging.part.apply(pieces, caps);
        // `index` past u32::MAX parts never completes.
        let Some(next) = index.checked_add(1) else {
            self.staging = None;
            return refused;
        };
        staging.next = next;
        if next == count
            && let Some(staging) = self.staging.take()
        {
            self.part = staging.part;
            self.seq = seq;
            self.synced = true;
        }
        refused
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

/// The other nodes' presence.
#[derive(Default)]
pub struct RemoteView {
    nodes: Mutex<HashMap<u32, NodeView>>,
    caps: Caps,
    /// When two other nodes sharing a name were last reported, so the log says it once a minute.
    twins_reported: Mutex<Option<Instant>>,
    /// Pieces and announcements not taken for the caps, and when that was last logged.
    refused: AtomicU64,
    refused_reported: Mutex<Option<Instant>>,
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
    /// The announcement speaks for another node than the one that sealed it: dropped.
    Mismatch,
}

impl RemoteView {
    /// Applies one announcement, sealed by the node tagged `sender`.
    pub fn apply(&self, sender: u32, bytes: &[u8], own_tag: u32, own_name: &str) -> Heard {
        self.apply_at(sender, bytes, own_tag, own_name, Instant::now())
            .unwrap_or(Heard::Nothing)
    }

    fn apply_at(
        &self,
        sender: u32,
        bytes: &[u8],
        own_tag: u32,
        own_name: &str,
        now: Instant,
    ) -> Option<Heard> {
        let Announcement {
            tag,
            node: name,
            seq,
            kind,
        } = decode(bytes)?;
        if tag != sender {
            return Some(Heard::Mismatch);
        }
        let name = &*name;
        if tag == own_tag {
            return Some(if name == own_name {
                Heard::Nothing
            } else {
                Heard::Clash(name.to_owned())
            });
        }
        let mut nodes = lock(&self.nodes);
        if let Kind::Leaving = kind {
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
            if nodes.len() >= self.caps.nodes {
                nodes.retain(|_, view| view.alive(now));
                if nodes.len() >= self.caps.nodes {
                    drop(nodes);
                    self.refuse(1, name, now);
                    return Some(Heard::Nothing);
                }
            }
        }
        let view = nodes.entry(tag).or_insert_with(|| NodeView::new(name, now));
        if view.name != name || !view.alive(now) {
            // The tag went to another node, or the node came back after it was counted out: start over.
            *view = NodeView::new(name, now);
        }
        view.heard = now;
        let refused = match kind {
            Kind::Heartbeat => {
                if seq != view.seq {
                    view.synced = false;
                }
                0
            }
            Kind::Changes(pieces) => {
                if view.seq.checked_add(1) != Some(seq) {
                    view.synced = false;
                }
                view.seq = seq;
                view.part.apply(pieces, self.caps)
            }
            Kind::Snapshot {
                number,
                index,
                count,
                pieces,
            } => view.apply_snapshot_part(seq, (number, index, count), pieces, self.caps),
            // Taken out above.
            Kind::Leaving => return Some(Heard::Nothing),
        };
        let heard = if name == own_name {
            Heard::SameName(tag)
        } else if view.should_ask(now) {
            Heard::AskSnapshot(tag)
        } else {
            Heard::Nothing
        };
        drop(nodes);
        if refused > 0 {
            self.refuse(refused, name, now);
        }
        Some(heard)
    }

    /// Counts pieces (or a node's announcement) not taken for the caps; logged once a minute.
    fn refuse(&self, count: u64, name: &str, now: Instant) {
        let total = self.refused.fetch_add(count, Ordering::Relaxed) + count;
        let mut reported = lock(&self.refused_reported);
        if reported.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60)) {
            *reported = Some(now);
            tracing::error!(
                "cluster: presence from node {name} not taken: a node's view is capped at {} groups and users and \
                 {} MiB, and the view at {} other nodes; {total} so far \
                 (wssgate_cluster_presence_refused_total; logged at most once a minute)",
                self.caps.entries,
                self.caps.bytes >> 20,
                self.caps.nodes
            );
        }
    }

    /// How many pieces and announcements were not taken for the caps.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
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
            .filter_map(|v| v.part.groups.get(&key))
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
            .filter_map(|v| v.part.users.get(&key))
            .flatten()
            .copied()
            .collect()
    }
}

#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod tests {
    use super::*;

    /// The tag an announcement names (0 for one that does not decode): the sender a real node's seal gives.
    fn tag_in(bytes: &[u8]) -> u32 {
        decode(bytes).map_or(0, |a| a.tag)
    }

    impl RemoteView {
        /// Applies an announcement as sealed by the node it names.
        fn hear(&self, bytes: &[u8], own_tag: u32, own_name: &str) -> Heard {
            self.apply(tag_in(bytes), bytes, own_tag, own_name)
        }

        fn hear_at(
            &self,
            bytes: &[u8],
            own_tag: u32,
            own_name: &str,
            now: Instant,
        ) -> Option<Heard> {
            self.apply_at(tag_in(bytes), bytes, own_tag, own_name, now)
        }
    }

    fn group(name: &str, members: u32) -> Piece {
        Piece::Group {
            route: "/chat".into(),
            group: name.into(),
            members,
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
        let first = b.changes(&[group("room", 3)], 1 << 20);
        assert!(matches!(
            view.hear_at(&first[0], 1, "a", t0),
            Some(Heard::AskSnapshot(2))
        ));
        assert_eq!(view.group_size("/chat", "room"), 3);
        let snapshot = b.snapshot(1, &[group("room", 4)], 1 << 20);
        view.hear_at(&snapshot[0], 1, "a", t0);
        assert_eq!(view.group_size("/chat", "room"), 4);
        // A change is missed: the next one shows the gap, and the view asks again.
        b.changes(&[group("room", 5)], 1 << 20);
        let next = b.changes(&[group("hall", 1)], 1 << 20);
        let later = t0 + SNAPSHOT_EVERY;
        assert!(matches!(
            view.hear_at(&next[0], 1, "a", later),
            Some(Heard::AskSnapshot(2))
        ));
        // A user's connections; an empty list takes the user out.
        let user = |ids: Vec<u64>| Piece::User {
            route: "/chat".into(),
            uid: "ann".into(),
            ids,
        };
        view.hear_at(&b.changes(&[user(vec![7, 8])], 1 << 20)[0], 1, "a", later);
        assert_eq!(view.connections_of_user("/chat", "ann"), vec![7, 8]);
        view.hear_at(&b.changes(&[user(vec![])], 1 << 20)[0], 1, "a", later);
        assert!(view.connections_of_user("/chat", "ann").is_empty());
        // Another node with this node's tag is a clash.
        let clash = Announcer {
            tag: 1,
            node: "c",
            seq: 0,
        };
        assert!(matches!(
            view.hear_at(&clash.heartbeat(), 1, "a", later),
            Some(Heard::Clash(name)) if name == "c"
        ));
        // Leaving takes it out at once.
        view.hear_at(&b.leaving(), 1, "a", later);
        assert_eq!(view.nodes(), 0);
    }

    #[test]
    fn large_announcements_are_split_under_the_payload_limit() {
        let pieces: Vec<Piece> = (0..5000).map(|i| group(&format!("group-{i}"), 1)).collect();
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
            view.hear(&part, 9, "z");
        }
        assert_eq!(view.group_size("/chat", "group-4999"), 1);
        assert!(lock(&view.nodes)[&1].synced);
    }

    #[test]
    fn a_snapshot_with_a_lost_part_changes_nothing_and_a_restarted_node_replaces_its_old_self() {
        let view = RemoteView::default();
        let pieces: Vec<Piece> = (0..3000).map(|i| group(&format!("g{i}"), 2)).collect();
        let b = Announcer {
            tag: 2,
            node: "b",
            seq: 0,
        };
        for part in b.snapshot(1, &pieces, 16 * 1024) {
            view.hear(&part, 1, "a");
        }
        assert_eq!(view.group_size("/chat", "g0"), 2);
        let smaller: Vec<Piece> = (0..3000).map(|i| group(&format!("g{i}"), 1)).collect();
        let parts = b.snapshot(2, &smaller, 16 * 1024);
        assert!(parts.len() > 2);
        for (i, part) in parts.iter().enumerate() {
            if i != 1 {
                view.hear(part, 1, "a");
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
        view.hear_at(&b_again.heartbeat(), 1, "a", later);
        assert_eq!(view.nodes(), 1);
        assert_eq!(view.group_size("/chat", "g0"), 0);
        // A node named like this one is reported.
        let twin = Announcer {
            tag: 4,
            node: "a",
            seq: 0,
        };
        assert!(matches!(
            view.hear(&twin.heartbeat(), 1, "a"),
            Heard::SameName(4)
        ));
    }

    fn user(uid: &str, ids: Vec<u64>) -> Piece {
        Piece::User {
            route: "/chat".into(),
            uid: uid.into(),
            ids,
        }
    }

    #[test]
    fn every_kind_of_announcement_round_trips() {
        let mut a = Announcer {
            tag: 0xabcde,
            node: "node-a",
            seq: 41,
        };
        let header = |m: &Announcement| (m.tag, m.node.to_string(), m.seq);
        let heartbeat = a.heartbeat();
        assert_eq!(heartbeat[0], VERSION);
        let m = decode(&heartbeat).unwrap();
        assert_eq!(header(&m), (0xabcde, "node-a".into(), 41));
        assert!(matches!(m.kind, Kind::Heartbeat));
        assert!(matches!(decode(&a.leaving()).unwrap().kind, Kind::Leaving));
        let ids = vec![u64::MAX, 1 << 63, 0, 7];
        let pieces = [group("room", 3), user("ann", ids.clone()), group("gone", 0)];
        let changes = a.changes(&pieces, 1 << 20);
        let m = decode(&changes[0]).unwrap();
        assert_eq!(header(&m), (0xabcde, "node-a".into(), 42));
        let Kind::Changes(got) = m.kind else {
            panic!("not changes")
        };
        assert!(matches!(
            &got.0[..],
            [
                WirePiece::Group { route, group, members: 3 },
                WirePiece::User { uid, ids: got_ids, .. },
                WirePiece::Group { members: 0, .. },
            ] if route == "/chat" && group == "room" && uid == "ann" && got_ids[..] == ids[..]
        ));
        let parts = a.snapshot(5, &pieces, 1 << 20);
        let Kind::Snapshot {
            number: 5,
            index: 0,
            count: 1,
            pieces: got,
        } = decode(&parts[0]).unwrap().kind
        else {
            panic!("not a snapshot's only part")
        };
        assert_eq!(got.0.len(), 3);
        // An empty snapshot is one part with no pieces.
        let empty = a.snapshot(6, &[], 1 << 20);
        assert!(matches!(
            decode(&empty[0]).unwrap().kind,
            Kind::Snapshot { count: 1, pieces, .. } if pieces.0.is_empty()
        ));
    }

    #[test]
    fn another_version_truncated_or_trailing_bytes_are_dropped_like_any_bad_message() {
        let mut b = Announcer {
            tag: 2,
            node: "b",
            seq: 0,
        };
        let message = b.changes(&[group("room", 3), user("ann", vec![1, 2])], 1 << 20)[0].clone();
        let view = RemoteView::default();
        let mut other = message.clone();
        other[0] = VERSION + 1;
        assert!(decode(&other).is_none());
        assert!(matches!(view.hear(&other, 1, "a"), Heard::Nothing));
        for len in 0..message.len() {
            assert!(decode(&message[..len]).is_none(), "{len} bytes");
            assert!(matches!(view.hear(&message[..len], 1, "a"), Heard::Nothing));
        }
        let mut longer = message.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        // None of them touched the view.
        assert_eq!(view.nodes(), 0);
        assert_eq!(view.group_size("/chat", "room"), 0);
        view.hear(&message, 1, "a");
        assert_eq!(view.group_size("/chat", "room"), 3);
    }

    /// The largest single allocation made on this thread since the last [`largest_reset`]. A global allocator is an
    /// unsafe trait: this test-only one is the workspace's one allowed use of unsafe code in the gateway.
    #[allow(unsafe_code)]
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            static LARGEST: Cell<usize> = const { Cell::new(0) };
        }

        pub struct Counting;

        // SAFETY: every call is passed on to the system allocator unchanged.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
                unsafe { System.alloc(layout) }
            }

            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                unsafe { System.dealloc(ptr, layout) }
            }

            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                let _ = LARGEST.try_with(|l| l.set(l.get().max(new_size)));
                unsafe { System.realloc(ptr, layout, new_size) }
            }
        }

        pub fn largest_reset() -> usize {
            LARGEST.with(|l| l.replace(0))
        }
    }

    #[global_allocator]
    static ALLOCATOR: counting::Counting = counting::Counting;

    fn varint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    #[test]
    fn a_crafted_huge_length_is_rejected_without_allocating_for_it() {
        // [VERSION], tag 2, node "b", seq 1, then what each case adds.
        let start = || {
            let mut m = vec![VERSION];
            varint(&mut m, 2);
            varint(&mut m, 1);
            m.push(b'b');
            varint(&mut m, 1);
            m
        };
        let mut cases = Vec::new();
        // A node name claiming 2^62 bytes.
        let mut m = vec![VERSION, 2];
        varint(&mut m, 1 << 62);
        m.extend_from_slice(b"bbbb");
        cases.push(m);
        // Changes claiming u64::MAX pieces, then one group.
        let mut m = start();
        varint(&mut m, 2);
        varint(&mut m, u64::MAX);
        m.extend_from_slice(&[0, 1, b'r', 1, b'g', 1]);
        cases.push(m);
        // One user whose ids claim 2^40 bytes.
        let mut m = start();
        varint(&mut m, 2);
        varint(&mut m, 1);
        m.extend_from_slice(&[1, 1, b'r', 1, b'u']);
        varint(&mut m, 1 << 40);
        m.extend_from_slice(&[0; 16]);
        cases.push(m);
        // A snapshot part claiming 2^50 pieces.
        let mut m = start();
        varint(&mut m, 3);
        m.extend_from_slice(&[1, 0, 1]);
        varint(&mut m, 1 << 50);
        cases.push(m);
        // Ids that are not a whole number of 8 bytes.
        let mut m = start();
        varint(&mut m, 2);
        varint(&mut m, 1);
        m.extend_from_slice(&[1, 1, b'r', 1, b'u', 9]);
        m.extend_from_slice(&[0; 9]);
        cases.push(m);
        let view = RemoteView::default();
        for m in &cases {
            counting::largest_reset();
            assert!(decode(m).is_none(), "{m:?}");
            let largest = counting::largest_reset();
            // Nothing is reserved for a claimed length: at most the bytes present, or the first few pieces read.
            let room = m.len().max(4 * size_of::<WirePiece>());
            assert!(largest <= room, "{largest} bytes allocated for {m:?}");
            assert!(matches!(view.hear(m, 1, "a"), Heard::Nothing));
        }
        assert_eq!(view.nodes(), 0);
        // The last case with its ninth byte gone is a user with one id.
        let mut fine = cases.pop().unwrap();
        let at = fine.len() - 10;
        fine[at] = 8;
        fine.pop();
        assert!(matches!(decode(&fine).unwrap().kind, Kind::Changes(p) if p.0.len() == 1));
    }

    #[test]
    fn the_size_estimate_bounds_the_encoding_on_a_small_broker() {
        // 4 KiB: 256 ids of a user fit (2 KiB); a user with more is announced with 256 of them.
        let pieces: Vec<Piece> = (0..40)
            .map(|i| {
                if i % 2 == 0 {
                    user(
                        &format!("user-{i}-{}", "x".repeat(200)),
                        (0..300).map(|id| u64::MAX - id).collect(),
                    )
                } else {
                    group(&"g".repeat(300 + i), u32::MAX)
                }
            })
            .collect();
        let mut a = Announcer {
            tag: 0xfffff,
            node: &"n".repeat(64),
            seq: u64::MAX - 100,
        };
        let messages = a.changes(&pieces, 4096);
        assert!(messages.len() > 10);
        assert!(messages.iter().all(|m| m.len() <= 4096));
        let snapshot = a.snapshot(u64::MAX, &pieces, 4096);
        assert!(snapshot.iter().all(|m| m.len() <= 4096));
        for piece in &pieces {
            let one = a.changes(std::slice::from_ref(piece), 4096);
            let bare = Announcer {
                tag: a.tag,
                node: a.node,
                seq: a.seq,
            }
            .message(Kind::Changes(Pieces(Vec::new())));
            assert!(one[0].len() - bare.len() <= size(piece, max_ids(4096)));
        }
        let Kind::Changes(got) = decode(&messages[0]).unwrap().kind else {
            panic!("not changes")
        };
        assert!(matches!(&got.0[0], WirePiece::User { ids, .. } if ids.len() == 256));
    }

    #[test]
    fn a_node_view_stops_at_its_caps_and_the_view_at_its_number_of_nodes() {
        let caps = Caps {
            entries: 10,
            bytes: 4096,
            nodes: 2,
        };
        let view = RemoteView {
            caps,
            ..RemoteView::default()
        };
        let mut b = Announcer {
            tag: 2,
            node: "b",
            seq: 0,
        };
        let pieces: Vec<Piece> = (0..50).map(|i| group(&format!("g{i}"), 1)).collect();
        view.hear(&b.changes(&pieces, 1 << 20)[0], 1, "a");
        let held = |view: &RemoteView| {
            let nodes = lock(&view.nodes);
            let part = &nodes[&2].part;
            (part.groups.len() + part.users.len(), part.bytes)
        };
        assert_eq!(held(&view).0, 10);
        assert_eq!(view.refused(), 40);
        // A held piece still changes; one taken out makes room; a user too large for the bytes is refused.
        view.hear(
            &b.changes(&[group("g1", 5), group("g0", 0)], 1 << 20)[0],
            1,
            "a",
        );
        assert_eq!(
            (
                view.group_size("/chat", "g1"),
                view.group_size("/chat", "g0")
            ),
            (5, 0)
        );
        view.hear(
            &b.changes(&[user("big", (0..1000).collect())], 1 << 20)[0],
            1,
            "a",
        );
        assert!(view.connections_of_user("/chat", "big").is_empty());
        assert_eq!(view.refused(), 41);
        let (entries, bytes) = held(&view);
        assert!(entries == 9 && bytes <= caps.bytes, "{entries} {bytes}");
        // A snapshot is capped the same way.
        for part in b.snapshot(1, &pieces, 1 << 20) {
            view.hear(&part, 1, "a");
        }
        assert_eq!(held(&view).0, 10);
        assert!(lock(&view.nodes)[&2].synced);
        // Two other nodes at most: a third is refused until one leaves.
        let c = Announcer {
            tag: 3,
            node: "c",
            seq: 0,
        };
        let d = Announcer {
            tag: 4,
            node: "d",
            seq: 0,
        };
        view.hear(&c.heartbeat(), 1, "a");
        view.hear(&d.heartbeat(), 1, "a");
        assert_eq!(view.nodes(), 2);
        assert!(!view.knows(4));
        view.hear(&c.leaving(), 1, "a");
        view.hear(&d.heartbeat(), 1, "a");
        assert!(view.knows(4));
    }

    #[test]
    fn an_announcement_sealed_by_another_node_changes_nothing_and_the_last_number_does_not_overflow()
     {
        let view = RemoteView::default();
        let mut b = Announcer {
            tag: 2,
            node: "b",
            seq: 0,
        };
        view.hear(&b.changes(&[group("room", 3)], 1 << 20)[0], 1, "a");
        // Node 3 (or anyone who could seal) speaking for node 2: its goodbye, a rename, a change.
        let forged = [
            b.leaving(),
            Announcer {
                tag: 2,
                node: "mallory",
                seq: 9,
            }
            .heartbeat(),
            b.changes(&[group("room", 0)], 1 << 20).remove(0),
        ];
        for message in &forged {
            assert!(matches!(view.apply(3, message, 1, "a"), Heard::Mismatch));
        }
        assert!(view.knows(2) && !view.knows(3));
        assert_eq!(view.group_size("/chat", "room"), 3);
        assert_eq!(lock(&view.nodes)[&2].name, "b");
        // The largest change number, then another: no overflow, the view asks for a snapshot.
        let mut last = Announcer {
            tag: 2,
            node: "b",
            seq: u64::MAX - 1,
        };
        let at_max = last.changes(&[group("hall", 1)], 1 << 20);
        assert_eq!(last.seq, u64::MAX);
        view.hear(&at_max[0], 1, "a");
        view.hear(&at_max[0], 1, "a");
        let wrapped = last.changes(&[group("hall", 2)], 1 << 20);
        assert_eq!(last.seq, 0);
        view.hear(&wrapped[0], 1, "a");
        assert!(!lock(&view.nodes)[&2].synced);
        assert_eq!(view.group_size("/chat", "hall"), 2);
    }
}

//! What crosses nodes: subjects that name a route's audience, and the payload of a publication.
//!
//! Route paths, group names and user ids are the plugin's input and may hold `.`, `*`, `>` or spaces, which mean
//! something in a NATS subject: each is hex-encoded into a token of its own, so no name can stand for a wildcard or
//! another audience. A publication larger than the broker's `max_payload` crosses in chunks, put back together on
//! the other side.

use super::seal;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wssgate_hub::Audience;
use wssgate_hub::registry::{self, ConnectionId};
use wssgate_hub::sync::lock;

/// Names longer than this are hashed rather than spelled out: a NATS protocol line (subject included) must stay
/// under 4096 bytes, or the server closes the connection.
const MAX_SPELLED: usize = 100;

/// A name as a subject token: `x` and its hex, or for a long name `h` and the hex of its SHA-256 (the same on every
/// node and build; collision-resistant, so no two names share a subject — a subject is all a receiving node checks
/// a publication's route and audience against).
fn hex(text: &str) -> String {
    let spelled;
    let bytes = if text.len() > MAX_SPELLED {
        spelled = Sha256::digest(text.as_bytes());
        &spelled[..]
    } else {
        text.as_bytes()
    };
    let mut out = String::with_capacity(bytes.len() * 2 + 1);
    out.push(if text.len() > MAX_SPELLED { 'h' } else { 'x' });
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The subject of `audience` on `route`: a connection's is its node's own subject (every node subscribes to its
/// own), the others' are subscribed to by the nodes with members.
pub fn subject(prefix: &str, route: &str, audience: &Audience) -> String {
    let route = hex(route);
    match audience {
        Audience::Group(group) => format!("{prefix}.{route}.g.{}", hex(group)),
        Audience::User(uid) => format!("{prefix}.{route}.u.{}", hex(uid)),
        Audience::Route => format!("{prefix}.{route}.all"),
        Audience::Connection(id) => node_subject(prefix, registry::node_tag_of(*id)),
    }
}

/// The subject of messages for connections of the node tagged `tag` (see `registry::node_tag`).
pub fn node_subject(prefix: &str, tag: u32) -> String {
    format!("{prefix}.n.{tag:05x}")
}

/// Where nodes announce their presence (heartbeats, changes, snapshots).
pub fn presence_subject(prefix: &str) -> String {
    format!("{prefix}.presence")
}

/// Where a node is asked for a snapshot of its presence.
pub fn sync_subject(prefix: &str, tag: u32) -> String {
    format!("{prefix}.sync.{tag:05x}")
}

pub use wssgate_hub::peers::Publication;

/// Appends a length-prefixed string.
pub fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Reads what the `put_*` helpers wrote; every read is `None` past the end.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn str(&mut self) -> Option<&'a str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at..];
        self.at = self.bytes.len();
        rest
    }
}

/// A publication as it crosses: the route and audience (so the receiver need not parse the subject), the
/// exclusions, and the message.
pub fn encode(
    route: &str,
    audience: &Audience,
    exclude: &[ConnectionId],
    message: &Message,
) -> Option<Vec<u8>> {
    let (kind, body): (u8, &[u8]) = match message {
        Message::Text(text) => (0, text.as_bytes()),
        Message::Binary(bytes) => (1, bytes),
        Message::Close(Some(frame)) => (2, frame.reason.as_bytes()),
        _ => return None,
    };
    let connection;
    let (tag, name) = match audience {
        Audience::Group(group) => (b'g', group.as_str()),
        Audience::User(uid) => (b'u', uid.as_str()),
        Audience::Route => (b'r', ""),
        Audience::Connection(id) => {
            connection = id.to_string();
            (b'c', connection.as_str())
        }
    };
    let mut out =
        Vec::with_capacity(body.len() + route.len() + name.len() + 20 + exclude.len() * 8);
    out.push(kind);
    out.push(tag);
    put_str(&mut out, route);
    put_str(&mut out, name);
    out.extend_from_slice(&(exclude.len() as u32).to_be_bytes());
    for id in exclude {
        out.extend_from_slice(&id.to_be_bytes());
    }
    if let Message::Close(Some(frame)) = message {
        out.extend_from_slice(&u16::from(frame.code).to_be_bytes());
    }
    out.extend_from_slice(body);
    Some(out)
}

/// Reads a publication; `None` for bytes another program (or version) sent.
pub fn decode(bytes: &[u8]) -> Option<Publication> {
    let mut reader = Reader::new(bytes);
    let (kind, tag) = (reader.u8()?, reader.u8()?);
    let route = reader.str()?.to_owned();
    let name = reader.str()?.to_owned();
    let count = reader.u32()? as usize;
    let mut exclude = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        exclude.push(reader.u64()?);
    }
    let message = match kind {
        0 => Message::Text(std::str::from_utf8(reader.rest()).ok()?.to_owned().into()),
        1 => Message::Binary(reader.rest().to_vec().into()),
        2 => {
            let code = u16::from_be_bytes(reader.take(2)?.try_into().ok()?);
            let reason = std::str::from_utf8(reader.rest()).ok()?;
            Message::Close(Some(wssgate_hub::outbound::close_frame(code, reason)))
        }
        _ => return None,
    };
    let audience = match tag {
        b'g' => Audience::Group(name),
        b'u' => Audience::User(name),
        b'r' => Audience::Route,
        b'c' => Audience::Connection(name.parse().ok()?),
        _ => return None,
    };
    Some(Publication {
        route,
        audience,
        exclude,
        message,
    })
}

/// The first byte of every publication's body (inside its envelope, [`seal`]): a whole publication, or one chunk of
/// a publication larger than the broker's `max_payload`.
const WHOLE: u8 = b'P';
const CHUNK: u8 = b'C';
/// A chunk's header: kind, the sender's serial number of the publication, index, count. The sender is the
/// envelope's: a node can only add to its own publications.
const CHUNK_HEADER: usize = 1 + 8 + 4 + 4;

/// `publication` as bodies that, sealed, take at most `max_payload` bytes each: one, or its chunks in order (NATS
/// keeps one publisher's messages on one subject in order). Each is a header and a slice of the publication, sealed
/// without being copied together first.
pub fn frames(publication: &[u8], max_payload: usize, serial: u64) -> Vec<(Vec<u8>, &[u8])> {
    if publication.len() + 1 + seal::OVERHEAD <= max_payload {
        return vec![(vec![WHOLE], publication)];
    }
    let room = max_payload
        .saturating_sub(CHUNK_HEADER + seal::OVERHEAD)
        .max(1024);
    let count = publication.len().div_ceil(room);
    publication
        .chunks(room)
        .enumerate()
        .map(|(index, data)| {
            let mut head = Vec::with_capacity(CHUNK_HEADER);
            head.push(CHUNK);
            head.extend_from_slice(&serial.to_be_bytes());
            head.extend_from_slice(&(index as u32).to_be_bytes());
            head.extend_from_slice(&(count as u32).to_be_bytes());
            (head, data)
        })
        .collect()
}

/// A publication being put back together from its chunks.
struct Partial {
    serial: u64,
    next: u32,
    count: u32,
    /// Its chunks so far, each as received (joined once the last is in, so a large publication is not copied at
    /// every chunk).
    chunks: Vec<Vec<u8>>,
    /// What its chunks are charged against the budget: their bytes and [`CHUNK_OVERHEAD`] each.
    charged: usize,
    /// When its last chunk came.
    touched: Instant,
    /// A chunk of it was lost (counted): the rest of its chunks are dropped as they come.
    broken: bool,
}

/// A partial publication whose next chunk has not come for this long will not be completed: dropped.
const PARTIAL_TTL: Duration = Duration::from_secs(10);

/// What a partial publication costs beyond its chunks (its map entry and bookkeeping), charged against the budget
/// from its first chunk until it is complete or dropped: empty chunks from many senders fill the budget too.
const PARTIAL_OVERHEAD: usize = 256;
/// What each chunk held costs beyond its bytes.
const CHUNK_OVERHEAD: usize = 64;
/// The most partial publications one sender has at once, over all of a node's subscriptions. A node sends one
/// publication's chunks before the next one's, so it has one in flight — a few while the receiving node's
/// subscriptions catch up.
const PER_SENDER: usize = 4;

/// The most bytes of partial publications a node holds at once, over all its subscriptions, overheads included.
pub const REASSEMBLY_BUDGET: usize = 64 << 20;

/// What all of a node's reassemblies share: the bytes they hold, each sender's partial publications, and how many
/// publications they lost.
pub struct ReassemblyBudget {
    limit: usize,
    held: AtomicUsize,
    /// Partial publications per sender.
    senders: Mutex<HashMap<u32, usize>>,
    /// Publications that never came together: a chunk was lost, or there was no room for them.
    pub lost: AtomicU64,
}

impl Default for ReassemblyBudget {
    fn default() -> Self {
        ReassemblyBudget::with_limit(REASSEMBLY_BUDGET)
    }
}

impl ReassemblyBudget {
    /// A budget of `limit` bytes (tests and the fuzz targets use small ones).
    pub fn with_limit(limit: usize) -> Self {
        ReassemblyBudget {
            limit,
            held: AtomicUsize::new(0),
            senders: Mutex::new(HashMap::new()),
            lost: AtomicU64::new(0),
        }
    }

    /// The bytes held now, overheads included.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The senders with partial publications now.
    pub fn senders(&self) -> usize {
        lock(&self.senders).len()
    }

    /// Takes `bytes` from the budget; false (and nothing taken) when they do not fit.
    fn charge(&self, bytes: usize) -> bool {
        let before = self.held.fetch_add(bytes, Ordering::AcqRel);
        if before.saturating_add(bytes) > self.limit {
            self.held.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Gives `sender` one more partial publication, within [`PER_SENDER`] and the budget.
    fn enter(&self, sender: u32) -> bool {
        let mut senders = lock(&self.senders);
        let partials = senders.entry(sender).or_default();
        if *partials >= PER_SENDER || !self.charge(PARTIAL_OVERHEAD) {
            if *partials == 0 {
                senders.remove(&sender);
            }
            return false;
        }
        *partials += 1;
        true
    }

    /// Ends one of `sender`'s partial publications, freeing what it held.
    fn leave(&self, sender: u32, charged: usize) {
        self.release(charged + PARTIAL_OVERHEAD);
        let mut senders = lock(&self.senders);
        if let Some(partials) = senders.get_mut(&sender) {
            *partials = partials.saturating_sub(1);
            if *partials == 0 {
                senders.remove(&sender);
            }
        }
    }
}

/// Puts chunked publications back together, for one subscription: at most one partial publication per sender (its
/// chunks arrive in order and uninterrupted), what it holds counted against a budget shared by the whole node.
pub struct Reassembly {
    partials: HashMap<u32, Partial>,
    budget: Arc<ReassemblyBudget>,
}

impl Reassembly {
    pub fn new(budget: Arc<ReassemblyBudget>) -> Self {
        Reassembly {
            partials: HashMap::new(),
            budget,
        }
    }

    /// Takes the body of one message from `sender` (authenticated by its envelope); returns a complete
    /// publication's bytes when it has one.
    pub fn take(&mut self, sender: u32, body: &[u8]) -> Option<Vec<u8>> {
        let mut reader = Reader::new(body);
        match reader.u8()? {
            WHOLE => return Some(reader.rest().to_vec()),
            CHUNK => {}
            _ => return None,
        }
        let (serial, index, count) = (reader.u64()?, reader.u32()?, reader.u32()?);
        if index >= count {
            // No node sends this: a chunk past its own count.
            return None;
        }
        let data = reader.rest();
        // `index < count`, so this cannot overflow.
        let last = index + 1 == count;
        let now = Instant::now();
        let continues = self
            .partials
            .get(&sender)
            .is_some_and(|p| index > 0 && p.serial == serial && p.count == count);
        if !continues {
            // A new publication from this sender: what it had in progress here is lost.
            self.forget(sender);
            if index > 0 {
                // Its first chunks were lost (or found no room): one loss; its other chunks are dropped as they
                // come.
                self.budget.lost.fetch_add(1, Ordering::Relaxed);
                if !last && self.start(sender, serial, count, now) {
                    self.partials.entry(sender).and_modify(|p| p.broken = true);
                }
                return None;
            }
            if !self.start(sender, serial, count, now) {
                self.budget.lost.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let partial = self.partials.get_mut(&sender)?;
        partial.touched = now;
        if partial.broken {
            if last {
                self.forget(sender);
            }
            return None;
        }
        let cost = data.len() + CHUNK_OVERHEAD;
        if partial.next != index || !self.budget.charge(cost) {
            // A chunk went missing, or there is no room: the publication is lost and what it held freed at once.
            self.budget.lost.fetch_add(1, Ordering::Relaxed);
            self.budget.release(partial.charged);
            (partial.chunks, partial.charged, partial.broken) = (Vec::new(), 0, true);
            if last {
                self.forget(sender);
            }
            return None;
        }
        partial.chunks.push(data.to_vec());
        partial.charged += cost;
        partial.next = index + 1;
        if !last {
            return None;
        }
        let partial = self.partials.remove(&sender)?;
        self.budget.leave(sender, partial.charged);
        Some(partial.chunks.concat())
    }

    /// Starts a partial publication for `sender`, if the budget and its share allow.
    fn start(&mut self, sender: u32, serial: u64, count: u32, now: Instant) -> bool {
        if !self.budget.enter(sender) {
            return false;
        }
        let partial = Partial {
            serial,
            next: 0,
            count,
            chunks: Vec::new(),
            charged: 0,
            touched: now,
            broken: false,
        };
        self.partials.insert(sender, partial);
        true
    }

    /// Drops the partial publications whose next chunk has not come for [`PARTIAL_TTL`] (their sender died or lost
    /// the broker mid-way), counting them lost. Called on a timer, so a silent subject frees its share too.
    pub fn expire(&mut self) {
        let now = Instant::now();
        let stale: Vec<u32> = self
            .partials
            .iter()
            .filter(|(_, p)| now.duration_since(p.touched) > PARTIAL_TTL)
            .map(|(sender, _)| *sender)
            .collect();
        for sender in stale {
            self.forget(sender);
        }
    }

    /// Drops `sender`'s partial publication, counting it lost unless it was already.
    fn forget(&mut self, sender: u32) {
        if let Some(partial) = self.partials.remove(&sender) {
            self.budget.leave(sender, partial.charged);
            if !partial.broken {
                self.budget.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// An unsubscription ends the publications still coming together: lost.
impl Drop for Reassembly {
    fn drop(&mut self) {
        let senders: Vec<u32> = self.partials.keys().copied().collect();
        for sender in senders {
            self.forget(sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_become_wildcards_and_publications_round_trip() {
        let group = subject("wssgate", "/chat", &Audience::Group("a.*>".into()));
        assert_eq!(group, "wssgate.x2f63686174.g.x612e2a3e");
        let bytes = encode(
            "/chat",
            &Audience::User("ann".into()),
            &[7, 9],
            &Message::text("hi"),
        )
        .unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(
            (back.route.as_str(), back.exclude, back.message),
            ("/chat", vec![7, 9], Message::text("hi"))
        );
        assert!(matches!(back.audience, Audience::User(u) if u == "ann"));
        assert!(decode(&bytes[..5]).is_none());
        let long = subject("wssgate", "/chat", &Audience::User("u".repeat(5000)));
        assert!(long.len() < 100, "{long}");
        // Long names are hashed with SHA-256: all 256 bits of it, so names do not share a subject.
        let near = subject("wssgate", "/chat", &Audience::User("u".repeat(4999) + "v"));
        assert_ne!(long, near);
        assert_eq!(long.rsplit('.').next().unwrap().len(), 1 + 64);
    }

    /// The bodies `frames` makes, each joined as the receiver reads it from its envelope.
    fn bodies(bytes: &[u8], max: usize, serial: u64) -> Vec<Vec<u8>> {
        frames(bytes, max, serial)
            .into_iter()
            .map(|(head, data)| [&head[..], data].concat())
            .collect()
    }

    #[test]
    fn a_publication_past_the_payload_limit_crosses_in_chunks_and_a_lost_chunk_loses_only_its_publication()
     {
        let budget = Arc::new(ReassemblyBudget::default());
        let mut reassembly = Reassembly::new(budget.clone());
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let first = bodies(&big, 100_000, 1);
        assert!(first.len() == 4 && first.iter().all(|f| f.len() + seal::OVERHEAD <= 100_000));
        let got: Vec<_> = first.iter().filter_map(|f| reassembly.take(7, f)).collect();
        assert_eq!(got, vec![big.clone()]);
        // The second chunk of the next one is lost: it is counted, and the one after arrives whole.
        for (i, frame) in bodies(&big, 100_000, 2).iter().enumerate() {
            if i != 1 {
                assert!(reassembly.take(7, frame).is_none());
            }
        }
        assert_eq!(budget.lost.load(Ordering::Relaxed), 1);
        let last = bodies(&big, 100_000, 3);
        let got: Vec<_> = last.iter().filter_map(|f| reassembly.take(7, f)).collect();
        assert_eq!(got, vec![big]);
        assert_eq!(budget.held(), 0);
        // A small one is one frame.
        assert_eq!(
            reassembly.take(7, &bodies(b"hi", 100_000, 4)[0]),
            Some(b"hi".to_vec())
        );
    }

    /// A chunk's body as a sender tagged anything could make it.
    fn chunk(serial: u64, index: u32, count: u32, data: &[u8]) -> Vec<u8> {
        let mut body = vec![CHUNK];
        body.extend_from_slice(&serial.to_be_bytes());
        body.extend_from_slice(&index.to_be_bytes());
        body.extend_from_slice(&count.to_be_bytes());
        body.extend_from_slice(data);
        body
    }

    #[test]
    fn chunks_claiming_to_be_last_and_past_their_count_do_not_overflow() {
        let budget = Arc::new(ReassemblyBudget::default());
        let mut reassembly = Reassembly::new(budget.clone());
        for (index, count) in [(u32::MAX, u32::MAX), (u32::MAX, 0), (5, 5), (0, 0)] {
            assert!(reassembly.take(1, &chunk(1, index, count, b"x")).is_none());
        }
        // The last index there is: a loss (its first chunks never came), nothing held.
        assert!(
            reassembly
                .take(1, &chunk(2, u32::MAX - 1, u32::MAX, b"x"))
                .is_none()
        );
        assert_eq!(budget.held(), 0);
        // A one-chunk publication is whole at once.
        assert_eq!(
            reassembly.take(1, &chunk(3, 0, 1, b"one")),
            Some(b"one".to_vec())
        );
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn many_senders_fill_the_budget_with_overheads_and_one_sender_holds_few_partials() {
        // Empty first chunks cost their overheads: a flood of them from made-up senders stops at the budget.
        let limit = 1 << 20;
        let budget = Arc::new(ReassemblyBudget::with_limit(limit));
        let mut flood = Reassembly::new(budget.clone());
        for sender in 0..100_000 {
            flood.take(sender, &chunk(1, 0, 2, b""));
        }
        assert!(budget.held() <= limit);
        assert!(
            flood.partials.len() <= limit / PARTIAL_OVERHEAD,
            "{} partials",
            flood.partials.len()
        );
        assert!(budget.lost.load(Ordering::Relaxed) > 90_000);
        drop(flood);
        assert_eq!((budget.held(), lock(&budget.senders).len()), (0, 0));

        // One sender, a partial on each of several subscriptions: past PER_SENDER the next is refused.
        let mut subscriptions: Vec<Reassembly> = (0..PER_SENDER + 1)
            .map(|_| Reassembly::new(budget.clone()))
            .collect();
        for (i, reassembly) in subscriptions.iter_mut().enumerate() {
            reassembly.take(9, &chunk(i as u64, 0, 2, b"abc"));
        }
        let held: Vec<usize> = subscriptions.iter().map(|r| r.partials.len()).collect();
        assert_eq!(held.iter().sum::<usize>(), PER_SENDER);
        // Another sender is not held back by it, and the first one's publications complete.
        let mut other = Reassembly::new(budget.clone());
        other.take(10, &chunk(1, 0, 2, b"ab"));
        assert_eq!(
            other.take(10, &chunk(1, 1, 2, b"cd")),
            Some(b"abcd".to_vec())
        );
        assert_eq!(
            subscriptions[0].take(9, &chunk(0, 1, 2, b"def")),
            Some(b"abcdef".to_vec())
        );
        drop(subscriptions);
        drop(other);
        assert_eq!((budget.held(), lock(&budget.senders).len()), (0, 0));
    }
}

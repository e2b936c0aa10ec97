//! What crosses nodes: subjects that name a route's audience, and the payload of a publication.
//!
//! Route paths, group names and user ids are the plugin's input and may hold `.`, `*`, `>` or spaces, which mean
//! something in a NATS subject: each is hex-encoded into a token of its own, so no name can stand for a wildcard or
//! another audience. A publication larger than the broker's `max_payload` crosses in chunks, put back together on
//! the other side.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wssgate_hub::Audience;
use wssgate_hub::registry::{self, ConnectionId};

/// Names longer than this are hashed rather than spelled out: a NATS protocol line (subject included) must stay
/// under 4096 bytes, or the server closes the connection.
const MAX_SPELLED: usize = 100;

/// A name as a subject token: `x` and its hex, or for a long name `h` and the hex of its FNV-1a hash (the same on
/// every node and build; a clash only sends a node traffic it then finds no member for).
fn hex(text: &str) -> String {
    if text.len() > MAX_SPELLED {
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        return format!("h{hash:016x}");
    }
    let mut out = String::with_capacity(text.len() * 2 + 1);
    out.push('x');
    for byte in text.bytes() {
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

/// The first byte of every payload on a route's or a node's subject: a whole publication, or one chunk of a
/// publication larger than the broker's `max_payload`.
const WHOLE: u8 = b'P';
const CHUNK: u8 = b'C';
/// A chunk's header: kind, sender's tag, the sender's serial number of the publication, index, count.
const CHUNK_HEADER: usize = 1 + 4 + 8 + 4 + 4;

/// `publication` as NATS payloads of at most `max_payload` bytes each: one, or its chunks in order (NATS keeps one
/// publisher's messages on one subject in order).
pub fn frames(publication: &[u8], max_payload: usize, sender: u32, serial: u64) -> Vec<Vec<u8>> {
    if publication.len() < max_payload {
        let mut whole = Vec::with_capacity(publication.len() + 1);
        whole.push(WHOLE);
        whole.extend_from_slice(publication);
        return vec![whole];
    }
    let room = max_payload.saturating_sub(CHUNK_HEADER).max(1024);
    let count = publication.len().div_ceil(room);
    publication
        .chunks(room)
        .enumerate()
        .map(|(index, data)| {
            let mut chunk = Vec::with_capacity(CHUNK_HEADER + data.len());
            chunk.push(CHUNK);
            chunk.extend_from_slice(&sender.to_be_bytes());
            chunk.extend_from_slice(&serial.to_be_bytes());
            chunk.extend_from_slice(&(index as u32).to_be_bytes());
            chunk.extend_from_slice(&(count as u32).to_be_bytes());
            chunk.extend_from_slice(data);
            chunk
        })
        .collect()
}

/// A publication being put back together from its chunks.
struct Partial {
    serial: u64,
    next: u32,
    count: u32,
    bytes: Vec<u8>,
    /// When its last chunk came.
    touched: Instant,
    /// A chunk of it was lost (counted): the rest of its chunks are dropped as they come.
    broken: bool,
}

impl Partial {
    fn new(serial: u64, count: u32, now: Instant) -> Self {
        Partial {
            serial,
            next: 0,
            count,
            bytes: Vec::new(),
            touched: now,
            broken: false,
        }
    }
}

/// A partial publication whose next chunk has not come for this long will not be completed: dropped.
const PARTIAL_TTL: Duration = Duration::from_secs(10);

/// What all of a node's reassemblies share: the bytes they hold, and how many publications they lost.
#[derive(Default)]
pub struct ReassemblyBudget {
    held: AtomicUsize,
    /// Publications that never came together: a chunk was lost, or there was no room for them.
    pub lost: AtomicU64,
}

/// Puts chunked publications back together, for one subscription: at most one partial publication per sender (its
/// chunks arrive in order and uninterrupted), its bytes counted against a budget shared by the whole node.
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

    /// Takes one NATS payload; returns a complete publication's bytes when it has one.
    pub fn take(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let mut reader = Reader::new(payload);
        match reader.u8()? {
            WHOLE => return Some(reader.rest().to_vec()),
            CHUNK => {}
            _ => return None,
        }
        let (sender, serial, index, count) =
            (reader.u32()?, reader.u64()?, reader.u32()?, reader.u32()?);
        let data = reader.rest();
        let last = index + 1 >= count;
        let now = Instant::now();
        if index == 0 {
            self.forget(sender);
            self.partials
                .insert(sender, Partial::new(serial, count, now));
        }
        let partial = match self.partials.get_mut(&sender) {
            Some(partial) if partial.serial == serial => partial,
            _ => {
                // Its first chunks were lost: one loss, counted once; its other chunks are dropped as they come.
                self.forget(sender);
                self.budget.lost.fetch_add(1, Ordering::Relaxed);
                if !last {
                    let mut broken = Partial::new(serial, count, now);
                    broken.broken = true;
                    self.partials.insert(sender, broken);
                }
                return None;
            }
        };
        partial.touched = now;
        let held = self.budget.held.fetch_add(data.len(), Ordering::AcqRel);
        let fits = held + data.len() <= REASSEMBLY_BUDGET;
        if partial.broken || partial.next != index || !fits {
            self.budget.held.fetch_sub(data.len(), Ordering::AcqRel);
            if !partial.broken {
                self.budget.lost.fetch_add(1, Ordering::Relaxed);
                let bytes = std::mem::take(&mut partial.bytes);
                self.budget.held.fetch_sub(bytes.len(), Ordering::AcqRel);
                partial.broken = true;
            }
            if last {
                self.partials.remove(&sender);
            }
            return None;
        }
        partial.bytes.extend_from_slice(data);
        partial.next += 1;
        if partial.next < partial.count {
            return None;
        }
        let bytes = self.partials.remove(&sender)?.bytes;
        self.budget.held.fetch_sub(bytes.len(), Ordering::AcqRel);
        Some(bytes)
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
            self.budget
                .held
                .fetch_sub(partial.bytes.len(), Ordering::AcqRel);
            if !partial.broken {
                self.budget.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// An unsubscription ends the publications still coming together: lost.
impl Drop for Reassembly {
    fn drop(&mut self) {
        for partial in self.partials.values() {
            if !partial.broken {
                self.budget.lost.fetch_add(1, Ordering::Relaxed);
            }
            self.budget
                .held
                .fetch_sub(partial.bytes.len(), Ordering::AcqRel);
        }
    }
}

/// The most bytes of partial publications a node holds at once, over all its subscriptions.
pub const REASSEMBLY_BUDGET: usize = 64 << 20;

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
    }

    #[test]
    fn a_publication_past_the_payload_limit_crosses_in_chunks_and_a_lost_chunk_loses_only_its_publication()
     {
        let budget = Arc::new(ReassemblyBudget::default());
        let mut reassembly = Reassembly::new(budget.clone());
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let first = frames(&big, 100_000, 7, 1);
        assert!(first.len() == 4 && first.iter().all(|f| f.len() <= 100_000));
        let got: Vec<_> = first.iter().filter_map(|f| reassembly.take(f)).collect();
        assert_eq!(got, vec![big.clone()]);
        // The second chunk of the next one is lost: it is counted, and the one after arrives whole.
        let next = frames_of(&big, 2);
        for (i, frame) in next.iter().enumerate() {
            if i != 1 {
                assert!(reassembly.take(frame).is_none());
            }
        }
        assert_eq!(budget.lost.load(Ordering::Relaxed), 1);
        let last = frames_of(&big, 3);
        let got: Vec<_> = last.iter().filter_map(|f| reassembly.take(f)).collect();
        assert_eq!(got, vec![big]);
        assert_eq!(budget.held.load(Ordering::Relaxed), 0);
        // A small one is one frame.
        assert_eq!(
            reassembly.take(&frames(b"hi", 100_000, 7, 4)[0]),
            Some(b"hi".to_vec())
        );
    }

    fn frames_of(bytes: &[u8], serial: u64) -> Vec<Vec<u8>> {
        frames(bytes, 100_000, 7, serial)
    }
}

//! The envelope every cluster message crosses NATS in — publications and their chunks, presence announcements,
//! snapshot requests, a node's goodbye — so that a node acts only on what another node of its cluster sent, once,
//! recently, on the subject it was sent on.
//!
//! Layout (cluster wire format 2; format 1 had no envelope): `[2]`, the sender's tag (u32), its sequence number
//! (u64), its clock in milliseconds since the Unix epoch (u64), the body, then HMAC-SHA256 under `[cluster] secret`
//! (an empty key without one) over the subject's length (u32) and bytes and everything before the MAC. Integers are
//! big-endian. The MAC binds the message to its subject: moved to another subject it no longer verifies.
//!
//! A sender's sequence numbers start at its clock in microseconds when the process starts and grow by one per
//! message, and its clock reading never goes back, so a restarted node (which may draw its old tag again) continues
//! above its old numbers. NATS keeps one publisher's messages on one subject in order, so on each subscription a
//! sender's numbers only grow: the receiver keeps, per subscription and sender, the last number it accepted, and
//! drops a message whose number is not above it (a duplicate), one stamped more than [`WINDOW`] from its own clock,
//! and one stamped before its subscription began (a replay of what was published before this node listened).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wssgate_hub::sync::lock;

/// The first byte of every cluster message.
pub const VERSION: u8 = 2;
/// Version, tag, sequence number, time.
const HEADER: usize = 1 + 4 + 8 + 8;
/// HMAC-SHA256's length.
const MAC: usize = 32;
/// What the envelope adds to a body.
pub const OVERHEAD: usize = HEADER + MAC;

/// How far a message's time may be from the receiver's clock, either way: transit and queueing, plus the nodes'
/// clock difference. Older messages are replays (or a clock far off) and are dropped.
pub const WINDOW: Duration = Duration::from_secs(30);
/// How much earlier than its subscription began a message may be stamped: the nodes' clock difference (they run
/// NTP) plus a sender's write buffer. Anything older was published before this node listened: a replay.
pub const SLACK: Duration = Duration::from_secs(1);
/// The most senders one subscription remembers at once (a sender is forgotten [`WINDOW`] after its last message):
/// nodes of the cluster, each restart a new one. Past it a new sender is refused until one is forgotten.
const MAX_SENDERS: usize = 1024;

/// This machine's clock, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// HMAC-SHA256 keyed with the cluster's secret, ready to be cloned for each message.
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl Key {
    pub fn new(secret: Option<&str>) -> Key {
        // HMAC takes a key of any length (a long one is hashed first), so this cannot fail.
        let mac = Hmac::<Sha256>::new_from_slice(secret.unwrap_or("").as_bytes())
            .expect("HMAC accepts keys of every length");
        Key(mac)
    }

    /// The MAC state after the subject; the signed bytes follow.
    fn start(&self, subject: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        let len = u32::try_from(subject.len()).unwrap_or(u32::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(subject.as_bytes());
        mac
    }

    /// Checks `payload`'s envelope for `subject`: `None` when it is too short, of another version, or its MAC does
    /// not verify (compared in constant time).
    pub fn open<'a>(&self, subject: &str, payload: &'a [u8]) -> Option<Opened<'a>> {
        if payload.len() < OVERHEAD || payload[0] != VERSION {
            return None;
        }
        let (signed, tag) = payload.split_at(payload.len() - MAC);
        let mut mac = self.start(subject);
        mac.update(signed);
        mac.verify_slice(tag).ok()?;
        let field = |at: usize, len: usize| &signed[at..at + len];
        let u64_at = |at| u64::from_be_bytes(field(at, 8).try_into().unwrap_or_default());
        Some(Opened {
            tag: u32::from_be_bytes(field(1, 4).try_into().unwrap_or_default()),
            seq: u64_at(5),
            time: u64_at(13),
            body: &signed[HEADER..],
        })
    }
}

/// A message whose envelope verified.
pub struct Opened<'a> {
    /// The sender's tag (the top bits of its connection ids).
    pub tag: u32,
    pub seq: u64,
    /// The sender's clock when it sealed the message, in milliseconds.
    pub time: u64,
    pub body: &'a [u8],
}

/// Seals this node's messages: its tag, its next sequence number, its clock, and the MAC.
pub struct Sealer {
    key: Key,
    tag: u32,
    /// The last sequence number and time used.
    last: Mutex<(u64, u64)>,
}

impl Sealer {
    pub fn new(key: Key, tag: u32) -> Sealer {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        Sealer {
            key,
            tag,
            last: Mutex::new((micros, 0)),
        }
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    /// `parts`, one after the other, as the body of a message on `subject`.
    pub fn seal(&self, subject: &str, parts: &[&[u8]]) -> Vec<u8> {
        let (seq, time) = {
            let mut last = lock(&self.last);
            // Never repeats a number, and never goes back in time (a clock stepped back keeps the last reading).
            last.0 = last.0.saturating_add(1);
            last.1 = last.1.max(now_ms());
            *last
        };
        let body: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = Vec::with_capacity(OVERHEAD + body);
        out.push(VERSION);
        out.extend_from_slice(&self.tag.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&time.to_be_bytes());
        for part in parts {
            out.extend_from_slice(part);
        }
        let mut mac = self.key.start(subject);
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        out
    }
}

/// Why a message was dropped before it was acted on (each counted in `wssgate_cluster_rejected_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Too short, another format version, or a MAC that does not verify: not from a node with this secret.
    Unauthenticated,
    /// A sequence number already seen from its sender on this subscription, or this node's own message.
    Replay,
    /// Stamped outside [`WINDOW`], or before this subscription began.
    Stale,
    /// Names another route, audience or sender than the subject and envelope it came in.
    Mismatch,
}

impl Reject {
    pub const ALL: [Reject; 4] = [
        Reject::Unauthenticated,
        Reject::Replay,
        Reject::Stale,
        Reject::Mismatch,
    ];

    /// Its `reason` label on `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Reject::Unauthenticated => "unauthenticated",
            Reject::Replay => "replay",
            Reject::Stale => "stale",
            Reject::Mismatch => "mismatch",
        }
    }
}

/// What one subscription remembers to tell a replay from a new message: when it began, and each sender's last
/// sequence number (and its time, to forget it once its messages are out of the window anyway).
pub struct Replay {
    /// Messages stamped before this (ms) are dropped.
    floor: u64,
    senders: HashMap<u32, (u64, u64)>,
}

impl Replay {
    /// For a subscription that began at `floor` (ms, with [`SLACK`] already taken off).
    pub fn new(floor: u64) -> Replay {
        Replay {
            floor,
            senders: HashMap::new(),
        }
    }

    /// Whether `message`, arriving at `now` (ms), is new: fresh, and numbered above its sender's last on this
    /// subscription. Remembers it if so.
    pub fn admit(&mut self, message: &Opened, now: u64) -> Result<(), Reject> {
        let window = WINDOW.as_millis() as u64;
        if message.time < self.floor
            || message.time.saturating_add(window) < now
            || message.time > now.saturating_add(window)
        {
            return Err(Reject::Stale);
        }
        if let Some((seq, time)) = self.senders.get_mut(&message.tag) {
            if message.seq <= *seq {
                return Err(Reject::Replay);
            }
            (*seq, *time) = (message.seq, message.time);
            return Ok(());
        }
        if self.senders.len() >= MAX_SENDERS {
            self.forget_old(now);
            if self.senders.len() >= MAX_SENDERS {
                return Err(Reject::Replay);
            }
        }
        self.senders
            .insert(message.tag, (message.seq, message.time));
        Ok(())
    }

    /// Forgets the senders whose last message is out of the window: anything numbered below it is stamped no later
    /// (a sender's clock never goes back), so out of the window too, and dropped as stale.
    pub fn forget_old(&mut self, now: u64) {
        let window = WINDOW.as_millis() as u64;
        self.senders
            .retain(|_, (_, time)| time.saturating_add(window) >= now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_only_with_its_key_and_subject_and_unaltered() {
        let sealer = Sealer::new(Key::new(Some("0123456789abcdef")), 0xabcde);
        let sealed = sealer.seal("wssgate.presence", &[b"hel", b"lo"]);
        assert_eq!(sealed[0], VERSION);
        let opened = sealer.key().open("wssgate.presence", &sealed).unwrap();
        assert_eq!((opened.tag, opened.body), (0xabcde, &b"hello"[..]));
        assert!(opened.time.abs_diff(now_ms()) < 5_000);
        // Another subject, another key, no key, any byte changed, a byte missing: none opens.
        assert!(sealer.key().open("wssgate.n.00001", &sealed).is_none());
        assert!(
            Key::new(Some("another secret!!"))
                .open("wssgate.presence", &sealed)
                .is_none()
        );
        assert!(Key::new(None).open("wssgate.presence", &sealed).is_none());
        for at in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[at] ^= 1;
            assert!(
                sealer.key().open("wssgate.presence", &changed).is_none(),
                "byte {at}"
            );
        }
        for len in 0..sealed.len() {
            assert!(
                sealer
                    .key()
                    .open("wssgate.presence", &sealed[..len])
                    .is_none()
            );
        }
        // Each message takes the next number.
        let next = sealer.seal("wssgate.presence", &[]);
        let next = sealer.key().open("wssgate.presence", &next).unwrap();
        assert_eq!(next.seq, opened.seq + 1);
        assert!(next.body.is_empty());
    }

    fn message(tag: u32, seq: u64, time: u64) -> Opened<'static> {
        Opened {
            tag,
            seq,
            time,
            body: &[],
        }
    }

    #[test]
    fn a_duplicate_an_old_message_and_one_from_before_the_subscription_are_refused() {
        let now = 1_000_000_000;
        let window = WINDOW.as_millis() as u64;
        let mut replay = Replay::new(now - 1_000);
        assert_eq!(replay.admit(&message(1, 10, now), now), Ok(()));
        assert_eq!(replay.admit(&message(1, 10, now), now), Err(Reject::Replay));
        assert_eq!(replay.admit(&message(1, 9, now), now), Err(Reject::Replay));
        // Numbers skip (the sender wrote to other subjects meanwhile); another sender has its own.
        assert_eq!(replay.admit(&message(1, 50, now), now), Ok(()));
        assert_eq!(replay.admit(&message(2, 3, now), now), Ok(()));
        // Before the subscription began; past the window either way.
        assert_eq!(
            replay.admit(&message(3, 1, now - 1_001), now),
            Err(Reject::Stale)
        );
        let later = now + window + 1;
        assert_eq!(
            replay.admit(&message(1, 51, now), later),
            Err(Reject::Stale)
        );
        assert_eq!(
            replay.admit(&message(1, 51, later + window + 1), later),
            Err(Reject::Stale)
        );
        // A sender is forgotten once its last message is out of the window: what it sent before is stale anyway.
        replay.forget_old(later);
        assert!(replay.senders.is_empty());
        assert_eq!(
            replay.admit(&message(1, 50, now), later),
            Err(Reject::Stale)
        );
    }

    #[test]
    fn a_subscription_remembers_a_bounded_number_of_senders() {
        let now = 1_000_000_000;
        let mut replay = Replay::new(0);
        for tag in 0..MAX_SENDERS as u32 {
            assert_eq!(replay.admit(&message(tag, 1, now), now), Ok(()));
        }
        assert_eq!(
            replay.admit(&message(u32::MAX, 1, now), now),
            Err(Reject::Replay)
        );
        assert_eq!(replay.senders.len(), MAX_SENDERS);
        // Once the others are out of the window, a new sender gets in.
        let later = now + WINDOW.as_millis() as u64 + 1;
        assert_eq!(replay.admit(&message(u32::MAX, 1, later), later), Ok(()));
        assert_eq!(replay.senders.len(), 1);
    }
}

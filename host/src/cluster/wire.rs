//! What crosses nodes: subjects that name a route's audience, and the payload of a publication.
//!
//! Route paths, group names and user ids are the plugin's input and may hold `.`, `*`, `>` or spaces, which mean
//! something in a NATS subject: each is hex-encoded into a token of its own, so no name can stand for a wildcard or
//! another audience.

use crate::hub::Audience;
use crate::registry::ConnectionId;
use std::fmt::Write as _;
use tokio_tungstenite::tungstenite::Message;

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

/// The subject of `audience` on `route`; `None` for an audience that is not subscribed to (one connection).
pub fn subject(prefix: &str, route: &str, audience: &Audience) -> Option<String> {
    let route = hex(route);
    Some(match audience {
        Audience::Group(group) => format!("{prefix}.{route}.g.{}", hex(group)),
        Audience::User(uid) => format!("{prefix}.{route}.u.{}", hex(uid)),
        Audience::Route => format!("{prefix}.{route}.all"),
        Audience::Connection(_) => return None,
    })
}

/// A publication as it crosses: the route and audience (so the receiver need not parse the subject), the
/// exclusions, and the message.
pub struct Publication {
    pub route: String,
    pub audience: Audience,
    pub exclude: Vec<ConnectionId>,
    pub message: Message,
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

impl Publication {
    pub fn encode(
        route: &str,
        audience: &Audience,
        exclude: &[ConnectionId],
        message: &Message,
    ) -> Option<Vec<u8>> {
        let (kind, body): (u8, &[u8]) = match message {
            Message::Text(text) => (0, text.as_bytes()),
            Message::Binary(bytes) => (1, bytes),
            _ => return None,
        };
        let (tag, name) = match audience {
            Audience::Group(group) => (b'g', group.as_str()),
            Audience::User(uid) => (b'u', uid.as_str()),
            Audience::Route => (b'r', ""),
            Audience::Connection(_) => return None,
        };
        let mut out =
            Vec::with_capacity(body.len() + route.len() + name.len() + 16 + exclude.len() * 8);
        out.push(kind);
        out.push(tag);
        put_str(&mut out, route);
        put_str(&mut out, name);
        out.extend_from_slice(&(exclude.len() as u32).to_be_bytes());
        for id in exclude {
            out.extend_from_slice(&id.to_be_bytes());
        }
        out.extend_from_slice(body);
        Some(out)
    }

    /// Reads a publication; `None` for bytes another program (or version) sent.
    pub fn decode(bytes: &[u8]) -> Option<Publication> {
        let mut at = 2usize;
        let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
            let slice = bytes.get(*at..at.checked_add(n)?)?;
            *at += n;
            Some(slice)
        };
        let u32_at = |at: &mut usize| -> Option<usize> {
            Some(u32::from_be_bytes(take(at, 4)?.try_into().ok()?) as usize)
        };
        let (kind, tag) = (*bytes.first()?, *bytes.get(1)?);
        let len = u32_at(&mut at)?;
        let route = std::str::from_utf8(take(&mut at, len)?).ok()?.to_owned();
        let len = u32_at(&mut at)?;
        let name = std::str::from_utf8(take(&mut at, len)?).ok()?.to_owned();
        let count = u32_at(&mut at)?;
        let mut exclude = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            exclude.push(u64::from_be_bytes(take(&mut at, 8)?.try_into().ok()?));
        }
        let body = &bytes[at..];
        let message = match kind {
            0 => Message::Text(std::str::from_utf8(body).ok()?.to_owned().into()),
            1 => Message::Binary(body.to_vec().into()),
            _ => return None,
        };
        let audience = match tag {
            b'g' => Audience::Group(name),
            b'u' => Audience::User(name),
            b'r' => Audience::Route,
            _ => return None,
        };
        Some(Publication {
            route,
            audience,
            exclude,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_become_wildcards_and_publications_round_trip() {
        let group = subject("wssgate", "/chat", &Audience::Group("a.*>".into())).unwrap();
        assert_eq!(group, "wssgate.x2f63686174.g.x612e2a3e");
        let bytes = Publication::encode(
            "/chat",
            &Audience::User("ann".into()),
            &[7, 9],
            &Message::text("hi"),
        )
        .unwrap();
        let back = Publication::decode(&bytes).unwrap();
        assert_eq!(
            (back.route.as_str(), back.exclude, back.message),
            ("/chat", vec![7, 9], Message::text("hi"))
        );
        assert!(matches!(back.audience, Audience::User(u) if u == "ann"));
        assert!(Publication::decode(&bytes[..5]).is_none());
        let long = subject("wssgate", "/chat", &Audience::User("u".repeat(5000))).unwrap();
        assert!(long.len() < 100, "{long}");
    }
}

//! Names on the broker: a route's stream and bucket, and the subjects of its groups and keys.
//!
//! Route paths, group names and keys come from configuration and plugins and may hold anything — `.`, `*`, `>`,
//! spaces — that means something to NATS, so none is ever used as written. A route becomes a SHA-256 of the cluster
//! `prefix` and its path (so gateway clusters sharing one NATS account never share data), and a group or key becomes
//! one subject token: `x` and its base64url spelling when short, `h` and the hex of its SHA-256 when longer (the
//! protocol line that carries a subject must stay under 4096 bytes, and every stored message repeats its subject).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Names up to this many bytes are spelled out (64 base64 characters); longer ones are hashed.
const MAX_SPELLED: usize = 48;

/// The hex of SHA-256 over `parts`, each length-prefixed so no two lists of parts hash alike.
fn digest_hex(parts: &[&[u8]], chars: usize) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let mut out = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(out, "{byte:02x}");
    }
    out.truncate(chars);
    out
}

/// A group name or key as one token, legal in a subject and in a KV key, never empty.
pub(crate) fn token(name: &str) -> String {
    if name.len() > MAX_SPELLED {
        format!("h{}", digest_hex(&[name.as_bytes()], 64))
    } else {
        format!("x{}", URL_SAFE_NO_PAD.encode(name))
    }
}

/// Where one route's data lives on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteNames {
    /// The history stream: `<prefix>_history_<hash>`.
    pub history_stream: String,
    /// The subjects of the history stream, without the group token: `<prefix>.history.<hash>`.
    pub history_subjects: String,
    /// The KV bucket: `<prefix>_kv_<hash>` (its stream is `KV_` and the bucket name).
    pub bucket: String,
}

impl RouteNames {
    /// The names of `route` for the cluster whose subjects start with `prefix` (a subject token, checked by the
    /// configuration: letters, digits, `-`, `_`).
    pub fn new(prefix: &str, route: &str) -> Self {
        // 128 bits: no two routes of any number of clusters meet.
        let hash = digest_hex(&[prefix.as_bytes(), route.as_bytes()], 32);
        RouteNames {
            history_stream: format!("{prefix}_history_{hash}"),
            history_subjects: format!("{prefix}.history.{hash}"),
            bucket: format!("{prefix}_kv_{hash}"),
        }
    }

    /// The subject of `group`'s messages.
    pub fn group_subject(&self, group: &str) -> String {
        format!("{}.{}", self.history_subjects, token(group))
    }

    /// The bucket's stream.
    pub fn kv_stream(&self) -> String {
        format!("KV_{}", self.bucket)
    }

    /// The subject of `key` in the bucket (the KV convention, so `nats kv` tools can read it).
    pub fn key_subject(&self, key: &str) -> String {
        format!("$KV.{}.{}", self.bucket, token(key))
    }
}

/// A fresh epoch: 128 random bits as hex, so two epochs of a group never meet.
pub(crate) fn new_epoch() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    let mut out = String::with_capacity(32);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_legal_and_distinct() {
        let long = "é".repeat(512);
        let names = [
            "",
            "a",
            "a.b",
            "*",
            ">",
            "a b",
            "\u{0}",
            long.as_str(),
            "x",
            "h",
        ];
        let tokens: Vec<String> = names.iter().map(|n| token(n)).collect();
        for t in &tokens {
            assert!(!t.is_empty() && t.len() <= 65, "{t}");
            assert!(
                t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{t}"
            );
        }
        let mut unique = tokens.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), tokens.len());
    }

    #[test]
    fn routes_differ_by_prefix_and_path() {
        let a = RouteNames::new("wssgate", "/chat");
        assert_eq!(a, RouteNames::new("wssgate", "/chat"));
        assert_ne!(a, RouteNames::new("other", "/chat"));
        assert_ne!(a, RouteNames::new("wssgate", "/chat2"));
        // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(RouteNames::new("ab", "c"), RouteNames::new("a", "bc"));
        assert!(a.group_subject("a.b *").starts_with("wssgate.history."));
        assert_eq!(a.group_subject("a.b *").matches('.').count(), 3);
    }

    #[test]
    fn epochs_are_fresh() {
        let (a, b) = (new_epoch().unwrap(), new_epoch().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}

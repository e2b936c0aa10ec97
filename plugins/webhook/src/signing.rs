//! The optional request signature (route setting `secret`), version 2 of the webhook protocol's signature. Every
//! call carries
//!
//! - `X-Wssgate-Timestamp: <unix seconds>`,
//! - `X-Wssgate-Nonce: <32 hex digits>`, random for each call, and
//! - `X-Wssgate-Signature: v2=<hex HMAC-SHA256>` of `v2\n<method>\n<path>\n<timestamp>\n<nonce>\n<body>`, where the
//!   path is the call's (`/connect`, `/message` or `/disconnect`, as appended to the upstream's URL).
//!
//! so the backend can tell the gateway from anyone else, refuse a call replayed late (an old timestamp), to
//! another endpoint (the method and path are signed: a captured `/message` does not verify as a `/disconnect`), or
//! twice within its window (a nonce it has seen). Version 1 signed `<timestamp>.<body>` alone, as `sha256=<hex>`;
//! the `v2=` prefix tells a backend which one it got.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The signature's version: the prefix of its header's value and the first line of what it signs.
pub const VERSION: &str = "v2";

/// A fresh nonce: 16 random bytes in hex, from the host's `wasi:random`.
pub fn nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// The three headers for a `method` call to `path` with `body`, signed with `secret` at `timestamp` with `nonce`.
pub fn headers(
    secret: &str,
    (method, path): (&str, &str),
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    let timestamp = timestamp.to_string();
    for part in [VERSION, method, path, &timestamp, nonce] {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac.update(body);
    let signature = hex(&mac.finalize().into_bytes());
    [
        ("x-wssgate-timestamp", timestamp),
        ("x-wssgate-nonce", nonce.to_owned()),
        ("x-wssgate-signature", format!("{VERSION}={signature}")),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn signs_version_method_path_timestamp_nonce_and_body() {
        // Python: hmac.new(b"k", b"v2\nPOST\n/message\n1700000000\nn0\n{}", hashlib.sha256).hexdigest()
        let [(_, ts), (_, nonce), (_, sig)] =
            super::headers("k", ("POST", "/message"), 1_700_000_000, "n0", b"{}");
        assert_eq!((ts.as_str(), nonce.as_str()), ("1700000000", "n0"));
        assert_eq!(
            sig,
            "v2=1b7ebbb1074ea06d3635fb9295c55b963fca163e5ae379dc2234b8b4294c933d"
        );
        let [_, _, (_, elsewhere)] =
            super::headers("k", ("POST", "/disconnect"), 1_700_000_000, "n0", b"{}");
        assert_ne!(sig, elsewhere, "the path is signed");
    }

    #[test]
    fn nonces_are_32_hex_digits_and_differ() {
        let (a, b) = (super::nonce().unwrap(), super::nonce().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

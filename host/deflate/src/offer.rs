//! Negotiation: the client's offers (`Sec-WebSocket-Extensions`, any number of headers, each a comma-separated
//! list of extensions with `;`-separated parameters, values plain or quoted) against what the route accepts.
//!
//! An offer with a parameter we do not know, a repeated parameter, a value out of range, or
//! `server_max_window_bits=8` (zlib cannot compress with a 256-byte window; it silently uses 512, which the client
//! would reject) is declined, and the next offer is tried: a bad offer never fails the upgrade, it only leaves the
//! connection uncompressed.

use crate::Mode;

/// What both sides agreed to for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// The window our compressor uses (9 to 15 bits).
    pub server_window_bits: u8,
    /// We keep our compression context from message to message.
    pub server_takeover: bool,
    /// The window the client may use: our inflater's (8 to 15; zlib inflates an 8-bit stream with a 9-bit window).
    pub client_window_bits: u8,
    /// The client keeps its context: our inflater must too, for this connection alone.
    pub client_takeover: bool,
    /// The `Sec-WebSocket-Extensions` value of the 101 response.
    pub response: String,
}

/// One parsed extension offer.
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `server_max_window_bits=N`.
    server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` was offered; with its value when it had one.
    client_max_window_bits: Option<Option<u8>>,
}

/// Picks the first `permessage-deflate` offer in `headers` (the values of every `Sec-WebSocket-Extensions` header,
/// in order) that `mode` can accept; `None` leaves the connection uncompressed.
pub fn negotiate<'h>(headers: impl IntoIterator<Item = &'h str>, mode: Mode) -> Option<Agreement> {
    headers
        .into_iter()
        .flat_map(split_list)
        .filter_map(|extension| parse_offer(&extension))
        .find_map(|offer| accept(&offer, mode))
}

/// Splits a header value at the commas outside quoted strings.
fn split_list(value: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted, mut escaped) =
        (Vec::new(), String::new(), false, false);
    for c in value.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                current.push(c);
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// A `permessage-deflate` offer's parameters; `None` for another extension or one we must decline.
fn parse_offer(extension: &str) -> Option<Offer> {
    let mut items = extension.split(';').map(str::trim);
    if !items.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut offer = Offer::default();
    for param in items {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim())?)),
            None => (param, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !offer.server_no_context_takeover => {
                offer.server_no_context_takeover = true
            }
            ("client_no_context_takeover", None) if !offer.client_no_context_takeover => {
                offer.client_no_context_takeover = true
            }
            ("server_max_window_bits", Some(v)) if offer.server_max_window_bits.is_none() => {
                offer.server_max_window_bits = Some(window_bits(v)?)
            }
            ("client_max_window_bits", v) if offer.client_max_window_bits.is_none() => {
                offer.client_max_window_bits = Some(match v {
                    Some(v) => Some(window_bits(v)?),
                    None => None,
                })
            }
            _ => return None,
        }
    }
    Some(offer)
}

/// A quoted-string's content, or a token; `None` for an empty or unterminated value.
fn unquote(value: &str) -> Option<&str> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => value,
    };
    (!inner.is_empty()).then_some(inner)
}

/// A window size parameter: a number from 8 to 15, in digits only (RFC 7692 section 7.1.2: no leading zeros or
/// signs).
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|b| (8..=15).contains(b))
}

/// What `mode` answers to `offer`, or `None` to decline it.
fn accept(offer: &Offer, mode: Mode) -> Option<Agreement> {
    // zlib cannot compress with an 8-bit window (see the module's doc).
    let client_limit = offer.server_max_window_bits;
    if client_limit == Some(8) {
        return None;
    }
    let mut response = String::from("permessage-deflate");
    let agreement = match mode {
        Mode::Shared => {
            // Neither side keeps a context, whatever the client offered; a window limit the client set for us is
            // kept (and answered, as the RFC requires), and we inflate with the largest window, which reads any.
            response.push_str("; server_no_context_takeover; client_no_context_takeover");
            let server_window_bits = client_limit.unwrap_or(15);
            if let Some(bits) = client_limit {
                response.push_str(&format!("; server_max_window_bits={bits}"));
            }
            Agreement {
                server_window_bits,
                server_takeover: false,
                client_window_bits: 15,
                client_takeover: false,
                response,
            }
        }
        Mode::Dedicated { window_bits } => {
            let server_window_bits = client_limit.unwrap_or(15).min(window_bits).max(9);
            let server_takeover = !offer.server_no_context_takeover;
            if !server_takeover {
                response.push_str("; server_no_context_takeover");
            }
            // Our window is announced only when the client asked for a limit: a decoder reads a stream of any
            // smaller window, and some clients refuse a parameter they did not offer.
            if client_limit.is_some() {
                response.push_str(&format!("; server_max_window_bits={server_window_bits}"));
            }
            let client_takeover = !offer.client_no_context_takeover;
            if !client_takeover {
                response.push_str("; client_no_context_takeover");
            }
            // The client's window can only be limited when it said it understands the parameter.
            let client_window_bits = match offer.client_max_window_bits {
                Some(offered) => {
                    let bits = offered.unwrap_or(15).min(window_bits).max(9);
                    response.push_str(&format!("; client_max_window_bits={bits}"));
                    bits
                }
                None => 15,
            };
            Agreement {
                server_window_bits,
                server_takeover,
                client_window_bits,
                client_takeover,
                response,
            }
        }
    };
    Some(agreement)
}

/// Whether a browser's `User-Agent` is Safari 15.0 to 15.3, which ignores `client_no_context_takeover` (its
/// messages refer back to earlier ones, which an inflater reset per message cannot read): such a client gets no
/// compression, as uWebSockets does.
pub fn is_broken_safari(user_agent: &str) -> bool {
    if !user_agent.contains("Safari/")
        || ["Chrome/", "Chromium/", "CriOS/", "Edg/", "FxiOS/"]
            .iter()
            .any(|other| user_agent.contains(other))
    {
        return false;
    }
    user_agent.split("Version/").skip(1).any(|rest| {
        let version: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let mut parts = version.split('.');
        parts.next() == Some("15") && matches!(parts.next(), Some("0" | "1" | "2" | "3"))
    })
}

#[cfg(test)]
mod tests;

//! Who the client really is when the gateway runs behind a proxy (nginx, Apache, a load balancer).
//!
//! A proxy reports the client's address in a PROXY protocol header (v1 text or v2 binary) before the connection's
//! first byte, or in the `X-Real-IP` or `X-Forwarded-For` request header. Anyone can send those, so they are
//! believed only from the listener's trusted proxies, and only the one source the listener names
//! (`client_address`): a proxy writes the header it is configured to write and passes the others through as the
//! client sent them. From anyone else the socket's address is the client's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use wssgate_config::{ClientAddress, TrustedProxies};

/// The signature that opens a PROXY protocol v2 header.
pub(crate) const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header, including its CRLF.
const V1_MAX: usize = 107;

/// Reads the PROXY protocol header a proxy sends before anything else, and returns the client address it names
/// (`None` for `UNKNOWN`/`LOCAL`, which name no client). Only the header's own bytes are consumed.
pub(crate) async fn read_proxy_header(tcp: &mut TcpStream) -> Result<Option<SocketAddr>, String> {
    let mut start = [0u8; 16];
    let seen = peek_until(tcp, &mut start, |b| {
        b.len() >= 6 && b.starts_with(b"PROXY ")
    })
    .await?;
    if start[..seen].starts_with(b"PROXY ") {
        let mut line = [0u8; V1_MAX];
        let peeked = peek_until(tcp, &mut line, |b| b.windows(2).any(|w| w == b"\r\n")).await?;
        let end = line[..peeked]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a PROXY v1 header without CRLF in its first 107 bytes")?;
        let mut header = vec![0u8; end + 2];
        tcp.read_exact(&mut header)
            .await
            .map_err(|e| e.to_string())?;
        parse_v1(&header[..end])
    } else if seen == 16 && start[..12] == V2_SIGNATURE {
        let len = u16::from_be_bytes([start[14], start[15]]) as usize;
        let mut header = vec![0u8; 16 + len];
        tcp.read_exact(&mut header)
            .await
            .map_err(|e| e.to_string())?;
        parse_v2(&header)
    } else {
        Err("the listener expects a PROXY protocol header, and the connection did not start with one".into())
    }
}

/// Peeks into `buf` until `done` holds for what arrived or `buf` is full, without consuming anything. Bounded to
/// about a second of waiting for the rest of a header that arrives in pieces.
async fn peek_until(
    tcp: &TcpStream,
    buf: &mut [u8],
    done: impl Fn(&[u8]) -> bool,
) -> Result<usize, String> {
    for _ in 0..200 {
        let seen = tcp.peek(buf).await.map_err(|e| e.to_string())?;
        if seen == 0 {
            return Err("the connection closed before its PROXY header was complete".into());
        }
        if seen == buf.len() || done(&buf[..seen]) {
            return Ok(seen);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Err("the PROXY header did not arrive in time".into())
}

/// The client's address for a request that reached the gateway from `peer`, whose head carried `headers` (names in
/// lower case): the one header `source` names when `peer` is a trusted proxy, else `peer` itself. (A PROXY
/// listener's client came with the connection's header, and is `peer` here: its request headers are never read.)
pub(crate) fn client_address(
    source: Option<ClientAddress>,
    trusted: &TrustedProxies,
    peer: SocketAddr,
    headers: &[(String, String)],
) -> SocketAddr {
    if !trusted.trusts(peer.ip()) {
        return peer;
    }
    let named = |name: &'static str| headers.iter().filter(move |(n, _)| n == name);
    match source {
        Some(ClientAddress::XForwardedFor) => {
            let hops = named("x-forwarded-for").flat_map(|(_, v)| v.split(','));
            walk_forwarded_for(trusted, peer, hops)
        }
        Some(ClientAddress::XRealIp) => {
            let mut values = named("x-real-ip");
            match (values.next(), values.next()) {
                (Some((_, value)), None) => parse_hop(value).unwrap_or_else(|| {
                    tracing::debug!(%peer, "X-Real-IP `{value}` from a trusted proxy is not an address");
                    peer
                }),
                // None, or several: no single word from the proxy, which replaces the client's.
                _ => {
                    tracing::debug!(%peer, "a trusted proxy sent no single X-Real-IP");
                    peer
                }
            }
        }
        Some(ClientAddress::ProxyProtocol) | None => peer,
    }
}

/// Walks the `X-Forwarded-For` hops (left to right, as sent) from the right, starting at `peer`: every trusted hop
/// vouches for the one before it, so the first hop that is not a trusted proxy is the client. A hop that does not
/// parse ends the walk at the last trusted hop — nothing left of it can be vouched for — and so does running out of
/// hops (a request a trusted proxy made itself).
fn walk_forwarded_for<'h>(
    trusted: &TrustedProxies,
    peer: SocketAddr,
    hops: impl DoubleEndedIterator<Item = &'h str>,
) -> SocketAddr {
    let mut last_trusted = peer;
    for hop in hops.rev() {
        let Some(address) = parse_hop(hop) else {
            tracing::debug!(%peer, "X-Forwarded-For hop `{}` is not an address", hop.trim());
            return last_trusted;
        };
        if !trusted.trusts(address.ip()) {
            return address;
        }
        last_trusted = address;
    }
    last_trusted
}

/// One address as proxies write it in `X-Forwarded-For` or `X-Real-IP`: `192.0.2.1`, `192.0.2.1:4000`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4000`. The port is kept when given, else 0 (most proxies do not
/// pass it on); an IPv4-mapped IPv6 address is read as the IPv4 one.
fn parse_hop(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    let address = if let Ok(ip) = text.parse::<IpAddr>() {
        SocketAddr::new(ip, 0)
    } else if let Ok(address) = text.parse::<SocketAddr>() {
        address
    } else {
        let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
        SocketAddr::new(bracketed.parse::<Ipv6Addr>().ok()?.into(), 0)
    };
    Some(SocketAddr::new(address.ip().to_canonical(), address.port()))
}

/// `PROXY TCP4 <src> <dst> <sport> <dport>` or `PROXY UNKNOWN ...`.
pub(crate) fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "a PROXY v1 header that is not ASCII")?;
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        [
            "PROXY",
            "TCP4" | "TCP6",
            source,
            _destination,
            source_port,
            _destination_port,
        ] => {
            let ip: IpAddr = source
                .parse()
                .map_err(|_| format!("bad PROXY v1 source `{source}`"))?;
            let port: u16 = source_port
                .parse()
                .map_err(|_| format!("bad PROXY v1 port `{source_port}`"))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(format!("a malformed PROXY v1 header: `{text}`")),
    }
}

/// The 16-byte v2 preamble and its address block.
pub(crate) fn parse_v2(header: &[u8]) -> Result<Option<SocketAddr>, String> {
    let version_command = header[12];
    if version_command >> 4 != 2 {
        return Err(format!(
            "PROXY protocol version {} is not 2",
            version_command >> 4
        ));
    }
    if version_command & 0x0f == 0 {
        // LOCAL: the proxy's own connection (a health check); no client.
        return Ok(None);
    }
    let body = &header[16..];
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    match header[13] >> 4 {
        1 if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Ok(Some(SocketAddr::new(ip.into(), port(8))))
        }
        2 if body.len() >= 36 => {
            let octets: [u8; 16] = body[..16].try_into().expect("16 bytes");
            Ok(Some(SocketAddr::new(
                Ipv6Addr::from(octets).into(),
                port(32),
            )))
        }
        // UNSPEC or UNIX sockets: no IP client address.
        0 | 3 => Ok(None),
        family => Err(format!(
            "a PROXY v2 header with address family {family} and {} bytes",
            body.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies(
            entries
                .iter()
                .map(|e| TrustedProxies::parse_entry(e).unwrap())
                .collect(),
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn resolve(source: ClientAddress, trusting: &[&str], peer: &str, h: &[(&str, &str)]) -> String {
        client_address(
            Some(source),
            &trusted(trusting),
            peer.parse().unwrap(),
            &headers(h),
        )
        .to_string()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        for source in [ClientAddress::XRealIp, ClientAddress::XForwardedFor] {
            let h = [
                ("x-real-ip", "203.0.113.9"),
                ("x-forwarded-for", "203.0.113.9"),
            ];
            assert_eq!(
                resolve(source, &["127.0.0.1"], "127.0.0.2:5000", &h),
                "127.0.0.2:5000"
            );
        }
    }

    #[test]
    fn only_the_named_header_is_read() {
        let h = [
            ("x-forwarded-for", "198.51.100.1"),
            ("x-real-ip", "203.0.113.9"),
        ];
        let from = |source| resolve(source, &["127.0.0.0/8"], "127.0.0.1:5000", &h);
        assert_eq!(from(ClientAddress::XRealIp), "203.0.113.9:0");
        assert_eq!(from(ClientAddress::XForwardedFor), "198.51.100.1:0");
        assert_eq!(from(ClientAddress::ProxyProtocol), "127.0.0.1:5000");
        // The named header missing, or sent twice: the proxy's own address.
        let xff_only = [("x-forwarded-for", "198.51.100.1")];
        let real_ip = |h: &[(&str, &str)]| {
            resolve(ClientAddress::XRealIp, &["127.0.0.1"], "127.0.0.1:5000", h)
        };
        assert_eq!(real_ip(&xff_only), "127.0.0.1:5000");
        let twice = [("x-real-ip", "203.0.113.9"), ("x-real-ip", "203.0.113.10")];
        assert_eq!(real_ip(&twice), "127.0.0.1:5000");
    }

    #[test]
    fn x_forwarded_for_is_walked_from_the_right_over_trusted_hops_only() {
        let walk = |chain: &[&str]| {
            let h: Vec<(&str, &str)> = chain.iter().map(|c| ("x-forwarded-for", *c)).collect();
            resolve(
                ClientAddress::XForwardedFor,
                &["10.0.0.0/8"],
                "10.0.0.5:5000",
                &h,
            )
        };
        assert_eq!(walk(&["6.6.6.6, 198.51.100.1, 10.0.0.7"]), "198.51.100.1:0");
        // Several headers are one list, in order.
        assert_eq!(
            walk(&["6.6.6.6", "198.51.100.1, 10.0.0.7"]),
            "198.51.100.1:0"
        );
        // Ports and brackets, as some proxies write them.
        assert_eq!(walk(&["6.6.6.6, 198.51.100.1:4711"]), "198.51.100.1:4711");
        assert_eq!(
            walk(&["6.6.6.6, [2001:db8::1]:443, 10.0.0.7:80"]),
            "[2001:db8::1]:443"
        );
        assert_eq!(walk(&["6.6.6.6, [2001:db8::2]"]), "[2001:db8::2]:0");
        assert_eq!(walk(&["6.6.6.6, ::ffff:192.0.2.1"]), "192.0.2.1:0");
        // A hop that does not parse ends the walk at the last trusted hop: the forged entry left of it never wins.
        assert_eq!(walk(&["203.0.113.9, unknown"]), "10.0.0.5:5000");
        assert_eq!(walk(&["203.0.113.9, nonsense, 10.0.0.7"]), "10.0.0.7:0");
        assert_eq!(walk(&["203.0.113.9, , 10.0.0.7"]), "10.0.0.7:0");
        assert_eq!(walk(&["203.0.113.9, [2001:db8::1, 10.0.0.7"]), "10.0.0.7:0");
        // Only trusted hops: the last one reached; no header: the peer.
        assert_eq!(walk(&["10.0.0.9, 10.0.0.7"]), "10.0.0.9:0");
        assert_eq!(walk(&[]), "10.0.0.5:5000");
    }

    #[test]
    fn proxy_v1_and_v2_headers_parse() {
        assert_eq!(
            parse_v1(b"PROXY TCP4 192.0.2.1 192.0.2.2 4000 80").unwrap(),
            Some("192.0.2.1:4000".parse().unwrap())
        );
        assert_eq!(parse_v1(b"PROXY UNKNOWN").unwrap(), None);
        assert!(parse_v1(b"PROXY TCP4 nonsense").is_err());
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[
            0x21, 0x11, 0, 12, 192, 0, 2, 1, 192, 0, 2, 2, 0x0f, 0xa0, 0, 80,
        ]);
        assert_eq!(
            parse_v2(&v2).unwrap(),
            Some("192.0.2.1:4000".parse().unwrap())
        );
    }
}

//! The upgrade request (head reader, `upgrade::decide`, the response) and the client's address behind proxies
//! (PROXY protocol v1 and v2, `X-Forwarded-For` and `X-Real-IP`).

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use wssgate_config::{ClientAddress, Config, TrustedProxies};
use wssgate_edge::fuzzing;
use wssgate_runtime::route::{Route, Routes};

/// The routes requests are decided against: subprotocols and an origin list, both compression modes, and none.
/// (A route's plugin must be a file; none is loaded, so this crate's manifest does.)
const ROUTES: &str = r#"
[[listener]]
address = "127.0.0.1:0"
[[route]]
path = "/chat"
plugin = "Cargo.toml"
subprotocols = ["chat.v2", "chat"]
allowed_origins = ["https://example.com"]
compression = "shared"
[[route]]
path = "/wss"
plugin = "Cargo.toml"
compression = "dedicated"
compression_window_bits = 10
[[route]]
path = "/plain"
plugin = "Cargo.toml"
"#;

/// `data[0]` is how many bytes each read of the client's hands over (0: all at once), the rest what it sends: the
/// response must be a 101 or an HTTP error (or the test page), written whole, at once (never a wait), and a
/// client that left before a whole head gets nothing.
pub fn upgrade(data: &[u8]) {
    thread_local! {
        static ROUTED: Routes = {
            let config = Config::parse(&Path::new(env!("CARGO_MANIFEST_DIR")).join("routes.toml"), ROUTES).expect("the fuzz routes parse");
            Routes::new(config.routes.iter().enumerate().map(|(i, r)| Route::without_instances(i, r)).collect())
        };
    }
    let Some((&step, sent)) = data.split_first() else {
        return;
    };
    let mut client = Client {
        sent,
        step: usize::from(step),
    };
    let Some(response) =
        ROUTED.with(|routes| crate::poll_once(fuzzing::answer(&mut client, routes)))
    else {
        return;
    };
    let parsed = crate::responses(&response);
    let [(status, headers)] = parsed.as_slice() else {
        panic!("{} responses to one request", parsed.len())
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    match *status {
        101 => {
            let accept = header("sec-websocket-accept").expect("a 101 has Sec-WebSocket-Accept");
            assert_eq!(accept.len(), 28, "a base64 SHA-1");
            if let Some(extension) = header("sec-websocket-extensions") {
                assert!(extension.starts_with("permessage-deflate"), "{extension}");
            }
        }
        200 | 400 | 403 | 404 | 405 | 426 | 431 => {
            assert_eq!(
                header("connection"),
                Some("close"),
                "an answer that is not a 101 closes"
            );
        }
        other => panic!("status {other} answers no request"),
    }
}

/// A client that sent `sent` in reads of `step` bytes (all at once for 0), then closed.
struct Client<'a> {
    sent: &'a [u8],
    step: usize,
}

impl AsyncRead for Client<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let step = if this.step == 0 {
            usize::MAX
        } else {
            this.step
        };
        let n = this.sent.len().min(buf.remaining()).min(step);
        buf.put_slice(&this.sent[..n]);
        this.sent = &this.sent[n..];
        Poll::Ready(Ok(()))
    }
}

/// The proxies a listener trusts here.
static TRUSTED: LazyLock<TrustedProxies> = LazyLock::new(|| {
    TrustedProxies(
        ["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]
            .iter()
            .map(|e| TrustedProxies::parse_entry(e).expect("a trusted proxy entry"))
            .collect(),
    )
});

/// `data[0]` chooses: 0, a PROXY v1 line (`data[1..]`, at most the 105 bytes a v1 header holds before its CRLF); 1,
/// a PROXY v2 header (the bytes after its signature); else the request headers (`data[1..]` as `name: value`
/// lines) of a request from a trusted proxy (odd) or an untrusted peer (even), read for the `X-Forwarded-For` (bit
/// 1 set) or `X-Real-IP` address. An untrusted peer's headers never name the client.
pub fn proxy(data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    match choice {
        0 => {
            let _ = fuzzing::proxy_v1(&rest[..rest.len().min(105)]);
        }
        1 => {
            if let Some(Ok(Some(address))) = fuzzing::proxy_v2(rest) {
                // A v2 address block is 4 or 16 bytes: an IPv4 or IPv6 address, never anything else.
                let _ = address.ip();
            }
        }
        _ => {
            let peer: SocketAddr = if choice % 2 == 1 {
                "10.1.2.3:4000"
            } else {
                "192.0.2.7:4000"
            }
            .parse()
            .expect("an address");
            let source = if choice & 2 != 0 {
                ClientAddress::XForwardedFor
            } else {
                ClientAddress::XRealIp
            };
            let headers: Vec<(String, String)> = String::from_utf8_lossy(rest)
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.to_owned()))
                .collect();
            let client = fuzzing::client_address(Some(source), &TRUSTED, peer, &headers);
            if !TRUSTED.trusts(peer.ip()) {
                assert_eq!(client, peer, "an untrusted peer named another client");
            }
            let proxied = fuzzing::client_address(
                Some(ClientAddress::ProxyProtocol),
                &TRUSTED,
                peer,
                &headers,
            );
            assert_eq!(proxied, peer, "a PROXY listener read the request's headers");
        }
    }
}

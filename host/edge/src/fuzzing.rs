//! What the fuzz targets (`fuzz/`, crate `wssgate-fuzz`) reach of the edge beyond its public API: the answer a
//! connection gives a request head, and the PROXY protocol and forwarded-header readers, which are private to the
//! crate. Hidden from the docs and used by nothing else; each function calls the real code, never a copy.

use crate::{proxy, upgrade};
use std::net::SocketAddr;
use tokio::io::AsyncRead;
use wssgate_config::{ClientAddress, TrustedProxies};
use wssgate_runtime::route::Routes;

/// Reads a request head from `stream` and returns the HTTP response a connection writes for it before any plugin
/// is asked (a 101, the test page, or an error), as `serve_http` does; `None` when the client left before a whole
/// head (nobody to answer).
pub async fn answer<S: AsyncRead + Unpin>(stream: &mut S, routes: &Routes) -> Option<Vec<u8>> {
    let answer = match upgrade::read_head(stream).await {
        Ok((head, _rest)) => upgrade::decide(&head, routes),
        Err(error) => upgrade::head_error(&error)?,
    };
    let mut out = Vec::new();
    // Writing into a vector cannot fail.
    upgrade::respond(&mut out, &answer).await.ok()?;
    Some(out)
}

/// A PROXY v1 line as the reader hands it over: at most 105 bytes, its CRLF taken off.
pub fn proxy_v1(line: &[u8]) -> Result<Option<SocketAddr>, String> {
    proxy::parse_v1(line)
}

/// What a PROXY v2 listener makes of a connection whose bytes after the 12-byte signature are `rest`: the header
/// read as the reader reads it (the 16-byte preamble and as many bytes as its length field names), or `None` when
/// the connection ends before that.
pub fn proxy_v2(rest: &[u8]) -> Option<Result<Option<SocketAddr>, String>> {
    let stream = [&proxy::V2_SIGNATURE[..], rest].concat();
    let len = u16::from_be_bytes([*stream.get(14)?, *stream.get(15)?]) as usize;
    Some(proxy::parse_v2(stream.get(..16 + len)?))
}

/// The client's address for a request from `peer` with `headers` (names in lower case).
pub fn client_address(
    source: Option<ClientAddress>,
    trusted: &TrustedProxies,
    peer: SocketAddr,
    headers: &[(String, String)],
) -> SocketAddr {
    proxy::client_address(source, trusted, peer, headers)
}

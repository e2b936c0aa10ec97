//! Just enough HTTP/1.1 for the webhook benchmark, on keep-alive connections: the load generator's `http` mode
//! posting `/message` calls (to nginx, the reverse-proxy alternative) and `hookd`, the backend both paths reach.
//! Heads are parsed by `httparse`; bodies are framed by `Content-Length` only, which is all either side sends.

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest head either side accepts.
const MAX_HEAD: usize = 16 * 1024;

/// One message read off a connection.
pub struct Received {
    /// The request's path, or the response's status as text.
    pub first: String,
    pub body: Vec<u8>,
}

/// Reads one request (`request` true) or response from `io`. `buffer` carries bytes read past the message into the
/// next call. `None` when the peer closed cleanly before a new message.
pub async fn read<R: AsyncRead + Unpin>(
    io: &mut R,
    buffer: &mut Vec<u8>,
    request: bool,
) -> Result<Option<Received>> {
    // Bounded: each turn reads more bytes, and a head is capped.
    loop {
        if let Some((head, first, length)) = parse(buffer, request)? {
            while buffer.len() < head + length {
                if read_more(io, buffer).await? == 0 {
                    bail!("connection closed mid-body");
                }
            }
            let body = buffer[head..head + length].to_vec();
            buffer.drain(..head + length);
            return Ok(Some(Received { first, body }));
        }
        if buffer.len() > MAX_HEAD {
            bail!("head over {MAX_HEAD} bytes");
        }
        if read_more(io, buffer).await? == 0 {
            if buffer.is_empty() {
                return Ok(None);
            }
            bail!("connection closed mid-head");
        }
    }
}

async fn read_more<R: AsyncRead + Unpin>(io: &mut R, buffer: &mut Vec<u8>) -> Result<usize> {
    let mut chunk = [0u8; 8192];
    let n = io.read(&mut chunk).await.context("reading")?;
    buffer.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// The head's length, its path or status, and the body's length, once the head is complete.
fn parse(buffer: &[u8], request: bool) -> Result<Option<(usize, String, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let (status, first, headers) = if request {
        let mut parsed = httparse::Request::new(&mut headers);
        let status = parsed.parse(buffer)?;
        (status, parsed.path.unwrap_or("").to_owned(), parsed.headers)
    } else {
        let mut parsed = httparse::Response::new(&mut headers);
        let status = parsed.parse(buffer)?;
        let code = parsed.code.unwrap_or(0).to_string();
        (status, code, parsed.headers)
    };
    let httparse::Status::Complete(head) = status else {
        return Ok(None);
    };
    let length = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
        .unwrap_or(Some(0))
        .context("a bad Content-Length")?;
    Ok(Some((head, first, length)))
}

//! permessage-deflate (RFC 7692): what the gateway needs to speak compressed WebSocket messages while tungstenite,
//! which has no extensions, frames and checks everything else.
//!
//! - [`offer`] reads the client's `Sec-WebSocket-Extensions` offers and picks what the route's [`Mode`] accepts,
//!   with the response header to send back.
//! - [`codec`] compresses one message and inflates one message, never past a size cap.
//! - [`reader`] sits between the socket and tungstenite: it inflates the client's compressed messages and hands
//!   tungstenite plain frames, so tungstenite's own checks (UTF-8, sizes, control frames) keep applying.
//!
//! Writing needs no shim: tungstenite writes a frame we built (`Message::Frame`) with its RSV1 bit as given.

pub mod codec;
pub mod offer;
pub mod reader;

/// How a route compresses, from its `compression` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Neither side keeps a compression context between messages: a worker's compressors and inflater serve all
    /// its connections, and a message published to many is compressed once.
    Shared,
    /// Each connection keeps its own contexts (sliding windows of at most `window_bits`), which compress a stream
    /// of similar messages better at a cost in memory per connection.
    Dedicated { window_bits: u8 },
}

/// The close code and reason a connection ends with when its compressed input is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub code: u16,
    pub reason: &'static str,
}

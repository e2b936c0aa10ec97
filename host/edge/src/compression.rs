//! permessage-deflate on the gateway's connections: a worker's shared codecs, and what one compressed connection
//! keeps (its agreement, its own contexts when it has them, and what its reader reports).
//!
//! Writing: a text or binary message of at least `compression_min_bytes` goes out as one frame with RSV1 set and a
//! compressed payload; shorter ones and control frames go out as they are (RFC 7692 lets each message choose).
//! In `shared` mode a worker keeps one compressor per level and window size, reset after every message, and
//! remembers the last messages it compressed by the identity of their payload: a publish to many connections
//! queues the same payload to each, so it is compressed once per worker, then copied (as tungstenite copies any
//! payload into each connection's write buffer). In `dedicated` mode the connection's own compressor keeps its
//! context (a better ratio for a stream of similar messages) and nothing is shared.
//!
//! Reading: [`wssgate_deflate::reader::Inflating`] inflates before tungstenite reads; in `shared` mode with the
//! worker's inflater, reset per message.
//!
//! Large messages are compressed on the worker, in line: at level 1 zlib-rs compresses a 1 MiB JSON message in
//! about a millisecond (see BENCHMARKS.md), which other connections of the worker wait for; `max_message_bytes`
//! bounds it.

use bytes::Bytes;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use wssgate_config::{Compression, CompressionMode};
use wssgate_deflate::Mode;
use wssgate_deflate::codec::{Deflater, Inflater};
use wssgate_deflate::offer::{Agreement, is_broken_safari, negotiate};
use wssgate_deflate::reader::{InflaterSource, Inflating, Limits, Report};

/// How many compressed messages a worker remembers, and how many of their bytes at most.
const RECENT: usize = 32;
const RECENT_BYTES: usize = 4 << 20;

/// One message compressed lately, kept with its payload: holding the payload keeps its address from being reused,
/// so the same address and length can only mean the same bytes.
struct Recent {
    level: u32,
    window_bits: u8,
    plain: Bytes,
    wire: Bytes,
}

/// A worker's shared codecs.
pub(crate) struct WorkerCodecs {
    /// One compressor per (level, window size) in use.
    deflaters: RefCell<Vec<(u32, u8, Deflater)>>,
    /// The inflater of every connection whose client keeps no context.
    inflater: Rc<RefCell<Inflater>>,
    recent: RefCell<VecDeque<Recent>>,
    recent_bytes: Cell<usize>,
}

impl WorkerCodecs {
    pub(crate) fn new() -> Self {
        WorkerCodecs {
            deflaters: RefCell::default(),
            inflater: Rc::new(RefCell::new(Inflater::new(15, false))),
            recent: RefCell::default(),
            recent_bytes: Cell::new(0),
        }
    }

    /// `plain` compressed with the shared compressor of `level` and `window_bits`; true when it was compressed
    /// now rather than remembered.
    fn deflate(&self, plain: &Bytes, level: u32, window_bits: u8) -> (Bytes, bool) {
        let same = |r: &Recent| {
            r.level == level
                && r.window_bits == window_bits
                && r.plain.as_ptr() == plain.as_ptr()
                && r.plain.len() == plain.len()
        };
        if let Some(r) = self.recent.borrow().iter().find(|r| same(r)) {
            return (r.wire.clone(), false);
        }
        let wire = {
            let mut deflaters = self.deflaters.borrow_mut();
            let index = match deflaters
                .iter()
                .position(|(l, w, _)| (*l, *w) == (level, window_bits))
            {
                Some(i) => i,
                None => {
                    deflaters.push((level, window_bits, Deflater::new(level, window_bits, false)));
                    deflaters.len() - 1
                }
            };
            Bytes::from(deflaters[index].2.deflate(plain))
        };
        let mut recent = self.recent.borrow_mut();
        let mut held = self.recent_bytes.get() + plain.len() + wire.len();
        recent.push_front(Recent {
            level,
            window_bits,
            plain: plain.clone(),
            wire: wire.clone(),
        });
        while recent.len() > RECENT || (held > RECENT_BYTES && recent.len() > 1) {
            let old = recent.pop_back().expect("more than one");
            held -= old.plain.len() + old.wire.len();
        }
        self.recent_bytes.set(held);
        (wire, true)
    }
}

/// What a connection's upgrade agreed to, if anything: `None` when the route's compression is off, the client is
/// a Safari that cannot take it, or no offer was acceptable.
pub(crate) fn agree<'h>(
    compression: &Compression,
    offers: impl IntoIterator<Item = &'h str>,
    user_agent: Option<&str>,
) -> Option<Agreement> {
    let mode = match compression.mode {
        CompressionMode::Off => return None,
        CompressionMode::Shared => Mode::Shared,
        CompressionMode::Dedicated => Mode::Dedicated {
            window_bits: compression.window_bits,
        },
    };
    if user_agent.is_some_and(is_broken_safari) {
        return None;
    }
    negotiate(offers, mode)
}

/// A compressed connection's state.
pub(crate) struct Compressing {
    agreement: Agreement,
    level: u32,
    min_bytes: usize,
    /// The connection's own compressor, when it keeps its context.
    own: Option<Box<Deflater>>,
    /// What the reader reports: a refusal, and the compressed messages it inflated.
    pub(crate) report: Rc<Report>,
}

/// One message as it is written, and what compressing it cost.
pub(crate) struct Encoded {
    pub(crate) message: Message,
    /// Bytes on the wire and whether it was compressed now, for a compressed message.
    pub(crate) deflated: Option<(usize, bool)>,
}

impl Compressing {
    pub(crate) fn new(mut agreement: Agreement, compression: &Compression) -> Self {
        // The 101 that carried the response is written: the connection keeps only the parameters.
        agreement.response = String::new();
        Compressing {
            level: compression.level,
            min_bytes: compression.min_bytes,
            own: None,
            report: Rc::default(),
            agreement,
        }
    }

    /// The reader for the connection's `stream`, starting with the `early` bytes already read from it.
    pub(crate) fn reader<S>(
        &self,
        stream: S,
        early: Vec<u8>,
        codecs: &WorkerCodecs,
        limits: Limits,
    ) -> Inflating<S> {
        let inflater = if self.agreement.client_takeover {
            InflaterSource::Own {
                inflater: None,
                window_bits: self.agreement.client_window_bits,
            }
        } else {
            InflaterSource::Shared(codecs.inflater.clone())
        };
        Inflating::new(stream, inflater, limits, self.report.clone()).with_unread(early)
    }

    /// `message` as it goes on the wire: compressed when it is data of at least `min_bytes`.
    pub(crate) fn encode(&mut self, message: Message, codecs: &WorkerCodecs) -> Encoded {
        let (payload, opcode) = match message {
            Message::Text(text) if text.len() >= self.min_bytes => (Bytes::from(text), Data::Text),
            Message::Binary(bytes) if bytes.len() >= self.min_bytes => (bytes, Data::Binary),
            other => {
                return Encoded {
                    message: other,
                    deflated: None,
                };
            }
        };
        let (wire, now) = if self.agreement.server_takeover {
            let bits = self.agreement.server_window_bits;
            let level = self.level;
            let own = self
                .own
                .get_or_insert_with(|| Box::new(Deflater::new(level, bits, true)));
            (Bytes::from(own.deflate(&payload)), true)
        } else {
            codecs.deflate(&payload, self.level, self.agreement.server_window_bits)
        };
        let wire_len = wire.len();
        let mut frame = Frame::message(wire, OpCode::Data(opcode), true);
        frame.header_mut().rsv1 = true;
        Encoded {
            message: Message::Frame(frame),
            deflated: Some((wire_len, now)),
        }
    }
}

//! [`Inflating`]: the client's side of a compressed connection, between the socket and tungstenite.
//!
//! tungstenite refuses a frame with RSV1 set (it knows no extension), so the frames of a compressed message never
//! reach it: this reader collects them (unmasking their payloads), inflates the message with its size capped, and
//! hands tungstenite the message as plain frames, masked with a zero key (a client's frames must be masked, and a
//! zero key leaves the payload as it is). Every other frame (uncompressed messages, which stay legal, and control
//! frames, which may come between the fragments of a message) passes through untouched, so tungstenite's checks
//! keep applying to everything it reads.
//!
//! What this reader refuses itself, with the close code RFC 6455 and RFC 7692 call for: RSV1 on a control or
//! continuation frame (1002), an unmasked frame (1002), a compressed frame or message past the size limits or a
//! message inflating past `max_message_bytes` (1009), data that is not deflate (1002), and a new data message
//! inside a compressed one (1002). The refusal is reported through a [`Report`] the session reads, and the
//! read fails; later reads end the stream. The report also counts the compressed messages and their bytes.
//!
//! An idle connection holds no buffer here: bytes are read into tungstenite's buffer and taken from it.

use crate::Failure;
use crate::codec::{InflateError, Inflater};
use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the reader tells its session: why it refused the client's input, and the compressed messages it inflated
/// since the session last took the counts.
#[derive(Default)]
pub struct Report {
    pub failure: Cell<Option<Failure>>,
    messages: Cell<u64>,
    wire_bytes: Cell<u64>,
    plain_bytes: Cell<u64>,
}

impl Report {
    /// The compressed messages inflated, their bytes on the wire and inflated, since the last call.
    pub fn take_counts(&self) -> (u64, u64, u64) {
        (
            self.messages.take(),
            self.wire_bytes.take(),
            self.plain_bytes.take(),
        )
    }
}

/// The inflater of a connection's messages.
pub enum InflaterSource {
    /// The worker's, reset for every message: the client keeps no context.
    Shared(Rc<RefCell<Inflater>>),
    /// The connection's own, keeping the client's context; made at the first compressed message.
    Own {
        inflater: Option<Box<Inflater>>,
        window_bits: u8,
    },
}

/// The size limits the reader enforces on compressed input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
}

enum State {
    /// At the start of a frame.
    Header,
    /// Passing the rest of a frame's payload through.
    Pass { remaining: u64 },
    /// Collecting a compressed message's frame payload, unmasking it with `mask` from `offset`.
    Collect {
        remaining: u64,
        mask: [u8; 4],
        offset: usize,
        fin: bool,
    },
}

/// A stream whose reads inflate the client's compressed messages (see the module's doc); writes pass through.
pub struct Inflating<S> {
    inner: S,
    /// Bytes read from the socket from `raw_at` on, not yet looked at.
    raw: Vec<u8>,
    raw_at: usize,
    /// Frames for tungstenite from `ready_at` on.
    ready: Vec<u8>,
    ready_at: usize,
    state: State,
    /// The opcode of the compressed message being collected, and its payload so far.
    message_opcode: Option<u8>,
    message: Vec<u8>,
    /// A plain message is passing through in fragments: its continuations are passed too.
    in_plain_message: bool,
    inflater: InflaterSource,
    limits: Limits,
    report: Rc<Report>,
    /// A refusal not reported yet (frames before it are handed over first).
    refusal: Option<Failure>,
    /// The refusal was reported by a failed read: later reads end the stream.
    failed: bool,
}

/// Frames waiting for tungstenite past which the reader stops working through the bytes at hand: the frames of at
/// most one inflated message more than this wait, however many small compressed messages the client packed into
/// what was read (each can inflate a thousandfold).
const READY_ENOUGH: usize = 64 * 1024;

fn refuse(code: u16, reason: &'static str) -> Failure {
    Failure { code, reason }
}

impl<S> Inflating<S> {
    pub fn new(inner: S, inflater: InflaterSource, limits: Limits, report: Rc<Report>) -> Self {
        Inflating {
            inner,
            raw: Vec::new(),
            raw_at: 0,
            ready: Vec::new(),
            ready_at: 0,
            state: State::Header,
            message_opcode: None,
            message: Vec::new(),
            in_plain_message: false,
            inflater,
            limits,
            report,
            refusal: None,
            failed: false,
        }
    }

    /// The reader, with `bytes` already read from the stream (after the upgrade request) to be read first.
    pub fn with_unread(mut self, bytes: Vec<u8>) -> Self {
        self.raw = bytes;
        self
    }

    /// The most compressed bytes one message may take: a little over the plain limit, since data that does not
    /// compress grows by a few bytes per block.
    fn max_compressed(&self) -> usize {
        let max = self.limits.max_message_bytes;
        max.saturating_add(max / 64).saturating_add(64)
    }

    fn unread(&self) -> &[u8] {
        &self.raw[self.raw_at..]
    }

    /// Takes one step on the bytes at hand: true when it moved, false when it needs more bytes.
    fn step(&mut self) -> Result<bool, Failure> {
        match self.state {
            State::Header => self.header(),
            State::Pass { remaining } => {
                let n = (remaining as usize).min(self.unread().len());
                if remaining == 0 {
                    self.state = State::Header;
                    return Ok(true);
                }
                if n == 0 {
                    return Ok(false);
                }
                let (at, end) = (self.raw_at, self.raw_at + n);
                self.ready.extend_from_slice(&self.raw[at..end]);
                self.raw_at = end;
                self.state = State::Pass {
                    remaining: remaining - n as u64,
                };
                Ok(true)
            }
            State::Collect {
                remaining,
                mask,
                offset,
                fin,
            } => {
                let n = (remaining as usize).min(self.unread().len());
                let (at, end) = (self.raw_at, self.raw_at + n);
                self.message.extend(
                    self.raw[at..end]
                        .iter()
                        .enumerate()
                        .map(|(i, b)| b ^ mask[(offset + i) % 4]),
                );
                self.raw_at = end;
                let remaining = remaining - n as u64;
                if remaining > 0 {
                    self.state = State::Collect {
                        remaining,
                        mask,
                        offset: offset + n,
                        fin,
                    };
                    return Ok(n > 0);
                }
                self.state = State::Header;
                if fin {
                    self.finish_message()?;
                }
                Ok(true)
            }
        }
    }

    /// Reads a frame header, if all of it is here, and decides what becomes of the frame.
    fn header(&mut self) -> Result<bool, Failure> {
        let bytes = self.unread();
        if bytes.len() < 2 {
            return Ok(false);
        }
        let (b0, b1) = (bytes[0], bytes[1]);
        let extended = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if b1 & 0x80 == 0 {
            return Err(refuse(1002, "unmasked frame"));
        }
        let header_len = 2 + extended + 4;
        if bytes.len() < header_len {
            return Ok(false);
        }
        let len = match extended {
            0 => u64::from(b1 & 0x7f),
            2 => u64::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            _ => u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")),
        };
        let mask: [u8; 4] = bytes[2 + extended..header_len].try_into().expect("4 bytes");
        let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
        let is_control = opcode & 0x08 != 0;
        let is_data_start = opcode == 1 || opcode == 2;
        let collect = if rsv1 {
            if is_control || opcode == 0 {
                return Err(refuse(1002, "RSV1 set on a control or continuation frame"));
            }
            if is_data_start {
                if self.message_opcode.is_some() || self.in_plain_message {
                    return Err(refuse(1002, "a new message inside another"));
                }
                self.message_opcode = Some(opcode);
                true
            } else {
                // A reserved opcode: tungstenite refuses it.
                false
            }
        } else if opcode == 0 && self.message_opcode.is_some() {
            true
        } else {
            if is_data_start && self.message_opcode.is_some() {
                return Err(refuse(1002, "a new message inside another"));
            }
            if is_data_start {
                self.in_plain_message = !fin;
            } else if opcode == 0 && fin {
                self.in_plain_message = false;
            }
            false
        };
        if collect {
            let too_long = len > self.limits.max_frame_bytes as u64
                || self.message.len() as u64 + len > self.max_compressed() as u64;
            if too_long {
                return Err(refuse(1009, "message too big"));
            }
            self.raw_at += header_len;
            self.state = State::Collect {
                remaining: len,
                mask,
                offset: 0,
                fin,
            };
        } else {
            let (at, end) = (self.raw_at, self.raw_at + header_len);
            self.ready.extend_from_slice(&self.raw[at..end]);
            self.raw_at = end;
            self.state = State::Pass { remaining: len };
        }
        Ok(true)
    }

    /// Inflates the collected message and queues it for tungstenite as plain frames of at most `max_frame_bytes`.
    fn finish_message(&mut self) -> Result<(), Failure> {
        let opcode = self
            .message_opcode
            .take()
            .expect("a message is being collected");
        let cap = self.limits.max_message_bytes;
        let wire = self.message.len() as u64;
        let inflated = match &mut self.inflater {
            InflaterSource::Shared(shared) => shared.borrow_mut().inflate(&mut self.message, cap),
            InflaterSource::Own {
                inflater,
                window_bits,
            } => inflater
                .get_or_insert_with(|| Box::new(Inflater::new(*window_bits, true)))
                .inflate(&mut self.message, cap),
        };
        // Drained buffers are given back: an idle compressed connection holds none (which costs an allocation per
        // message, next to compressing it nothing).
        self.message = Vec::new();
        let plain = inflated.map_err(|e| match e {
            InflateError::TooBig => refuse(1009, "message too big"),
            InflateError::Corrupt => refuse(1002, "invalid compressed data"),
        })?;
        let report = &self.report;
        report.messages.set(report.messages.get() + 1);
        report.wire_bytes.set(report.wire_bytes.get() + wire);
        report
            .plain_bytes
            .set(report.plain_bytes.get() + plain.len() as u64);
        let mut chunks = plain.chunks(self.limits.max_frame_bytes.max(1)).peekable();
        let mut first = true;
        if chunks.peek().is_none() {
            self.push_frame(true, opcode, &[]);
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.push_frame(last, if first { opcode } else { 0 }, chunk);
            first = false;
        }
        Ok(())
    }

    /// Queues one frame with a zero mask key for tungstenite.
    fn push_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.ready.push(if fin { 0x80 } else { 0 } | opcode);
        match payload.len() {
            n @ 0..=125 => self.ready.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                self.ready.push(0x80 | 126);
                self.ready.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                self.ready.push(0x80 | 127);
                self.ready.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        self.ready.extend_from_slice(&[0; 4]);
        self.ready.extend_from_slice(payload);
    }

    /// Moves queued frames into `buf`; true when there were any.
    fn give(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.ready_at == self.ready.len() {
            return false;
        }
        let n = (self.ready.len() - self.ready_at).min(buf.remaining());
        buf.put_slice(&self.ready[self.ready_at..self.ready_at + n]);
        self.ready_at += n;
        if self.ready_at == self.ready.len() {
            self.ready_at = 0;
            self.ready = Vec::new();
        }
        true
    }

    /// Forgets the bytes looked at; gives the buffer back when it is empty.
    fn compact(&mut self) {
        if self.raw_at == self.raw.len() {
            self.raw_at = 0;
            self.raw = Vec::new();
        } else if self.raw_at > 0 {
            self.raw.drain(..self.raw_at);
            self.raw_at = 0;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Inflating<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Bounded: each turn hands bytes over, reports a refusal, or works through the bytes at hand (finite) and
        // reads (and waits).
        loop {
            if this.give(buf) {
                return Poll::Ready(Ok(()));
            }
            // A refusal is reported once the frames before it are handed over; later reads end the stream.
            // Only now does the refusal speak for the read that fails: tungstenite may fail on an earlier frame first.
            if let Some(failure) = this.refusal.take() {
                this.report.failure.set(Some(failure));
                this.failed = true;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    failure.reason,
                )));
            }
            if this.failed {
                return Poll::Ready(Ok(()));
            }
            // Everything at hand first, so that tungstenite gets whole frames rather than a header and then its
            // payload; but no more than fills `READY_ENOUGH`, so memory follows what tungstenite takes.
            let mut moved = false;
            while this.ready.len() - this.ready_at < READY_ENOUGH {
                match this.step() {
                    Ok(true) => moved = true,
                    Ok(false) => break,
                    Err(failure) => {
                        this.refusal = Some(failure);
                        break;
                    }
                }
            }
            if moved || this.refusal.is_some() {
                continue;
            }
            this.compact();
            // Read into tungstenite's buffer and take the bytes from it: no buffer of our own waits on an idle
            // connection.
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let got = buf.filled().len() - before;
            if got == 0 {
                return Poll::Ready(Ok(()));
            }
            this.raw.extend_from_slice(&buf.filled()[before..]);
            buf.set_filled(before);
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Inflating<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;

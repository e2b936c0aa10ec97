//! permessage-deflate: the negotiation of a client's offers, and the reader that inflates its compressed frames
//! before tungstenite sees them.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use wssgate_deflate::Mode;
use wssgate_deflate::codec::Inflater;
use wssgate_deflate::offer::{is_broken_safari, negotiate};
use wssgate_deflate::reader::{InflaterSource, Inflating, Limits, Report};

/// `data[0]` picks the route's mode (0 mod 8: shared; else dedicated with a window of 8 + it mod 8 bits, 9 to 15),
/// the rest is `Sec-WebSocket-Extensions` values, one per line (also read as a `User-Agent`). What is agreed is in
/// range, and our answer, offered back, is agreed to the same.
pub fn deflate_offer(data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let mode = match choice % 8 {
        0 => Mode::Shared,
        bits => Mode::Dedicated {
            window_bits: 8 + bits,
        },
    };
    let text = String::from_utf8_lossy(rest);
    let _ = is_broken_safari(&text);
    let Some(agreement) = negotiate(text.lines(), mode) else {
        return;
    };
    assert!(
        (9..=15).contains(&agreement.server_window_bits),
        "{agreement:?}"
    );
    assert!(
        (9..=15).contains(&agreement.client_window_bits),
        "{agreement:?}"
    );
    if let Mode::Dedicated { window_bits } = mode {
        assert!(
            agreement.server_window_bits <= window_bits.max(9),
            "{agreement:?}"
        );
    }
    let again = negotiate([agreement.response.as_str()], mode);
    assert_eq!(
        again.as_ref(),
        Some(&agreement),
        "our answer, offered back, is agreed otherwise"
    );
}

/// The limits the reader enforces here: small, so that they are reached.
const LIMITS: Limits = Limits {
    max_frame_bytes: 300,
    max_message_bytes: 1000,
};

/// `data[0]` picks the inflater (bit 0: the worker's shared one, else the connection's own with a window of 8 + bits
/// 1-3 mod 8, at least 9), `data[1]` how many bytes each socket read hands over (0: 4096), the rest is what the
/// client sends. No inflated message passes `max_message_bytes`; the frames handed on are at most what came in
/// plus what was inflated (and their headers); the reader never waits with its input at hand, and ends.
pub fn deflate_inflate(data: &[u8]) {
    let [choice, step, sent @ ..] = data else {
        return;
    };
    let inflater = if choice & 1 == 0 {
        InflaterSource::Shared(Rc::new(RefCell::new(Inflater::new(15, false))))
    } else {
        InflaterSource::Own {
            inflater: None,
            window_bits: (8 + (choice >> 1) % 8).max(9),
        }
    };
    let report = Rc::new(Report::default());
    let socket = Socket {
        sent,
        step: if *step == 0 { 4096 } else { usize::from(*step) },
    };
    let mut reader = Inflating::new(socket, inflater, LIMITS, report.clone());
    let (mut handed, mut inflated, mut messages) = (0usize, 0u64, 0u64);
    let mut buf = [0u8; 512];
    // Bounded: every read that returns bytes consumes input or hands over inflated bytes, both finite.
    loop {
        let mut read = ReadBuf::new(&mut buf);
        let result = crate::poll_once(std::future::poll_fn(|cx| {
            Pin::new(&mut reader).poll_read(cx, &mut read)
        }));
        let n = read.filled().len();
        let (count, _wire, plain) = report.take_counts();
        assert!(
            plain <= count * LIMITS.max_message_bytes as u64,
            "{count} messages inflated to {plain} bytes"
        );
        (handed, inflated, messages) = (handed + n, inflated + plain, messages + count);
        assert!(
            handed as u64 <= sent.len() as u64 + inflated + 14 * (messages + inflated / 300 + 1),
            "handed on {handed} bytes from {} sent and {inflated} inflated",
            sent.len()
        );
        if result.is_err() || n == 0 {
            break;
        }
    }
}

/// A client's socket: `sent` in reads of at most `step` bytes, then closed.
struct Socket<'a> {
    sent: &'a [u8],
    step: usize,
}

impl AsyncRead for Socket<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.sent.len().min(buf.remaining()).min(this.step);
        buf.put_slice(&this.sent[..n]);
        this.sent = &this.sent[n..];
        Poll::Ready(Ok(()))
    }
}

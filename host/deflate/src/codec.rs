//! One message at a time: [`Deflater`] compresses a message into a frame payload, [`Inflater`] turns a compressed
//! message back into its bytes, refusing it as soon as it grows past a cap (a few compressed bytes can stand for
//! gigabytes: the cap is checked while inflating, never after).
//!
//! RFC 7692 section 7.2: a message is compressed with a sync flush and sent without the flush's final
//! `00 00 ff ff`, which the receiver appends back before inflating.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The four bytes a sync flush ends with, left off the wire.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// How much output room each compression or inflation step gets at least.
const STEP: usize = 16 * 1024;

/// Compresses messages with one window size; with context takeover it keeps its history between messages.
pub struct Deflater {
    compress: Compress,
    takeover: bool,
}

impl Deflater {
    /// `level` 0 to 9 (1 is fastest), `window_bits` 9 to 15.
    pub fn new(level: u32, window_bits: u8, takeover: bool) -> Self {
        Deflater {
            compress: Compress::new_with_window_bits(Compression::new(level), false, window_bits),
            takeover,
        }
    }

    /// The payload of `message` compressed, ready for a frame with RSV1 set.
    pub fn deflate(&mut self, message: &[u8]) -> Vec<u8> {
        let start_in = self.compress.total_in();
        let mut out = Vec::with_capacity(message.len() / 2 + 64);
        // Bounded: each turn takes input or fills the room it was given, and the room grows.
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(STEP.max(out.len() / 2));
            }
            let done = (self.compress.total_in() - start_in) as usize;
            self.compress
                .compress_vec(&message[done..], &mut out, FlushCompress::Sync)
                // Compressing a byte slice has no invalid input; zlib reports an error only for misuse.
                .expect("deflate with a sync flush");
            let consumed = (self.compress.total_in() - start_in) as usize == message.len();
            // The flush is complete once all input is in and the last step did not fill the room it had.
            if consumed && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if !self.takeover {
            self.compress.reset();
        }
        out
    }
}

/// Why a compressed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates to more than the cap.
    TooBig,
    /// It is not valid deflate data.
    Corrupt,
}

/// Inflates messages; with context takeover it keeps the client's history between messages.
pub struct Inflater {
    decompress: Decompress,
    takeover: bool,
    window_bits: u8,
}

impl Inflater {
    /// `window_bits` 8 to 15 (an 8-bit window is read with a 9-bit one, which zlib needs).
    pub fn new(window_bits: u8, takeover: bool) -> Self {
        let window_bits = window_bits.max(9);
        Inflater {
            decompress: Decompress::new_with_window_bits(false, window_bits),
            takeover,
            window_bits,
        }
    }

    /// The message whose compressed payload is `payload` (all its frames' payloads, in order; the tail is appended
    /// to it here), at most `cap` bytes of it. After an error the inflater starts afresh (the connection ends
    /// anyway).
    pub fn inflate(&mut self, payload: &mut Vec<u8>, cap: usize) -> Result<Vec<u8>, InflateError> {
        payload.extend_from_slice(&TAIL);
        let result = self.inflate_capped(payload, cap);
        // A client may end a message with a final block (RFC 7692 section 7.2.3.4); nothing can follow it in the
        // same stream, so the next message starts a new one, as it does without context takeover.
        match result {
            Ok((_, false)) if self.takeover => {}
            // Reset in place: a new inflater per message would allocate and free its state (and window) each time.
            // (flate2's reset sets a 15-bit window, which reads a stream of any smaller window.)
            Ok(_) => self.decompress.reset(false),
            Err(_) => self.decompress = Decompress::new_with_window_bits(false, self.window_bits),
        }
        result.map(|(out, _)| out)
    }

    /// Inflates `input`; also says whether it ended with a final block.
    fn inflate_capped(
        &mut self,
        input: &[u8],
        cap: usize,
    ) -> Result<(Vec<u8>, bool), InflateError> {
        let mut out = Vec::with_capacity((input.len() * 4).clamp(64, STEP).min(cap + 1));
        let start = self.decompress.total_in();
        // Bounded: each turn consumes input, fills the output (which grows to at most `cap + 1`), or ends.
        loop {
            if out.capacity() == out.len() {
                // One byte past the cap is room enough to know the message is too big.
                let room = (cap + 1 - out.len()).min(STEP.max(out.len()));
                out.reserve_exact(room);
            }
            let done = (self.decompress.total_in() - start) as usize;
            let status = self
                .decompress
                .decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            if out.len() > cap {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                return Ok((out, true));
            }
            let consumed = (self.decompress.total_in() - start) as usize == input.len();
            if out.len() < out.capacity() {
                // Room was left: zlib took all it could. Input it could not take is not deflate data.
                return if consumed {
                    Ok((out, false))
                } else {
                    Err(InflateError::Corrupt)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests;

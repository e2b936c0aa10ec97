//! A plugin's stdout and stderr: each complete line becomes a log line tagged with the route and plugin, so a
//! `println!` or a panic message in a plugin is visible and never blocks. Lines from both streams and from the
//! host `log` call share one per-instance budget, [`LogBudget`], so a plugin cannot flood the gateway's log.
//!
//! WASI hands out a new stream each time a plugin asks for stdout or stderr; all of them write into their stream's one
//! line buffer, so a plugin that keeps many handles with a partial line in each holds one line, not one per handle.

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wssgate_hub::metrics::{CapHit, Metrics};
use wssgate_hub::sync;

/// Longest line kept before it is logged in pieces, so a plugin cannot grow the buffer without bound.
const MAX_LINE: usize = 4096;

/// `text` as one log line of at most about [`MAX_LINE`] bytes: line breaks are written as `\n` and `\r`, so a plugin
/// cannot forge lines of the gateway's own (an access line, say), and the rest of a longer text is cut, saying so.
pub(crate) fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_LINE && !text.contains(['\n', '\r']) {
        return text.into();
    }
    let mut cut = MAX_LINE.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut line = text[..cut].replace('\n', "\\n").replace('\r', "\\r");
    if cut < text.len() {
        line.push_str(&format!(" [{} more bytes cut]", text.len() - cut));
    }
    line.into()
}

/// How many log lines one plugin instance may still write in the current second.
pub struct LogBudget {
    /// `max_plugin_log_lines_per_sec`.
    per_sec: u32,
    /// When the current one-second window began and the lines written in it.
    window: Mutex<(Instant, u32)>,
    /// Counts dropped lines, in the instance's worker's shard.
    metrics: Arc<Metrics>,
    worker: usize,
}

impl LogBudget {
    pub fn new(per_sec: u32, metrics: Arc<Metrics>, worker: usize) -> Self {
        LogBudget {
            per_sec,
            window: Mutex::new((Instant::now(), 0)),
            metrics,
            worker,
        }
    }

    /// Takes one line from the budget; false (and counted) when the second's lines are used up. The first line
    /// dropped in a window is replaced by a notice saying so.
    pub fn take(&self, origin: &str) -> bool {
        let mut window = sync::lock(&self.window);
        let now = Instant::now();
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
        if window.1 <= self.per_sec {
            return true;
        }
        if window.1 == self.per_sec + 1 {
            tracing::warn!(target: "plugin", plugin = origin,
                "plugin log lines over max_plugin_log_lines_per_sec ({}); dropping the rest of this second's", self.per_sec);
        }
        self.metrics.cap_hit(self.worker, CapHit::LogLines);
        false
    }
}

/// Which of the two streams, and for whom.
#[derive(Clone)]
pub struct LogStream {
    /// `route path (plugin file)`, put on every line.
    origin: Arc<str>,
    /// True for stderr, logged as warnings.
    is_stderr: bool,
    /// Shared with the instance's other stream and its `log` calls.
    budget: Arc<LogBudget>,
    /// The line being written, shared by every handle of this stream.
    line: Arc<Mutex<Vec<u8>>>,
}

impl LogStream {
    pub fn new(origin: Arc<str>, is_stderr: bool, budget: Arc<LogBudget>) -> Self {
        LogStream {
            origin,
            is_stderr,
            budget,
            line: Arc::default(),
        }
    }

    /// Logs `line` (and empties it), if the budget allows.
    fn emit(&self, line: &mut Vec<u8>) {
        if line.is_empty() {
            return;
        }
        if !self.budget.take(&self.origin) {
            line.clear();
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = one_line(text.trim_end_matches(['\r', '\n']));
        let origin = &*self.origin;
        if self.is_stderr {
            tracing::warn!(target: "plugin", plugin = origin, "stderr: {text}");
        } else {
            tracing::info!(target: "plugin", plugin = origin, "stdout: {text}");
        }
        line.clear();
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.3 asks for this, and the gateway links 0.2 only.
        Box::new(tokio::io::sink())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter(self.clone()))
    }
}

/// One handle of a stream: collects bytes into the stream's line until a newline, then logs the line.
struct LineWriter(LogStream);

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let stream = &self.0;
        let mut line = sync::lock(&stream.line);
        for &b in bytes.iter() {
            line.push(b);
            if b == b'\n' || line.len() >= MAX_LINE {
                stream.emit(&mut line);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        // A handle that ends ends the line it was writing, as when each handle had its own.
        self.0.emit(&mut sync::lock(&self.0.line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handle_of_a_stream_writes_into_its_one_line() {
        let metrics = Arc::new(Metrics::new(vec!["/r".into()], 1));
        let budget = Arc::new(LogBudget::new(100, metrics, 0));
        let stream = LogStream::new("/r (p.wasm)".into(), false, budget);
        // A plugin that keeps a thousand handles with a partial line in each holds one line of at most MAX_LINE.
        let mut handles: Vec<_> = (0..1000).map(|_| stream.p2_stream()).collect();
        for handle in &mut handles {
            handle.write(Bytes::from(vec![b'x'; 4095])).unwrap();
        }
        assert!(sync::lock(&stream.line).len() < MAX_LINE);
        drop(handles);
        assert!(sync::lock(&stream.line).is_empty());
    }

    #[test]
    fn a_plugins_text_becomes_one_bounded_line() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(
            one_line("a\nINFO access: forged\r"),
            "a\\nINFO access: forged\\r"
        );
        let long = "é".repeat(3000);
        let line = one_line(&long);
        assert!(line.len() <= MAX_LINE + 40, "{}", line.len());
        assert!(
            line.ends_with(" [1904 more bytes cut]"),
            "{}",
            &line[line.len() - 30..]
        );
    }
}

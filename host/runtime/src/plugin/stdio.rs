//! A plugin's stdout and stderr: each complete line becomes a log line tagged with the route and plugin, so a
//! `println!` or a panic message in a plugin is visible and never blocks. Lines from both streams and from the
//! host `log` call share one per-instance budget, [`LogBudget`], so a plugin cannot flood the gateway's log.

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wssgate_hub::metrics::{CapHit, Metrics};
use wssgate_hub::sync;

/// Longest line kept before it is logged in pieces, so a plugin cannot grow the buffer without bound.
const MAX_LINE: usize = 4096;

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
    pub origin: Arc<str>,
    /// True for stderr, logged as warnings.
    pub is_stderr: bool,
    /// Shared with the instance's other stream and its `log` calls.
    pub budget: Arc<LogBudget>,
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
        Box::new(LineWriter {
            stream: self.clone(),
            line: Vec::new(),
        })
    }
}

/// Collects bytes until a newline, then logs the line.
struct LineWriter {
    stream: LogStream,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        if !self.stream.budget.take(&self.stream.origin) {
            self.line.clear();
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\r', '\n']);
        let origin = &*self.stream.origin;
        if self.stream.is_stderr {
            tracing::warn!(target: "plugin", plugin = origin, "stderr: {text}");
        } else {
            tracing::info!(target: "plugin", plugin = origin, "stdout: {text}");
        }
        self.line.clear();
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        for &b in bytes.iter() {
            self.line.push(b);
            if b == b'\n' || self.line.len() >= MAX_LINE {
                self.emit();
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
        self.emit();
    }
}

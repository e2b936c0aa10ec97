//! What one load generator run measured, as JSON for the runner and as a line for a person.

use serde::{Deserialize, Serialize};

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Latency {
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
}

impl Latency {
    pub fn of(histogram: &hdrhistogram::Histogram<u64>) -> Option<Self> {
        (!histogram.is_empty()).then(|| Latency {
            p50_us: histogram.value_at_quantile(0.5),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
        })
    }
}

/// The server's side of a run, read from `/proc` (and, for the gateway, its `/metrics`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerUsage {
    /// CPU the server spent in the measured window, in microseconds.
    pub cpu_us: f64,
    /// `cpu_us` per counted operation.
    pub cpu_us_per_op: f64,
    /// Share of one core the server used in the window.
    pub cpu_percent: f64,
    /// Resident memory before the load generator connected and at the end of the window, KiB.
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// The server's peak resident memory so far, KiB.
    pub peak_rss_kib: u64,
    /// `(rss_after - rss_before) / connections`, KiB: what an open connection costs.
    pub rss_per_connection_kib: f64,
    /// Time spent inside plugin callbacks in the window as a share of the time the server ran or was ready to run
    /// (gateway only). On a core of its own, as the runner arranges, that is its share of the server's CPU.
    pub plugin_share: Option<f64>,
}

/// One run of the load generator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadReport {
    /// `echo`, `handshake`, `idle` or `fanout`.
    pub mode: String,
    /// What `count` counts: `message`, `handshake`, `connection` or `delivery`.
    pub op: String,
    pub connections: usize,
    pub in_flight: usize,
    pub size: usize,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Operations completed in the window.
    pub count: u64,
    pub per_sec: f64,
    /// Time from send to reply (echo), or from connect to upgraded (handshake).
    pub latency: Option<Latency>,
    /// Connections that failed to open, or broke before the end.
    pub errors: u64,
    pub server: Option<ServerUsage>,
}

impl LoadReport {
    /// One human-readable line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} connections={} in_flight={} size={} {}={} rate={:.0}/s errors={}",
            self.mode,
            self.connections,
            self.in_flight,
            self.size,
            match self.op.as_str() {
                "delivery" => "deliveries".to_owned(),
                op => format!("{op}s"),
            },
            self.count,
            self.per_sec,
            self.errors
        );
        if let Some(l) = self.latency {
            line += &format!(
                " p50={}us p99={}us p99.9={}us",
                l.p50_us, l.p99_us, l.p999_us
            );
        }
        if let Some(s) = &self.server {
            line += &format!(
                " server_cpu={:.1}% server_cpu_per_{}={:.2}us rss={}KiB peak_rss={}KiB",
                s.cpu_percent, self.op, s.cpu_us_per_op, s.rss_after_kib, s.peak_rss_kib
            );
            if s.rss_per_connection_kib > 0.0 {
                line += &format!(" rss_per_connection={:.1}KiB", s.rss_per_connection_kib);
            }
            if let Some(share) = s.plugin_share {
                line += &format!(" plugin_share={:.1}%", share * 100.0);
            }
        }
        line
    }
}

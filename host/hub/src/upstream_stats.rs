//! The outbound side of `/metrics`: requests by upstream and outcome, a latency histogram per upstream, and the
//! requests in flight. One lock per request is nothing next to the request itself.

use crate::exposition::{Exposition, Kind};
use crate::sync::lock;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the request latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0];

#[derive(Default)]
struct PerUpstream {
    /// Finished requests by outcome: `response` (any status) or the error's kind.
    outcomes: BTreeMap<&'static str, u64>,
    /// Finished requests per latency bucket (the last one is +Inf).
    latency: [u64; BUCKETS.len() + 1],
    latency_sum: f64,
    in_flight: i64,
    /// Requests ended without an event: their owner closed, their instance went, or the plugin cancelled them.
    cancelled: u64,
}

#[derive(Default)]
pub struct UpstreamStats {
    upstreams: Mutex<BTreeMap<String, PerUpstream>>,
}

impl UpstreamStats {
    fn with(&self, upstream: &str, f: impl FnOnce(&mut PerUpstream)) {
        let mut map = lock(&self.upstreams);
        match map.get_mut(upstream) {
            Some(entry) => f(entry),
            None => f(map.entry(upstream.to_owned()).or_default()),
        }
    }

    pub fn in_flight(&self, upstream: &str, delta: i64) {
        self.with(upstream, |u| u.in_flight += delta);
    }

    pub fn finished(&self, upstream: &str, outcome: &'static str, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        self.with(upstream, |u| {
            *u.outcomes.entry(outcome).or_default() += 1;
            u.latency[bucket] += 1;
            u.latency_sum += seconds;
        });
    }

    pub fn cancelled(&self, upstream: &str) {
        self.with(upstream, |u| u.cancelled += 1);
    }

    /// Appends the Prometheus text of every upstream's counters.
    pub fn render(&self, out: &mut String) {
        let map = lock(&self.upstreams);
        let mut e = Exposition::new(out);
        let name = "wssgate_upstream_requests_total";
        e.family(
            name,
            Kind::Counter,
            "Outbound requests finished, by upstream and outcome (`response` is any HTTP status)",
        );
        for (upstream, u) in map.iter() {
            for (outcome, n) in &u.outcomes {
                e.sample(name, &[("upstream", upstream), ("outcome", outcome)], n);
            }
            let cancelled = [("upstream", upstream.as_str()), ("outcome", "cancelled")];
            e.sample(name, &cancelled, u.cancelled);
        }
        let name = "wssgate_upstream_in_flight";
        e.family(name, Kind::Gauge, "Outbound requests running now");
        for (upstream, u) in map.iter() {
            e.sample(name, &[("upstream", upstream)], u.in_flight);
        }
        let name = "wssgate_upstream_request_seconds";
        e.family(
            name,
            Kind::Histogram,
            "Time from sending a request to its whole response or error",
        );
        for (upstream, u) in map.iter() {
            e.histogram(
                name,
                &[("upstream", upstream)],
                &BUCKETS,
                u.latency,
                u.latency_sum,
            );
        }
    }
}

//! One scenario's results over its rounds: medians, ranges and the ratio against the goal.

use crate::scenarios::*;
use wssgate_bench::report::LoadReport;

/// One scenario's results over its rounds.
pub(crate) struct Summary {
    pub(crate) name: &'static str,
    pub(crate) what: String,
    pub(crate) metric: &'static str,
    pub(crate) baseline: Vec<f64>,
    pub(crate) gateway: Vec<f64>,
    pub(crate) goal: Goal,
    /// Gateway medians of latency p99 and peak RSS, for the table.
    gateway_p99_us: Option<f64>,
    baseline_p99_us: Option<f64>,
    pub(crate) gateway_peak_kib: f64,
    pub(crate) baseline_peak_kib: f64,
    pub(crate) plugin_share: Option<f64>,
    pub(crate) errors: u64,
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

pub(crate) fn range(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2}–{:.2}", min, max)
}

impl Summary {
    pub(crate) fn of(
        scenario: &Scenario,
        baseline: &[LoadReport],
        gateway: &[LoadReport],
    ) -> Summary {
        let (metric, pick): (&'static str, fn(&LoadReport) -> f64) = match scenario.goal {
            Goal::CpuRatioAtMost(_) | Goal::Reported { cpu: true } => {
                ("server CPU µs per message", |r| {
                    r.server.as_ref().map_or(f64::NAN, |s| s.cpu_us_per_op)
                })
            }
            Goal::RateRatioAtLeast(_) | Goal::Reported { cpu: false } => {
                ("per second", |r| r.per_sec)
            }
            Goal::CapacityRatioAtLeast(_) => ("per second of server CPU", |r| {
                r.server
                    .as_ref()
                    .map_or(f64::NAN, |s| 1e6 / s.cpu_us_per_op)
            }),
            Goal::KibPerConnectionAtMost(_) => ("KiB RSS per connection", |r| {
                r.server
                    .as_ref()
                    .map_or(f64::NAN, |s| s.rss_per_connection_kib)
            }),
        };
        let p99 = |reports: &[LoadReport]| {
            let v: Vec<f64> = reports
                .iter()
                .filter_map(|r| r.latency.map(|l| l.p99_us as f64))
                .collect();
            (!v.is_empty()).then(|| median(&v))
        };
        let peak = |reports: &[LoadReport]| {
            median(
                &reports
                    .iter()
                    .map(|r| r.server.as_ref().map_or(0.0, |s| s.peak_rss_kib as f64))
                    .collect::<Vec<_>>(),
            )
        };
        let shares: Vec<f64> = gateway
            .iter()
            .filter_map(|r| r.server.as_ref()?.plugin_share)
            .collect();
        Summary {
            name: scenario.name,
            what: scenario.what.clone(),
            metric,
            baseline: baseline.iter().map(pick).collect(),
            gateway: gateway.iter().map(pick).collect(),
            goal: scenario.goal,
            gateway_p99_us: p99(gateway),
            baseline_p99_us: p99(baseline),
            gateway_peak_kib: peak(gateway),
            baseline_peak_kib: peak(baseline),
            plugin_share: (!shares.is_empty()).then(|| median(&shares)),
            errors: baseline.iter().chain(gateway).map(|r| r.errors).sum(),
        }
    }

    pub(crate) fn ratio(&self) -> f64 {
        median(&self.gateway) / median(&self.baseline)
    }

    /// The target and whether it held.
    pub(crate) fn verdict(&self) -> (String, bool) {
        match self.goal {
            Goal::CpuRatioAtMost(max) if max.is_infinite() => ("—".into(), true),
            Goal::Reported { .. } => ("—".into(), true),
            Goal::CpuRatioAtMost(max) => (format!("≤ {max}×"), self.ratio() <= max),
            Goal::RateRatioAtLeast(min) | Goal::CapacityRatioAtLeast(min) => {
                (format!("≥ {min}×"), self.ratio() >= min)
            }
            Goal::KibPerConnectionAtMost(max) => {
                (format!("≤ {max} KiB"), median(&self.gateway) <= max)
            }
        }
    }

    pub(crate) fn table(summaries: &[Summary]) -> String {
        let mut out = String::from(
            "| scenario | metric | baseline median (range) | gateway median (range) | ratio | target | met | p99 µs base / gw | peak RSS MiB base / gw | plugin share | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for s in summaries {
            let (target, met) = s.verdict();
            let p99 = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.0}"));
            out += &format!(
                "| {} ({}) | {} | {:.2} ({}) | {:.2} ({}) | {:.3} | {} | {} | {} / {} | {:.1} / {:.1} | {} | {} |\n",
                s.name,
                s.what,
                s.metric,
                median(&s.baseline),
                range(&s.baseline),
                median(&s.gateway),
                range(&s.gateway),
                s.ratio(),
                target,
                if met { "yes" } else { "**no**" },
                p99(s.baseline_p99_us),
                p99(s.gateway_p99_us),
                s.baseline_peak_kib / 1024.0,
                s.gateway_peak_kib / 1024.0,
                s.plugin_share
                    .map_or("—".into(), |v| format!("{:.1}%", v * 100.0)),
                s.errors,
            );
        }
        out
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let (target, met) = self.verdict();
        serde_json::json!({
            "scenario": self.name, "what": self.what, "metric": self.metric, "baseline": self.baseline,
            "gateway": self.gateway, "ratio": self.ratio(), "target": target, "met": met,
            "plugin_share": self.plugin_share, "errors": self.errors,
        })
    }
}

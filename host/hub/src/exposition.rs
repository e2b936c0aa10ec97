//! The Prometheus text exposition format (version 0.0.4), written in one place for every `/metrics` line the
//! gateway serves: the metrics here, the upstream counters and the cluster link's.
//!
//! A metric family is its `# HELP` and `# TYPE` lines and then its samples. Help text escapes backslash and newline;
//! label values escape backslash, double quote and newline, so a route path or a listener name can never break a
//! line or forge a label. A histogram is written from per-bucket counts: its `_bucket` lines are cumulative, end in
//! `le="+Inf"`, and its `_count` equals the `+Inf` bucket.

use std::fmt::{Display, Write as _};

/// What a metric family is.
#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Writes metric families onto the end of a text.
pub struct Exposition<'a>(&'a mut String);

impl<'a> Exposition<'a> {
    pub fn new(out: &'a mut String) -> Self {
        Exposition(out)
    }

    /// Starts the family `name`: its help and type lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(
            self.0,
            "# HELP {name} {help}\n# TYPE {name} {}",
            kind.name()
        );
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.0, " {value}");
    }

    /// One histogram of the current family: `counts` holds the observations per bucket (not cumulative), one per
    /// bound in `bounds` and a last one for everything above them; `sum` is the sum of the observations.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: impl IntoIterator<Item = u64>,
        sum: f64,
    ) {
        let bounds = bounds.iter().map(f64::to_string).chain(["+Inf".to_owned()]);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (le, count) in bounds.zip(counts) {
            cumulative += count;
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, cumulative);
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.0.push('{');
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            self.0.push_str(name);
            self.0.push_str("=\"");
            for c in value.chars() {
                match c {
                    '\\' => self.0.push_str("\\\\"),
                    '"' => self.0.push_str("\\\""),
                    '\n' => self.0.push_str("\\n"),
                    c => self.0.push(c),
                }
            }
            self.0.push('"');
        }
        self.0.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_help_type_and_samples() {
        let mut out = String::new();
        let mut e = Exposition::new(&mut out);
        e.family("x_total", Kind::Counter, "Things\\done\nsofar");
        e.sample("x_total", &[("route", "/a")], 3);
        e.sample("x_total", &[], 4);
        assert_eq!(
            out,
            "# HELP x_total Things\\\\done\\nsofar\n# TYPE x_total counter\nx_total{route=\"/a\"} 3\nx_total 4\n"
        );
    }

    #[test]
    fn label_values_cannot_break_a_line_or_forge_a_label() {
        let mut out = String::new();
        Exposition::new(&mut out).sample("m", &[("a", "x\"} 1\nm{b=\"\\")], 2);
        assert_eq!(out, "m{a=\"x\\\"} 1\\nm{b=\\\"\\\\\"} 2\n");
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn a_histogram_is_cumulative_and_ends_in_inf_sum_and_count() {
        let mut out = String::new();
        let mut e = Exposition::new(&mut out);
        e.family("h", Kind::Histogram, "H");
        e.histogram("h", &[("route", "/r")], &[0.001, 1.0], [2, 0, 5], 6.5);
        let lines: Vec<&str> = out.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "h_bucket{route=\"/r\",le=\"0.001\"} 2",
                "h_bucket{route=\"/r\",le=\"1\"} 2",
                "h_bucket{route=\"/r\",le=\"+Inf\"} 7",
                "h_sum{route=\"/r\"} 6.5",
                "h_count{route=\"/r\"} 7",
            ]
        );
    }
}

//! # wssgate-bench: same-run comparisons of the gateway against the stack it is built on
//!
//! Three programs share this library: [`loadgen`](../loadgen/index.html) drives a server and reports what it
//! measured, `baseline` is the reference server every run carries, and `benchrun` starts both, drives them
//! alternately with the same load and reports the ratios (see `BENCHMARKS.md`).

pub mod client;
pub mod procfs;
pub mod report;
pub mod server_tls;

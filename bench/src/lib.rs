//! # wssgate-bench: same-run comparisons of the gateway against the stack it is built on
//!
//! Four programs share this library: [`loadgen`](../loadgen/index.html) drives a server and reports what it
//! measured, `baseline` is the reference server every run carries, `hookd` is the HTTP backend of the webhook
//! scenarios, and `benchrun` starts them, drives baseline and gateway alternately with the same load and reports
//! the ratios (see `BENCHMARKS.md`).

pub mod client;
pub mod http1;
/// The test kit's loopback ports (`tests/src/ports.rs`, standard library only), compiled in here rather than taken
/// from the `wssgate-tests` crate: that crate would bring the guest SDK, wit-bindgen and a test plugin into every
/// benchmark binary for two functions.
#[path = "../../tests/src/ports.rs"]
pub mod ports;
pub mod procfs;
pub mod report;
pub mod server_tls;

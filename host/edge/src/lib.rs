//! # wssgate-edge: where connections come in
//!
//! The modules follow the path a connection takes: [`listener`] accepts it on a worker, [`connection`] runs
//! [`proxy`] and [`tls`] (with certificates from [`acme`]) and reads the HTTP request with [`upgrade`], which picks
//! a route; [`verdict`] asks the route's plugin whether to open it (now or, deferred, later); [`session`] runs the
//! WebSocket and hands its events to the plugin. [`worker`] ties one core's share of all this together.

pub mod acme;
mod compression;
pub mod connection;
pub mod context;
// For the fuzz targets in `fuzz/` only: the private readers they run (see the module's doc).
#[doc(hidden)]
pub mod fuzzing;
pub mod listener;
mod private_file;
pub mod proxy;
pub mod session;
pub mod tls;
pub mod upgrade;
pub mod verdict;
pub mod worker;

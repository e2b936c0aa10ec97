//! # wssgate-runtime: everything a plugin touches
//!
//! A route's [`plugin`] is a WebAssembly component run by wasmtime: one set of instances per worker and route
//! ([`route`]), each with its CPU budget and its host calls. Host calls reach connections through the hub, start
//! [`timers`] and send requests to the operator's [`upstream`]s; the work they start is [`owned`] by their instance
//! and connection, and freed with it.

pub mod owned;
pub mod plugin;
pub mod route;
pub mod storage_requests;
pub mod timers;
pub mod upstream;
pub mod worker;

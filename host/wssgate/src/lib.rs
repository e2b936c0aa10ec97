//! # wssgate: a WebAssembly-extensible wss gateway
//!
//! This crate is the top of the house: it wires the layers below into one gateway. The layers, from the bottom:
//!
//! - `wssgate-config`: what the operator wrote (`Config`) and what it bounds (`Limits`).
//! - `wssgate-hub`: state shared by the workers — each worker's connection table and outboxes, the hub that
//!   delivers between workers, admission caps and the metrics.
//! - `wssgate-cluster`: the NATS link that makes several nodes one; it plugs into the hub through a trait.
//! - `wssgate-runtime`: the plugin runtime — wasmtime, instances and host calls, timers, outbound HTTP, routes.
//! - `wssgate-edge`: the network edge — listeners, PROXY protocol, TLS and ACME, the upgrade, the session and the
//!   worker that runs them.
//! - `wssgate-admin`: the admin listener — push API, `/metrics`, `/healthz`.
//!
//! Here: [`gateway`] starts the workers and stops them, [`privileges`] drops root after binding, [`scaffold`]
//! writes new plugin crates (`wssgate new`), and [`status`] asks a running gateway how it is (`wssgate status`).

pub mod gateway;
pub mod privileges;
pub mod scaffold;
pub mod status;

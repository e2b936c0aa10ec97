//! # wssgate-config: what the operator wrote
//!
//! The gateway's TOML configuration parsed, defaulted and validated ([`Config`]), with errors that name the file,
//! line and field; the limits it sets ([`limits`]); the `[cluster]` and `[[upstream]]` sections ([`cluster`],
//! [`upstream`]); and the proxies whose word about a client's address is believed ([`TrustedProxies`]) with the one
//! source of that address each listener reads ([`ClientAddress`]). The bottom layer: it depends on no other crate of the gateway.

pub mod cluster;
mod config;
pub mod limits;
pub mod memory;
mod parse;
mod trusted_proxies;
pub mod upstream;

pub use config::*;
pub use trusted_proxies::{ClientAddress, TrustedProxies};

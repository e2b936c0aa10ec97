//! # wssgate: a WebAssembly-extensible wss gateway
//!
//! The modules follow the path a connection takes: [`listener`] accepts it on a worker, [`tls`] terminates TLS,
//! [`upgrade`] reads the HTTP request and picks a [`route`], [`connection`] runs the WebSocket session and hands its
//! events to the route's [`plugin`], whose host calls reach other connections through the worker's [`registry`] and
//! their [`outbound`] queues. [`worker`] ties one core's share of all this together; [`gateway`] starts the workers and
//! stops them; [`config`] is what the user wrote.

pub mod config;
pub mod connection;
pub mod gateway;
pub mod listener;
pub mod outbound;
pub mod plugin;
pub mod registry;
pub mod route;
pub mod tls;
pub mod upgrade;
pub mod worker;

//! # wssgate: a WebAssembly-extensible wss gateway
//!
//! The modules follow the path a connection takes: [`listener`] accepts it on a worker, [`connection`] runs
//! [`proxy`] and [`tls`] and reads the HTTP request with [`upgrade`], which picks a [`route`]; [`admission`] caps how many may
//! connect; [`accept`] asks the route's plugin whether to open it (now or, deferred, later); [`session`] runs the WebSocket and hands its events to the route's [`plugin`], whose host calls reach
//! other connections through the worker's [`registry`] and their [`outbound`] queues, connections on other workers
//! through the [`hub`], fire [`timers`] and send requests to the operator's [`upstream`]s — work they start is [`owned`]
//! by their instance and connection. [`worker`] ties one core's
//! share of all this together; [`gateway`] starts the workers and stops them; [`config`] is what the user wrote and
//! [`limits`] what it bounds; [`scaffold`] writes new plugin crates; [`admin`] serves the push API for existing backends and
//! the [`metrics`].

pub mod accept;
pub mod acme;
pub mod admin;
pub mod admission;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod gateway;
pub mod hub;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod outbound;
pub mod owned;
pub mod plugin;
pub mod privileges;
pub mod proxy;
pub mod registry;
pub mod route;
pub mod scaffold;
pub mod session;
pub mod sync;
pub mod timers;
pub mod tls;
pub mod upgrade;
pub mod upstream;
pub mod worker;

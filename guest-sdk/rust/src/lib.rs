//! # wssgate-sdk: write wssgate plugins in Rust
//!
//! A plugin is a type that implements [`Plugin`] — every callback has a default, so a plugin writes only the ones it
//! needs — plus one line, [`export_plugin!`], that turns it into a WebAssembly component the gateway can load:
//!
//! ```
//! use wssgate_sdk::{Connection, Message, Plugin};
//!
//! #[derive(Default)]
//! struct Greeter;
//!
//! impl Plugin for Greeter {
//!     type State = ();
//!
//!     fn on_message(&mut self, conn: Connection, _state: &mut (), message: Message) {
//!         if message.as_text() == Some("tom") {
//!             let _ = conn.send("ok");
//!         }
//!     }
//! }
//!
//! wssgate_sdk::export_plugin!(Greeter);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` and point a route's `plugin` at the `.wasm` file.
//! Unit-test it natively, without wasm, with [`testing::MockHost`].
//!
//! ## State
//!
//! Route-wide state lives in the plugin value (one per instance: it serves many connections). What a plugin keeps
//! per connection is its [`Plugin::State`]: `on_connect` creates it, every later event of the connection gets it,
//! and it is dropped after `on_close` — the SDK owns the table, so no entry outlives its connection. When the
//! gateway replaces an instance (after a trap), the fresh instance rebuilds the table through the same
//! `on_connect`, called with `request.restored = true`.
//!
//! ## Optional events
//!
//! Events beyond the connection's own come in optional interfaces that a plugin exports only when it handles them:
//! the timer events ([`TimerEvents`], exported with `export_plugin!(MyPlugin, timers)`) and the answers to outbound
//! HTTP requests ([`HttpEvents`], `export_plugin!(MyPlugin, http)`; both: `export_plugin!(MyPlugin, timers, http)`).
//! A plugin that starts timers or sends requests without exporting their events is refused when the gateway loads
//! it (and by the mock host when a test starts one).
//!
//! The raw bindings generated from `wit/plugin.wit` stay inside this crate: nothing in the API above depends on them.

// The only `unsafe` code is wit-bindgen's generated canonical ABI, allowed on its modules alone (see `__export`).
#![deny(unsafe_code)]

mod connection;
mod connections;
pub mod groups;
mod host;
pub mod http;
pub mod log;
mod message;
mod refusal;
mod runtime;
pub mod settings;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod timers;
pub mod users;
mod verdict;

pub use connection::{Connection, SendError};
pub use connections::Connections;
pub use message::{CloseFrame, ConnectionInfo, Message, Outgoing, Payload, Request};
pub use refusal::Refusal;
pub use runtime::Exported;
pub use settings::Settings;
pub use timers::Timer;
pub use verdict::{Rejection, Verdict};

/// A plugin's reaction to the life of its connections. One value of the type serves every connection of its route
/// on one instance; what it keeps per connection is its [`Plugin::State`], which the SDK stores for it.
pub trait Plugin {
    /// What the plugin keeps for each connection: `on_connect` creates it, every later event of the connection
    /// receives it, and it is dropped after `on_close`. `()` when the plugin keeps nothing per connection.
    type State: Default;

    /// The instance starts (before any event, and again in a replacement instance) with the route's settings.
    /// Return `Err` with a message to refuse them: `wssgate check` fails with it, `serve` does not start, and a
    /// reload carrying them is rejected. Route-wide timers are started here.
    fn init(&mut self, settings: &Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// A client asks to upgrade. Accept it with its state (the default: [`Plugin::State`]'s `Default`), reject it
    /// with an HTTP status, or defer the answer (see [`Verdict`]). When `request.restored` is true the gateway is
    /// replaying this call into a fresh instance for a connection the old one knew, so the plugin can rebuild its
    /// state; see [`Request::restored`] for what each answer means then.
    fn on_connect(&mut self, conn: Connection, request: &Request) -> Verdict<Self::State> {
        let _ = (conn, request);
        Verdict::Accept(Self::State::default())
    }

    /// A complete text or binary message arrived from the client.
    fn on_message(&mut self, conn: Connection, state: &mut Self::State, message: Message) {
        let _ = (conn, state, message);
    }

    /// The connection is closed; `close.code` is 1006 when the peer vanished without a close frame, or when a
    /// deferred connection never opened. Its state is dropped when this returns.
    fn on_close(&mut self, conn: Connection, state: Self::State, close: CloseFrame) {
        let _ = (conn, state, close);
    }
}

/// The optional HTTP events: a plugin that sends [`http`] requests implements this and is exported with
/// `export_plugin!(MyPlugin, http)` (or `export_plugin!(MyPlugin, timers, http)`).
pub trait HttpEvents: Plugin {
    /// Request `request` was answered or failed. `request.owner()` is the connection it was sent for (its state is
    /// in `connections`). Comes exactly once per request sent, unless it was cancelled first (see [`http`]).
    fn on_http_response(
        &mut self,
        request: http::Sent,
        response: Result<http::Response, http::HttpError>,
        connections: &mut Connections<Self::State>,
    );
}

/// The optional timer events: a plugin that starts [`timers`] implements this and is exported with
/// `export_plugin!(MyPlugin, timers)`.
pub trait TimerEvents: Plugin {
    /// A timer fired. `timer.owner()` is the connection it was started for (its state is in `connections`).
    fn on_timer(&mut self, timer: Timer, connections: &mut Connections<Self::State>);
}

/// Exports a [`Plugin`] type (which must also implement `Default`) as the component's entry points; with `, timers`
/// also its [`TimerEvents`], with `, http` its [`HttpEvents`] (both: `, timers, http`). On other targets it only records what the plugin exports (for
/// [`testing::MockHost`]), so the same crate builds natively for its unit tests.
///
/// ```
/// use std::time::Duration;
/// use wssgate_sdk::{Connection, Connections, Plugin, Request, Timer, TimerEvents, Verdict, timers};
///
/// #[derive(Default)]
/// struct Reminder;
///
/// impl Plugin for Reminder {
///     type State = ();
///     fn on_connect(&mut self, conn: Connection, _request: &Request) -> Verdict<()> {
///         let _ = timers::after(Duration::from_secs(5), Some(conn));
///         Verdict::Accept(())
///     }
/// }
///
/// impl TimerEvents for Reminder {
///     fn on_timer(&mut self, timer: Timer, _connections: &mut Connections<()>) {
///         if let Some(conn) = timer.owner() {
///             let _ = conn.send("five seconds have passed");
///         }
///     }
/// }
///
/// wssgate_sdk::export_plugin!(Reminder, timers);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::__export_plugin!($plugin, no_timers, no_http);
    };
    ($plugin:ty, timers) => {
        $crate::__export_plugin!($plugin, timers, no_http);
    };
    ($plugin:ty, http) => {
        $crate::__export_plugin!($plugin, no_timers, http);
    };
    ($plugin:ty, timers, http) => {
        $crate::__export_plugin!($plugin, timers, http);
    };
    ($plugin:ty, http, timers) => {
        $crate::__export_plugin!($plugin, timers, http);
    };
}

/// [`export_plugin!`] with each optional export named `timers`/`no_timers`, `http`/`no_http`; not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    ($plugin:ty, $timers:ident, $http:ident) => {
        impl $crate::Exported for $plugin {
            $crate::__timer_events!(impl, $timers, $plugin);
            $crate::__http_events!(impl, $http, $plugin);
        }
        $crate::__export_connection_events!($plugin);
        $crate::__timer_events!(export, $timers, $plugin);
        $crate::__http_events!(export, $http, $plugin);
    };
}

/// The timer events' part of [`export_plugin!`]; not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __timer_events {
    (impl, no_timers, $plugin:ty) => {
        const TIMER_EVENTS: bool = false;
        fn deliver_timer(
            &mut self,
            _timer: $crate::Timer,
            _connections: &mut $crate::Connections<<Self as $crate::Plugin>::State>,
        ) {
        }
    };
    (impl, timers, $plugin:ty) => {
        const TIMER_EVENTS: bool = true;
        fn deliver_timer(
            &mut self,
            timer: $crate::Timer,
            connections: &mut $crate::Connections<<Self as $crate::Plugin>::State>,
        ) {
            <$plugin as $crate::TimerEvents>::on_timer(self, timer, connections)
        }
    };
    (export, no_timers, $plugin:ty) => {};
    (export, timers, $plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::__export::TimerEvents for Export {
                fn on_timer(timer: u64, owner: ::std::option::Option<u64>) {
                    $crate::__export::on_timer::<$plugin>(timer, owner)
                }
            }
            // Also describes the `timer-events` export to the component linker: only plugins expanding this carry
            // it (see `__export`).
            $crate::__export::export_timer_events!(Export with_types_in $crate::__export::timer_bindings);
        };
    };
}

/// The HTTP events' part of [`export_plugin!`]; not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __http_events {
    (impl, no_http, $plugin:ty) => {
        const HTTP_EVENTS: bool = false;
        fn deliver_response(
            &mut self,
            _request: $crate::http::Sent,
            _response: ::std::result::Result<$crate::http::Response, $crate::http::HttpError>,
            _connections: &mut $crate::Connections<<Self as $crate::Plugin>::State>,
        ) {
        }
    };
    (impl, http, $plugin:ty) => {
        const HTTP_EVENTS: bool = true;
        fn deliver_response(
            &mut self,
            request: $crate::http::Sent,
            response: ::std::result::Result<$crate::http::Response, $crate::http::HttpError>,
            connections: &mut $crate::Connections<<Self as $crate::Plugin>::State>,
        ) {
            <$plugin as $crate::HttpEvents>::on_http_response(self, request, response, connections)
        }
    };
    (export, no_http, $plugin:ty) => {};
    (export, http, $plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::__export::HttpEvents for Export {
                fn on_http_response(
                    request: u64,
                    owner: ::std::option::Option<u64>,
                    response: ::std::result::Result<
                        $crate::__export::RawHttpResponse,
                        $crate::__export::RawHttpError,
                    >,
                ) {
                    $crate::__export::on_http_response::<$plugin>(request, owner, response)
                }
            }
            // Also describes the `http-events` export to the component linker: only plugins expanding this carry
            // it (see `__export`).
            $crate::__export::export_http_events!(Export with_types_in $crate::__export::http_bindings);
        };
    };
}

/// The required exports of [`export_plugin!`]; not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_connection_events {
    ($plugin:ty) => {
        // Natively the plugin runs only under the mock host: name its constructor so the type counts as used.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $plugin = $crate::__plugin_constructor::<$plugin>;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::__export::ConnectionEvents for Export {
                fn on_connect(
                    connection: u64,
                    request: $crate::__export::RawRequest,
                ) -> $crate::__export::RawVerdict {
                    $crate::__export::on_connect::<$plugin>(connection, request)
                }
                fn on_message(connection: u64, message: $crate::__export::RawMessage) {
                    $crate::__export::on_message::<$plugin>(connection, message)
                }
                fn on_close(connection: u64, code: u16, reason: ::std::string::String) {
                    $crate::__export::on_close::<$plugin>(connection, code, reason)
                }
            }
            impl $crate::__export::Lifecycle for Export {
                fn init(
                    settings: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__export::init::<$plugin>(settings)
                }
            }
    $crate::__export::export_world!(Export with_types_in $crate::__export::bindings);
        };
    };
}

/// How the gateway and the mock create a plugin; named by [`export_plugin!`] in native builds.
#[doc(hidden)]
pub fn __plugin_constructor<P: Plugin + Default>() -> P {
    P::default()
}

/// Glue used by [`export_plugin!`]; not part of the API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __export;

/// The README's Rust examples, compiled and run as doctests so the guide cannot fall behind the SDK.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

/// The manual's Rust examples (docs/src: the SDK's shape, talking to a backend), run as doctests like the README's.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/src/sdk.md")]
pub struct SdkChapterExamples;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/src/backend.md")]
pub struct BackendChapterExamples;

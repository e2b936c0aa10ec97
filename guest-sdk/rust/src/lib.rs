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
//! the timer events ([`TimerEvents`], exported with `export_plugin!(MyPlugin, timers)`), the answers to outbound
//! HTTP requests ([`HttpEvents`], `export_plugin!(MyPlugin, http)`), and (contract 1.2) the answers of group
//! [`history`] ([`HistoryEvents`], `export_plugin!(MyPlugin, history)`) and of key-value [`storage`]
//! ([`StorageEvents`], `export_plugin!(MyPlugin, storage)`); several in any order:
//! `export_plugin!(MyPlugin, timers, http, history, storage)`. A plugin that starts timers or makes requests without
//! exporting their events is refused when the gateway loads it (and by the mock host when a test starts one); a
//! plugin that never makes them does not import them.
//!
//! The raw bindings generated from `wit/plugin.wit` stay inside this crate: nothing in the API above depends on them.

// The only `unsafe` code is wit-bindgen's generated canonical ABI, allowed on its modules alone (see `__export`).
#![deny(unsafe_code)]

mod connection;
mod connections;
pub mod groups;
pub mod history;
mod host;
pub mod http;
pub mod log;
mod memory;
mod message;
mod refusal;
mod runtime;
pub mod settings;
pub mod storage;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod timers;
pub mod users;
mod verdict;

pub use connection::{Connection, SendError};
pub use connections::Connections;
pub use memory::{StorageError, StorageRefusal, StorageRequest};
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

/// The optional history events (contract 1.2): a plugin that uses [`history`] implements this and is exported with
/// `export_plugin!(MyPlugin, history)`. Each request the gateway took gets exactly one of these events, unless it was
/// cancelled first (its owner closed, or the instance was replaced or ended). `request.owner()` is the connection
/// it was made for (its state is in `connections`). Both default to doing nothing.
///
/// A room whose members see every message with its position, and can ask for what came after one:
///
/// ```
/// use wssgate_sdk::history::{self, HistoryPage, Position};
/// use wssgate_sdk::{Connection, Connections, HistoryEvents, Message, Plugin, StorageError, StorageRequest};
///
/// #[derive(Default)]
/// struct Room;
///
/// impl Plugin for Room {
///     type State = ();
///     fn on_message(&mut self, conn: Connection, _: &mut (), message: Message) {
///         let _ = conn.join("room");
///         let text = message.as_text().unwrap_or("");
///         let _ = match text.strip_prefix("since ") {
///             Some(offset) => {
///                 let (offset, epoch) = offset.split_once(' ').unwrap_or((offset, ""));
///                 let since = Position { offset: offset.parse().unwrap_or(0), epoch: epoch.to_owned() };
///                 history::read("room", Some(&since), 50, Some(conn))
///             }
///             None => history::append("room", text, Some(conn)),
///         };
///     }
/// }
///
/// impl HistoryEvents for Room {
///     fn on_appended(&mut self, request: StorageRequest, result: Result<Position, StorageError>, _: &mut Connections<()>) {
///         // Durable now: the members see it with its position.
///         if let (Some(sender), Ok(at)) = (request.owner(), result) {
///             let line = format!("{} {} {}", at.epoch, at.offset, sender.id());
///             wssgate_sdk::groups::publish("room", line, &[]);
///         }
///     }
///     fn on_history(&mut self, request: StorageRequest, result: Result<HistoryPage, StorageError>, _: &mut Connections<()>) {
///         if let (Some(conn), Ok(page)) = (request.owner(), result) {
///             let _ = conn.send(format!("{} missed, complete: {}", page.entries.len(), page.complete));
///         }
///     }
/// }
///
/// wssgate_sdk::export_plugin!(Room, history);
///
/// use wssgate_sdk::testing::{HistoryConfig, MockHost};
/// let host = MockHost::<Room>::new().with_history(HistoryConfig::default());
/// let ann = host.connect("/room").unwrap();
/// host.message(ann, "hello");
/// host.message(ann, "again");
/// let epoch = host.history_epoch("room").unwrap();
/// assert_eq!(host.take_sent(ann), vec![
///     Message::from(format!("{epoch} 1 {}", ann.id())),
///     Message::from(format!("{epoch} 2 {}", ann.id())),
/// ]);
/// host.message(ann, format!("since 1 {epoch}"));
/// assert_eq!(host.take_sent(ann), vec![Message::from("1 missed, complete: true")]);
/// ```
pub trait HistoryEvents: Plugin {
    /// The message of append request `request` is durable at its position (or was not appended).
    fn on_appended(
        &mut self,
        request: StorageRequest,
        result: Result<history::Position, StorageError>,
        connections: &mut Connections<Self::State>,
    ) {
        let _ = (request, result, connections);
    }

    /// The answer to read request `request`.
    fn on_history(
        &mut self,
        request: StorageRequest,
        result: Result<history::HistoryPage, StorageError>,
        connections: &mut Connections<Self::State>,
    ) {
        let _ = (request, result, connections);
    }
}

/// The optional storage events (contract 1.2): a plugin that uses [`storage`] implements this and is exported with
/// `export_plugin!(MyPlugin, storage)`. Each request the gateway took gets exactly one of these events, unless it was
/// cancelled first (its owner closed, or the instance was replaced or ended). `request.owner()` is the connection
/// it was made for (its state is in `connections`). Both default to doing nothing.
///
/// A note each user can leave and read back, on any node and after any restart:
///
/// ```
/// use wssgate_sdk::storage::{self, StoredValue};
/// use wssgate_sdk::{Connection, Connections, Message, Plugin, StorageError, StorageEvents, StorageRequest};
///
/// #[derive(Default)]
/// struct Notes;
///
/// impl Plugin for Notes {
///     type State = ();
///     fn on_message(&mut self, conn: Connection, _: &mut (), message: Message) {
///         let _ = match message.as_text() {
///             Some("read") => storage::get("note", Some(conn)),
///             Some(text) => storage::set("note", text, None, None, Some(conn)),
///             None => return,
///         };
///     }
/// }
///
/// impl StorageEvents for Notes {
///     fn on_read(&mut self, request: StorageRequest, result: Result<Option<StoredValue>, StorageError>, _: &mut Connections<()>) {
///         let answer = match result {
///             Ok(Some(note)) => note.text().unwrap_or("(bytes)").to_owned(),
///             Ok(None) => "no note".to_owned(),
///             Err(error) => error.to_string(),
///         };
///         if let Some(conn) = request.owner() {
///             let _ = conn.send(answer);
///         }
///     }
///     fn on_written(&mut self, request: StorageRequest, result: Result<u64, StorageError>, _: &mut Connections<()>) {
///         if let (Some(conn), Ok(revision)) = (request.owner(), result) {
///             let _ = conn.send(format!("saved as revision {revision}"));
///         }
///     }
/// }
///
/// wssgate_sdk::export_plugin!(Notes, storage);
///
/// use wssgate_sdk::testing::{MockHost, StorageConfig};
/// let host = MockHost::<Notes>::new().with_storage(StorageConfig::default());
/// let conn = host.connect("/notes").unwrap();
/// host.message(conn, "read");
/// host.message(conn, "milk");
/// host.message(conn, "read");
/// assert_eq!(
///     host.take_sent(conn),
///     vec![Message::from("no note"), Message::from("saved as revision 1"), Message::from("milk")]
/// );
/// ```
pub trait StorageEvents: Plugin {
    /// The answer to get request `request`: `None` when the key does not exist or has expired.
    fn on_read(
        &mut self,
        request: StorageRequest,
        result: Result<Option<storage::StoredValue>, StorageError>,
        connections: &mut Connections<Self::State>,
    ) {
        let _ = (request, result, connections);
    }

    /// The answer to set or remove request `request`: the revision the write made.
    fn on_written(
        &mut self,
        request: StorageRequest,
        result: Result<u64, StorageError>,
        connections: &mut Connections<Self::State>,
    ) {
        let _ = (request, result, connections);
    }
}

/// Exports a [`Plugin`] type (which must also implement `Default`) as the component's entry points, with the
/// optional events named after it, in any order: `timers` ([`TimerEvents`]), `http` ([`HttpEvents`]), `history`
/// ([`HistoryEvents`]) and `storage` ([`StorageEvents`]). On other targets it only records what the plugin exports
/// (for [`testing::MockHost`]), so the same crate builds natively for its unit tests.
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
///
/// An export it does not know is a compile error:
///
/// ```compile_fail
/// #[derive(Default)]
/// struct P;
/// impl wssgate_sdk::Plugin for P {
///     type State = ();
/// }
/// wssgate_sdk::export_plugin!(P, timer);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty $(, $export:ident)* $(,)?) => {
        $crate::__export_plugin!(@collect $plugin; [no_timers no_http no_history no_storage]; $($export)*);
    };
}

/// [`export_plugin!`]: collects the optional exports named (each `name` or `no_name`), then expands them; not part of
/// the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    (@collect $plugin:ty; [$t:ident $h:ident $hi:ident $s:ident]; timers $($rest:ident)*) => {
        $crate::__export_plugin!(@collect $plugin; [timers $h $hi $s]; $($rest)*);
    };
    (@collect $plugin:ty; [$t:ident $h:ident $hi:ident $s:ident]; http $($rest:ident)*) => {
        $crate::__export_plugin!(@collect $plugin; [$t http $hi $s]; $($rest)*);
    };
    (@collect $plugin:ty; [$t:ident $h:ident $hi:ident $s:ident]; history $($rest:ident)*) => {
        $crate::__export_plugin!(@collect $plugin; [$t $h history $s]; $($rest)*);
    };
    (@collect $plugin:ty; [$t:ident $h:ident $hi:ident $s:ident]; storage $($rest:ident)*) => {
        $crate::__export_plugin!(@collect $plugin; [$t $h $hi storage]; $($rest)*);
    };
    (@collect $plugin:ty; [$($flags:ident)*]; $other:ident $($rest:ident)*) => {
        ::core::compile_error!(::core::concat!(
            "export_plugin!: no optional export is named `",
            ::core::stringify!($other),
            "`; they are timers, http, history and storage"
        ));
    };
    (@collect $plugin:ty; [$timers:ident $http:ident $history:ident $storage:ident];) => {
        impl $crate::Exported for $plugin {
            $crate::__timer_events!(impl, $timers, $plugin);
            $crate::__http_events!(impl, $http, $plugin);
            $crate::__history_events!(impl, $history, $plugin);
            $crate::__storage_events!(impl, $storage, $plugin);
        }
        $crate::__export_connection_events!($plugin);
        $crate::__timer_events!(export, $timers, $plugin);
        $crate::__http_events!(export, $http, $plugin);
        $crate::__history_events!(export, $history, $plugin);
        $crate::__storage_events!(export, $storage, $plugin);
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

/// The history events' part of [`export_plugin!`]; not part of the API. Without them, [`Exported`]'s defaults say
/// the plugin does not export them.
#[doc(hidden)]
#[macro_export]
macro_rules! __history_events {
    (impl, no_history, $plugin:ty) => {};
    (impl, history, $plugin:ty) => {
        const HISTORY_EVENTS: bool = true;
        fn deliver_appended(
            &mut self,
            request: $crate::StorageRequest,
            result: ::std::result::Result<$crate::history::Position, $crate::StorageError>,
            connections: &mut $crate::Connections<<Self as $crate::Plugin>::State>,
        ) {
            <$plugin as $crate::HistoryEvents>::on_appended(self, request, result, connections)
        }
        fn deliver_history(
            &mut self,
            request: $crate::StorageRequest,
            result: ::std::result::Result<$crate::history::HistoryPage, $crate::StorageError>,
            connections: &mut $crate::Connections<<Self as $crate::Plugin>::State>,
        ) {
            <$plugin as $crate::HistoryEvents>::on_history(self, request, result, connections)
        }
    };
    (export, no_history, $plugin:ty) => {};
    (export, history, $plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::__export::HistoryEvents for Export {
                fn on_appended(
                    request: u64,
                    owner: ::std::option::Option<u64>,
                    result: ::std::result::Result<
                        $crate::__export::RawPosition,
                        $crate::__export::RawHistoryError,
                    >,
                ) {
                    $crate::__export::on_appended::<$plugin>(request, owner, result)
                }
                fn on_history(
                    request: u64,
                    owner: ::std::option::Option<u64>,
                    result: ::std::result::Result<
                        $crate::__export::RawHistoryPage,
                        $crate::__export::RawHistoryError,
                    >,
                ) {
                    $crate::__export::on_history::<$plugin>(request, owner, result)
                }
            }
            // Also describes the `history-events` export to the component linker (see `__export`).
            $crate::__export::export_history_events!(Export with_types_in $crate::__export::history_bindings);
        };
    };
}

/// The storage events' part of [`export_plugin!`]; not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __storage_events {
    (impl, no_storage, $plugin:ty) => {};
    (impl, storage, $plugin:ty) => {
        const STORAGE_EVENTS: bool = true;
        fn deliver_read(
            &mut self,
            request: $crate::StorageRequest,
            result: ::std::result::Result<
                ::std::option::Option<$crate::storage::StoredValue>,
                $crate::StorageError,
            >,
            connections: &mut $crate::Connections<<Self as $crate::Plugin>::State>,
        ) {
            <$plugin as $crate::StorageEvents>::on_read(self, request, result, connections)
        }
        fn deliver_written(
            &mut self,
            request: $crate::StorageRequest,
            result: ::std::result::Result<u64, $crate::StorageError>,
            connections: &mut $crate::Connections<<Self as $crate::Plugin>::State>,
        ) {
            <$plugin as $crate::StorageEvents>::on_written(self, request, result, connections)
        }
    };
    (export, no_storage, $plugin:ty) => {};
    (export, storage, $plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Export;
            impl $crate::__export::StorageEvents for Export {
                fn on_read(
                    request: u64,
                    owner: ::std::option::Option<u64>,
                    result: ::std::result::Result<
                        ::std::option::Option<$crate::__export::RawStoredValue>,
                        $crate::__export::RawStorageError,
                    >,
                ) {
                    $crate::__export::on_read::<$plugin>(request, owner, result)
                }
                fn on_written(
                    request: u64,
                    owner: ::std::option::Option<u64>,
                    result: ::std::result::Result<u64, $crate::__export::RawStorageError>,
                ) {
                    $crate::__export::on_written::<$plugin>(request, owner, result)
                }
            }
            // Also describes the `storage-events` export to the component linker (see `__export`).
            $crate::__export::export_storage_events!(Export with_types_in $crate::__export::storage_bindings);
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

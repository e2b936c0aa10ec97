//! # wssgate-sdk: write wssgate plugins in Rust
//!
//! A plugin is a type that implements [`Plugin`] — every callback has a default that does nothing, so a plugin
//! writes only the ones it needs — plus one line, [`export_plugin!`], that turns it into a WebAssembly component the
//! gateway can load:
//!
//! ```
//! use wssgate_sdk::{Connection, Message, Plugin};
//!
//! #[derive(Default)]
//! struct Greeter;
//!
//! impl Plugin for Greeter {
//!     fn on_message(&mut self, conn: Connection, message: Message) {
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
//! The raw bindings generated from `wit/plugin.wit` stay inside this crate: nothing in the API above depends on them.

mod connection;
pub mod groups;
mod host;
pub mod log;
mod message;
mod refusal;
pub mod settings;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod timers;
pub mod users;

pub use connection::{Connection, SendError};
pub use message::{CloseFrame, ConnectionInfo, Message, Outgoing, Payload, Request};
pub use refusal::Refusal;
pub use timers::Timer;

/// A plugin's reaction to the life of its connections. One value of the type serves every connection of its route
/// on one gateway worker, so keep per-connection state in a map keyed by [`Connection::id`].
pub trait Plugin {
    /// A client finished the WebSocket upgrade. Return `Err` to close it at once with that code and reason.
    /// When `request.restored` is true the host is replaying this call into a fresh instance for a connection that
    /// was already open, so the plugin can rebuild what it keeps per connection.
    fn on_connect(&mut self, conn: Connection, request: &Request) -> Result<(), CloseFrame> {
        let _ = (conn, request);
        Ok(())
    }

    /// A complete text or binary message arrived from the client.
    fn on_message(&mut self, conn: Connection, message: Message) {
        let _ = (conn, message);
    }

    /// The connection is closed; `close.code` is 1006 when the peer vanished without a close frame.
    fn on_close(&mut self, conn: Connection, close: CloseFrame) {
        let _ = (conn, close);
    }

    /// A timer started with [`timers::after`] or [`timers::every`] fired.
    fn on_timer(&mut self, timer: Timer) {
        let _ = timer;
    }
}

/// Exports a [`Plugin`] type (which must also implement `Default`) as the component's entry points.
/// On other targets it only checks the type, so the same crate builds natively for its unit tests.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $plugin = $crate::__plugin_constructor::<$plugin>;
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct Export;
            impl $crate::__export::Guest for Export {
                fn on_connect(
                    connection: u64,
                    request: $crate::__export::RawRequest,
                ) -> ::std::result::Result<(), $crate::__export::RawCloseFrame> {
                    $crate::__export::on_connect(&PLUGIN, connection, request)
                }
                fn on_message(connection: u64, message: $crate::__export::RawMessage) {
                    $crate::__export::on_message(&PLUGIN, connection, message)
                }
                fn on_close(connection: u64, code: u16, reason: ::std::string::String) {
                    $crate::__export::on_close(&PLUGIN, connection, code, reason)
                }
                fn on_timer(timer: u64) {
                    $crate::__export::on_timer(&PLUGIN, timer)
                }
            }
    $crate::__export::export_world!(Export with_types_in $crate::__export::bindings);
        };
    };
}

/// How the export creates the plugin; named by [`export_plugin!`] on every target so the type is checked (and used)
/// in native builds too.
#[doc(hidden)]
pub fn __plugin_constructor<P: Plugin + Default>() -> P {
    P::default()
}

/// Glue used by [`export_plugin!`]; not part of the API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __export;

//! The code [`crate::export_plugin!`] expands to calls into this module: it owns the generated bindings and turns
//! their raw types into the SDK's, so a plugin never sees them.

use crate::{CloseFrame, Connection, Message, Plugin, Request};
use std::cell::RefCell;
use std::thread::LocalKey;

#[allow(clippy::all, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export_world",
        default_bindings_module: "wssgate_sdk::__export::bindings",
        // Import arguments borrow the plugin's data (`&str`, `&[u8]`): a send copies nothing inside the plugin.
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

pub use bindings::Guest;
pub use bindings::export_world;
pub use bindings::wssgate::plugin::types::{
    CloseFrame as RawCloseFrame, MessageResult as RawMessage, RequestInfo as RawRequest,
};

type Slot<P> = LocalKey<RefCell<Option<P>>>;

/// Runs `f` on the plugin value, creating it on first use. Wasm guests are single-threaded and the host never
/// re-enters an export while another runs, so the borrow cannot conflict.
fn with_plugin<P: Plugin + Default, R>(slot: &'static Slot<P>, f: impl FnOnce(&mut P) -> R) -> R {
    slot.with(|cell| f(cell.borrow_mut().get_or_insert_with(P::default)))
}

pub fn on_connect<P: Plugin + Default>(
    slot: &'static Slot<P>,
    connection: u64,
    raw: RawRequest,
) -> Result<(), RawCloseFrame> {
    let request = Request {
        path: raw.path,
        query: raw.query,
        headers: raw.headers,
        remote_address: raw.remote_address,
        subprotocol: raw.subprotocol,
        restored: raw.restored,
    };
    with_plugin(slot, |p| {
        p.on_connect(Connection::new(connection), &request)
    })
    .map_err(|c| RawCloseFrame {
        code: c.code,
        reason: c.reason,
    })
}

pub fn on_message<P: Plugin + Default>(slot: &'static Slot<P>, connection: u64, raw: RawMessage) {
    let message = match raw {
        RawMessage::Text(text) => Message::Text(text),
        RawMessage::Binary(bytes) => Message::Binary(bytes),
    };
    with_plugin(slot, |p| p.on_message(Connection::new(connection), message))
}

pub fn on_close<P: Plugin + Default>(
    slot: &'static Slot<P>,
    connection: u64,
    code: u16,
    reason: String,
) {
    with_plugin(slot, |p| {
        p.on_close(Connection::new(connection), CloseFrame { code, reason })
    })
}

pub fn on_timer<P: Plugin + Default>(slot: &'static Slot<P>, timer: u64) {
    with_plugin(slot, |p| p.on_timer(crate::Timer::new(timer)))
}

//! The code [`crate::export_plugin!`] expands to calls into this module: it owns the generated bindings and the
//! instance's one piece of global state — its [`Runtime`] — and turns raw types into the SDK's, so a plugin never
//! sees them.

use crate::runtime::{Answer, Exported, Runtime};
use crate::settings::Settings;
use crate::{CloseFrame, Message, Request, Timer};
use std::any::Any;
use std::cell::RefCell;

#[allow(clippy::all, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        // The SDK always exports the connection events and `init` (a no-op unless the plugin writes one), and may
        // import the timers; their events are exported only by plugins that handle them (see `export_plugin!`).
        inline: "package wssgate-sdk:glue;
                 world base {
                     include wssgate:plugin/plugin@1.0.0;
                     import wssgate:plugin/timers@1.0.0;
                     export wssgate:plugin/lifecycle@1.0.0;
                 }",
        world: "wssgate-sdk:glue/base",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "export_world",
        default_bindings_module: "wssgate_sdk::__export::bindings",
        // Import arguments borrow the plugin's data (`&str`, `&[u8]`): a send copies nothing inside the plugin.
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

pub use bindings::export_world;
pub use bindings::exports::wssgate::plugin::connection_events::Guest as ConnectionEvents;
pub use bindings::exports::wssgate::plugin::lifecycle::Guest as Lifecycle;
pub use bindings::wssgate::plugin::types::{
    MessageResult as RawMessage, Rejection as RawRejection, RequestInfo as RawRequest,
    Verdict as RawVerdict,
};
pub use wit_bindgen::rt::run_ctors_once;

include!(concat!(env!("OUT_DIR"), "/timer_events.rs"));

thread_local! {
    /// The instance's plugin and connection states. A wasm guest is single-threaded and the host never re-enters an
    /// export while another runs, so the borrow cannot conflict.
    static RUNTIME: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `f` on the instance's runtime, creating it (with the plugin's `Default`) on first use.
fn with_runtime<P: Exported + 'static, R>(f: impl FnOnce(&mut Runtime<P>) -> R) -> R
where
    P::State: 'static,
{
    RUNTIME.with(|cell| {
        let mut slot = cell.borrow_mut();
        let runtime = slot.get_or_insert_with(|| Box::new(Runtime::new(P::default())));
        let runtime = runtime
            .downcast_mut::<Runtime<P>>()
            .expect("one plugin type per component");
        f(runtime)
    })
}

pub fn init<P: Exported + 'static>(settings: Vec<(String, String)>) -> Result<(), String>
where
    P::State: 'static,
{
    crate::log::install_bridge();
    with_runtime::<P, _>(|r| r.init(&Settings::new(settings)))
}

pub fn on_connect<P: Exported + 'static>(connection: u64, raw: RawRequest) -> RawVerdict
where
    P::State: 'static,
{
    let request = Request {
        path: raw.path,
        query: raw.query,
        headers: raw.headers,
        remote_address: raw.remote_address,
        subprotocol: raw.subprotocol,
        restored: raw.restored,
    };
    match with_runtime::<P, _>(|r| r.connect(connection, &request)) {
        Answer::Accept => RawVerdict::Accept,
        Answer::Defer => RawVerdict::Defer,
        Answer::Reject { status, body } => RawVerdict::Reject(RawRejection { status, body }),
    }
}

pub fn on_message<P: Exported + 'static>(connection: u64, raw: RawMessage)
where
    P::State: 'static,
{
    let message = match raw {
        RawMessage::Text(text) => Message::Text(text),
        RawMessage::Binary(bytes) => Message::Binary(bytes),
    };
    with_runtime::<P, _>(|r| r.message(connection, message))
}

pub fn on_close<P: Exported + 'static>(connection: u64, code: u16, reason: String)
where
    P::State: 'static,
{
    with_runtime::<P, _>(|r| r.close(connection, CloseFrame { code, reason }))
}

pub fn on_timer<P: Exported + 'static>(timer: u64, owner: Option<u64>)
where
    P::State: 'static,
{
    let timer = Timer::new(timer, owner.map(crate::Connection::new));
    with_runtime::<P, _>(|r| r.timer(timer))
}

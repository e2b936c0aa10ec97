//! The code [`crate::export_plugin!`] expands to calls into this module: it owns the generated bindings and the
//! instance's one piece of global state — its [`Runtime`] — and turns raw types into the SDK's, so a plugin never
//! sees them.

use crate::http::{HttpError, Response, Sent};
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
        // import the timers and outbound HTTP; their events are exported only by plugins that handle them (see
        // `export_plugin!`).
        inline: "package wssgate-sdk:glue;
                 world base {
                     include wssgate:plugin/plugin@1.1.0;
                     import wssgate:plugin/timers@1.1.0;
                     import wssgate:plugin/http@1.1.0;
                     export wssgate:plugin/lifecycle@1.1.0;
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

include!(concat!(env!("OUT_DIR"), "/optional_exports.rs"));

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

pub fn on_http_response<P: Exported + 'static>(
    request: u64,
    owner: Option<u64>,
    response: Result<Response, HttpError>,
) where
    P::State: 'static,
{
    let sent = Sent::new(request, owner.map(crate::Connection::new));
    with_runtime::<P, _>(|r| r.response(sent, response))
}

/// Lifts `on-http-response`'s `result<http-response, http-error>` from its flat canonical-ABI form: the
/// discriminant, then five i32 slots that hold either the response (status, headers' pointer and length, body's
/// pointer and length) or the error (its case, and a message's pointer and length). The lists were allocated in
/// this module's memory by the host through `cabi_realloc`, and are owned from here on.
///
/// # Safety
/// Only for the arguments the host passes to the export, once.
pub unsafe fn lift_http_result(is_err: i32, slots: [i32; 5]) -> Result<Response, HttpError> {
    let [a, b, c, d, e] = slots;
    unsafe {
        if is_err == 0 {
            return Ok(Response {
                status: a as u16,
                headers: lift_headers(b, c),
                body: lift_bytes(d, e),
            });
        }
        Err(match a {
            0 => HttpError::Timeout,
            1 => HttpError::ConnectFailed(lift_string(b, c)),
            2 => HttpError::Tls(lift_string(b, c)),
            3 => HttpError::ResponseTooLarge,
            _ => HttpError::Protocol(lift_string(b, c)),
        })
    }
}

/// A `list<u8>` the host allocated with alignment 1.
unsafe fn lift_bytes(ptr: i32, len: i32) -> Vec<u8> {
    let len = len as usize;
    unsafe { Vec::from_raw_parts(ptr as usize as *mut u8, len, len) }
}

/// A `string` (the host guarantees UTF-8; checked anyway, since a header must never panic a plugin).
unsafe fn lift_string(ptr: i32, len: i32) -> String {
    let bytes = unsafe { lift_bytes(ptr, len) };
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A `list<tuple<string, string>>`: 16-byte elements of two (pointer, length) pairs, in an array of alignment 4.
unsafe fn lift_headers(ptr: i32, len: i32) -> Vec<(String, String)> {
    let (base, len) = (ptr as usize as *const i32, len as usize);
    let mut headers = Vec::with_capacity(len);
    for i in 0..len {
        unsafe {
            let element = base.add(i * 4);
            let name = lift_string(*element, *element.add(1));
            let value = lift_string(*element.add(2), *element.add(3));
            headers.push((name, value));
        }
    }
    if len != 0 {
        let layout = std::alloc::Layout::from_size_align(len * 16, 4).expect("a valid layout");
        unsafe { std::alloc::dealloc(base as *mut u8, layout) };
    }
    headers
}

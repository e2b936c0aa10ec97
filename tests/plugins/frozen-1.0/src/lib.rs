//! A plugin as someone would have built it the day contract 1.0 was released: straight from that WIT (the frozen
//! copy in `tests/contract/1.0.0`), without the SDK, exporting only the one required interface. It echoes every
//! message, and rejects an upgrade whose query is `deny` with 401.

wit_bindgen::generate!({
    path: "../../contract/1.0.0",
    world: "plugin",
});

use exports::wssgate::plugin::connection_events::Guest;
use wssgate::plugin::host;
use wssgate::plugin::types::{Message, Rejection, RequestInfo, Verdict};

struct Frozen;

impl Guest for Frozen {
    fn on_connect(_connection: u64, request: RequestInfo) -> Verdict {
        if request.query == "deny" {
            Verdict::Reject(Rejection {
                status: 401,
                body: "denied by a 1.0 plugin".to_owned(),
            })
        } else {
            Verdict::Accept
        }
    }

    fn on_message(connection: u64, message: Message) {
        // A failed send means the client is gone.
        let _ = host::send(connection, &message);
    }

    fn on_close(_connection: u64, _code: u16, _reason: String) {}
}

export!(Frozen);

//! A plugin as someone would have built it the day contract 1.1 was released: straight from that WIT (the frozen
//! copy in `tests/contract/1.1.0`), without the SDK, importing `http` and exporting `http-events` beside the
//! connection events. A message `fetch PATH` asks upstream `backend` for PATH; the answer comes back to the sender as
//! `STATUS BODY`, or `error` when the request failed.

wit_bindgen::generate!({
    path: "../../contract/1.1.0",
    inline: "package frozen:plugin;
             world fetcher {
                 include wssgate:plugin/plugin@1.1.0;
                 import wssgate:plugin/http@1.1.0;
                 export wssgate:plugin/http-events@1.1.0;
             }",
    world: "frozen:plugin/fetcher",
    generate_all,
});

use exports::wssgate::plugin::connection_events::Guest as ConnectionEvents;
use exports::wssgate::plugin::http_events::Guest as HttpEvents;
use wssgate::plugin::host;
use wssgate::plugin::http::{self, HttpError, HttpRequest, HttpResponse};
use wssgate::plugin::types::{Message, RequestInfo, Verdict};

struct Frozen;

impl ConnectionEvents for Frozen {
    fn on_connect(_connection: u64, _request: RequestInfo) -> Verdict {
        Verdict::Accept
    }

    fn on_message(connection: u64, message: Message) {
        let Message::Text(text) = message else { return };
        let Some(path) = text.strip_prefix("fetch ") else {
            return;
        };
        let request = HttpRequest {
            upstream: "backend".to_owned(),
            method: "GET".to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
            owner: Some(connection),
        };
        if let Err(refusal) = http::send_request(&request) {
            let _ = host::send(connection, &Message::Text(format!("refused {refusal:?}")));
        }
    }

    fn on_close(_connection: u64, _code: u16, _reason: String) {}
}

impl HttpEvents for Frozen {
    fn on_http_response(
        _request: u64,
        owner: Option<u64>,
        response: Result<HttpResponse, HttpError>,
    ) {
        let Some(connection) = owner else { return };
        let answer = match response {
            Ok(r) => format!("{} {}", r.status, String::from_utf8_lossy(&r.body)),
            Err(_) => "error".to_owned(),
        };
        let _ = host::send(connection, &Message::Text(answer));
    }
}

export!(Frozen);

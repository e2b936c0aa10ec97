//! A plugin as someone would build it against contract 1.3 (the frozen copy in `tests/contract/1.3.0`) without the
//! SDK, answering through `reply-events` by hand, as a plugin in any language may: `echo TEXT` returns TEXT; `room`
//! returns what the gateway said the queue takes; `overflow N` sends N bytes first and returns N more (past a small
//! queue, that return closes the connection as a send would); `close-then-reply` closes the connection and then
//! returns a message, which must never arrive. `connection-events.on-message` answers `old path`: the gateway must
//! not call it for a plugin that exports `reply-events`.

wit_bindgen::generate!({
    path: "../../contract/1.3.0",
    inline: "package frozen:plugin;
             world replier {
                 include wssgate:plugin/plugin@1.3.0;
                 export wssgate:plugin/reply-events@1.3.0;
             }",
    world: "frozen:plugin/replier",
    generate_all,
});

use exports::wssgate::plugin::connection_events::Guest as ConnectionEvents;
use exports::wssgate::plugin::reply_events::Guest as ReplyEvents;
use wssgate::plugin::host;
use wssgate::plugin::types::{Message, RequestInfo, Verdict};

struct Frozen;

impl ConnectionEvents for Frozen {
    fn on_connect(_connection: u64, _request: RequestInfo) -> Verdict {
        Verdict::Accept
    }

    fn on_message(connection: u64, _message: Message) {
        let _ = host::send(connection, &Message::Text("old path".to_owned()));
    }

    fn on_close(_connection: u64, _code: u16, _reason: String) {}
}

impl ReplyEvents for Frozen {
    fn on_message(connection: u64, message: Message, room: Option<u64>) -> Option<Message> {
        let Message::Text(text) = message else {
            return None;
        };
        if let Some(rest) = text.strip_prefix("echo ") {
            Some(Message::Text(rest.to_owned()))
        } else if text == "room" {
            Some(Message::Text(format!("room {room:?}")))
        } else if let Some(n) = text.strip_prefix("overflow ") {
            let n = n.parse().unwrap_or(0);
            let _ = host::send(connection, &Message::Binary(vec![1; n]));
            Some(Message::Binary(vec![2; n]))
        } else if text == "close-then-reply" {
            host::close(connection, 4000, "closed first");
            Some(Message::Text("late".to_owned()))
        } else {
            None
        }
    }
}

export!(Frozen);

//! A test plugin that imports WASI sockets, which the gateway does not provide: `wssgate check` must name the
//! missing import.

use wssgate_sdk::{Connection, Message, Plugin};

#[derive(Default)]
struct NeedsSockets;

impl Plugin for NeedsSockets {
    type State = ();

    fn on_message(&mut self, conn: Connection, _state: &mut (), _message: Message) {
        let reachable = std::net::TcpStream::connect("127.0.0.1:9").is_ok();
        let _ = conn.send(if reachable {
            "reachable"
        } else {
            "unreachable"
        });
    }
}

wssgate_sdk::export_plugin!(NeedsSockets);

//! A test plugin that uses WASI sockets the way a library would: the gateway links them so the plugin loads, and
//! denies every use. A text message `PORT` tries a TCP connection to 127.0.0.1:PORT, a UDP socket, and a name
//! lookup, and answers what each gave: `tcp <result>; udp <result>; dns <result>`, each result `ok` or the error
//! kind.

use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use wssgate_sdk::{Connection, Message, Plugin};

#[derive(Default)]
struct NeedsSockets;

/// `ok`, or the kind of error.
fn outcome<T>(result: std::io::Result<T>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

impl Plugin for NeedsSockets {
    type State = ();

    fn on_message(&mut self, conn: Connection, _state: &mut (), message: Message) {
        let port = message.as_text().unwrap_or("9").trim().to_owned();
        let tcp = outcome(TcpStream::connect(format!("127.0.0.1:{port}")));
        let udp = outcome(UdpSocket::bind("127.0.0.1:0"));
        let dns = outcome(("localhost", 80).to_socket_addrs());
        let _ = conn.send(format!("tcp {tcp}; udp {udp}; dns {dns}"));
    }
}

wssgate_sdk::export_plugin!(NeedsSockets);

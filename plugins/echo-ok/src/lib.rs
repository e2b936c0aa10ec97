//! The seed's example: answers every message with `ok` (or with the route setting `reply`, when set).

use wssgate_sdk::{Connection, Message, Plugin, settings};

#[derive(Default)]
pub struct EchoOk {
    /// The answer, read from the route settings on first use so a config change needs no rebuild.
    reply: Option<String>,
}

impl Plugin for EchoOk {
    fn on_message(&mut self, conn: Connection, _message: Message) {
        let reply = self
            .reply
            .get_or_insert_with(|| settings::get("reply").unwrap_or_else(|| "ok".to_owned()));
        // A failed send means the client is already gone; there is nobody left to tell.
        let _ = conn.send(reply.as_str());
    }
}

wssgate_sdk::export_plugin!(EchoOk);

#[cfg(test)]
mod tests {
    use super::*;
    use wssgate_sdk::testing::MockHost;

    #[test]
    fn answers_tom_with_ok() {
        let host = MockHost::new();
        let mut plugin = EchoOk::default();
        let conn = host.connect(&mut plugin, "/wss").unwrap();
        host.message(&mut plugin, conn, "tom");
        assert_eq!(host.take_sent(conn), vec![Message::from("ok")]);
    }

    #[test]
    fn answers_every_message_binary_too() {
        let host = MockHost::new();
        let mut plugin = EchoOk::default();
        let conn = host.connect(&mut plugin, "/wss").unwrap();
        host.message(&mut plugin, conn, "a");
        host.message(&mut plugin, conn, vec![1u8, 2, 3]);
        assert_eq!(
            host.take_sent(conn),
            vec![Message::from("ok"), Message::from("ok")]
        );
    }

    #[test]
    fn reply_comes_from_route_settings() {
        let host = MockHost::new().with_setting("reply", "pong");
        let mut plugin = EchoOk::default();
        let conn = host.connect(&mut plugin, "/wss").unwrap();
        host.message(&mut plugin, conn, "ping");
        assert_eq!(host.take_sent(conn), vec![Message::from("pong")]);
    }

    #[test]
    fn answers_nothing_to_a_closed_connection() {
        let host = MockHost::new();
        let mut plugin = EchoOk::default();
        let conn = host.connect(&mut plugin, "/wss").unwrap();
        host.client_close(&mut plugin, conn, 1000, "bye");
        host.message(&mut plugin, conn, "tom");
        assert!(host.take_sent(conn).is_empty());
    }
}

//! The seed's example: answers every message with `ok` (or with the route setting `reply`, when set).

use wssgate_sdk::{Connection, Message, Plugin, Settings};

#[derive(Default)]
pub struct EchoOk {
    /// The answer, from the route settings when the instance starts, so a config change needs no rebuild.
    reply: String,
}

impl Plugin for EchoOk {
    type State = ();

    fn init(&mut self, settings: &Settings) -> Result<(), String> {
        let reply = settings.get("reply").unwrap_or("ok");
        if reply.is_empty() {
            return Err("setting `reply` must not be empty".to_owned());
        }
        self.reply = reply.to_owned();
        Ok(())
    }

    fn on_message(&mut self, conn: Connection, _state: &mut (), _message: Message) {
        // A failed send means the client is already gone; there is nobody left to tell.
        let _ = conn.send(self.reply.as_str());
    }
}

wssgate_sdk::export_plugin!(EchoOk);

#[cfg(test)]
mod tests {
    use super::*;
    use wssgate_sdk::testing::MockHost;

    #[test]
    fn answers_tom_with_ok() {
        let host = MockHost::<EchoOk>::new();
        let conn = host.connect("/wss").unwrap();
        host.message(conn, "tom");
        assert_eq!(host.take_sent(conn), vec![Message::from("ok")]);
    }

    #[test]
    fn answers_every_message_binary_too() {
        let host = MockHost::<EchoOk>::new();
        let conn = host.connect("/wss").unwrap();
        host.message(conn, "a");
        host.message(conn, vec![1u8, 2, 3]);
        assert_eq!(
            host.take_sent(conn),
            vec![Message::from("ok"), Message::from("ok")]
        );
    }

    #[test]
    fn reply_comes_from_route_settings() {
        let host = MockHost::<EchoOk>::new().with_setting("reply", "pong");
        let conn = host.connect("/wss").unwrap();
        host.message(conn, "ping");
        assert_eq!(host.take_sent(conn), vec![Message::from("pong")]);
    }

    #[test]
    fn an_empty_reply_setting_is_refused_at_start() {
        let host = MockHost::<EchoOk>::new().with_setting("reply", "");
        assert_eq!(
            host.init(),
            Err("setting `reply` must not be empty".to_owned())
        );
    }

    #[test]
    fn answers_nothing_to_a_closed_connection() {
        let host = MockHost::<EchoOk>::new();
        let conn = host.connect("/wss").unwrap();
        host.client_close(conn, 1000, "bye");
        host.message(conn, "tom");
        assert!(host.take_sent(conn).is_empty());
    }
}

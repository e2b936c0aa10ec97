//! Sends every text or binary message back to its sender unchanged.

use wssgate_sdk::{Connection, Message, Plugin};

#[derive(Default)]
pub struct Echo;

impl Plugin for Echo {
    fn on_message(&mut self, conn: Connection, message: Message) {
        // A failed send means the client is already gone; there is nobody left to tell.
        let _ = conn.send(message);
    }
}

wssgate_sdk::export_plugin!(Echo);

#[cfg(test)]
mod tests {
    use super::*;
    use wssgate_sdk::testing::MockHost;

    #[test]
    fn echoes_text_and_binary_unchanged() {
        let host = MockHost::new();
        let mut plugin = Echo;
        let conn = host.connect(&mut plugin, "/echo").unwrap();
        host.message(&mut plugin, conn, "héllo");
        host.message(&mut plugin, conn, vec![0u8, 255, 7]);
        assert_eq!(
            host.take_sent(conn),
            vec![Message::from("héllo"), Message::Binary(vec![0, 255, 7])]
        );
    }

    #[test]
    fn echoes_only_to_the_sender() {
        let host = MockHost::new();
        let mut plugin = Echo;
        let a = host.connect(&mut plugin, "/echo").unwrap();
        let b = host.connect(&mut plugin, "/echo").unwrap();
        host.message(&mut plugin, a, "for a");
        assert_eq!(host.take_sent(a), vec![Message::from("for a")]);
        assert!(host.take_sent(b).is_empty());
    }
}

//! Sends every text or binary message back to its sender unchanged.

use wssgate_sdk::{Connection, Message, Plugin};

#[derive(Default)]
pub struct Echo;

impl Plugin for Echo {
    type State = ();

    fn on_message(&mut self, conn: Connection, _state: &mut (), message: Message) {
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
        let host = MockHost::<Echo>::new();
        let conn = host.connect("/echo").unwrap();
        host.message(conn, "héllo");
        host.message(conn, vec![0u8, 255, 7]);
        assert_eq!(
            host.take_sent(conn),
            vec![Message::from("héllo"), Message::Binary(vec![0, 255, 7])]
        );
    }

    #[test]
    fn echoes_only_to_the_sender() {
        let host = MockHost::<Echo>::new();
        let a = host.connect("/echo").unwrap();
        let b = host.connect("/echo").unwrap();
        host.message(a, "for a");
        assert_eq!(host.take_sent(a), vec![Message::from("for a")]);
        assert!(host.take_sent(b).is_empty());
    }
}

//! The gateway side of benchmark scenario (g): every connection joins the group `all`; a message that starts with
//! `pub:` is published, unchanged, to every member (the sender included, as the fan-out baseline does). Any other
//! message is answered with `ok`, so a client can tell when its join has happened.

use wssgate_sdk::{Connection, Message, Plugin, Request, Verdict, groups};

/// The one group every connection joins.
const GROUP: &str = "all";

#[derive(Default)]
pub struct Fanout;

impl Plugin for Fanout {
    type State = ();

    fn on_connect(&mut self, conn: Connection, _request: &Request) -> Verdict<()> {
        // Refused only when the limits allow the connection no group: nothing to serve.
        match conn.join(GROUP) {
            Ok(()) => Verdict::Accept(()),
            Err(refusal) => Verdict::reject(503, refusal.to_string()),
        }
    }

    fn on_message(&mut self, conn: Connection, _state: &mut (), message: Message) {
        if message.as_bytes().starts_with(b"pub:") {
            groups::publish(GROUP, message, &[]);
        } else {
            // A failed send means the client is already gone.
            let _ = conn.send("ok");
        }
    }
}

wssgate_sdk::export_plugin!(Fanout);

#[cfg(test)]
mod tests {
    use super::*;
    use wssgate_sdk::testing::MockHost;

    #[test]
    fn publishes_to_every_member_and_answers_the_rest() {
        let host = MockHost::<Fanout>::new();
        let a = host.connect("/fanout").unwrap();
        let b = host.connect("/fanout").unwrap();
        assert_eq!(host.group_members(GROUP), vec![a, b]);
        host.message(a, "hello");
        assert_eq!(host.take_sent(a), vec![Message::from("ok")]);
        assert!(host.take_sent(b).is_empty());
        host.message(b, "pub:1");
        assert_eq!(host.take_sent(a), vec![Message::from("pub:1")]);
        assert_eq!(host.take_sent(b), vec![Message::from("pub:1")]);
    }
}

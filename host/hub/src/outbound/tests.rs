//! The outbox's rules: a bounded queue that closes a slow consumer, the first close wins unless a trap forces
//! another, and a deferred upgrade takes one answer.

use super::*;

fn text(s: &str) -> Message {
    Message::Text(s.into())
}

#[test]
fn an_empty_outbox_takes_one_message_of_any_size_and_then_caps_the_bytes() {
    let outbox = Outbox::new(10);
    assert_eq!(outbox.push(text("longer than ten bytes")), Ok(()));
    assert_eq!(outbox.queued_bytes(), 21);
    assert_eq!(outbox.pop(), Some(text("longer than ten bytes")));
    assert_eq!(outbox.queued_bytes(), 0);
    assert_eq!(outbox.push(text("12345")), Ok(()));
    assert_eq!(outbox.push(text("12345")), Ok(()));
    assert_eq!(outbox.queued_bytes(), 10);
}

#[test]
fn overflowing_drops_the_queue_and_closes_the_slow_consumer_with_1008() {
    let outbox = Outbox::new(10);
    outbox.push(text("123456")).unwrap();
    assert_eq!(outbox.push(text("123456")), Err(Refused::Full));
    assert_eq!(outbox.queued_bytes(), 0);
    assert_eq!(outbox.pop(), None);
    let frame = outbox.take_close().expect("a close is pending");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(frame.reason.as_str(), SLOW_CONSUMER);
    // Nothing more is taken once it is closing.
    assert_eq!(outbox.push(text("x")), Err(Refused::Closed));
}

#[test]
fn the_first_close_wins_but_a_trap_replaces_it_until_it_is_written() {
    let outbox = Outbox::new(100);
    outbox.request_close(close_frame(1000, "bye"));
    outbox.request_close(close_frame(4000, "later"));
    outbox.force_close(close_frame(1011, "plugin error"));
    let frame = outbox.take_close().unwrap();
    assert_eq!(u16::from(frame.code), 1011);
    // Written: a later forced close changes nothing.
    outbox.force_close(close_frame(1011, "again"));
    assert!(outbox.take_close().is_none());
}

#[test]
fn a_deferred_upgrade_takes_one_answer() {
    let outbox = Outbox::new(100);
    assert_eq!(outbox.answer(UpgradeAnswer::Accept), Err(NotDeferred));
    outbox.defer();
    assert!(outbox.is_deferred());
    assert_eq!(outbox.answer(UpgradeAnswer::Accept), Ok(()));
    assert!(!outbox.is_deferred());
    let reject = UpgradeAnswer::Reject {
        status: 403,
        body: String::new(),
    };
    assert_eq!(
        outbox.answer(reject),
        Err(NotDeferred),
        "the first answer wins"
    );
    assert_eq!(outbox.take_answer(), Some(UpgradeAnswer::Accept));
    assert_eq!(outbox.take_answer(), None);
}

#[test]
fn a_closed_connection_cannot_be_answered() {
    let outbox = Outbox::new(100);
    outbox.defer();
    outbox.shut();
    assert_eq!(outbox.answer(UpgradeAnswer::Accept), Err(NotDeferred));
}

#[test]
fn close_codes_a_plugin_may_not_send_become_1008() {
    for reserved in [1005, 1006, 1015, 999, 5000] {
        assert_eq!(sendable_close_code(reserved), 1008, "{reserved}");
    }
    for allowed in [1000, 1001, 1011, 3000, 4999] {
        assert_eq!(sendable_close_code(allowed), allowed, "{allowed}");
    }
}

#[test]
fn a_close_reason_is_cut_to_a_control_frame_on_a_character_boundary() {
    let long = "é".repeat(100);
    let cut = close_reason(&long);
    assert!(cut.len() <= 123);
    assert_eq!(cut.len() % 2, 0, "no half character");
}

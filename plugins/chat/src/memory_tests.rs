//! The chat's history and topics, on a mock route with `[route.history]` and `[route.storage]` (and without them).

use super::*;
use wssgate_sdk::log::Level;
use wssgate_sdk::testing::{HistoryConfig, MockHost, StorageConfig};

fn with_memory() -> MockHost<Chat> {
    MockHost::new()
        .with_history(HistoryConfig::default())
        .with_storage(StorageConfig::default())
}

fn send_json(host: &MockHost<Chat>, conn: Connection, value: Value) {
    host.message(conn, value.to_string());
}

fn received(host: &MockHost<Chat>, conn: Connection) -> Vec<Value> {
    host.take_sent(conn)
        .iter()
        .map(|m| serde_json::from_str(m.as_text().expect("text")).expect("JSON"))
        .collect()
}

/// A logged-in member of room `r`, with what it received so far taken.
fn member(host: &MockHost<Chat>, uid: &str) -> Connection {
    let conn = host.connect("/chat").unwrap();
    send_json(host, conn, json!({"type": "login", "uid": uid}));
    send_json(host, conn, json!({"type": "join", "room": "r"}));
    host.take_sent(conn);
    conn
}

fn say(host: &MockHost<Chat>, conn: Connection, text: &str) {
    send_json(
        host,
        conn,
        json!({"type": "say", "room": "r", "text": text}),
    );
}

#[test]
fn every_say_reaches_the_members_with_its_offset_and_epoch_once_it_is_kept() {
    let host = with_memory();
    let ann = member(&host, "ann");
    let bob = member(&host, "bob");
    host.take_sent(ann);
    say(&host, ann, "one");
    say(&host, bob, "two");
    let epoch = host.history_epoch("room:r").expect("kept");
    for conn in [ann, bob] {
        assert_eq!(
            received(&host, conn),
            vec![
                json!({"type": "say", "room": "r", "from": "ann", "text": "one", "offset": 1, "epoch": epoch}),
                json!({"type": "say", "room": "r", "from": "bob", "text": "two", "offset": 2, "epoch": epoch}),
            ]
        );
    }
    assert_eq!(
        host.history("room:r")[1].message,
        Message::from(json!({"uid": "bob", "text": "two"}).to_string())
    );
}

#[test]
fn without_history_and_storage_say_and_join_are_as_before_and_history_and_topic_are_errors() {
    let host = MockHost::<Chat>::new();
    let ann = host.connect("/chat").unwrap();
    send_json(&host, ann, json!({"type": "login", "uid": "ann"}));
    send_json(&host, ann, json!({"type": "join", "room": "r"}));
    say(&host, ann, "hi");
    send_json(&host, ann, json!({"type": "history", "room": "r"}));
    send_json(
        &host,
        ann,
        json!({"type": "topic", "room": "r", "text": "t"}),
    );
    let got = received(&host, ann);
    assert_eq!(
        got[1..],
        [
            json!({"type": "joined", "room": "r", "members": 1}),
            json!({"type": "say", "room": "r", "from": "ann", "text": "hi"}),
            json!({"type": "error", "reason": "history is off"}),
            json!({"type": "error", "reason": "topics are off"}),
        ]
    );
}

#[test]
fn history_answers_a_member_with_what_came_after_a_position_and_the_latest_without_one() {
    let host = with_memory();
    let ann = member(&host, "ann");
    for text in ["one", "two", "three"] {
        say(&host, ann, text);
    }
    let epoch = host.history_epoch("room:r").unwrap();
    host.take_sent(ann);
    send_json(
        &host,
        ann,
        json!({"type": "history", "room": "r", "since": {"offset": 1, "epoch": epoch}}),
    );
    assert_eq!(
        received(&host, ann),
        vec![
            json!({"type": "history", "room": "r", "epoch": epoch, "complete": true, "messages": [
                {"offset": 2, "uid": "ann", "text": "two"},
                {"offset": 3, "uid": "ann", "text": "three"},
            ]})
        ]
    );
    send_json(&host, ann, json!({"type": "history", "room": "r"}));
    let latest = received(&host, ann);
    assert_eq!(latest[0]["messages"].as_array().unwrap().len(), 3);
    assert_eq!(latest[0]["complete"], true);
    // Only a member of the room may read it.
    let eve = host.connect("/chat").unwrap();
    send_json(&host, eve, json!({"type": "login", "uid": "eve"}));
    send_json(&host, eve, json!({"type": "history", "room": "r"}));
    assert_eq!(
        received(&host, eve)[1],
        json!({"type": "error", "reason": "join the room first"})
    );
    send_json(
        &host,
        ann,
        json!({"type": "history", "room": "r", "since": {"offset": 1}}),
    );
    assert_eq!(received(&host, ann)[0]["type"], "error");
}

#[test]
fn a_client_back_from_an_absence_catches_up_and_is_told_when_messages_were_lost() {
    let host = MockHost::<Chat>::new()
        .with_history(HistoryConfig {
            size: 3,
            ..HistoryConfig::default()
        })
        .with_storage(StorageConfig::default());
    let ann = member(&host, "ann");
    let bob = member(&host, "bob");
    say(&host, ann, "before");
    let last = received(&host, bob).pop().unwrap();
    host.client_close(bob, 1006, "");
    say(&host, ann, "while away 1");
    say(&host, ann, "while away 2");
    // Back: join again, then ask for what came after the last position seen.
    let bob = member(&host, "bob");
    let since = json!({"offset": last["offset"], "epoch": last["epoch"]});
    send_json(
        &host,
        bob,
        json!({"type": "history", "room": "r", "since": since}),
    );
    let page = received(&host, bob).pop().unwrap();
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(
        (texts, &page["complete"]),
        (vec!["while away 1", "while away 2"], &json!(true))
    );
    // Away longer than the room keeps: the answer starts at the oldest kept, and says something is missing.
    for n in 0..4 {
        say(&host, ann, &format!("later {n}"));
    }
    send_json(
        &host,
        bob,
        json!({"type": "history", "room": "r", "since": since}),
    );
    let page = received(&host, bob).pop().unwrap();
    assert_eq!(page["complete"], false);
    assert_eq!(page["messages"][0]["offset"], 5);
    // The store lost the room's history: a new epoch, and the old position is no place to continue from.
    host.reset_history();
    say(&host, ann, "fresh");
    let fresh = received(&host, bob).pop().unwrap();
    assert_eq!(fresh["offset"], 1);
    assert_ne!(fresh["epoch"], since["epoch"]);
    send_json(
        &host,
        bob,
        json!({"type": "history", "room": "r", "since": since}),
    );
    let page = received(&host, bob).pop().unwrap();
    assert_eq!(
        (page["complete"].clone(), page["epoch"].clone()),
        (json!(false), fresh["epoch"].clone())
    );
}

#[test]
fn a_topic_reaches_the_members_and_comes_with_each_later_join() {
    let host = with_memory();
    let ann = host.connect("/chat").unwrap();
    send_json(&host, ann, json!({"type": "login", "uid": "ann"}));
    send_json(&host, ann, json!({"type": "join", "room": "r"}));
    assert_eq!(
        received(&host, ann)[1],
        json!({"type": "joined", "room": "r", "members": 1, "topic": null})
    );
    send_json(
        &host,
        ann,
        json!({"type": "topic", "room": "r", "text": "Friday drinks"}),
    );
    assert_eq!(
        received(&host, ann),
        vec![json!({"type": "topic", "room": "r", "text": "Friday drinks"})]
    );
    assert_eq!(
        host.stored("topic:r").unwrap().text(),
        Some("Friday drinks")
    );
    let bob = host.connect("/chat").unwrap();
    send_json(&host, bob, json!({"type": "login", "uid": "bob"}));
    send_json(&host, bob, json!({"type": "join", "room": "r"}));
    assert_eq!(
        received(&host, bob)[1],
        json!({"type": "joined", "room": "r", "members": 2, "topic": "Friday drinks"})
    );
    send_json(
        &host,
        bob,
        json!({"type": "topic", "room": "elsewhere", "text": "x"}),
    );
    assert_eq!(received(&host, bob)[0]["reason"], "join the room first");
}

#[test]
fn a_failing_store_still_delivers_says_without_a_position_and_refusals_answer_the_sender() {
    let host = MockHost::<Chat>::new()
        .with_history(HistoryConfig {
            max_message_bytes: 64,
            ..HistoryConfig::default()
        })
        .with_storage(StorageConfig::default());
    let ann = member(&host, "ann");
    let bob = member(&host, "bob");
    host.take_sent(ann);
    host.fail_store(Some("disk failed"));
    say(&host, ann, "hi");
    for conn in [ann, bob] {
        assert_eq!(
            received(&host, conn),
            vec![json!({"type": "say", "room": "r", "from": "ann", "text": "hi"})]
        );
    }
    assert!(
        host.logs()
            .iter()
            .any(|(level, line)| *level == Level::Warn && line.contains("disk failed"))
    );
    send_json(
        &host,
        ann,
        json!({"type": "topic", "room": "r", "text": "t"}),
    );
    send_json(&host, ann, json!({"type": "history", "room": "r"}));
    assert_eq!(
        received(&host, ann),
        vec![
            json!({"type": "error", "reason": "the topic was not kept"}),
            json!({"type": "error", "reason": "history is unavailable"}),
        ]
    );
    host.fail_store(None);
    say(&host, ann, &"x".repeat(60));
    assert_eq!(
        received(&host, ann),
        vec![json!({"type": "error", "reason": "too long"})]
    );
    assert!(received(&host, bob).is_empty());
}

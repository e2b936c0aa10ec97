//! The chat protocol, driven through the SDK's mock host.

use super::*;
use wssgate_sdk::testing::MockHost;

fn json_of(message: &Message) -> Value {
    serde_json::from_str(message.as_text().expect("text")).expect("JSON")
}

/// Sends `value` from `conn` and returns what each of `watch` received, as JSON.
fn exchange(host: &MockHost<Chat>, conn: Connection, value: Value) {
    host.message(conn, value.to_string());
}

fn received(host: &MockHost<Chat>, conn: Connection) -> Vec<Value> {
    host.take_sent(conn).iter().map(json_of).collect()
}

fn logged_in(host: &MockHost<Chat>, uid: &str) -> Connection {
    let conn = host.connect("/chat").unwrap();
    exchange(host, conn, json!({"type": "login", "uid": uid}));
    assert_eq!(received(host, conn)[0]["type"], "login");
    conn
}

#[test]
fn everyone_in_a_room_gets_each_say_once() {
    let host = MockHost::<Chat>::new();
    let members: Vec<Connection> = ["ann", "bob", "cid"]
        .iter()
        .map(|u| logged_in(&host, u))
        .collect();
    for &m in &members {
        exchange(&host, m, json!({"type": "join", "room": "lobby"}));
    }
    for &m in &members {
        host.take_sent(m);
    }
    exchange(
        &host,
        members[0],
        json!({"type": "say", "room": "lobby", "text": "hi"}),
    );
    for &m in &members {
        let got = received(&host, m);
        assert_eq!(
            got,
            vec![json!({"type": "say", "room": "lobby", "from": "ann", "text": "hi"})]
        );
    }
}

#[test]
fn joining_and_leaving_announce_presence_and_leaving_stops_delivery() {
    let host = MockHost::<Chat>::new();
    let ann = logged_in(&host, "ann");
    let bob = logged_in(&host, "bob");
    exchange(&host, ann, json!({"type": "join", "room": "r"}));
    exchange(&host, bob, json!({"type": "join", "room": "r"}));
    let ann_got = received(&host, ann);
    assert_eq!(ann_got.last().unwrap()["event"], "join");
    assert_eq!(
        received(&host, bob)[0],
        json!({"type": "joined", "room": "r", "members": 2})
    );
    exchange(&host, bob, json!({"type": "leave", "room": "r"}));
    assert_eq!(received(&host, ann)[0]["event"], "leave");
    host.take_sent(bob);
    exchange(
        &host,
        ann,
        json!({"type": "say", "room": "r", "text": "anyone?"}),
    );
    assert!(received(&host, bob).is_empty());
}

#[test]
fn a_dm_reaches_every_connection_of_the_user() {
    let host = MockHost::<Chat>::new();
    let phone = logged_in(&host, "bob");
    let desktop = logged_in(&host, "bob");
    let ann = logged_in(&host, "ann");
    exchange(
        &host,
        ann,
        json!({"type": "dm", "to": "bob", "text": "psst"}),
    );
    for conn in [phone, desktop] {
        assert_eq!(
            received(&host, conn),
            vec![json!({"type": "dm", "from": "ann", "text": "psst"})]
        );
    }
    exchange(
        &host,
        ann,
        json!({"type": "dm", "to": "nobody", "text": "?"}),
    );
    assert_eq!(received(&host, ann)[0]["type"], "error");
    exchange(&host, ann, json!({"type": "online", "uid": "bob"}));
    assert_eq!(
        received(&host, ann),
        vec![json!({"type": "online", "uid": "bob", "connections": 2})]
    );
}

#[test]
fn malformed_input_is_answered_with_an_error() {
    let host = MockHost::<Chat>::new();
    let conn = host.connect("/chat").unwrap();
    for bad in [
        "not json",
        "{}",
        r#"{"type":"fly"}"#,
        r#"{"type":"say","room":"r"}"#,
        "[1,2]",
    ] {
        host.message(conn, bad);
        let got = received(&host, conn);
        assert_eq!(got.len(), 1, "{bad}");
        assert_eq!(got[0]["type"], "error", "{bad}");
    }
    host.message(conn, vec![1u8, 2]);
    assert_eq!(received(&host, conn)[0]["type"], "error");
    exchange(&host, conn, json!({"type": "join", "room": "r"}));
    assert_eq!(received(&host, conn)[0]["reason"], "log in first");
}

#[test]
fn the_session_keeps_the_user_across_messages() {
    let host = MockHost::<Chat>::new();
    let conn = logged_in(&host, "ann");
    assert_eq!(host.session(conn, "uid").as_deref(), Some("ann"));
    exchange(&host, conn, json!({"type": "whoami"}));
    assert_eq!(received(&host, conn)[0]["uid"], "ann");
}

#[test]
fn reminders_fire_once_and_ticks_stop_when_asked() {
    let host = MockHost::<Chat>::new();
    let conn = logged_in(&host, "ann");
    exchange(
        &host,
        conn,
        json!({"type": "remind", "after_ms": 500, "text": "tea"}),
    );
    exchange(&host, conn, json!({"type": "ticks", "every_ms": 100}));
    host.advance(Duration::from_millis(450));
    let got = received(&host, conn);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got.iter().all(|v| v["type"] == "tick"));
    host.advance(Duration::from_millis(100));
    let got = received(&host, conn);
    assert!(
        got.contains(&json!({"type": "reminder", "text": "tea"})),
        "{got:?}"
    );
    exchange(&host, conn, json!({"type": "stop_ticks"}));
    host.take_sent(conn);
    host.advance(Duration::from_secs(1));
    assert!(received(&host, conn).is_empty());
    assert_eq!(host.running_timers(), 0);
}

#[test]
fn closing_announces_leave_and_cancels_owned_timers() {
    let host = MockHost::<Chat>::new();
    let ann = logged_in(&host, "ann");
    let bob = logged_in(&host, "bob");
    exchange(&host, ann, json!({"type": "join", "room": "r"}));
    exchange(&host, bob, json!({"type": "join", "room": "r"}));
    exchange(&host, bob, json!({"type": "ticks", "every_ms": 100}));
    host.take_sent(ann);
    host.client_close(bob, 1000, "bye");
    assert_eq!(
        received(&host, ann),
        vec![json!({"type": "presence", "room": "r", "uid": "bob", "event": "leave"})]
    );
    assert_eq!(host.running_timers(), 0);
    assert_eq!(host.group_members("room:r"), vec![ann]);
}

#[test]
fn a_room_name_the_gateway_refuses_is_answered_with_an_error_and_announced_to_nobody() {
    // "room:" + 11 bytes passes the gateway's 15-byte names.
    let host = MockHost::<Chat>::new().with_max_name_bytes(15);
    let ann = logged_in(&host, "ann");
    let bob = logged_in(&host, "bob");
    exchange(&host, bob, json!({"type": "join", "room": "0123456789"}));
    host.take_sent(bob);
    exchange(&host, ann, json!({"type": "join", "room": "0123456789"}));
    assert_eq!(received(&host, ann)[0]["type"], "joined");
    exchange(&host, ann, json!({"type": "join", "room": "0123456789a"}));
    assert_eq!(
        received(&host, ann),
        vec![json!({"type": "error", "reason": "room name is too long"})]
    );
    assert_eq!(host.groups_of(ann), vec!["room:0123456789".to_owned()]);
    // Bob heard of ann's first join only.
    let bob_got = received(&host, bob);
    assert_eq!(
        bob_got,
        vec![json!({"type": "presence", "room": "0123456789", "uid": "ann", "event": "join"})]
    );
}

#[test]
fn one_room_too_many_is_answered_with_an_error() {
    let host = MockHost::<Chat>::new().with_max_groups_per_connection(2);
    let ann = logged_in(&host, "ann");
    for room in ["a", "b", "c", "a"] {
        exchange(&host, ann, json!({"type": "join", "room": room}));
    }
    let got = received(&host, ann);
    let types: Vec<&Value> = got.iter().map(|v| &v["type"]).collect();
    assert_eq!(types, ["joined", "joined", "error", "joined"], "{got:?}");
    assert_eq!(got[2]["reason"], "too many rooms");
    assert!(host.group_members("room:c").is_empty());
    // Leaving one makes room for another.
    exchange(&host, ann, json!({"type": "leave", "room": "b"}));
    exchange(&host, ann, json!({"type": "join", "room": "c"}));
    assert_eq!(received(&host, ann).last().unwrap()["type"], "joined");
}

#[test]
fn a_uid_the_gateway_refuses_is_answered_with_an_error_and_not_logged_in() {
    let host = MockHost::<Chat>::new().with_max_name_bytes(4);
    let conn = host.connect("/chat").unwrap();
    exchange(&host, conn, json!({"type": "login", "uid": "alice"}));
    assert_eq!(
        received(&host, conn),
        vec![json!({"type": "error", "reason": "uid is too long"})]
    );
    assert_eq!(host.session(conn, "uid"), None);
    assert_eq!(host.user_of(conn), None);
    exchange(&host, conn, json!({"type": "whoami"}));
    assert_eq!(received(&host, conn)[0]["reason"], "log in first");
}

#[test]
fn one_timer_too_many_is_answered_with_an_error() {
    let host = MockHost::<Chat>::new().with_max_timers(1);
    let conn = logged_in(&host, "ann");
    exchange(&host, conn, json!({"type": "ticks", "every_ms": 100}));
    exchange(
        &host,
        conn,
        json!({"type": "remind", "after_ms": 50, "text": "tea"}),
    );
    assert_eq!(
        received(&host, conn),
        vec![json!({"type": "error", "reason": "too many timers"})]
    );
    // The refused request changed nothing: the ticks still run.
    exchange(&host, conn, json!({"type": "ticks", "every_ms": 10}));
    assert_eq!(received(&host, conn)[0]["reason"], "too many timers");
    host.advance(Duration::from_millis(100));
    assert_eq!(received(&host, conn), vec![json!({"type": "tick", "n": 1})]);
}

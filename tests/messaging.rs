//! Groups, users, sessions, timers and sends to one connection across workers, through the chat plugin and the
//! probe: what GatewayWorker users build chat rooms and notifications with. The chat tests run against the Rust chat
//! plugin and against its TypeScript port (`plugins/chat-ts`), which speak the same protocol.

use futures_util::SinkExt;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::languages::ts_plugin;
use wssgate_tests::*;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A two-worker gateway serving `chat` (the Rust chat plugin or its TypeScript port) at `/chat`.
fn chat_gateway(chat: &Path) -> TestGateway {
    let routes = format!(
        "{}\n[[route]]\npath = \"/chat\"\nplugin = \"{}\"\n",
        standard_routes(),
        chat.display()
    );
    TestGateway::start_with("workers = 2\n", &routes)
}

async fn send_json(ws: &mut Ws, value: Value) {
    bounded(ws.send(Message::text(value.to_string())))
        .await
        .unwrap();
}

async fn next_json(ws: &mut Ws) -> Value {
    match next_message(ws).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected JSON text, got {other:?}"),
    }
}

/// Logs in as `uid`; returns the client and the worker its connection landed on.
async fn login(gw: &TestGateway, uid: &str) -> (Ws, u64) {
    let mut ws = gw.ws("/chat").await;
    send_json(&mut ws, json!({"type": "login", "uid": uid})).await;
    let answer = next_json(&mut ws).await;
    assert_eq!(answer["type"], "login", "{answer}");
    // A decimal string: ids pass 2^53, which a JavaScript number cannot hold.
    let id: u64 = answer["connection"].as_str().unwrap().parse().unwrap();
    let worker = (id >> 36) & 0xff;
    (ws, worker)
}

/// Logs in `uid` until connections on both workers exist among `clients` (bounded), so deliveries cross workers.
async fn spread_logins(gw: &TestGateway, uids: &[&str]) -> Vec<Ws> {
    for _ in 0..20 {
        let mut clients = Vec::new();
        let mut workers = std::collections::HashSet::new();
        for uid in uids {
            let (ws, worker) = login(gw, uid).await;
            workers.insert(worker);
            clients.push(ws);
        }
        if workers.len() > 1 {
            return clients;
        }
    }
    panic!("every connection landed on one worker 20 times in a row");
}

async fn three_clients_in_a_room_get_each_say_exactly_once_and_leaving_stops_it(chat: &Path) {
    let gw = chat_gateway(chat);
    let mut clients = spread_logins(&gw, &["ann", "bob", "cid"]).await;
    // One at a time, each join's presence reaching the earlier members before the next join: another worker looks its
    // members up when it takes a delivery, so a join racing an earlier publish could see that publish too.
    for i in 0..clients.len() {
        send_json(&mut clients[i], json!({"type": "join", "room": "lobby"})).await;
        assert_eq!(next_json(&mut clients[i]).await["type"], "joined");
        let uid = ["ann", "bob", "cid"][i];
        for earlier in clients.iter_mut().take(i) {
            let presence = next_json(earlier).await;
            assert_eq!(
                (&presence["type"], &presence["uid"], &presence["event"]),
                (&json!("presence"), &json!(uid), &json!("join")),
                "{presence}"
            );
        }
    }
    send_json(
        &mut clients[1],
        json!({"type": "say", "room": "lobby", "text": "hello all"}),
    )
    .await;
    for ws in clients.iter_mut() {
        assert_eq!(
            next_json(ws).await,
            json!({"type": "say", "room": "lobby", "from": "bob", "text": "hello all"})
        );
    }
    // Exactly once: the next thing each one gets is the answer to its own whoami.
    for ws in clients.iter_mut() {
        send_json(ws, json!({"type": "whoami"})).await;
        assert_eq!(next_json(ws).await["type"], "whoami");
    }
    send_json(&mut clients[2], json!({"type": "leave", "room": "lobby"})).await;
    assert_eq!(next_json(&mut clients[2]).await["type"], "left");
    for ws in clients.iter_mut().take(2) {
        assert_eq!(next_json(ws).await["event"], "leave");
    }
    send_json(
        &mut clients[0],
        json!({"type": "say", "room": "lobby", "text": "just us"}),
    )
    .await;
    for ws in clients.iter_mut().take(2) {
        assert_eq!(next_json(ws).await["text"], "just us");
    }
    send_json(&mut clients[2], json!({"type": "whoami"})).await;
    assert_eq!(
        next_json(&mut clients[2]).await["type"],
        "whoami",
        "the leaver still got room traffic"
    );
}

async fn a_dm_reaches_both_connections_of_a_user_across_workers(chat: &Path) {
    let gw = chat_gateway(chat);
    let mut clients = spread_logins(&gw, &["bob", "bob", "ann"]).await;
    send_json(
        &mut clients[2],
        json!({"type": "dm", "to": "bob", "text": "psst"}),
    )
    .await;
    for ws in clients.iter_mut().take(2) {
        assert_eq!(
            next_json(ws).await,
            json!({"type": "dm", "from": "ann", "text": "psst"})
        );
    }
}

async fn the_session_survives_across_messages(chat: &Path) {
    let gw = chat_gateway(chat);
    let (mut ws, _) = login(&gw, "ann").await;
    for _ in 0..3 {
        send_json(&mut ws, json!({"type": "whoami"})).await;
        assert_eq!(
            next_json(&mut ws).await,
            json!({"type": "whoami", "uid": "ann"})
        );
    }
}

async fn a_timer_fires_and_an_interval_can_be_cancelled(chat: &Path) {
    let gw = chat_gateway(chat);
    let (mut ws, _) = login(&gw, "ann").await;
    send_json(
        &mut ws,
        json!({"type": "remind", "after_ms": 200, "text": "tea"}),
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "reminder", "text": "tea"})
    );
    send_json(&mut ws, json!({"type": "ticks", "every_ms": 50})).await;
    for n in 1..=3 {
        assert_eq!(next_json(&mut ws).await, json!({"type": "tick", "n": n}));
    }
    send_json(&mut ws, json!({"type": "stop_ticks"})).await;
    // Ticks already queued may arrive before the answer; none after it.
    loop {
        let event = next_json(&mut ws).await;
        if event["type"] == "ticks_stopped" {
            break;
        }
        assert_eq!(event["type"], "tick");
    }
    let quiet = tokio::time::timeout(Duration::from_millis(300), next_message(&mut ws)).await;
    assert!(quiet.is_err(), "a tick arrived after stop_ticks: {quiet:?}");
}

async fn one_client_cannot_fill_the_plugin_with_reminders(chat: &Path) {
    let gw = chat_gateway(chat);
    let (mut ann, _) = login(&gw, "ann").await;
    let (mut bob, _) = login(&gw, "bob").await;
    // Each reminder is held in the plugin's memory until it fires: a long text or a ninth one is refused.
    let long = "x".repeat(1025);
    send_json(
        &mut ann,
        json!({"type": "remind", "after_ms": 3_600_000, "text": long}),
    )
    .await;
    let answer = next_json(&mut ann).await;
    assert_eq!(answer["type"], "error", "{answer}");
    for _ in 0..8 {
        let text = "y".repeat(1024);
        send_json(
            &mut ann,
            json!({"type": "remind", "after_ms": 3_600_000, "text": text}),
        )
        .await;
    }
    send_json(
        &mut ann,
        json!({"type": "remind", "after_ms": 3_600_000, "text": "ninth"}),
    )
    .await;
    let answer = next_json(&mut ann).await;
    assert_eq!(
        answer,
        json!({"type": "error", "reason": "at most 8 reminders may wait"})
    );
    // The instance is unharmed: another member's reminder still comes.
    send_json(
        &mut bob,
        json!({"type": "remind", "after_ms": 100, "text": "tea"}),
    )
    .await;
    assert_eq!(
        next_json(&mut bob).await,
        json!({"type": "reminder", "text": "tea"})
    );
}

async fn presence_names_a_room_whose_name_starts_like_its_group(chat: &Path) {
    let gw = chat_gateway(chat);
    let (mut ann, _) = login(&gw, "ann").await;
    let (mut bob, _) = login(&gw, "bob").await;
    for ws in [&mut ann, &mut bob] {
        send_json(ws, json!({"type": "join", "room": "room:x"})).await;
        let joined = next_json(ws).await;
        assert_eq!(joined["type"], "joined", "{joined}");
    }
    let joined = next_json(&mut ann).await;
    assert_eq!(
        (&joined["room"], &joined["event"]),
        (&json!("room:x"), &json!("join"))
    );
    drop(bob);
    let left = next_json(&mut ann).await;
    assert_eq!(
        left,
        json!({"type": "presence", "room": "room:x", "uid": "bob", "event": "leave"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_reaches_every_one_of_five_thousand_members() {
    // Each member is a socket here and one in the gateway.
    let _ = rlimit::increase_nofile_limit(12_000);
    let gw = std::sync::Arc::new(TestGateway::start_with("workers = 2\n", &standard_routes()));
    let members = 5_000;
    let mut joined = Vec::new();
    for chunk in 0..members / 250 {
        let mut batch = Vec::new();
        for _ in 0..250 {
            let gw = gw.clone();
            batch.push(tokio::spawn(async move {
                let mut ws = gw.ws("/probe").await;
                assert_eq!(ask(&mut ws, "join big").await, "joined");
                ws
            }));
        }
        for task in batch {
            joined.push(
                bounded(task)
                    .await
                    .unwrap_or_else(|e| panic!("member of chunk {chunk}: {e}")),
            );
        }
    }
    let mut publisher = gw.ws("/probe").await;
    assert_eq!(
        ask(&mut publisher, "publish big to everyone").await,
        format!("published {members}")
    );
    let mut readers = Vec::new();
    for mut ws in joined {
        readers.push(tokio::spawn(async move {
            assert_eq!(next_message(&mut ws).await, Message::text("to everyone"));
        }));
    }
    for reader in readers {
        bounded(reader).await.expect("a member missed the publish");
    }
}

/// The probe's id for its connection (from `info`).
async fn probe_id(ws: &mut Ws) -> u64 {
    let info = ask(ws, "info").await;
    info.rsplit("id=").next().unwrap().parse().unwrap()
}

/// Opens connections to `path` until one lands on `worker` (a connection id's bits 40 to 47 name its worker; the
/// kernel spreads connections over the workers' sockets). The others stay open in `spare`: the probe tells every
/// connection about each close, which would come between a test's questions and answers.
async fn on_worker(gw: &TestGateway, path: &str, worker: u64, spare: &mut Vec<Ws>) -> (Ws, u64) {
    for _ in 0..64 {
        let mut ws = gw.ws(path).await;
        let id = probe_id(&mut ws).await;
        if (id >> 36) & 0xff == worker {
            return (ws, id);
        }
        spare.push(ws);
    }
    panic!("64 connections to {path} and none on worker {worker}");
}

#[tokio::test]
async fn a_plugin_sends_to_and_closes_a_connection_on_another_worker_of_its_route_only() {
    let routes = format!(
        "{}\n[[route]]\npath = \"/other\"\nplugin = \"{}\"\n",
        standard_routes(),
        plugin("probe").display()
    );
    let gw = TestGateway::start_with("workers = 2\n", &routes);
    let mut spare = Vec::new();
    let (mut a, _) = on_worker(&gw, "/probe", 0, &mut spare).await;
    let (mut b, b_id) = on_worker(&gw, "/probe", 1, &mut spare).await;
    assert_eq!(
        ask(&mut a, &format!("flood {b_id} 1 5")).await,
        "flood sent=1 error=none"
    );
    assert_eq!(next_message(&mut b).await, Message::binary(vec![1u8; 5]));
    assert_eq!(ask(&mut a, &format!("kick {b_id}")).await, "kicked");
    assert_eq!(expect_close(&mut b).await, (4003, "kicked".to_owned()));
    drop(b);
    // Once it is gone, a send to it fails as for any closed connection.
    let mut answer = String::new();
    for _ in 0..100 {
        answer = ask(&mut a, &format!("flood {b_id} 1 5")).await;
        if answer != "flood sent=1 error=none" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer, "flood sent=0 error=Closed");
    // Another route's connection on the other worker is out of reach, as on the same worker.
    let (mut other, other_id) = on_worker(&gw, "/other", 1, &mut spare).await;
    assert_eq!(
        ask(&mut a, &format!("flood {other_id} 1 5")).await,
        "flood sent=0 error=Closed"
    );
    assert_eq!(ask(&mut a, &format!("kick {other_id}")).await, "kicked");
    assert!(
        ask(&mut other, "info").await.contains("path=/other"),
        "still open and unharmed"
    );
}

#[tokio::test]
async fn rust_chat_three_clients_in_a_room_get_each_say_exactly_once_and_leaving_stops_it() {
    three_clients_in_a_room_get_each_say_exactly_once_and_leaving_stops_it(&plugin("chat")).await;
}

#[tokio::test]
#[ignore = "needs npm's packages (./test.sh runs npm ci)"]
async fn typescript_chat_three_clients_in_a_room_get_each_say_exactly_once_and_leaving_stops_it() {
    three_clients_in_a_room_get_each_say_exactly_once_and_leaving_stops_it(&ts_plugin(
        "plugins/chat-ts",
    ))
    .await;
}

#[tokio::test]
async fn rust_chat_a_dm_reaches_both_connections_of_a_user_across_workers() {
    a_dm_reaches_both_connections_of_a_user_across_workers(&plugin("chat")).await;
}

#[tokio::test]
#[ignore = "needs npm's packages (./test.sh runs npm ci)"]
async fn typescript_chat_a_dm_reaches_both_connections_of_a_user_across_workers() {
    a_dm_reaches_both_connections_of_a_user_across_workers(&ts_plugin("plugins/chat-ts")).await;
}

#[tokio::test]
async fn rust_chat_the_session_survives_across_messages() {
    the_session_survives_across_messages(&plugin("chat")).await;
}

#[tokio::test]
#[ignore = "needs npm's packages (./test.sh runs npm ci)"]
async fn typescript_chat_the_session_survives_across_messages() {
    the_session_survives_across_messages(&ts_plugin("plugins/chat-ts")).await;
}

#[tokio::test]
async fn rust_chat_a_timer_fires_and_an_interval_can_be_cancelled() {
    a_timer_fires_and_an_interval_can_be_cancelled(&plugin("chat")).await;
}

#[tokio::test]
#[ignore = "needs npm's packages (./test.sh runs npm ci)"]
async fn typescript_chat_a_timer_fires_and_an_interval_can_be_cancelled() {
    a_timer_fires_and_an_interval_can_be_cancelled(&ts_plugin("plugins/chat-ts")).await;
}

#[tokio::test]
async fn rust_chat_one_client_cannot_fill_the_plugin_with_reminders() {
    one_client_cannot_fill_the_plugin_with_reminders(&plugin("chat")).await;
}

#[tokio::test]
#[ignore = "needs npm's packages (./test.sh runs npm ci)"]
async fn typescript_chat_one_client_cannot_fill_the_plugin_with_reminders() {
    one_client_cannot_fill_the_plugin_with_reminders(&ts_plugin("plugins/chat-ts")).await;
}

#[tokio::test]
async fn rust_chat_presence_names_a_room_whose_name_starts_like_its_group() {
    presence_names_a_room_whose_name_starts_like_its_group(&plugin("chat")).await;
}

#[tokio::test]
#[ignore = "needs npm's packages (./test.sh runs npm ci)"]
async fn typescript_chat_presence_names_a_room_whose_name_starts_like_its_group() {
    presence_names_a_room_whose_name_starts_like_its_group(&ts_plugin("plugins/chat-ts")).await;
}

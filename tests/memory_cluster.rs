//! Routes' memory across nodes: with `[cluster]`, history and storage live in NATS JetStream (a real
//! `nats-server -js`), so a client that reconnects to another node recovers the same history and a key set on one
//! node is read on another; with JetStream away, requests answer `unavailable`, local delivery goes on, `/healthz`
//! says degraded, and everything comes back with the broker.

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::{ADMIN, admin_get};
use wssgate_tests::cluster::{SECRET, health_becomes, sees_others};
use wssgate_tests::nats::Nats;
use wssgate_tests::ports::free_port;
use wssgate_tests::*;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A node of the cluster on `servers` with `/chat` and the `keeper` plugin on `/keep`, both with history and storage.
fn memory_node(name: &str, servers: &str) -> TestGateway {
    let tables = "[route.history]\n[route.storage]\n";
    let routes = format!(
        "[[route]]\npath = \"/chat\"\nplugin = \"{}\"\n{tables}\n[[route]]\npath = \"/keep\"\nplugin = \"{}\"\n{tables}",
        plugin("chat").display(),
        plugin("keeper").display()
    );
    let cluster =
        format!("[cluster]\nservers = [{servers}]\nnode = \"{name}\"\nsecret = \"{SECRET}\"\n");
    TestGateway::start_with(&format!("workers = 2\n{ADMIN}{cluster}"), &routes)
}

/// A broker with JetStream, keeping its streams in `dir`, on `port` (or one of its choosing).
fn jetstream(port: Option<u16>, dir: &std::path::Path) -> Nats {
    Nats::start_with(port, &["-js", "-sd", &dir.display().to_string()])
}

async fn send_json(ws: &mut Ws, value: Value) {
    bounded(ws.send(Message::text(value.to_string())))
        .await
        .unwrap();
}

/// The next message of `kind` (presence events in between are skipped).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    for _ in 0..20 {
        let Message::Text(text) = next_message(ws).await else {
            panic!("expected JSON text")
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        if value["type"] == kind {
            return value;
        }
    }
    panic!("no {kind} among 20 messages");
}

async fn chat_member(gw: &TestGateway, uid: &str, room: &str) -> (Ws, Value) {
    let mut ws = gw.ws("/chat").await;
    send_json(&mut ws, json!({"type": "login", "uid": uid})).await;
    next_of(&mut ws, "login").await;
    send_json(&mut ws, json!({"type": "join", "room": room})).await;
    let joined = next_of(&mut ws, "joined").await;
    (ws, joined)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_client_that_reconnects_to_another_node_recovers_the_same_history_and_keys() {
    let dir = scratch_dir("memory-js");
    let broker = jetstream(None, &dir);
    let servers = format!("\"{}\"", broker.url());
    let nodes = [memory_node("a", &servers), memory_node("b", &servers)];
    for gw in &nodes {
        health_becomes(gw, "ok").await;
    }
    sees_others(&nodes).await;
    let [a, b] = &nodes;

    // Keys: set on one node, read and compare-and-set on the other.
    let mut on_a = a.ws("/keep").await;
    let mut on_b = b.ws("/keep").await;
    let written = ask(&mut on_a, "set topic tea if=0").await;
    let revision: u64 = written.strip_prefix("written ").unwrap().parse().unwrap();
    assert_eq!(
        ask(&mut on_b, "get topic").await,
        format!("value {revision} tea")
    );
    assert_eq!(
        ask(&mut on_b, "set topic coffee if=0").await,
        format!("error Conflict({revision})")
    );

    // History: both nodes append to one group; offsets stay consecutive across them.
    let mut offsets = Vec::new();
    for i in 0..5 {
        for ws in [&mut on_a, &mut on_b] {
            let answer = ask(ws, &format!("append lobby m{i}")).await;
            offsets.push(answer.split(' ').nth(1).unwrap().parse::<u64>().unwrap());
        }
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=10).collect::<Vec<_>>());

    // The chat: ann on a, bob on b; bob leaves and comes back on a, and catches up there.
    let (mut ann, _) = chat_member(a, "ann", "lobby").await;
    let (bob, _) = chat_member(b, "bob", "lobby").await;
    send_json(
        &mut ann,
        json!({"type": "topic", "room": "lobby", "text": "tea"}),
    )
    .await;
    next_of(&mut ann, "topic").await;
    let mut epoch = String::new();
    for text in ["one", "two", "three"] {
        send_json(
            &mut ann,
            json!({"type": "say", "room": "lobby", "text": text}),
        )
        .await;
        let said = next_of(&mut ann, "say").await;
        epoch = said["epoch"].as_str().unwrap().to_owned();
    }
    drop(bob);
    let (mut bob, joined) = chat_member(a, "bob", "lobby").await;
    assert_eq!(
        joined["topic"], "tea",
        "the topic set through node a, read again"
    );
    let since = json!({"offset": 1, "epoch": epoch});
    send_json(
        &mut bob,
        json!({"type": "history", "room": "lobby", "since": since}),
    )
    .await;
    let page = next_of(&mut bob, "history").await;
    assert_eq!(page["complete"], true, "{page}");
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["two", "three"]);
    // And on node b, from a connection that was never on a.
    let (mut cid, joined) = chat_member(b, "cid", "lobby").await;
    assert_eq!(joined["topic"], "tea");
    send_json(&mut cid, json!({"type": "history", "room": "lobby"})).await;
    let page = next_of(&mut cid, "history").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 3, "{page}");
    assert_eq!(page["epoch"], epoch.as_str());

    // The status says where the data lives and (as of the store's last look, every few seconds) what /keep holds.
    let mut last = Value::Null;
    for _ in 0..100 {
        let (_, status) = wssgate_tests::admin::call(
            b,
            "GET",
            "/api/status",
            Some("test-token-0123456789"),
            None,
        )
        .await;
        assert_eq!(status["store"]["kind"], "jetstream", "{status}");
        last = status["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == "/keep")
            .map(|r| r["stored"].clone())
            .unwrap_or(Value::Null);
        if last["history_groups"] == 1 && last["keys"].as_u64() >= Some(1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last["history_groups"], 1, "{last}");
    assert!(last["history_bytes"].as_u64() > Some(0), "{last}");
    assert!(last["keys"].as_u64() >= Some(1), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn with_jetstream_away_requests_answer_unavailable_local_delivery_goes_on_and_all_comes_back()
{
    let dir = scratch_dir("memory-js-outage");
    let port = free_port();
    let broker = jetstream(Some(port), &dir);
    let servers = format!("\"nats://127.0.0.1:{port}\"");
    let a = memory_node("a", &servers);
    health_becomes(&a, "ok").await;
    let mut keep = a.ws("/keep").await;
    assert!(
        ask(&mut keep, "append log before")
            .await
            .starts_with("appended 1 ")
    );
    let (mut ann, _) = chat_member(&a, "ann", "lobby").await;
    let (mut bob, _) = chat_member(&a, "bob", "lobby").await;

    drop(broker);
    health_becomes(&a, "degraded").await;
    let answer = ask(&mut keep, "append log during").await;
    assert!(answer.starts_with("error Unavailable"), "{answer}");
    let answer = ask(&mut keep, "get anything").await;
    assert!(answer.starts_with("error Unavailable"), "{answer}");
    // The chat still delivers on this node, without a position.
    send_json(
        &mut ann,
        json!({"type": "say", "room": "lobby", "text": "still here"}),
    )
    .await;
    let said = next_of(&mut bob, "say").await;
    assert_eq!(said["text"], "still here");
    assert!(said.get("offset").is_none(), "{said}");
    let health = admin_get(&a, "/healthz").await.1;
    assert!(health.contains("\"store\""), "{health}");

    // The broker comes back on the same port and store folder: the history written before is there.
    let _broker = jetstream(Some(port), &dir);
    health_becomes(&a, "ok").await;
    let mut answer = String::new();
    for _ in 0..100 {
        answer = ask(&mut keep, "append log after").await;
        if answer.starts_with("appended") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answer.starts_with("appended 2 "), "{answer}");
    let page = ask(&mut keep, "read log 10").await;
    assert!(page.ends_with(" true 1:before,2:after"), "{page}");
}

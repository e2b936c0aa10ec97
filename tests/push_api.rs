//! The push API for existing backends: send to a user, publish to a group, broadcast, ask who is online — with a
//! bearer token, JSON in and out.

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::call;
use wssgate_tests::*;

const TOKEN: &str = "test-token-0123456789";

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

fn gateway() -> TestGateway {
    let routes = format!(
        "{}\n[[route]]\npath = \"/chat\"\nplugin = \"{}\"\n",
        standard_routes(),
        plugin("chat").display()
    );
    TestGateway::start_with(
        &format!("workers = 2\n[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"),
        &routes,
    )
}

async fn login(gw: &TestGateway, uid: &str) -> Ws {
    let mut ws = gw.ws("/chat").await;
    bounded(ws.send(Message::text(
        json!({"type": "login", "uid": uid}).to_string(),
    )))
    .await
    .unwrap();
    next_message(&mut ws).await;
    ws
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_401() {
    let gw = gateway();
    let (status, _) = call(
        &gw,
        "GET",
        "/api/user-online?route=/chat&uid=bob",
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &gw,
        "GET",
        "/api/user-online?route=/chat&uid=bob",
        Some("wrong-token-000000000"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let body = json!({"route": "/chat", "uid": "bob", "message": "x"});
    let (status, _) = call(&gw, "POST", "/api/send-to-user", Some("nope"), Some(body)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_push_api_reaches_a_users_connections_and_reports_presence() {
    let gw = gateway();
    let (status, answer) = call(
        &gw,
        "GET",
        "/api/user-online?route=%2Fchat&uid=bob",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(
        (status, answer),
        (200, json!({"online": false, "connections": 0}))
    );
    let mut phone = login(&gw, "bob").await;
    let mut desktop = login(&gw, "bob").await;
    let (status, answer) = call(
        &gw,
        "GET",
        "/api/user-online?route=/chat&uid=bob",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(
        (status, answer),
        (200, json!({"online": true, "connections": 2}))
    );
    let body = json!({"route": "/chat", "uid": "bob", "message": "your order shipped"});
    let (status, answer) = call(&gw, "POST", "/api/send-to-user", Some(TOKEN), Some(body)).await;
    assert_eq!((status, answer), (200, json!({"delivered": 2})));
    for ws in [&mut phone, &mut desktop] {
        assert_eq!(next_message(ws).await, Message::text("your order shipped"));
    }
}

#[tokio::test]
async fn the_push_api_publishes_to_a_group_and_broadcasts() {
    let gw = gateway();
    let mut members = Vec::new();
    for uid in ["ann", "bob"] {
        let mut ws = login(&gw, uid).await;
        bounded(ws.send(Message::text(
            json!({"type": "join", "room": "news"}).to_string(),
        )))
        .await
        .unwrap();
        next_message(&mut ws).await;
        members.push(ws);
    }
    next_message(&mut members[0]).await; // bob's presence, seen by ann
    let mut outsider = login(&gw, "cid").await;
    let (status, answer) = call(
        &gw,
        "GET",
        "/api/group-size?route=/chat&group=room:news",
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!((status, answer), (200, json!({"members": 2})));
    let body = json!({"route": "/chat", "group": "room:news", "message": "extra!"});
    let (status, answer) = call(&gw, "POST", "/api/publish", Some(TOKEN), Some(body)).await;
    assert_eq!((status, answer), (200, json!({"delivered": 2})));
    for ws in members.iter_mut() {
        assert_eq!(next_message(ws).await, Message::text("extra!"));
    }
    let body = json!({"route": "/chat", "message": "maintenance at noon"});
    let (status, answer) = call(&gw, "POST", "/api/broadcast", Some(TOKEN), Some(body)).await;
    assert_eq!((status, answer), (200, json!({"delivered": 3})));
    for ws in members.iter_mut().chain([&mut outsider]) {
        assert_eq!(next_message(ws).await, Message::text("maintenance at noon"));
    }
    let (status, _) = call(
        &gw,
        "POST",
        "/api/publish",
        Some(TOKEN),
        Some(json!({"route": "/nope", "message": "x"})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_admin_listener_reads_chunked_bodies_keeps_connections_alive_and_refuses_large_bodies()
{
    let gw = gateway();
    let mut ws = login(&gw, "alice").await;
    let address = wssgate_tests::admin::admin_address(&gw);
    // A chunked broadcast, then a second request on the same connection, which asks to close after its answer.
    let body = json!({"route": "/chat", "message": "in chunks"}).to_string();
    let (first, second) = body.split_at(10);
    let requests = format!(
        "POST /api/broadcast HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n\
         GET /healthz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n",
        first.len(),
        second.len()
    );
    let tcp = bounded(tokio::net::TcpStream::connect(&address))
        .await
        .unwrap();
    let answer = raw_exchange(tcp, requests.as_bytes()).await;
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
    assert!(answer.contains("{\"delivered\":1}"), "{answer}");
    assert_eq!(next_message(&mut ws).await, Message::text("in chunks"));

    // A body declared past 2 MiB is refused with 413 before any of it is read.
    let huge = format!(
        "POST /api/broadcast HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        3 << 20
    );
    let tcp = bounded(tokio::net::TcpStream::connect(&address))
        .await
        .unwrap();
    let answer = raw_exchange(tcp, huge.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large"),
        "{answer}"
    );
}

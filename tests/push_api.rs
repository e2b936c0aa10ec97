//! The push API for existing backends: send to a user, publish to a group, broadcast, ask who is online — with a
//! bearer token, JSON in and out — and what an attacker on the admin listener's network can do: rotate a leaked
//! token by reload, send bodies without a token, hold connections, guess tokens, exhaust file descriptors.

use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::{admin_address, admin_get, call, metric_until};
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

/// A connection to the admin listener from source address `source` (any of 127.0.0.0/8).
async fn admin_tcp(gw: &TestGateway, source: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{source}:0").parse().unwrap())
        .expect("binding the source address");
    bounded(socket.connect(admin_address(gw).parse().unwrap()))
        .await
        .expect("connecting to the admin listener")
}

/// GETs `target` from `source` with `token`; returns the status and the whole answer.
async fn get_from(
    gw: &TestGateway,
    source: &str,
    target: &str,
    token: Option<&str>,
) -> (u16, String) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n");
    let answer = raw_exchange(admin_tcp(gw, source).await, request.as_bytes()).await;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, answer)
}

const ONLINE: &str = "/api/user-online?route=/wss&uid=x";

#[tokio::test]
async fn a_reload_rotates_the_admin_tokens_the_old_one_is_refused_and_the_new_one_accepted() {
    let dir = scratch_dir("admin-rotate");
    let cert = TestCert::create(&dir);
    let config = |admin_keys: &str| {
        format!(
            "workers = 1\n[admin]\naddress = \"127.0.0.1:0\"\n{admin_keys}\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n{}",
            cert.cert.display(),
            cert.key.display(),
            standard_routes()
        )
    };
    let (leaked, fresh) = ("leaked-token-0123456789", "fresh-token-0123456789");
    let gw = TestGateway::launch(
        &dir,
        &config(&format!("token = \"{leaked}\"")),
        &[],
        Some(cert.der.clone()),
    );
    assert_eq!(call(&gw, "GET", ONLINE, Some(leaked), None).await.0, 200);
    assert_eq!(
        admin_get(&gw, "/metrics").await.0,
        200,
        "no metrics token yet"
    );

    // The operator rotates the leaked token and sets a metrics token: both apply to the running listener.
    let metrics_token = "scraper-token-0123456789";
    let rotated = format!("token = \"{fresh}\"\nmetrics_token = \"{metrics_token}\"");
    assert!(gw.reload(&dir, &config(&rotated)), "{}", gw.log());
    assert!(!gw.log().contains("needs a restart"), "{}", gw.log());
    assert_eq!(call(&gw, "GET", ONLINE, Some(leaked), None).await.0, 401);
    assert_eq!(call(&gw, "GET", ONLINE, Some(fresh), None).await.0, 200);
    assert_eq!(admin_get(&gw, "/metrics").await.0, 401);
    for token in [metrics_token, fresh] {
        let (status, answer) = get_from(&gw, "127.0.0.1", "/metrics", Some(token)).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("wssgate_connections_open"), "{answer}");
    }
    // The metrics token is for /metrics only; /healthz needs none.
    assert_eq!(
        call(&gw, "GET", ONLINE, Some(metrics_token), None).await.0,
        401
    );
    assert_eq!(get_from(&gw, "127.0.0.1", "/healthz", None).await.0, 200);
}

/// Sends `head`, which announces 2 MiB of body that never comes, and returns the whole answer; fails unless the
/// listener answers (and closes) within 3 s, that is, without waiting for the body.
async fn answer_without_body(gw: &TestGateway, head: &str) -> String {
    let mut tcp = admin_tcp(gw, "127.0.0.1").await;
    let head = format!("{head}Content-Length: {}\r\n\r\n", 2 << 20);
    bounded(tcp.write_all(head.as_bytes())).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        read.is_ok(),
        "no answer within 3 s: the listener waited for the body (got {answer:?})"
    );
    answer
}

#[tokio::test]
async fn without_the_token_a_body_is_not_waited_for_nor_read() {
    let gw = gateway();
    // A head that announces 2 MiB (within the size bound) and a wrong token.
    let answer = answer_without_body(
        &gw,
        "POST /api/broadcast HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer wrong-token-000000000\r\nContent-Type: application/json\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
}

#[tokio::test]
async fn a_request_that_needs_no_token_is_answered_without_waiting_for_its_body() {
    let gw = gateway();
    // A health check that announces 2 MiB of body (within the size bound).
    let answer = answer_without_body(&gw, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}

#[tokio::test]
async fn admin_connections_past_the_cap_get_503_and_a_freed_place_serves_again() {
    let gw = TestGateway::start_with(
        &format!(
            "workers = 1\n[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\nmax_connections = 4\n"
        ),
        &standard_routes(),
    );
    // Four clients hold connections open without sending anything (the slowloris way).
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(admin_tcp(&gw, "127.0.0.1").await);
    }
    // The fifth is answered 503 at once, before it sends anything.
    let mut fifth = admin_tcp(&gw, "127.0.0.1").await;
    let mut answer = Vec::new();
    let _ = bounded(fifth.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    // One of the four leaves: its place serves again (once the listener has seen it go).
    drop(held.pop());
    let mut status = 0;
    for _ in 0..100 {
        status = get_from(&gw, "127.0.0.1", "/healthz", None).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
    drop(held);
    metric_until(
        &gw,
        "wssgate_cap_hits_total{cap=\"admin_connections\"}",
        |v| v >= 1.0,
    )
    .await;
}

#[tokio::test]
async fn an_address_that_keeps_failing_the_token_is_answered_429_even_with_the_right_one() {
    let gw = gateway();
    for _ in 0..10 {
        let (status, _) = get_from(&gw, "127.0.0.2", ONLINE, Some("wrong-token-000000000")).await;
        assert_eq!(status, 401);
    }
    let (status, answer) = get_from(&gw, "127.0.0.2", ONLINE, None).await;
    assert_eq!(status, 429, "the eleventh failure");
    assert!(
        answer.contains("Retry-After: 10") || answer.contains("retry-after: 10"),
        "{answer}"
    );
    // Guessing stops: a right guess from that address is not told apart from a wrong one now.
    assert_eq!(get_from(&gw, "127.0.0.2", ONLINE, Some(TOKEN)).await.0, 429);
    // Other addresses are not affected, nor are health checks.
    assert_eq!(get_from(&gw, "127.0.0.3", ONLINE, Some(TOKEN)).await.0, 200);
    assert_eq!(get_from(&gw, "127.0.0.2", "/healthz", None).await.0, 200);
    let (_, metrics) = get_from(&gw, "127.0.0.3", "/metrics", None).await;
    assert!(
        metrics.contains("wssgate_cap_hits_total{cap=\"admin_token_failures\"} 10")
            && metrics.contains("wssgate_cap_hits_total{cap=\"admin_throttled\"} 2"),
        "{metrics}"
    );
}

/// The CPU time (user and system, in clock ticks) the gateway's thread named `name` has used.
fn thread_cpu_ticks(gw: &TestGateway, name: &str) -> u64 {
    let pid = gw.pid();
    let mut names = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("reading the threads") {
        let task = task.expect("reading a thread's entry").path();
        let comm = std::fs::read_to_string(task.join("comm"))
            .unwrap_or_else(|e| panic!("reading {}: {e}", task.display()));
        if comm.trim() != name {
            names.push(comm.trim().to_owned());
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).unwrap();
        // The fields after the command name (in parentheses): state is field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        return fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    panic!(
        "the gateway has no thread named {name} (threads: {names:?}; /proc/{pid}/stat: {state}); its log:\n{}",
        gw.log()
    );
}

#[tokio::test]
async fn out_of_file_descriptors_the_admin_listener_backs_off_instead_of_spinning() {
    let gw = TestGateway::start_with(
        &format!("workers = 1\n{}", wssgate_tests::admin::ADMIN),
        &standard_routes(),
    );
    let address = admin_address(&gw);
    let pid = gw.pid();
    let starved = wssgate_tests::process::FdStarvation::start(pid);
    // A client connects: the kernel completes the handshake, the listener cannot accept it.
    let waiting = bounded(TcpStream::connect(&address)).await.unwrap();
    let failing = gw.wait_for_log("admin listener: accept failed");
    let before = thread_cpu_ticks(&gw, "wssgate-admin");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = thread_cpu_ticks(&gw, "wssgate-admin") - before;
    drop(starved);
    assert!(failing, "{}", gw.log());
    assert!(
        spent < 20,
        "the admin thread used {spent} clock ticks in 2 s while it could not accept"
    );
    // Descriptors are back: the waiting client is served within the back-off's last step.
    let answer = raw_exchange(
        waiting,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        gw.wait_for_log("admin listener: accepting again"),
        "{}",
        gw.log()
    );
}

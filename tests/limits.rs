//! The limits a production gateway needs against buggy plugins, slow or hostile clients: each one is hit here and
//! must end in the documented close code or HTTP status, without hurting anyone else.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::*;

fn with_limits(limits: &str) -> TestGateway {
    TestGateway::start_with(
        &format!("workers = 1\n[limits]\n{limits}\n"),
        &standard_routes(),
    )
}

async fn probe_id<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let info = ask(ws, "info").await;
    info.rsplit("id=").next().unwrap().to_owned()
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_as_a_slow_consumer() {
    let gw = with_limits("max_outbound_bytes = 262144");
    let mut sender = gw.wss("/probe").await;
    let mut stalled = gw.wss("/probe").await;
    let stalled_id = probe_id(&mut stalled).await;
    let rss_before = gw.rss_kib();
    // Each round fits the queue; the socket buffers fill up, then the queue overflows while the writer waits.
    let mut refused = None;
    for _ in 0..2000 {
        let reply = ask(&mut sender, &format!("flood {stalled_id} 2 65536")).await;
        if !reply.ends_with("error=none") {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("the flood was never refused");
    assert!(
        refused.contains("QueueFull") || refused.contains("Closed"),
        "{refused}"
    );
    // The plugin's on-close ran with the reason.
    let note = next_message(&mut sender).await;
    assert_eq!(
        note,
        Message::text(format!("closed {stalled_id} 1008 slow consumer"))
    );
    let grown = gw.rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "the gateway's RSS grew by {grown} KiB");
    let mut other = gw.ws("/echo").await;
    let answer =
        tokio::time::timeout(Duration::from_secs(5), ask(&mut other, "still served")).await;
    assert_eq!(
        answer.expect("another client was not answered within 5 s"),
        "still served"
    );
    assert_eq!(ask(&mut sender, "print").await, "printed");
}

#[tokio::test]
async fn one_event_cannot_queue_more_than_the_limit_for_a_connection() {
    let gw = with_limits("max_outbound_bytes = 262144");
    let mut sender = gw.wss("/probe").await;
    let mut target = gw.wss("/probe").await;
    let target_id = probe_id(&mut target).await;
    let reply = ask(&mut sender, &format!("flood {target_id} 100 65536")).await;
    assert_eq!(reply, "flood sent=4 error=QueueFull");
    assert_eq!(
        expect_close(&mut target).await,
        (1008, "slow consumer".to_owned())
    );
}

#[tokio::test]
async fn a_plugin_that_sends_in_a_loop_is_stopped_with_1011_and_bounded_memory() {
    let gw = TestGateway::start_with("workers = 1\n", &standard_routes());
    let mut bystander = gw.wss("/echo").await;
    let mut same_route = gw.wss("/probe").await;
    let mut looper = gw.wss("/probe").await;
    let rss_before = gw.rss_kib();
    bounded(looper.send(Message::text("sendloop")))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut looper).await.0, 1011);
    let grown = gw.rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 * 1024, "the gateway's RSS grew by {grown} KiB");
    assert_eq!(ask(&mut bystander, "hi").await, "hi");
    assert_eq!(ask(&mut same_route, "print").await, "printed");
}

#[tokio::test]
async fn routes_can_restrict_origins_with_403() {
    let routes = format!(
        "{}\n[[route]]\npath = \"/strict\"\nplugin = \"{}\"\nallowed_origins = [\"https://good.example\"]\n",
        standard_routes(),
        plugin("echo").display()
    );
    let gw = TestGateway::start(&routes);
    let mut ws = gw
        .wss_with("/strict", &[("origin", "https://good.example")])
        .await;
    assert_eq!(ask(&mut ws, "hi").await, "hi");
    let upgrade = |origin: &str| {
        format!(
            "GET /strict HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin}\r\n"
        )
    };
    let answer = raw_exchange(
        gw.tls_stream().await,
        upgrade("Origin: https://evil.example\r\n").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    let answer = raw_exchange(gw.tls_stream().await, upgrade("").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    // Routes without a list accept any origin, `null`, and none.
    let mut open = gw.wss_with("/echo", &[("origin", "null")]).await;
    assert_eq!(ask(&mut open, "hi").await, "hi");
}

#[tokio::test]
async fn connections_over_the_total_cap_get_503() {
    let gw = with_limits("max_connections = 2");
    let mut a = gw.wss("/echo").await;
    let _b = gw.wss("/echo").await;
    let upgrade = "GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let answer = raw_exchange(gw.tls_stream().await, upgrade.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        gw.wait_for_log("connection refused: TooManyConnections"),
        "{}",
        gw.log()
    );
    // A place frees up when a connection closes.
    bounded(a.close(None)).await.unwrap();
    drop(a);
    let mut ok = None;
    for _ in 0..50 {
        let answer = raw_head(gw.tls_stream().await, upgrade.as_bytes()).await;
        if answer.starts_with("HTTP/1.1 101 ") {
            ok = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok.is_some(), "no place freed up after a close");
}

#[tokio::test]
async fn connections_over_the_per_address_cap_get_503_but_other_addresses_connect() {
    let gw = with_limits("max_connections_per_ip = 1");
    let mut first = gw.ws("/echo").await;
    let upgrade = "GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let same = bounded(tokio::net::TcpStream::connect(gw.ws))
        .await
        .unwrap();
    let answer = raw_exchange(same, upgrade.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let other = bounded(socket.connect(gw.ws)).await.unwrap();
    let answer = raw_head(other, upgrade.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    assert_eq!(ask(&mut first, "still").await, "still");
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_with_1001() {
    let gw = with_limits("ping_interval_ms = 200\nmax_missed_pongs = 2");
    let mut silent = raw_websocket(gw.ws, "/echo").await;
    // Pings arrive and go unanswered; then the close.
    assert_eq!(raw_close_code(&mut silent).await, 1001);
    // A client that keeps reading (its library answers each ping with a pong) stays connected well past that.
    let mut alive = gw.ws("/echo").await;
    let quiet = tokio::time::timeout(Duration::from_millis(1200), async {
        loop {
            match alive.next().await {
                Some(Ok(Message::Ping(_))) => {}
                other => return other,
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "the reading client got {quiet:?}");
    assert_eq!(ask(&mut alive, "still here").await, "still here");
}

#[tokio::test]
async fn an_idle_client_is_closed_with_1001() {
    let gw = with_limits("idle_timeout_ms = 300");
    let mut idle = gw.ws("/echo").await;
    assert_eq!(
        expect_close(&mut idle).await,
        (1001, "idle timeout".to_owned())
    );
}

#[tokio::test]
async fn a_client_over_the_message_rate_is_closed_with_1008() {
    let gw = with_limits("max_messages_per_sec = 5");
    let mut ws = gw.ws("/echo").await;
    for i in 0..20 {
        bounded(ws.feed(Message::text(format!("m{i}"))))
            .await
            .unwrap();
    }
    bounded(ws.flush()).await.unwrap();
    let mut echoed = 0;
    loop {
        match next_message(&mut ws).await {
            Message::Text(_) => echoed += 1,
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1008);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(echoed, 5);
}

#[tokio::test]
async fn a_client_over_the_byte_rate_is_closed_with_1008() {
    let gw = with_limits("max_bytes_per_sec = 1000");
    let mut ws = gw.ws("/echo").await;
    assert_eq!(ask(&mut ws, &"a".repeat(600)).await.len(), 600);
    bounded(ws.send(Message::text("b".repeat(600))))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 1008);
}

#[tokio::test]
async fn a_client_that_never_finishes_the_tls_handshake_is_cut_off() {
    let gw = with_limits("tls_handshake_timeout_ms = 300");
    let mut tcp = bounded(tokio::net::TcpStream::connect(gw.wss))
        .await
        .unwrap();
    // Half a ClientHello record header, then silence.
    bounded(tcp.write_all(&[0x16, 0x03])).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection was not closed: {read:?}"
    );
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_at_the_upgrade_timeout() {
    let gw = with_limits("upgrade_timeout_ms = 500");
    let mut tcp = bounded(tokio::net::TcpStream::connect(gw.ws))
        .await
        .unwrap();
    let request = b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n";
    let started = std::time::Instant::now();
    let mut cut_off = false;
    for byte in request {
        if tcp.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_off = true;
                break;
            }
            _ => {}
        }
    }
    assert!(
        cut_off,
        "the gateway kept a byte-a-while client for {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_message_size_limit_is_configurable_and_closes_with_1009() {
    let gw = with_limits("max_message_bytes = 1000\nmax_frame_bytes = 1000");
    let mut ws = gw.ws("/echo").await;
    assert_eq!(ask(&mut ws, &"a".repeat(1000)).await.len(), 1000);
    bounded(ws.send(Message::text("b".repeat(1001))))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut ws).await.0, 1009);
}

#[tokio::test]
async fn pings_count_against_the_message_rate() {
    let gw = with_limits("max_messages_per_sec = 5");
    let mut ws = gw.ws("/echo").await;
    for _ in 0..20 {
        bounded(ws.feed(Message::Ping(b"are you there".to_vec().into())))
            .await
            .unwrap();
    }
    bounded(ws.flush()).await.unwrap();
    // The first five are answered; the sixth breaks the rate.
    let mut pongs = 0;
    let code = loop {
        match bounded(ws.next()).await.expect("the stream ended") {
            Ok(Message::Pong(_)) => pongs += 1,
            Ok(Message::Close(Some(frame))) => break u16::from(frame.code),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, 1008);
    assert!(
        pongs >= 5,
        "only {pongs} of the first five pings were answered"
    );
}

#[tokio::test]
async fn handshakes_in_progress_are_capped_per_address_and_others_still_connect() {
    let gw = with_limits("max_handshakes_per_ip = 2");
    // Two TLS handshakes from 127.0.0.1 that never finish hold both places.
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut tcp = bounded(tokio::net::TcpStream::connect(gw.wss))
            .await
            .unwrap();
        bounded(tcp.write_all(&[0x16, 0x03])).await.unwrap();
        holders.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third from the same address is disconnected at once, without an answer.
    let mut third = bounded(tokio::net::TcpStream::connect(gw.wss))
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the third handshake was not refused: {read:?}"
    );
    // Another address is unaffected, and the first address connects again once its handshakes end.
    let mut other = wss_from(gw.wss, "127.0.0.2", &gw.cert, "/echo").await;
    assert_eq!(ask(&mut other, "hi").await, "hi");
    drop(holders);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = gw.wss("/echo").await;
    assert_eq!(ask(&mut again, "back").await, "back");
}

#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_answered_and_parsed_only_a_few_times() {
    // The upgrade reader says at trace level how many reads and parses a head took.
    let gw = TestGateway::start_with(
        "workers = 1\n[log]\nlevel = \"info,wssgate_edge::upgrade=trace\"\n",
        &standard_routes(),
    );
    let mut request = b"GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n".to_vec();
    for i in 0..57 {
        request.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(256)).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert!(request.len() > 15 * 1024 && request.len() < 16 * 1024);
    let mut tcp = bounded(tokio::net::TcpStream::connect(gw.ws))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    // Every byte its own write (its own segment, with Nagle off): parsing the whole head again on each read would
    // cost the gateway a pass over up to 16 KiB per byte.
    bounded(async {
        for byte in &request {
            tcp.write_all(std::slice::from_ref(byte)).await.unwrap();
        }
    })
    .await;
    let answer = raw_head(&mut tcp, b"").await;
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
        tcp,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    assert_eq!(ask(&mut ws, "still here").await, "still here");

    assert!(gw.wait_for_log("request head read"), "{}", gw.log());
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("request head read") && l.contains("/echo"))
        .unwrap_or_else(|| panic!("no trace of the head:\n{log}"));
    let field = |name: &str| -> u32 {
        line.split(&format!("{name}="))
            .nth(1)
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    assert!(field("reads") >= 1, "{line}");
    assert!(field("parses") <= 4, "{line}");
}

#[tokio::test]
async fn out_of_file_descriptors_a_worker_logs_one_failed_accept_and_serves_again() {
    let gw = with_limits("");
    let starved = wssgate_tests::process::FdStarvation::start(gw.pid());
    // A client connects: the kernel completes the handshake, the worker cannot accept it and retries every 50 ms.
    let waiting = bounded(tokio::net::TcpStream::connect(gw.wss))
        .await
        .unwrap();
    let failing = gw.wait_for_log("accept failed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(starved);
    assert!(failing, "{}", gw.log());
    assert!(gw.wait_for_log("accepting again after"), "{}", gw.log());
    let log = gw.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("accept failed") && !l.contains("admin listener"))
        .count();
    assert_eq!(warnings, 1, "one line for a run of failed accepts:\n{log}");
    let retries: u64 = log
        .lines()
        .find_map(|l| l.split("accepting again after ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(retries >= 10, "{retries} failed accepts in 2 s of retrying");
    drop(waiting);
    // Descriptors are back: the worker serves.
    let mut ws = gw.wss("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
}

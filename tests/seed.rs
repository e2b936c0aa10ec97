//! The seed's scenario and the basic data paths, through the real gateway and real wasm plugins.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::*;

#[tokio::test]
async fn tom_gets_ok_over_wss() {
    let gw = TestGateway::start(&standard_routes());
    let mut ws = gw.wss("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
}

#[tokio::test]
async fn plain_ws_listener_serves_the_same_routes() {
    let gw = TestGateway::start(&standard_routes());
    let mut ws = gw.ws("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
}

#[tokio::test]
async fn echo_returns_text_and_binary_unchanged() {
    let gw = TestGateway::start(&standard_routes());
    let mut ws = gw.wss("/echo").await;
    assert_eq!(ask(&mut ws, "héllo wörld").await, "héllo wörld");
    let payload: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    bounded(ws.send(Message::binary(payload.clone())))
        .await
        .unwrap();
    assert_eq!(next_message(&mut ws).await, Message::binary(payload));
}

#[tokio::test]
async fn echo_returns_a_one_mebibyte_binary_message() {
    let gw = TestGateway::start(&standard_routes());
    let mut ws = gw.wss("/echo").await;
    let payload: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 % 251) as u8).collect();
    bounded(ws.send(Message::binary(payload.clone())))
        .await
        .unwrap();
    match next_message(&mut ws).await {
        Message::Binary(back) => assert!(back[..] == payload[..], "the echo differs"),
        other => panic!("expected binary, got {other:?}"),
    }
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let gw = TestGateway::start(&standard_routes());
    let mut ws = gw.wss("/echo").await;
    bounded(ws.send(Message::Ping(b"are you there".to_vec().into())))
        .await
        .unwrap();
    let pong = bounded(ws.next()).await.unwrap().unwrap();
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
}

#[tokio::test]
async fn pipelined_messages_are_all_answered_in_order() {
    let gw = TestGateway::start(&standard_routes());
    let mut ws = gw.wss("/echo").await;
    for i in 0..100 {
        bounded(ws.feed(Message::text(format!("m{i}"))))
            .await
            .unwrap();
    }
    bounded(ws.flush()).await.unwrap();
    for i in 0..100 {
        assert_eq!(next_message(&mut ws).await, Message::text(format!("m{i}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clients_are_all_served() {
    let gw = std::sync::Arc::new(TestGateway::start(&standard_routes()));
    let mut clients = Vec::new();
    for i in 0..200 {
        let gw = gw.clone();
        clients.push(tokio::spawn(async move {
            let mut ws = gw.wss("/echo").await;
            let text = format!("client {i}");
            assert_eq!(ask(&mut ws, &text).await, text);
            assert_eq!(ask(&mut ws, "tom").await, "tom");
        }));
    }
    for client in clients {
        bounded(client).await.expect("a client failed");
    }
}

/// A config with a TLS listener that names no certificate, a plain listener, and `/wss`.
fn dev_cert_config() -> String {
    format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
        plugin("echo-ok").display()
    )
}

#[tokio::test]
async fn the_development_certificate_is_generated_once_and_kept() {
    let dir = scratch_dir("devcert");
    let first = TestGateway::launch(&dir, &dev_cert_config(), &[], None);
    assert!(
        first
            .log()
            .contains("generated a self-signed development certificate"),
        "{}",
        first.log()
    );
    assert!(
        first.log().contains("open https://localhost:"),
        "the hint is logged:\n{}",
        first.log()
    );
    let mut ws = first.wss("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
    let cert = first.cert.clone();
    drop((ws, first));

    let second = TestGateway::launch(&dir, &dev_cert_config(), &[], None);
    assert!(
        !second.log().contains("generated a self-signed"),
        "{}",
        second.log()
    );
    assert_eq!(second.cert, cert, "the certificate changed between starts");
    let mut ws = second.wss("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
}

#[tokio::test]
async fn workers_flag_overrides_the_config() {
    let dir = scratch_dir("workers");
    let gw = TestGateway::launch(
        &dir,
        &format!("workers = 1\n{}", dev_cert_config()),
        &["--workers", "3"],
        None,
    );
    assert!(gw.log().contains("with 3 workers"), "{}", gw.log());
    let mut ws = gw.ws("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
}

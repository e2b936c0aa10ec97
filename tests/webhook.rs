//! The webhook route (`plugins/webhook`) against real Python backends on 127.0.0.1: the connect, message and
//! disconnect calls, the actions, signing (and replays a verifying backend refuses), failing closed, ordering over
//! 10,000 messages, the per-address cap on upgrades waiting for the backend, the push API's `/api/send` and
//! `/api/close`, and the README's example backend answering the seed's `tom` with `ok`.

use futures_util::SinkExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::{ADMIN, admin_get, call, metric_until};
use wssgate_tests::backend::Backend;
use wssgate_tests::*;

const TOKEN: &str = "test-token-0123456789";
const BACKEND: &str = "tests/backends/webhook.py";

/// The upstream `backend` at `url` (with `upstream_keys`, TOML lines) and a `/hook` route that is the webhook to it,
/// with `settings` (TOML lines).
fn webhook_routes(url: &str, upstream_keys: &str, settings: &str) -> String {
    format!(
        "[[upstream]]\nname = \"backend\"\nurl = \"{url}\"\n{upstream_keys}\n\n[[route]]\npath = \"/hook\"\nplugin = \"{}\"\nupstreams = [\"backend\"]\n[route.settings]\nupstream = \"backend\"\n{settings}\n",
        plugin("webhook").display()
    )
}

/// A gateway with the standard routes and the webhook's `/hook` to `url`, with extra route `settings`.
fn gateway(url: &str, settings: &str) -> TestGateway {
    let routes = format!(
        "{}\n{}",
        standard_routes(),
        webhook_routes(url, "", settings)
    );
    TestGateway::start_with(&format!("workers = 2\n{ADMIN}"), &routes)
}

/// The backend's `/disconnect` notices, once there are `count` of them (bounded: 5 s).
async fn disconnects(backend: &Backend, count: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = backend_state(backend).await["disconnects"]
            .as_array()
            .unwrap()
            .clone();
        if seen.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// The backend's record of what it saw.
async fn backend_state(backend: &Backend) -> Value {
    let tcp = bounded(tokio::net::TcpStream::connect(("127.0.0.1", backend.port)))
        .await
        .unwrap();
    let answer = raw_exchange(
        tcp,
        b"GET /state HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

#[tokio::test]
async fn connect_message_actions_push_and_disconnect_through_a_signing_backend() {
    let backend = Backend::start(BACKEND, &["--secret", "s3cret"]);
    let gw = gateway(&backend.url(), "secret = \"s3cret\"");

    // A 4xx from /connect refuses the upgrade with that status, before any 101.
    let refused = gw.try_wss("/hook?token=bad").await;
    assert_eq!(refused.err().map(|(status, _)| status), Some(401));

    let mut ann = gw.wss("/hook?token=good&uid=ann").await;
    assert_eq!(next_message(&mut ann).await, Message::text("welcome"));
    assert_eq!(ask(&mut ann, "tom").await, "ok");
    let mut bob = gw.wss("/hook?token=good&uid=bob").await;
    assert_eq!(next_message(&mut bob).await, Message::text("welcome"));

    // Actions: publish to the lobby both joined, send to a user.
    bounded(ann.send(Message::text("pub hello"))).await.unwrap();
    assert_eq!(next_message(&mut ann).await, Message::text("hello"));
    assert_eq!(next_message(&mut bob).await, Message::text("hello"));
    bounded(ann.send(Message::text("dm bob psst")))
        .await
        .unwrap();
    assert_eq!(next_message(&mut bob).await, Message::text("psst"));
    assert_eq!(ask(&mut ann, "join room").await, "joined");
    bounded(ann.send(Message::binary(vec![0u8, 1, 2])))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut ann).await,
        Message::binary(vec![0u8, 1, 2])
    );

    // A malformed answer and a failed call apply nothing and leave the connection open; both are counted.
    bounded(ann.send(Message::text("bad"))).await.unwrap();
    bounded(ann.send(Message::text("fail"))).await.unwrap();
    assert_eq!(ask(&mut ann, "tom").await, "ok");
    metric_until(&gw, "wssgate_plugin_warnings_total{route=\"/hook\"}", |v| {
        v >= 2.0
    })
    .await;

    // The push API reaches one connection by its id, as a string, with text, binary (base64) and a close.
    let state = backend_state(&backend).await;
    let ann_id = state["connections"]["ann"].as_str().unwrap().to_owned();
    let bob_id = state["connections"]["bob"].as_str().unwrap().to_owned();
    let push = |body: Value| call(&gw, "POST", "/api/send", Some(TOKEN), Some(body));
    let (status, answer) =
        push(json!({"route": "/hook", "connection": ann_id, "message": "pushed"})).await;
    assert_eq!((status, &answer["delivered"]), (200, &json!(1)), "{answer}");
    assert_eq!(next_message(&mut ann).await, Message::text("pushed"));
    let (status, _) = push(json!({"route": "/hook", "connection": bob_id, "binary": "AAEC"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        next_message(&mut bob).await,
        Message::binary(vec![0u8, 1, 2])
    );
    let (status, answer) =
        push(json!({"route": "/hook", "connection": "x7", "message": "m"})).await;
    assert_eq!(status, 400, "{answer}");
    let (_, answer) = push(json!({"route": "/wss", "connection": ann_id, "message": "m"})).await;
    assert_eq!(
        answer["delivered"], 0,
        "another route's connection is not reached"
    );
    let (status, answer) = call(
        &gw,
        "POST",
        "/api/publish",
        Some(TOKEN),
        Some(json!({"route": "/hook", "group": "lobby", "message": "to all but bob", "exclude": [bob_id]})),
    )
    .await;
    assert_eq!((status, &answer["delivered"]), (200, &json!(1)), "{answer}");
    assert_eq!(
        next_message(&mut ann).await,
        Message::text("to all but bob")
    );
    let (status, _) = call(
        &gw,
        "POST",
        "/api/close",
        Some(TOKEN),
        Some(json!({"route": "/hook", "connection": bob_id, "code": 4001, "reason": "pushed out"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        expect_close(&mut bob).await,
        (4001, "pushed out".to_owned())
    );

    // A close action, then the disconnect notices for both.
    bounded(ann.send(Message::text("close"))).await.unwrap();
    assert_eq!(expect_close(&mut ann).await, (4000, "bye".to_owned()));
    let disconnects = disconnects(&backend, 2).await;
    let by_uid = |uid: &str| disconnects.iter().find(|d| d["uid"] == uid).cloned();
    assert_eq!(
        by_uid("bob").map(|d| d["code"].clone()),
        Some(json!(4001)),
        "{disconnects:?}"
    );
    assert_eq!(
        by_uid("ann").map(|d| (d["code"].clone(), d["connection"].clone())),
        Some((json!(4000), json!(ann_id)))
    );
    let state = backend_state(&backend).await;
    assert_eq!(state["bad_signatures"], 0, "{state}");
    assert!(state["signed"].as_u64().unwrap() >= 10, "{state}");
}

/// POSTs `body` with `headers` to the backend at `path`, as someone who captured a call could; returns the status.
async fn post_to_backend(backend: &Backend, path: &str, headers: &Value, body: &[u8]) -> u16 {
    let tcp = bounded(tokio::net::TcpStream::connect(("127.0.0.1", backend.port)))
        .await
        .unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers.as_object().unwrap() {
        request.push_str(&format!("{name}: {}\r\n", value.as_str().unwrap()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    let answer = raw_exchange(tcp, &bytes).await;
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_captured_message_replayed_to_disconnect_or_again_is_refused_by_a_verifying_backend() {
    let backend = Backend::start(BACKEND, &["--secret", "s3cret"]);
    let gw = gateway(&backend.url(), "secret = \"s3cret\"");
    let mut ann = gw.wss("/hook?token=good&uid=ann").await;
    assert_eq!(next_message(&mut ann).await, Message::text("welcome"));
    assert_eq!(ask(&mut ann, "tom").await, "ok");

    // What an eavesdropper on the gateway-to-backend hop captured: ann's `/message` call, signature and all.
    let captured = backend_state(&backend).await["last_message"].clone();
    let headers = &captured["headers"];
    assert!(
        headers["x-wssgate-signature"]
            .as_str()
            .unwrap()
            .starts_with("v2="),
        "{captured}"
    );
    let body = captured["body"].as_str().unwrap().as_bytes().to_vec();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["text"], "tom");

    // Sent to `/disconnect` within the timestamp window, it would tell the backend ann left: the signature covers
    // the method and path, so it does not verify there.
    assert_eq!(
        post_to_backend(&backend, "/disconnect", headers, &body).await,
        401
    );
    // Sent again to `/message`, the signature verifies but the nonce was seen: the backend can tell the replay.
    assert_eq!(
        post_to_backend(&backend, "/message", headers, &body).await,
        409
    );
    let state = backend_state(&backend).await;
    assert_eq!(
        (&state["bad_signatures"], &state["replays"]),
        (&json!(1), &json!(1)),
        "{state}"
    );
    assert_eq!(state["disconnects"], json!([]), "{state}");
    // The gateway's own calls go on verifying: each has a fresh nonce.
    assert_eq!(ask(&mut ann, "tom").await, "ok");
    bounded(ann.close(None)).await.unwrap();
    assert_eq!(disconnects(&backend, 1).await.len(), 1);
    let state = backend_state(&backend).await;
    assert_eq!(
        (&state["bad_signatures"], &state["replays"]),
        (&json!(1), &json!(1)),
        "{state}"
    );
}

#[tokio::test]
async fn a_few_addresses_holding_upgrades_on_the_backend_cannot_take_the_webhook_from_everyone() {
    let backend = Backend::start(BACKEND, &[]);
    // One worker, so the upstream's places are all in one pool; a backend that holds `token=slow` upgrades for
    // 30 s, well past this test, and an upstream that waits for it.
    let routes = webhook_routes(
        &backend.url(),
        "max_in_flight = 100\ntimeout_ms = 40000",
        "",
    )
    .replace("upstreams = [", "accept_timeout_ms = 50000\nupstreams = [");
    let gw = TestGateway::start_with(&format!("workers = 1\n{ADMIN}"), &routes);
    // One address opens a hundred upgrades the backend sits on. The webhook route caps each address (64 by
    // default), so it takes no more than that of the upstream's hundred places.
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut tcp = bounded(tokio::net::TcpStream::connect(gw.ws))
            .await
            .unwrap();
        let request = "GET /hook?token=slow HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        bounded(tokio::io::AsyncWriteExt::write_all(
            &mut tcp,
            request.as_bytes(),
        ))
        .await
        .unwrap();
        held.push(tcp);
    }
    let refused = metric_until(
        &gw,
        "wssgate_rejected_connections_total{reason=\"too_many_from_address\"}",
        |v| v >= 36.0,
    )
    .await;
    assert_eq!(refused, 36.0);
    metric_until(
        &gw,
        "wssgate_upstream_in_flight{upstream=\"backend\"}",
        |v| v == 64.0,
    )
    .await;
    // Someone else still gets in: the backend is asked and accepts.
    let mut other = gw
        .ws_from("127.0.0.2", b"", "/hook?token=good&plain", &[])
        .await;
    assert_eq!(ask(&mut other, "tom").await, "ok");
    drop(held);
}

#[tokio::test]
async fn a_backend_that_is_down_or_silent_fails_closed() {
    // Nothing listens there: a port drawn where no other test's port-0 bind can land on it meanwhile.
    let down = format!("http://127.0.0.1:{}", ports::free_port());
    let gw = gateway(&down, "");
    assert_eq!(gw.try_wss("/hook").await.err().map(|(s, _)| s), Some(502));
    // A backend that never answers: the webhook's call times out (the upstream's timeout, below the route's
    // accept_timeout_ms) and the upgrade is answered 504.
    let backend = Backend::start(BACKEND, &[]);
    let routes = webhook_routes(&backend.url(), "timeout_ms = 500", "");
    let gw = TestGateway::start(&routes);
    assert_eq!(
        gw.try_wss("/hook?token=slow").await.err().map(|(s, _)| s),
        Some(504)
    );
}

#[tokio::test]
async fn ten_thousand_messages_reach_the_backend_and_come_back_in_order() {
    let backend = Backend::start(BACKEND, &[]);
    let gw = gateway(&backend.url(), "max_queued_messages = 10000");
    let mut ws = gw.wss("/hook?token=good&uid=seq&plain").await;
    const N: usize = 10_000;
    let (mut sink, mut stream) = futures_util::StreamExt::split(ws);
    let sender = tokio::spawn(async move {
        for n in 0..N {
            bounded(sink.send(Message::text(format!("seq {n}"))))
                .await
                .unwrap();
        }
        sink
    });
    let received = tokio::time::timeout(Duration::from_secs(300), async {
        let mut n = 0;
        while n < N {
            match bounded(futures_util::StreamExt::next(&mut stream)).await {
                Some(Ok(Message::Text(text))) => {
                    assert_eq!(text.as_str(), format!("seq {n}"), "out of order");
                    n += 1;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("after {n} replies: {other:?}"),
            }
        }
        n
    })
    .await
    .expect("the replies did not all arrive");
    assert_eq!(received, N);
    let sink = sender.await.unwrap();
    ws = sink.reunite(stream).unwrap();
    let state = backend_state(&backend).await;
    assert_eq!(
        (state["sequences"].as_u64(), state["out_of_order"].as_u64()),
        (Some(N as u64), Some(0)),
        "{state}"
    );
    // Past the queue bound the client is closed with 1008.
    let gw = gateway(&backend.url(), "max_queued_messages = 2");
    let mut eager = gw.wss("/hook?token=good&plain").await;
    for _ in 0..4 {
        bounded(eager.send(Message::text("slow"))).await.unwrap();
    }
    assert_eq!(expect_close(&mut eager).await.0, 1008);
    drop(ws);
}

#[tokio::test]
async fn the_readme_backend_answers_tom_with_ok() {
    let chapter = std::fs::read_to_string(workspace_root().join("docs/src/backend.md")).unwrap();
    let script =
        std::fs::read_to_string(workspace_root().join("plugins/webhook/example_backend.py"))
            .unwrap();
    assert!(
        chapter.contains(&script),
        "docs/src/backend.md shows the backend the test runs"
    );
    let backend = Backend::start("plugins/webhook/example_backend.py", &["0"]);
    let gw = gateway(&backend.url(), "");
    let mut ws = gw.wss("/hook").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
    assert_eq!(
        gw.try_wss("/hook?token=bad").await.err().map(|(s, _)| s),
        Some(401)
    );
    // With a secret, its verification code accepts the gateway's signed calls and refuses anyone else's.
    let secret = "a-long-random-string";
    let backend = Backend::start_with_env(
        "plugins/webhook/example_backend.py",
        &["0"],
        &[("WEBHOOK_SECRET", secret)],
    );
    let gw = gateway(&backend.url(), &format!("secret = \"{secret}\""));
    let mut ws = gw.wss("/hook").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
    let forged = json!({"connection": "1", "uid": null, "code": 1000, "reason": ""}).to_string();
    let headers = json!({"x-wssgate-timestamp": "1700000000", "x-wssgate-nonce": "00", "x-wssgate-signature": "v2=00"});
    assert_eq!(
        post_to_backend(&backend, "/disconnect", &headers, forged.as_bytes()).await,
        401
    );
    // A gateway without the secret is refused as well.
    let unsigned = gateway(&backend.url(), "");
    assert_eq!(
        unsigned.try_wss("/hook").await.err().map(|(s, _)| s),
        Some(401)
    );
}

#[tokio::test]
async fn connections_opened_before_a_reload_keep_talking_and_get_their_disconnect_notice() {
    let backend = Backend::start(BACKEND, &[]);
    let dir = scratch_dir("webhook-reload");
    let cert = TestCert::create(&dir);
    let config = format!(
        "workers = 1\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n{}",
        cert.cert.display(),
        cert.key.display(),
        webhook_routes(&backend.url(), "", "")
    );
    let gw = TestGateway::launch(&dir, &config, &[], Some(cert.der.clone()));
    let mut ann = gw.wss("/hook?token=good&uid=ann").await;
    assert_eq!(next_message(&mut ann).await, Message::text("welcome"));
    assert_eq!(ask(&mut ann, "tom").await, "ok");
    assert!(gw.reload(&dir, &config), "{}", gw.log());
    // The retired instance still serves ann, and her end still reaches the backend.
    assert_eq!(ask(&mut ann, "tom").await, "ok");
    bounded(ann.close(None)).await.unwrap();
    assert_eq!(
        disconnects(&backend, 1)
            .await
            .first()
            .map(|d| d["uid"].clone()),
        Some(json!("ann")),
        "{}",
        gw.log()
    );
}

#[tokio::test]
async fn messages_still_waiting_when_a_client_closes_are_reported_dropped() {
    let backend = Backend::start(BACKEND, &[]);
    let gw = gateway(&backend.url(), "");
    let warnings = "wssgate_plugin_warnings_total{route=\"/hook\"}";
    let mut ws = gw.wss("/hook?token=good&uid=ann").await;
    assert_eq!(next_message(&mut ws).await, Message::text("welcome"));
    assert_eq!(ask(&mut ws, "tom").await, "ok");
    // Nothing so far has warned (the series appears once something is counted).
    let metrics = admin_get(&gw, "/metrics").await.1;
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with(warnings) && !l.ends_with(" 0")),
        "{metrics}"
    );
    // The backend holds "slow" for a second; two more wait behind it when the client goes.
    for text in ["slow", "seq 0", "seq 1"] {
        bounded(ws.send(Message::text(text))).await.unwrap();
    }
    bounded(ws.close(None)).await.unwrap();
    drop(ws);
    assert_eq!(disconnects(&backend, 1).await.len(), 1);
    metric_until(&gw, warnings, |v| v >= 1.0).await;
}

#[tokio::test]
async fn the_route_wide_bound_closes_the_address_holding_the_most_not_the_next_sender() {
    let backend = Backend::start(BACKEND, &[]);
    // One worker, so that all clients share one instance and its bound of 100 bytes waiting.
    let routes = format!(
        "{}\n{}",
        standard_routes(),
        webhook_routes(
            &backend.url(),
            "",
            "max_queued_bytes_total = 100\nmax_queued_bytes = 80"
        )
    );
    let gw = TestGateway::start_with(&format!("workers = 1\n{ADMIN}"), &routes);
    let path = "/hook?token=good&uid=ann";
    let mut heavy = wss_from(gw.wss, "127.0.0.2", &gw.cert, path).await;
    let mut heavy_too = wss_from(gw.wss, "127.0.0.2", &gw.cert, path).await;
    let mut light = wss_from(gw.wss, "127.0.0.3", &gw.cert, "/hook?token=good&uid=bob").await;
    for ws in [&mut heavy, &mut heavy_too, &mut light] {
        assert_eq!(next_message(ws).await, Message::text("welcome"));
    }
    let seq = |size: usize| Message::text(format!("seq 0 {}", "x".repeat(size - 6)));
    // The backend holds "slow" for a second: 127.0.0.2's 40 + 30 bytes wait behind it.
    for (ws, size) in [(&mut heavy, 40), (&mut heavy_too, 30)] {
        bounded(ws.send(Message::text("slow"))).await.unwrap();
        bounded(ws.send(seq(size))).await.unwrap();
    }
    // A round trip of light's through the backend, so that their frames were read before light's next ones.
    assert_eq!(ask(&mut light, "tom").await, "ok");
    // 40 bytes of light's that must wait would make 110: the address holding 70 loses its heaviest connection (40
    // frees enough); light, which would hold 40, is served, and so is 127.0.0.2's other connection.
    bounded(light.send(Message::text("slow"))).await.unwrap();
    bounded(light.send(seq(40))).await.unwrap();
    assert_eq!(expect_close(&mut heavy).await.0, 1008);
    for ws in [&mut heavy_too, &mut light] {
        assert_eq!(next_message(ws).await, Message::text("slow"));
        assert_eq!(next_message(ws).await, Message::text("seq 0"));
    }
    assert_eq!(disconnects(&backend, 1).await.len(), 1);
    assert_eq!(ask(&mut light, "tom").await, "ok");
}

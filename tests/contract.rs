//! The plugin contract 1.x as a plugin author meets it: what loads (a plugin exporting only the connection events,
//! plugins built against the frozen 1.0, 1.1 and 1.2 WITs), what is refused at load and why (timers, HTTP, history or storage without
//! their events, a plugin built for 0.3), `init` refusing its settings in `check`, `serve` and a reload, and deferred upgrades as
//! the gateway counts them.

use futures_util::SinkExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::*;
use wssgate_tests::process::run_bounded;
use wssgate_tests::*;

fn plain_route(path: &str, plugin_file: &Path, extra: &str) -> String {
    format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n[[route]]\npath = \"{path}\"\nplugin = \"{}\"\n{extra}",
        plugin_file.display()
    )
}

fn route(path: &str, plugin_file: &Path, extra: &str) -> String {
    format!(
        "[[route]]\npath = \"{path}\"\nplugin = \"{}\"\n{extra}",
        plugin_file.display()
    )
}

#[tokio::test]
async fn a_plugin_built_against_the_frozen_1_1_wit_sends_a_request_and_reads_its_answer() {
    let backend = wssgate_tests::backend::Backend::start("tests/backends/upstream.py", &[]);
    let upstream = format!(
        "[[upstream]]\nname = \"backend\"\nurl = \"{}\"\n",
        backend.url()
    );
    let gw = TestGateway::start(&format!(
        "{upstream}\n{}",
        route(
            "/frozen",
            &plugin("frozen-1-1"),
            "upstreams = [\"backend\"]"
        )
    ));
    let mut ws = gw.wss("/frozen").await;
    assert_eq!(ask(&mut ws, "fetch /status/201").await, "201 status 201");
}

#[tokio::test]
async fn a_plugin_built_against_the_frozen_1_2_wit_keeps_history_and_keys() {
    let gw = TestGateway::start(&route(
        "/frozen",
        &plugin("frozen-1-2"),
        "[route.history]\n[route.storage]\n",
    ));
    let mut ws = gw.wss("/frozen").await;
    assert_eq!(ask(&mut ws, "last").await, "last none");
    bounded(ws.send(Message::text("note hello"))).await.unwrap();
    let mut answers = [next_text(&mut ws).await, next_text(&mut ws).await];
    answers.sort();
    assert_eq!(answers, ["appended 1", "written 1"]);
    assert_eq!(ask(&mut ws, "last").await, "last hello");
    assert_eq!(ask(&mut ws, "notes").await, "notes 1:hello");
}

/// The next text message.
async fn next_text<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
) -> String {
    match next_message(ws).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn a_plugin_built_against_the_frozen_1_0_wit_exporting_only_the_connection_events_loads_and_works()
 {
    let (ok, text) = check_config(
        &scratch_dir("frozen-check"),
        &plain_route("/frozen", &plugin("frozen-1-0"), ""),
    );
    assert!(ok, "{text}");
    let gw = TestGateway::start(&route("/frozen", &plugin("frozen-1-0"), ""));
    let mut ws = gw.wss("/frozen").await;
    assert_eq!(ask(&mut ws, "tom").await, "tom");
    bounded(ws.send(Message::binary(vec![1u8, 2, 3])))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut ws).await,
        Message::binary(vec![1u8, 2, 3])
    );
    assert_eq!(
        gw.try_wss("/frozen?deny").await.err(),
        Some((401, "denied by a 1.0 plugin".to_owned()))
    );
}

#[test]
fn check_refuses_a_plugin_that_imports_timers_http_history_or_storage_without_exporting_their_events()
 {
    let cases = [
        ("timers-without-events", "timers", "timer-events", "timers"),
        ("http-without-events", "http", "http-events", "http"),
        (
            "history-without-events",
            "history",
            "history-events",
            "history",
        ),
        (
            "storage-without-events",
            "storage",
            "storage-events",
            "storage",
        ),
    ];
    for (name, import, export, arm) in cases {
        let (ok, text) = check_config(&scratch_dir(name), &plain_route("/t", &plugin(name), ""));
        assert!(!ok, "{text}");
        for needle in [
            format!("{}.wasm", name.replace('-', "_")),
            format!(
                "imports `wssgate:plugin/{import}` but does not export `wssgate:plugin/{export}`"
            ),
            format!("export_plugin!(YourPlugin, {arm})"),
        ] {
            assert!(text.contains(&needle), "{needle:?} missing from:\n{text}");
        }
    }
}

#[test]
fn check_says_which_contract_an_old_plugin_was_built_for_and_what_to_do() {
    let (ok, text) = check_config(
        &scratch_dir("contract-0-3"),
        &plain_route("/old", &plugin("contract-0-3"), ""),
    );
    assert!(!ok, "{text}");
    for needle in [
        "contract_0_3.wasm",
        "built for plugin contract wssgate:plugin@0.3.0",
        "rebuild it against wssgate-sdk 1.0",
        "Migrating from 0.x",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

/// echo-ok's `init` refuses an empty `reply`.
const REFUSED: &str = "setting `reply` must not be empty";

#[tokio::test]
async fn init_refusing_its_settings_fails_check_and_serve_with_the_plugins_message() {
    let dir = scratch_dir("init-refused");
    let config = plain_route(
        "/wss",
        &plugin("echo-ok"),
        "[route.settings]\nreply = \"\"\n",
    );
    let (ok, text) = check_config(&dir, &config);
    assert!(!ok, "{text}");
    assert!(
        text.contains(REFUSED) && text.contains("route /wss"),
        "{text}"
    );
    let mut serve = Command::new(gateway_binary());
    serve
        .args(["serve", "--config"])
        .arg(dir.join("gateway.toml"));
    let out = run_bounded(serve, START).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started:\n{stderr}");
    assert!(stderr.contains(REFUSED), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn a_reload_whose_settings_init_refuses_is_rejected_and_the_running_config_kept() {
    let dir = scratch_dir("init-reload");
    let cert = TestCert::create(&dir);
    let config = |settings: &str| {
        format!(
            "workers = 2\n{ADMIN}\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n{}[route.settings]\n{settings}\n",
            cert.cert.display(),
            cert.key.display(),
            route("/wss", &plugin("echo-ok"), "")
        )
    };
    let gw = TestGateway::launch(
        &dir,
        &config("reply = \"pong\""),
        &[],
        Some(cert.der.clone()),
    );
    let mut open = gw.wss("/wss").await;
    assert_eq!(ask(&mut open, "ping").await, "pong");
    assert!(!gw.reload(&dir, &config("reply = \"\"")), "{}", gw.log());
    assert!(gw.log().contains(REFUSED), "{}", gw.log());
    let failures = metric_until(
        &gw,
        "wssgate_plugin_init_failures_total{route=\"/wss\"}",
        |n| n >= 1.0,
    )
    .await;
    assert_eq!(failures, 1.0);
    assert_eq!(ask(&mut open, "ping").await, "pong");
    let mut new = gw.wss("/wss").await;
    assert_eq!(
        ask(&mut new, "ping").await,
        "pong",
        "the running config was not kept"
    );
}

#[tokio::test]
async fn deferred_upgrades_are_counted_and_a_client_leaving_while_deferred_ends_its_state() {
    let gw = TestGateway::start_with(
        &format!("workers = 1\n{ADMIN}"),
        &route("/d", &plugin("deferred"), "accept_timeout_ms = 300\n"),
    );
    // A client that asks, then leaves while the plugin holds its upgrade.
    let mut leaver = tokio::net::TcpStream::connect(gw.ws).await.unwrap();
    let upgrade = "GET /d?wait HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    bounded(leaver.write_all(upgrade.as_bytes())).await.unwrap();
    let waiting = metric_until(&gw, "wssgate_deferred_connections{route=\"/d\"}", |n| {
        n == 1.0
    })
    .await;
    assert_eq!(waiting, 1.0);
    drop(leaver);
    metric_until(&gw, "wssgate_deferred_connections{route=\"/d\"}", |n| {
        n == 0.0
    })
    .await;
    // Its on-close ran: the instance holds state for this connection alone.
    let mut probe = gw.wss("/d").await;
    assert_eq!(ask(&mut probe, "live").await, "live 1");
    // One that nobody answers gets 504 after accept_timeout_ms, and is counted.
    assert_eq!(gw.try_wss("/d?wait").await.err().map(|e| e.0), Some(504));
    metric_until(&gw, "wssgate_accept_timeouts_total{route=\"/d\"}", |n| {
        n == 1.0
    })
    .await;
    let total = metric_until(
        &gw,
        "wssgate_deferred_connections_total{route=\"/d\"}",
        |n| n == 2.0,
    )
    .await;
    assert_eq!(total, 2.0);
    assert_eq!(ask(&mut probe, "live").await, "live 1");
    // Deferred upgrades counted toward the connection limits while they waited, and left nothing behind.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let metrics = admin_get(&gw, "/metrics").await.1;
    assert_eq!(
        sample(&metrics, "wssgate_deferred_connections{route=\"/d\"}"),
        0.0
    );
}

#[tokio::test]
async fn a_deferred_upgrade_counts_toward_the_connection_limit_while_it_waits() {
    let gw = TestGateway::start_with(
        "workers = 1\n[limits]\nmax_connections = 1\n",
        &route("/d", &plugin("deferred"), "accept_timeout_ms = 60000\n"),
    );
    let mut waiting = tokio::net::TcpStream::connect(gw.ws).await.unwrap();
    let upgrade = "GET /d?wait HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    bounded(waiting.write_all(upgrade.as_bytes()))
        .await
        .unwrap();
    // Bounded: the deferred upgrade takes the one slot within moments.
    let mut refused = None;
    for _ in 0..100 {
        match gw.try_wss("/d").await {
            Err((status, _)) => {
                refused = Some(status);
                break;
            }
            Ok(ws) => {
                drop(ws);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(refused, Some(503));
    drop(waiting);
    // Once it left, its slot is free again (bounded like above).
    let mut opened = false;
    for _ in 0..100 {
        if gw.try_wss("/d").await.is_ok() {
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(opened, "the slot of the client that left was never freed");
}

#[tokio::test]
async fn host_calls_from_init_never_fail_under_check_or_serve_and_the_log_facade_reaches_the_log() {
    let routes = route(
        "/d",
        &plugin("deferred"),
        "[route.settings]\ninit = \"host-calls\"\n",
    );
    let (ok, text) = check_config(
        &scratch_dir("init-host-calls"),
        &format!("[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n{routes}"),
    );
    assert!(ok, "{text}");
    assert!(!text.contains("panicked"), "{text}");
    let gw = TestGateway::start(&routes);
    assert!(gw.wait_for_log("init made every host call"), "{}", gw.log());
    let mut ws = gw.wss("/d").await;
    assert_eq!(ask(&mut ws, "log").await, "logged");
    assert!(
        gw.wait_for_log("deferred logs through the log facade"),
        "{}",
        gw.log()
    );
}

#[tokio::test]
async fn after_a_trap_a_waiting_upgrade_is_replayed_at_once_and_an_open_connection_rejected_by_its_replay_is_closed_1008()
 {
    let gw = TestGateway::start_with(
        &format!("workers = 1\n{ADMIN}"),
        &route("/d", &plugin("deferred"), "accept_timeout_ms = 30000\n"),
    );
    let mut doomed = gw.wss("/d?deny-on-restore").await;
    assert_eq!(ask(&mut doomed, "count").await, "count 0");
    // Deferred for 20 s: left alone it would be accepted then, after a `welcome`.
    let waiting = {
        let (wss, cert) = (gw.wss, gw.cert.clone());
        tokio::spawn(async move { try_wss_from(wss, "127.0.0.1", &cert, "/d?accept=20000").await })
    };
    metric_until(&gw, "wssgate_deferred_connections{route=\"/d\"}", |n| {
        n == 1.0
    })
    .await;
    let mut trapper = gw.wss("/d").await;
    bounded(trapper.send(Message::text("panic"))).await.unwrap();
    assert_eq!(expect_close(&mut trapper).await.0, 1011);
    // The replacement replayed the waiting upgrade at once (restored: accepted without its timer's `welcome`).
    let mut opened = bounded(waiting)
        .await
        .unwrap()
        .expect("the waiting upgrade was accepted by the replay");
    assert_eq!(ask(&mut opened, "count").await, "count 0");
    // The open connection's replay, before its next event, rejected it: closed with 1008 and the body.
    bounded(doomed.send(Message::text("count"))).await.unwrap();
    assert_eq!(
        expect_close(&mut doomed).await,
        (1008, "denied on restore".to_owned())
    );
}

//! A connection's life as the plugin sees it: on-connect (and its rejection), on-close after the close handshake,
//! plugin-initiated close, a trapping plugin, WASI inside a worker, subprotocols, and graceful shutdown.

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wssgate_tests::*;

/// One worker, so that every connection of a test meets the same plugin instance.
fn one_worker() -> TestGateway {
    TestGateway::start_with(
        "workers = 1\nshutdown_grace_ms = 3000\n",
        &standard_routes(),
    )
}

/// The probe's `info` line, split into key=value pairs.
async fn info<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
) -> std::collections::HashMap<String, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let line = ask(ws, "info").await;
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test]
async fn on_connect_sees_the_request() {
    let gw = one_worker();
    let mut ws = gw
        .wss_with("/probe?room=7", &[("origin", "https://example.com")])
        .await;
    let seen = info(&mut ws).await;
    assert_eq!(seen["path"], "/probe");
    assert_eq!(seen["query"], "room=7");
    assert!(seen["remote"].starts_with("127.0.0.1:"), "{seen:?}");
    assert_eq!(seen["origin"], "https://example.com");
    assert_eq!(seen["subprotocol"], "-");
}

#[tokio::test]
async fn the_route_picks_its_preferred_subprotocol_and_the_plugin_sees_it() {
    let gw = one_worker();
    let mut ws = gw
        .wss_with(
            "/probe",
            &[("sec-websocket-protocol", "probe.v1, probe.v2")],
        )
        .await;
    assert_eq!(info(&mut ws).await["subprotocol"], "probe.v2");
}

#[tokio::test]
async fn an_on_connect_rejection_reaches_the_client_as_its_http_status_and_body() {
    let gw = one_worker();
    let refused = gw.try_wss("/probe?reject").await.err();
    assert_eq!(refused, Some((403, "rejected by plugin".to_owned())));
}

#[tokio::test]
async fn the_close_handshake_completes_and_on_close_runs() {
    let gw = one_worker();
    let mut watcher = gw.wss("/probe").await;
    let mut leaver = gw.wss("/probe").await;
    let leaver_id = info(&mut leaver).await["id"].clone();
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye now".into(),
    };
    bounded(leaver.close(Some(frame))).await.unwrap();
    // The gateway answers our close frame with its own, then ends the stream.
    assert_eq!(
        expect_close(&mut leaver).await,
        (1000, "bye now".to_owned())
    );
    // on-close ran in the plugin: it told the other connection.
    assert_eq!(
        next_message(&mut watcher).await,
        Message::text(format!("closed {leaver_id} 1000 bye now"))
    );
}

#[tokio::test]
async fn a_plugin_can_close_a_connection() {
    let gw = one_worker();
    let mut watcher = gw.wss("/probe").await;
    let mut closed = gw.wss("/probe").await;
    let id = info(&mut closed).await["id"].clone();
    bounded(closed.send(Message::text("close"))).await.unwrap();
    assert_eq!(
        expect_close(&mut closed).await,
        (4002, "closed by plugin".to_owned())
    );
    assert_eq!(
        next_message(&mut watcher).await,
        Message::text(format!("closed {id} 4002 closed by plugin"))
    );
}

#[tokio::test]
async fn a_panicking_plugin_closes_only_its_connection_with_1011() {
    let gw = one_worker();
    let mut bystander = gw.wss("/echo").await;
    let mut victim = gw.wss("/probe").await;
    bounded(victim.send(Message::text("panic"))).await.unwrap();
    assert_eq!(expect_close(&mut victim).await.0, 1011);
    assert!(gw.wait_for_log("plugin trapped"), "{}", gw.log());
    assert!(
        gw.log().contains("probe was asked to panic"),
        "the panic message reaches the log:\n{}",
        gw.log()
    );
    // Other routes and new connections on the same route are still served.
    assert_eq!(ask(&mut bystander, "still here").await, "still here");
    let mut next = gw.wss("/probe").await;
    assert_eq!(ask(&mut next, "clock").await.split(' ').count(), 3);
}

#[tokio::test]
async fn a_plugin_that_loops_forever_is_stopped_at_its_deadline_with_1011() {
    let gw = one_worker();
    let mut bystander = gw.wss("/probe").await;
    let mut victim = gw.wss("/probe").await;
    bounded(victim.send(Message::text("spin"))).await.unwrap();
    assert_eq!(expect_close(&mut victim).await.0, 1011);
    assert!(gw.wait_for_log("plugin trapped"), "{}", gw.log());
    // The worker was not stalled: the other connection (same worker, same route) is still answered.
    assert_eq!(ask(&mut bystander, "print").await, "printed");
}

#[tokio::test]
async fn a_plugin_that_allocates_without_bound_hits_its_memory_cap_with_1011() {
    let gw = one_worker();
    let mut victim = gw.wss("/probe").await;
    bounded(victim.send(Message::text("hog"))).await.unwrap();
    assert_eq!(expect_close(&mut victim).await.0, 1011);
    let mut next = gw.wss("/probe").await;
    assert_eq!(ask(&mut next, "print").await, "printed");
}

#[tokio::test]
async fn plugins_print_and_read_clocks_from_inside_a_worker() {
    let gw = one_worker();
    let mut ws = gw.wss("/probe").await;
    assert_eq!(ask(&mut ws, "print").await, "printed");
    assert!(
        gw.wait_for_log("probe says hello on stdout"),
        "{}",
        gw.log()
    );
    assert!(
        gw.wait_for_log("probe says hello on stderr"),
        "{}",
        gw.log()
    );
    let clock = ask(&mut ws, "clock").await;
    let secs: u64 = clock.split(' ').nth(1).unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        secs.abs_diff(now) < 60,
        "the plugin's wall clock says {secs}, the test's {now}"
    );
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_zero() {
    let mut gw = TestGateway::start(&standard_routes());
    let mut a = gw.wss("/wss").await;
    let mut b = gw.ws("/echo").await;
    assert_eq!(ask(&mut a, "tom").await, "ok");
    assert_eq!(ask(&mut b, "x").await, "x");
    let pid_exit = tokio::task::spawn_blocking(move || {
        let status = gw.terminate();
        (status, gw)
    });
    assert_eq!(expect_close(&mut a).await.0, 1001);
    assert_eq!(expect_close(&mut b).await.0, 1001);
    // The clients' tungstenite answers the close; the gateway then finishes well inside its grace period.
    drop((a, b));
    let (status, gw) = bounded(pid_exit).await.unwrap();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        gw.log()
    );
}

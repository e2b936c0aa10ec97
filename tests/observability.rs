//! What an operator sees: /metrics in the Prometheus text format, /healthz, and an access-log line per connection.

use futures_util::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::*;
use wssgate_tests::*;

fn gateway() -> TestGateway {
    TestGateway::start_with(
        "workers = 2\n[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"test-token-0123456789\"\n",
        &standard_routes(),
    )
}

#[tokio::test]
async fn healthz_answers_ok() {
    let gw = gateway();
    assert_eq!(
        admin_get(&gw, "/healthz").await,
        (200, "{\"status\":\"ok\"}".to_owned())
    );
}

#[tokio::test]
async fn metrics_count_connections_messages_traps_rejections_and_closes() {
    let gw = gateway();
    let mut echo = gw.ws("/echo").await;
    for text in ["one", "two", "three"] {
        assert_eq!(ask(&mut echo, text).await, text);
    }
    let metrics = admin_get(&gw, "/metrics").await.1;
    assert_eq!(
        sample(&metrics, "wssgate_connections_open{route=\"/echo\"}"),
        1.0
    );
    assert_eq!(
        sample(&metrics, "wssgate_messages_in_total{route=\"/echo\"}"),
        3.0
    );
    assert_eq!(
        sample(&metrics, "wssgate_messages_out_total{route=\"/echo\"}"),
        3.0
    );
    assert_eq!(
        sample(&metrics, "wssgate_bytes_in_total{route=\"/echo\"}"),
        11.0
    );
    assert!(
        sample(
            &metrics,
            "wssgate_plugin_event_seconds_count{route=\"/echo\"}"
        ) >= 4.0
    );

    let mut victim = gw.ws("/probe").await;
    bounded(victim.send(Message::text("panic"))).await.unwrap();
    assert_eq!(expect_close(&mut victim).await.0, 1011);
    bounded(echo.close(None)).await.unwrap();
    let answer = raw_exchange(
        gw.tls_stream().await,
        b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 404"));

    let metrics = metrics_when(&gw, "wssgate_closes_total{code=\"1011\"}", 1.0).await;
    assert_eq!(
        sample(&metrics, "wssgate_plugin_traps_total{route=\"/probe\"}"),
        1.0
    );
    let metrics = metrics_when(&gw, "wssgate_closes_total{code=\"1005\"}", 1.0).await;
    assert_eq!(
        sample(&metrics, "wssgate_connections_total{route=\"/echo\"}"),
        1.0
    );
    assert_eq!(
        sample(&metrics, "wssgate_connections_open{route=\"/echo\"}"),
        0.0
    );
    assert_eq!(
        sample(
            &metrics,
            "wssgate_rejected_connections_total{reason=\"bad_request\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn every_connection_leaves_an_access_log_line() {
    let gw = gateway();
    let mut ws = gw.ws("/echo").await;
    assert_eq!(ask(&mut ws, "hello").await, "hello");
    bounded(ws.close(None)).await.unwrap();
    assert!(gw.wait_for_log("connection closed"), "{}", gw.log());
    let line = gw
        .log()
        .lines()
        .find(|l| l.contains("connection closed"))
        .unwrap()
        .to_owned();
    for field in [
        "client=127.0.0.1:",
        "route=/echo",
        "messages_in=1",
        "bytes_in=5",
        "messages_out=1",
        "close=1005",
    ] {
        assert!(line.contains(field), "{field} missing from: {line}");
    }
}

#[tokio::test]
async fn logs_can_be_json_lines() {
    let gw = TestGateway::start_with(
        "workers = 1\n[log]\nformat = \"json\"\n",
        &standard_routes(),
    );
    let mut ws = gw.ws("/echo").await;
    assert_eq!(ask(&mut ws, "hello").await, "hello");
    bounded(ws.close(None)).await.unwrap();
    assert!(gw.wait_for_log("connection closed"), "{}", gw.log());
    for line in gw.log().lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
    }
    let access = gw
        .log()
        .lines()
        .find(|l| l.contains("connection closed"))
        .unwrap()
        .to_owned();
    let access: serde_json::Value = serde_json::from_str(&access).unwrap();
    assert_eq!(access["fields"]["messages_in"], 1, "{access}");
    assert_eq!(access["fields"]["route"], "/echo", "{access}");
}

#[tokio::test]
async fn the_log_level_comes_from_the_config() {
    let gw = TestGateway::start_with(
        "workers = 1\n[log]\nlevel = \"debug\"\n",
        &standard_routes(),
    );
    let mut tcp = raw_websocket(gw.ws, "/echo").await;
    use tokio::io::AsyncWriteExt;
    bounded(tcp.write_all(&[0x81, 0x02, b'h', b'i']))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut tcp).await, 1002);
    assert!(
        gw.wait_for_log("closing with 1002"),
        "no debug line:\n{}",
        gw.log()
    );
    let quiet = TestGateway::start_with("workers = 1\n", &standard_routes());
    let mut tcp = raw_websocket(quiet.ws, "/echo").await;
    bounded(tcp.write_all(&[0x81, 0x02, b'h', b'i']))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut tcp).await, 1002);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !quiet.log().contains("closing with 1002"),
        "debug lines at the default level:\n{}",
        quiet.log()
    );
}

#[tokio::test]
async fn the_memory_plugin_instances_hold_is_a_gauge_and_a_replaced_instance_gives_its_memory_back()
{
    let gw = TestGateway::start_with(
        "workers = 1\n[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"test-token-0123456789\"\n",
        &format!("{}max_memory_mib = 32\n", standard_routes()),
    );
    let mut first = gw.ws("/probe").await;
    assert!(ask(&mut first, "info").await.contains("path=/probe"));
    let gauge = "wssgate_plugin_memory_bytes{route=\"/probe\"}";
    let fresh = sample(&admin_get(&gw, "/metrics").await.1, gauge);
    assert!(fresh > 0.0, "an instance holds its initial memory");
    // `hog` allocates until the 32 MiB cap refuses: the instance traps and is replaced.
    bounded(first.send(Message::text("hog"))).await.unwrap();
    assert_eq!(expect_close(&mut first).await.0, 1011);
    let mut second = gw.ws("/probe").await;
    assert!(ask(&mut second, "info").await.contains("path=/probe"));
    let after = sample(&admin_get(&gw, "/metrics").await.1, gauge);
    assert_eq!(
        after, fresh,
        "the replacement holds what a fresh instance holds; the hog's 32 MiB were given back"
    );
}

//! The admin listener as tests read it: `/metrics` and `/healthz` over plain HTTP on loopback.

use crate::{TestGateway, bounded, raw_exchange};
use serde_json::Value;
use std::time::Duration;

/// Top-level config that turns the admin listener on (port 0; the address is read back from the log).
pub const ADMIN: &str = "[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"test-token-0123456789\"\n";

/// The admin listener's address, read from the gateway's log.
pub fn admin_address(gw: &TestGateway) -> String {
    assert!(
        gw.wait_for_log("admin API listening on http://"),
        "{}",
        gw.log()
    );
    let log = gw.log();
    let rest = log.split("admin API listening on http://").nth(1).unwrap();
    rest.split_whitespace().next().unwrap().to_owned()
}

/// Sends one HTTP request to the admin listener (the push API); returns the status and the JSON body. The listener
/// keeps connections alive, so the request asks it to close after answering (the answer is read to its end).
pub async fn call(
    gw: &TestGateway,
    method: &str,
    target: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let tcp = bounded(tokio::net::TcpStream::connect(admin_address(gw)))
        .await
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = raw_exchange(tcp, request.as_bytes()).await;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let json = answer
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// GETs `path` from the gateway's admin listener; returns the status and the body.
pub async fn admin_get(gw: &TestGateway, path: &str) -> (u16, String) {
    let tcp = bounded(tokio::net::TcpStream::connect(admin_address(gw)))
        .await
        .unwrap();
    let answer = raw_exchange(
        tcp,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (
        status,
        answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned(),
    )
}

/// The value of one sample line, e.g. `wssgate_messages_in_total{route="/echo"}`.
pub fn sample(metrics: &str, series: &str) -> f64 {
    find_sample(metrics, series).unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
}

/// The value of one sample line, if the exposition has it (a labelled series appears once it is first counted).
fn find_sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Polls /metrics (bounded: 100 times, 50 ms apart) until `series` is there and satisfies `wanted`; returns its
/// value.
pub async fn metric_until(gw: &TestGateway, series: &str, wanted: impl Fn(f64) -> bool) -> f64 {
    let mut text = String::new();
    for _ in 0..100 {
        text = admin_get(gw, "/metrics").await.1;
        if let Some(value) = find_sample(&text, series)
            && wanted(value)
        {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} never reached the wanted value:\n{text}");
}

/// Polls /metrics until `series` reaches `at_least`; returns the last exposition.
pub async fn metrics_when(gw: &TestGateway, series: &str, at_least: f64) -> String {
    metric_until(gw, series, |v| v >= at_least).await;
    admin_get(gw, "/metrics").await.1
}

//! Gateway nodes of a cluster on a real `nats-server` (see [`crate::nats`]), and what the cluster tests ask of them.

use crate::admin::{ADMIN, admin_get, metric_until};
use crate::nats::Nats;
use crate::{TestGateway, bounded, next_message, plugin, raw_exchange, standard_routes};
use futures_util::SinkExt;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Repeats `$check` (a `bool` expression, which may `.await`) every 50 ms until it holds, for at most `$bound`;
/// panics naming `$what` if it never does. Returns how long it took.
#[macro_export]
macro_rules! within {
    ($bound:expr, $what:expr, $check:expr) => {{
        let started = std::time::Instant::now();
        loop {
            if $check {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < $bound,
                "{} did not happen within {:?}",
                $what,
                $bound
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }};
}

/// A node named `name` of the cluster on `servers` (a TOML list's inside), with two workers, the admin API, the
/// standard routes and `/chat`.
pub fn node(name: &str, servers: &str) -> TestGateway {
    let cluster = format!("[cluster]\nservers = [{servers}]\nnode = \"{name}\"\n");
    let routes = format!(
        "{}\n[[route]]\npath = \"/chat\"\nplugin = \"{}\"\n",
        standard_routes(),
        plugin("chat").display()
    );
    TestGateway::start_with(&format!("workers = 2\n{ADMIN}{cluster}"), &routes)
}

/// Nodes with these names on `broker`, each connected and seeing all the others in presence.
pub async fn nodes(broker: &Nats, names: &[&str]) -> Vec<TestGateway> {
    let servers = format!("\"{}\"", broker.url());
    let nodes: Vec<TestGateway> = names.iter().map(|name| node(name, &servers)).collect();
    for gw in &nodes {
        health_becomes(gw, "ok").await;
    }
    sees_others(&nodes).await;
    nodes
}

/// Waits until each of `nodes` has all the others in presence (bounded: 5 s each).
pub async fn sees_others(nodes: &[TestGateway]) {
    let others = (nodes.len() - 1) as f64;
    for gw in nodes {
        metric_until(gw, "wssgate_cluster_nodes", |n| n == others).await;
    }
}

/// Polls `/healthz` (bounded: 10 s) until its status is `wanted`.
pub async fn health_becomes(gw: &TestGateway, wanted: &str) {
    let mut last = String::new();
    for _ in 0..200 {
        last = admin_get(gw, "/healthz").await.1;
        if last.contains(&format!("\"status\":\"{wanted}\"")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/healthz never said {wanted}: {last}");
}

/// The subjects node `name` is subscribed to, from nats-server's monitoring endpoint.
pub async fn subscriptions_of(broker: &Nats, name: &str) -> Vec<String> {
    let tcp = bounded(tokio::net::TcpStream::connect((
        "127.0.0.1",
        broker.monitor,
    )))
    .await
    .unwrap();
    let answer = raw_exchange(
        tcp,
        b"GET /connz?subs=1 HTTP/1.0\r\nHost: localhost\r\n\r\n",
    )
    .await;
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .flat_map(|c| {
            c["subscriptions_list"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Sends `command` and returns the first text reply that starts with `prefix`, skipping others (at most 20): a
/// probe connection also hears of its neighbours' closes.
pub async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    command: &str,
    prefix: &str,
) -> String {
    bounded(ws.send(Message::text(command)))
        .await
        .expect("sending");
    receives_starting(ws, prefix).await
}

/// Waits for a text message that starts with `prefix`, skipping others (at most 20).
pub async fn receives_starting<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    prefix: &str,
) -> String {
    let mut seen = Vec::new();
    for _ in 0..20 {
        match next_message(ws).await {
            Message::Text(text) if text.starts_with(prefix) => return text.to_string(),
            other => seen.push(other),
        }
    }
    panic!("no message starting with {prefix:?} came; got {seen:?}");
}

/// A probe connection's id (from its `info`).
pub async fn id_of<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> u64 {
    let info = reply(ws, "info", "path=").await;
    info.rsplit("id=").next().unwrap().parse().unwrap()
}

/// The size of `group` as a probe connection's plugin sees it.
pub async fn group_size<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    group: &str,
) -> u64 {
    let answer = reply(ws, &format!("size {group}"), "size ").await;
    answer[5..].parse().unwrap()
}

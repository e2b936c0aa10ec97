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
/// standard routes and `/chat`; no `secret`.
pub fn node(name: &str, servers: &str) -> TestGateway {
    sealed_node(name, servers, None)
}

/// The `[cluster] secret` of the sealed test clusters.
pub const SECRET: &str = "test-cluster-secret-0123456789";

/// A node like [`node`], sealing its cluster messages with `secret`.
pub fn sealed_node(name: &str, servers: &str, secret: Option<&str>) -> TestGateway {
    let secret = secret.map_or(String::new(), |s| format!("secret = \"{s}\"\n"));
    let cluster = format!("[cluster]\nservers = [{servers}]\nnode = \"{name}\"\n{secret}");
    let routes = format!(
        "{}\n[[route]]\npath = \"/chat\"\nplugin = \"{}\"\n",
        standard_routes(),
        plugin("chat").display()
    );
    TestGateway::start_with(&format!("workers = 2\n{ADMIN}{cluster}"), &routes)
}

/// Nodes with these names on `broker`, each connected and seeing all the others in presence.
pub async fn nodes(broker: &Nats, names: &[&str]) -> Vec<TestGateway> {
    sealed_nodes(broker, names, None).await
}

/// Nodes like [`nodes`], sealing their cluster messages with `secret`.
pub async fn sealed_nodes(broker: &Nats, names: &[&str], secret: Option<&str>) -> Vec<TestGateway> {
    let servers = format!("\"{}\"", broker.url());
    let nodes: Vec<TestGateway> = names
        .iter()
        .map(|name| sealed_node(name, &servers, secret))
        .collect();
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
    subscription_ids_of(broker, name)
        .await
        .into_iter()
        .map(|(subject, _)| subject)
        .collect()
}

/// Each subscription of node `name` as the broker knows it: its subject and its id (a new subscription to the same
/// subject gets a new one).
pub async fn subscription_ids_of(broker: &Nats, name: &str) -> Vec<(String, String)> {
    let tcp = bounded(tokio::net::TcpStream::connect((
        "127.0.0.1",
        broker.monitor,
    )))
    .await
    .unwrap();
    let answer = raw_exchange(
        tcp,
        b"GET /connz?subs=detail HTTP/1.0\r\nHost: localhost\r\n\r\n",
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
            c["subscriptions_list_detail"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|s| {
            Some((
                s["subject"].as_str()?.to_owned(),
                s["sid"].as_str()?.to_owned(),
            ))
        })
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

/// Cluster wire format 2 as `docs/src/cluster.md` describes it, written here again from the documentation (not
/// taken from the gateway's code), so the attack tests can read what nodes send and forge what an intruder would.
pub mod wire {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    /// A sealed message's parts, read without checking its MAC.
    pub struct Envelope {
        pub tag: u32,
        pub seq: u64,
        pub time: u64,
        pub body: Vec<u8>,
    }

    /// Reads an envelope: `[2]`, tag, sequence number, time, body, 32 bytes of MAC.
    pub fn read(payload: &[u8]) -> Envelope {
        assert!(
            payload.len() >= 53 && payload[0] == 2,
            "not format 2: {payload:?}"
        );
        let u64_at = |at: usize| u64::from_be_bytes(payload[at..at + 8].try_into().unwrap());
        Envelope {
            tag: u32::from_be_bytes(payload[1..5].try_into().unwrap()),
            seq: u64_at(5),
            time: u64_at(13),
            body: payload[21..payload.len() - 32].to_vec(),
        }
    }

    /// Seals `body` on `subject` as node `tag` would with `secret` (an empty one: as a node without a secret).
    pub fn seal(secret: &str, subject: &str, tag: u32, seq: u64, body: &[u8]) -> Vec<u8> {
        let mut out = vec![2];
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&now_ms().to_be_bytes());
        out.extend_from_slice(body);
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&(subject.len() as u32).to_be_bytes());
        mac.update(subject.as_bytes());
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// This machine's clock in milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// A name as a subject token (names up to 100 bytes): `x` and its hex.
    pub fn token(name: &str) -> String {
        std::iter::once("x".to_owned())
            .chain(name.bytes().map(|b| format!("{b:02x}")))
            .collect()
    }

    pub fn group_subject(route: &str, group: &str) -> String {
        format!("wssgate.{}.g.{}", token(route), token(group))
    }

    pub fn node_subject(tag: u32) -> String {
        format!("wssgate.n.{tag:05x}")
    }

    pub const PRESENCE: &str = "wssgate.presence";

    fn put_str(out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(&(text.len() as u32).to_be_bytes());
        out.extend_from_slice(text.as_bytes());
    }

    /// A whole publication's body: `P`, then kind, audience, route, name, exclusions and the message.
    fn publication(kind: u8, audience: u8, route: &str, name: &str, rest: &[u8]) -> Vec<u8> {
        let mut out = vec![b'P', kind, audience];
        put_str(&mut out, route);
        put_str(&mut out, name);
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(rest);
        out
    }

    /// A text message to a group.
    pub fn text_to_group(route: &str, group: &str, text: &str) -> Vec<u8> {
        publication(0, b'g', route, group, text.as_bytes())
    }

    /// A close of one connection.
    pub fn close(route: &str, id: u64, code: u16, reason: &str) -> Vec<u8> {
        let mut rest = code.to_be_bytes().to_vec();
        rest.extend_from_slice(reason.as_bytes());
        publication(2, b'c', route, &id.to_string(), &rest)
    }

    /// One chunk of a chunked publication: `C`, serial, index, count, data.
    pub fn chunk(serial: u64, index: u32, count: u32, data: &[u8]) -> Vec<u8> {
        let mut out = vec![b'C'];
        out.extend_from_slice(&serial.to_be_bytes());
        out.extend_from_slice(&index.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(data);
        out
    }

    fn varint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn postcard_str(out: &mut Vec<u8>, text: &str) {
        varint(out, text.len() as u64);
        out.extend_from_slice(text.as_bytes());
    }

    /// A presence announcement's body (presence format 1, in postcard): what comes after tag, name and change
    /// number is `kind`: `[0]` a heartbeat, `[1]` leaving, or [`group_change`]'s bytes.
    pub fn announcement(tag: u32, node: &str, seq: u64, kind: &[u8]) -> Vec<u8> {
        let mut out = vec![1];
        varint(&mut out, tag.into());
        postcard_str(&mut out, node);
        varint(&mut out, seq);
        out.extend_from_slice(kind);
        out
    }

    /// The kind of an announcement of changes with one piece: `group` of `route` has `members` on the node.
    pub fn group_change(route: &str, group: &str, members: u32) -> Vec<u8> {
        let mut out = vec![2, 1, 0];
        postcard_str(&mut out, route);
        postcard_str(&mut out, group);
        varint(&mut out, members.into());
        out
    }
}

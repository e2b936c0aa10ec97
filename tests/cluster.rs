//! Cluster mode, so far (issue 12, in progress): the link to a real `nats-server` started here — a gateway that
//! starts before its broker serves its own clients and reports `degraded`, connects once the broker comes, notices
//! when it goes and comes back, without a restart.

use std::time::Duration;
use wssgate_tests::admin::{ADMIN, admin_get, metric_until};
use wssgate_tests::nats::Nats;
use wssgate_tests::pebble::free_port;
use wssgate_tests::*;

/// Polls `/healthz` (bounded: 10 s) until its status is `wanted`.
async fn health_becomes(gw: &TestGateway, wanted: &str) {
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

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_node_started_before_its_broker_serves_locally_then_follows_the_broker_up_down_and_up() {
    let port = free_port();
    let cluster = format!("[cluster]\nservers = [\"nats://127.0.0.1:{port}\"]\nnode = \"a\"\n");
    let gw = TestGateway::start_with(
        &format!("workers = 1\n{ADMIN}{cluster}"),
        &standard_routes(),
    );
    let mut ws = gw.wss("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
    health_becomes(&gw, "degraded").await;

    let broker = Nats::start_on(port);
    health_becomes(&gw, "ok").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");

    drop(broker);
    health_becomes(&gw, "degraded").await;
    assert_eq!(
        ask(&mut ws, "tom").await,
        "ok",
        "local delivery goes on without the broker"
    );

    let _broker = Nats::start_on(port);
    health_becomes(&gw, "ok").await;
    metric_until(&gw, "wssgate_cluster_connects_total", |v| v >= 2.0).await;
    metric_until(&gw, "wssgate_cluster_disconnects_total", |v| v >= 1.0).await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
    assert!(
        gw.log().contains("cluster: connected to NATS"),
        "{}",
        gw.log()
    );
}

#[test]
fn bad_cluster_config_names_the_field() {
    let dir = scratch_dir("cluster-config");
    let listener = "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n";
    for (cluster, expected) in [
        ("servers = []", "`servers` lists none"),
        ("servers = [\"127.0.0.1:4222\"]", "is not nats://HOST:PORT"),
        (
            "servers = [\"nats://127.0.0.1:4222\"]\nnode = \"a.b\"",
            "`node`",
        ),
        (
            "servers = [\"nats://127.0.0.1:4222\"]\nprefix = \"x>\"",
            "`prefix`",
        ),
        (
            "servers = [\"nats://127.0.0.1:4222\"]\nuser = \"u\"",
            "`token`, or `user` and `password`",
        ),
    ] {
        let (ok, output) = check_config(&dir, &format!("{listener}[cluster]\n{cluster}\n"));
        assert!(
            !ok && output.contains(expected) && output.contains("line 4"),
            "{cluster}: {output}"
        );
    }
}

/// A node of a cluster on `broker`, with the standard routes, `/chat` and the push API.
fn node(name: &str, broker: &Nats) -> TestGateway {
    let cluster = format!(
        "[cluster]\nservers = [\"{}\"]\nnode = \"{name}\"\n",
        broker.url()
    );
    let routes = format!(
        "{}\n[[route]]\npath = \"/chat\"\nplugin = \"{}\"\n",
        standard_routes(),
        plugin("chat").display()
    );
    TestGateway::start_with(&format!("workers = 2\n{ADMIN}{cluster}"), &routes)
}

/// Nodes `a` and `b` on `broker`, both connected.
async fn two_nodes(broker: &Nats) -> (TestGateway, TestGateway) {
    let (a, b) = (node("a", broker), node("b", broker));
    health_becomes(&a, "ok").await;
    health_becomes(&b, "ok").await;
    (a, b)
}

/// Whether node `name`'s subscription to `subject` comes to be (`wanted`) or to go, within 5 s.
async fn subscription_becomes(broker: &Nats, name: &str, subject: &str, wanted: bool) -> bool {
    for _ in 0..100 {
        let subscribed = subscriptions_of(broker, name)
            .await
            .iter()
            .any(|s| s == subject);
        if subscribed == wanted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Waits for the text message `wanted`, skipping others (at most 20).
async fn receives<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    wanted: &str,
) {
    let mut seen = Vec::new();
    for _ in 0..20 {
        match next_message(ws).await {
            tokio_tungstenite::tungstenite::Message::Text(text) if text.as_str() == wanted => {
                return;
            }
            other => seen.push(other),
        }
    }
    panic!("{wanted:?} never came; got {seen:?}");
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn the_push_api_of_one_node_reaches_a_user_and_a_route_on_another() {
    use futures_util::SinkExt;
    let broker = Nats::start();
    let (a, b) = two_nodes(&broker).await;
    let mut ann = a.wss("/chat").await;
    let login = serde_json::json!({"type": "login", "uid": "ann"}).to_string();
    bounded(ann.send(tokio_tungstenite::tungstenite::Message::text(login)))
        .await
        .unwrap();
    let mut probe = a.wss("/probe").await;
    assert!(ask(&mut probe, "info").await.contains("path=/probe"));
    let cases = [
        (
            "/api/send-to-user",
            serde_json::json!({"route": "/chat", "uid": "ann", "message": "psst"}),
        ),
        (
            "/api/broadcast",
            serde_json::json!({"route": "/probe", "message": "everyone"}),
        ),
    ];
    for ((path, body), ws) in cases.into_iter().zip([&mut ann, &mut probe]) {
        let wanted = body["message"].as_str().unwrap().to_owned();
        // Node a subscribes as its members arrive: push until the subscription is in place (bounded).
        let mut got = false;
        for _ in 0..50 {
            let token = Some("test-token-0123456789");
            let (status, _) =
                wssgate_tests::admin::call(&b, "POST", path, token, Some(body.clone())).await;
            assert_eq!(status, 200);
            if tokio::time::timeout(Duration::from_millis(200), receives(ws, &wanted))
                .await
                .is_ok()
            {
                got = true;
                break;
            }
        }
        assert!(got, "{path} from node b never reached node a");
    }
}

/// The subjects node `name` is subscribed to, from nats-server's monitoring endpoint.
async fn subscriptions_of(broker: &Nats, name: &str) -> Vec<String> {
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

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_publication_reaches_group_members_on_another_node_which_alone_subscribes() {
    let broker = Nats::start();
    let (a, b) = two_nodes(&broker).await;
    let mut member = a.wss("/probe").await;
    assert_eq!(ask(&mut member, "join room").await, "joined");
    let group_subject = "wssgate.x2f70726f6265.g.x726f6f6d"; // "/probe", "room"
    let subscribed = subscription_becomes(&broker, "a", group_subject, true).await;
    assert!(
        subscribed,
        "node a, which has the member, subscribes to the group"
    );
    assert!(
        !subscriptions_of(&broker, "b")
            .await
            .iter()
            .any(|s| s == group_subject),
        "node b has no member and no subscription"
    );
    let mut publisher = b.wss("/probe").await;
    assert_eq!(
        ask(&mut publisher, "publish room hello").await,
        "published 0",
        "no member on b itself"
    );
    assert_eq!(
        next_message(&mut member).await,
        tokio_tungstenite::tungstenite::Message::text("hello")
    );
    // The push API of node b reaches the member on node a too.
    let (status, _) = wssgate_tests::admin::call(
        &b,
        "POST",
        "/api/publish",
        Some("test-token-0123456789"),
        Some(serde_json::json!({"route": "/probe", "group": "room", "message": "pushed"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        next_message(&mut member).await,
        tokio_tungstenite::tungstenite::Message::text("pushed")
    );
    // The last member leaves: node a unsubscribes.
    drop(member);
    let gone = subscription_becomes(&broker, "a", group_subject, false).await;
    assert!(gone, "node a unsubscribed once its last member left");
}

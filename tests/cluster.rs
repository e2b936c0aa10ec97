//! Cluster mode against a real `nats-server` started here: three nodes as one — groups, users, send and close to
//! a connection on another node, the push API, presence and group sizes across nodes, a node that dies, a message
//! as large as the gateway accepts, the chat plugin with its users on different nodes — and a node subscribing only
//! to what it has members of. The broker going away and coming back is in `cluster_outage.rs`.

use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::call;
use wssgate_tests::cluster::*;
use wssgate_tests::nats::Nats;
use wssgate_tests::*;

const TOKEN: Option<&str> = Some("test-token-0123456789");
/// What the README promises: a change on one node is in the others' presence within 100 ms plus transit; tested
/// with room for a loaded machine.
const PRESENCE: Duration = Duration::from_secs(2);
/// A node that dies leaves presence 3 s after it was last heard from (heartbeats every second); tested with room
/// for a loaded machine.
const DEAD_NODE: Duration = Duration::from_millis(4500);

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
        (
            "servers = [\"nats://127.0.0.1:4222\"]\nsecret = \"short\"",
            "`secret` must be at least 16 bytes",
        ),
    ] {
        let (ok, output) = check_config(&dir, &format!("{listener}[cluster]\n{cluster}\n"));
        assert!(
            !ok && output.contains(expected) && output.contains("line 4"),
            "{cluster}: {output}"
        );
    }
}

#[test]
fn check_warns_about_a_cluster_without_a_secret() {
    let dir = scratch_dir("cluster-secret");
    let config = |secret: &str| {
        format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n[cluster]\nservers = [\"nats://127.0.0.1:4222\"]\n{secret}\n{}",
            standard_routes()
        )
    };
    let (ok, output) = check_config(&dir, &config(""));
    assert!(
        ok && output.contains("warning: [cluster] has no `secret`"),
        "{output}"
    );
    let (ok, output) = check_config(&dir, &config("secret = \"0123456789abcdef\""));
    assert!(ok && !output.contains("`secret`"), "{output}");
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn three_nodes_a_group_over_all_gets_each_publish_once_per_member_counts_all_and_outlives_a_dead_node()
 {
    let broker = Nats::start();
    let mut gws = nodes(&broker, &["a", "b", "c"]).await;
    // Two members on each node.
    let mut members = Vec::new();
    for gw in &gws {
        for _ in 0..2 {
            let mut ws = gw.wss("/probe").await;
            assert_eq!(reply(&mut ws, "join room", "joined").await, "joined");
            members.push(ws);
        }
    }
    let took = within!(PRESENCE, "the group's size reaching 6 on every node", {
        let mut all = true;
        for ws in members.iter_mut().step_by(2) {
            all &= group_size(ws, "room").await == 6;
        }
        all
    });
    eprintln!("group size across three nodes after {took:?}");
    let (_, size) = call(
        &gws[1],
        "GET",
        "/api/group-size?route=/probe&group=room",
        TOKEN,
        None,
    )
    .await;
    assert_eq!(
        size["members"], 6,
        "the push API's group size counts every node"
    );

    // A publisher that is no member, on node b: each member gets each message once, in order.
    let mut publisher = gws[1].wss("/probe").await;
    assert_eq!(
        reply(&mut publisher, "publish room m1", "published").await,
        "published 2"
    );
    assert_eq!(
        reply(&mut publisher, "publish room m2", "published").await,
        "published 2"
    );
    for ws in &mut members {
        assert_eq!(next_message(ws).await, Message::text("m1"));
        assert_eq!(next_message(ws).await, Message::text("m2"));
        // Nothing more: the very next message is the answer to this.
        bounded(futures_util::SinkExt::send(ws, Message::text("size room")))
            .await
            .unwrap();
        assert_eq!(next_message(ws).await, Message::text("size 6"));
    }

    // A member on c leaves: the others count 5.
    let leaving = members.remove(5);
    drop(leaving);
    within!(
        PRESENCE,
        "a departure reaching node a",
        group_size(&mut members[0], "room").await == 5
    );

    // Node c dies (SIGKILL: no goodbye): its member leaves presence within the bound.
    let c = gws.pop().unwrap();
    drop(c);
    let killed = std::time::Instant::now();
    within!(DEAD_NODE, "the dead node's member leaving presence", {
        group_size(&mut members[0], "room").await == 4
    });
    eprintln!(
        "a dead node left presence {:?} after it died",
        killed.elapsed()
    );
    wssgate_tests::admin::metric_until(&gws[0], "wssgate_cluster_nodes", |n| n == 1.0).await;
    // The others keep serving: a member on a publishes, the members on b get it.
    assert_eq!(
        reply(&mut members[0], "publish room after", "published").await,
        "published 1"
    );
    for ws in &mut members[1..4] {
        receives(ws, "after").await;
    }
}

/// Waits for the text message `wanted`, skipping others (at most 20).
async fn receives<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    wanted: &str,
) {
    let got = receives_starting(ws, wanted).await;
    assert_eq!(got, wanted);
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn send_close_and_the_push_api_reach_a_connection_on_another_node_of_the_same_route_only() {
    let broker = Nats::start();
    let gws = nodes(&broker, &["a", "b", "c"]).await;
    let (a, c) = (&gws[0], &gws[2]);
    let mut sender = a.wss("/probe").await;
    let mut target = c.wss("/probe").await;
    let target_id = id_of(&mut target).await;
    // A connection of another route on c: a chat user, whose id its login answer says.
    let mut other_route = c.wss("/chat").await;
    let login = chat(
        &mut other_route,
        json!({"type": "login", "uid": "eve"}),
        "login",
    )
    .await;
    let other_route_id: u64 = login["connection"].as_str().unwrap().parse().unwrap();

    // send and close from a plugin on a to a connection on c.
    assert_eq!(
        reply(&mut sender, &format!("tell {target_id} over"), "told").await,
        "told Ok(())"
    );
    receives(&mut target, "over").await;
    // An id of another route is not reached (the node that holds it checks), nor is an id of no node.
    reply(
        &mut sender,
        &format!("tell {other_route_id} intruder"),
        "told",
    )
    .await;
    // Node c takes what node a sends in order: once this marker is in, the intruder was handled there.
    reply(&mut sender, &format!("tell {target_id} marker"), "told").await;
    receives(&mut target, "marker").await;
    let unknown = (0xf_ffffu64 ^ (target_id >> 44)).max(1) << 44 | 1;
    assert_eq!(
        reply(&mut sender, &format!("tell {unknown} nobody"), "told").await,
        "told Err(Closed)"
    );
    chat_send(&mut other_route, json!({"type": "whoami"})).await;
    let first = next_message(&mut other_route).await;
    assert!(
        first.to_text().unwrap().contains("\"whoami\""),
        "the other route's connection got {first:?} first"
    );

    // The push API of node a reaches the client on c.
    let (status, body) = call(
        a,
        "POST",
        "/api/send",
        TOKEN,
        Some(json!({"route": "/probe", "connection": target_id.to_string(), "message": "pushed"})),
    )
    .await;
    assert_eq!((status, body["delivered"].as_u64()), (200, Some(1)));
    receives(&mut target, "pushed").await;

    reply(&mut sender, &format!("kick {target_id}"), "kicked").await;
    let mut code = 0;
    for _ in 0..20 {
        if let Message::Close(Some(frame)) = next_message(&mut target).await {
            code = u16::from(frame.code);
            break;
        }
    }
    assert_eq!(code, 4003, "closed by the plugin on node a");

    // /api/close from node b closes a connection on c.
    let mut second = c.wss("/probe").await;
    let second_id = id_of(&mut second).await;
    let (status, _) = call(
        &gws[1],
        "POST",
        "/api/close",
        TOKEN,
        Some(json!({"route": "/probe", "connection": second_id.to_string(), "code": 4000, "reason": "bye"})),
    )
    .await;
    assert_eq!(status, 200);
    let mut closed = None;
    for _ in 0..20 {
        if let Message::Close(Some(frame)) = next_message(&mut second).await {
            closed = Some((u16::from(frame.code), frame.reason.to_string()));
            break;
        }
    }
    assert_eq!(closed, Some((4000, "bye".to_owned())));
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn the_chat_plugin_with_its_users_on_three_nodes_rooms_dms_and_presence() {
    use futures_util::SinkExt;
    let broker = Nats::start();
    let gws = nodes(&broker, &["a", "b", "c"]).await;
    let mut users = Vec::new();
    for (gw, uid) in gws.iter().zip(["ann", "bob", "cid"]) {
        let mut ws = gw.wss("/chat").await;
        let login = json!({"type": "login", "uid": uid}).to_string();
        bounded(ws.send(Message::text(login))).await.unwrap();
        chat_next(&mut ws, "login").await;
        users.push(ws);
    }
    // A second connection of ann, on node b.
    let mut ann_phone = gws[1].wss("/chat").await;
    let login = json!({"type": "login", "uid": "ann"}).to_string();
    bounded(ann_phone.send(Message::text(login))).await.unwrap();
    chat_next(&mut ann_phone, "login").await;

    // Presence: cid (on c) sees both of ann's connections.
    within!(PRESENCE, "cid seeing ann's two connections", {
        let reply = chat(
            &mut users[2],
            json!({"type": "online", "uid": "ann"}),
            "online",
        )
        .await;
        reply["connections"] == 2
    });
    let (_, online) = call(
        &gws[2],
        "GET",
        "/api/user-online?route=/chat&uid=ann",
        TOKEN,
        None,
    )
    .await;
    assert_eq!(
        online["connections"], 2,
        "the push API's presence counts every node"
    );
    // A DM from cid reaches ann on a and on b.
    chat_send(
        &mut users[2],
        json!({"type": "dm", "to": "ann", "text": "psst"}),
    )
    .await;
    for ws in [&mut users[0], &mut ann_phone] {
        let dm = chat_next(ws, "dm").await;
        assert_eq!(
            (dm["from"].as_str(), dm["text"].as_str()),
            (Some("cid"), Some("psst"))
        );
    }

    // Rooms: each joins the lobby; the last sees three members; each `say` reaches each member once.
    for (i, ws) in users.iter_mut().enumerate() {
        let joined = chat(ws, json!({"type": "join", "room": "lobby"}), "joined").await;
        assert!(joined["members"].as_u64().unwrap() as usize <= i + 1);
    }
    within!(PRESENCE, "the lobby counting three on node a", {
        let again = chat(
            &mut users[0],
            json!({"type": "join", "room": "lobby"}),
            "joined",
        )
        .await;
        again["members"] == 3
    });
    chat_send(
        &mut users[1],
        json!({"type": "say", "room": "lobby", "text": "hello all"}),
    )
    .await;
    for ws in &mut users {
        let said = chat_next(ws, "say").await;
        assert_eq!(
            (said["from"].as_str(), said["text"].as_str()),
            (Some("bob"), Some("hello all"))
        );
    }
    // cid leaves: the others get the presence event.
    chat_send(&mut users[2], json!({"type": "leave", "room": "lobby"})).await;
    for ws in &mut users[..2] {
        // Skipping the join events of ann's repeated joins above (bounded).
        let mut event = Value::Null;
        for _ in 0..10 {
            event = chat_next(ws, "presence").await;
            if event["uid"] == "cid" {
                break;
            }
        }
        assert_eq!(event["event"], "leave", "{event}");
    }

    // Node b stops cleanly (SIGTERM): it says so, and leaves the others' presence at once — well before the 3 s a
    // silent node takes (its clients are still being closed: they do not answer the close here).
    let stopped = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gws[1].pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    within!(
        Duration::from_millis(1500),
        "node b leaving presence on SIGTERM",
        {
            let reply = chat(
                &mut users[2],
                json!({"type": "online", "uid": "ann"}),
                "online",
            )
            .await;
            reply["connections"] == 1
        }
    );
    eprintln!(
        "a stopping node left presence {:?} after SIGTERM",
        stopped.elapsed()
    );
    assert!(
        !gws[2]
            .log()
            .contains("node b left presence (not heard from"),
        "node b left by saying so, not by going silent: {}",
        gws[2].log()
    );
}

/// Sends a chat command.
async fn chat_send<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    command: Value,
) {
    use futures_util::SinkExt;
    bounded(ws.send(Message::text(command.to_string())))
        .await
        .unwrap();
}

/// The next chat event of type `kind`, skipping others (at most 20).
async fn chat_next<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    kind: &str,
) -> Value {
    let mut seen = Vec::new();
    for _ in 0..20 {
        let message = next_message(ws).await;
        if let Message::Text(text) = &message
            && let Ok(value) = serde_json::from_str::<Value>(text)
            && value["type"] == kind
        {
            return value;
        }
        seen.push(message);
    }
    panic!("no {kind:?} event came; got {seen:?}");
}

/// Sends a chat command and returns the answer of type `kind`.
async fn chat<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    command: Value,
    kind: &str,
) -> Value {
    chat_send(ws, command).await;
    chat_next(ws, kind).await
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_message_as_large_as_the_gateway_accepts_crosses_a_nats_server_with_default_settings() {
    let broker = Nats::start();
    let gws = nodes(&broker, &["a", "b"]).await;
    let mut member = gws[0].wss("/probe").await;
    assert_eq!(reply(&mut member, "join big", "joined").await, "joined");
    let mut publisher = gws[1].wss("/probe").await;
    within!(
        PRESENCE,
        "node b counting the member",
        group_size(&mut publisher, "big").await == 1
    );
    // The whole command is max_message_bytes (1 MiB): with its route, group and exclusion it is past the
    // broker's max_payload (1 MiB), so it crosses in chunks.
    let command = "publish big ";
    let body = "x".repeat((1 << 20) - command.len());
    assert_eq!(
        reply(&mut publisher, &format!("{command}{body}"), "published").await,
        "published 0"
    );
    match next_message(&mut member).await {
        Message::Text(text) => assert!(text.as_str() == body, "{} bytes arrived", text.len()),
        other => panic!("expected the large message, got {other:?}"),
    }
    let (_, metrics) = wssgate_tests::admin::admin_get(&gws[0], "/metrics").await;
    assert_eq!(
        wssgate_tests::admin::sample(&metrics, "wssgate_cluster_reassembly_lost_total"),
        0.0
    );
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_node_subscribes_only_to_the_groups_it_has_members_of() {
    let broker = Nats::start();
    let gws = nodes(&broker, &["a", "b"]).await;
    let (a, b) = (&gws[0], &gws[1]);
    let mut member = a.wss("/probe").await;
    assert_eq!(reply(&mut member, "join room", "joined").await, "joined");
    let group_subject = "wssgate.x2f70726f6265.g.x726f6f6d"; // "/probe", "room"
    within!(Duration::from_secs(5), "node a subscribing to the group", {
        subscriptions_of(&broker, "a")
            .await
            .iter()
            .any(|s| s == group_subject)
    });
    let mut publisher = b.wss("/probe").await;
    assert_eq!(
        reply(&mut publisher, "publish room hello", "published").await,
        "published 0"
    );
    assert_eq!(next_message(&mut member).await, Message::text("hello"));
    // Node b has no member: it holds no subscription to the group, so none of its publications reach it.
    assert!(
        !subscriptions_of(&broker, "b")
            .await
            .iter()
            .any(|s| s == group_subject)
    );
    // The last member leaves: node a unsubscribes, a little later (so churn does not flap).
    drop(member);
    let took = within!(Duration::from_secs(5), "node a unsubscribing", {
        !subscriptions_of(&broker, "a")
            .await
            .iter()
            .any(|s| s == group_subject)
    });
    assert!(
        took >= Duration::from_millis(1500),
        "unsubscribed after {took:?}, not 2 s"
    );
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn nodes_reach_a_broker_that_wants_tls_and_a_token_and_one_without_the_token_is_refused() {
    let dir = scratch_dir("nats-tls");
    let cert = TestCert::create(&dir);
    let (cert_path, key_path) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    let broker = Nats::start_with(
        None,
        &[
            "--tls",
            "--tlscert",
            &cert_path,
            "--tlskey",
            &key_path,
            "--auth",
            "s3cret-token",
        ],
    );
    let port = broker.port;
    let cluster = |name: &str, token: &str| {
        format!(
            "[cluster]\nservers = [\"tls://127.0.0.1:{port}\"]\nnode = \"{name}\"\nca = \"{cert_path}\"\n{token}"
        )
    };
    let start = |name: &str, token: &str| {
        TestGateway::start_with(
            &format!(
                "workers = 1\n{}{}",
                wssgate_tests::admin::ADMIN,
                cluster(name, token)
            ),
            &standard_routes(),
        )
    };
    let a = start("a", "token = \"s3cret-token\"\n");
    let b = start("b", "token = \"s3cret-token\"\n");
    let intruder = start("c", "token = \"wrong\"\n");
    health_becomes(&a, "ok").await;
    health_becomes(&b, "ok").await;
    let mut member = a.wss("/probe").await;
    assert_eq!(reply(&mut member, "join room", "joined").await, "joined");
    let mut publisher = b.wss("/probe").await;
    within!(
        PRESENCE,
        "node b counting the member on a",
        group_size(&mut publisher, "room").await == 1
    );
    assert_eq!(
        reply(&mut publisher, "publish room sealed", "published").await,
        "published 0"
    );
    assert_eq!(next_message(&mut member).await, Message::text("sealed"));
    // The node with the wrong token never gets in: degraded, serving its own clients.
    health_becomes(&intruder, "degraded").await;
    assert!(
        intruder.wait_for_log("authorization violation"),
        "{}",
        intruder.log()
    );
    let mut local = intruder.wss("/wss").await;
    assert_eq!(ask(&mut local, "tom").await, "ok");
    assert_eq!(
        wssgate_tests::admin::metric_until(&intruder, "wssgate_cluster_connects_total", |n| n
            == 0.0)
        .await,
        0.0
    );
}

#[test]
fn a_reload_that_changes_the_cluster_says_it_needs_a_restart() {
    let dir = scratch_dir("cluster-reload");
    let cert = TestCert::create(&dir);
    let config = |prefix: &str| {
        format!(
            "[cluster]\nservers = [\"nats://127.0.0.1:{}\"]\nprefix = \"{prefix}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n{}",
            ports::free_port(),
            cert.cert.display(),
            cert.key.display(),
            standard_routes()
        )
    };
    let same = config("one");
    let gw = TestGateway::launch(&dir, &same, &[], Some(cert.der.clone()));
    assert!(gw.reload(&dir, &same));
    assert!(!gw.log().contains("`[cluster]`"), "{}", gw.log());
    assert!(gw.reload(&dir, &config("two")));
    assert!(
        gw.log()
            .contains("the reloaded config changes `[cluster]`, which needs a restart"),
        "{}",
        gw.log()
    );
}

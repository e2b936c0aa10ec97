//! Routes' memory on a single node, end to end: the `keeper` test plugin drives history and storage from a client
//! through a real gateway, which keeps them in `data_dir` across a restart; routes never see each other's data; every
//! cap refuses instead of growing; bad tables are config errors naming the line.

use std::path::Path;
use std::process::Command;
use wssgate_tests::*;

/// The keeper plugin on `path` with `tables` (its `[route.history]` / `[route.storage]`, or nothing).
fn keeper_route(path: &str, tables: &str) -> String {
    format!(
        "[[route]]\npath = \"{path}\"\nplugin = \"{}\"\n{tables}\n",
        plugin("keeper").display()
    )
}

/// A config with the two standard listeners (the TLS one on `cert`) and `routes`.
fn config(cert: &TestCert, top: &str, routes: &str) -> String {
    format!(
        "workers = 2\nshutdown_grace_ms = 3000\n{top}\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n\
         [[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n{routes}",
        cert.cert.display(),
        cert.key.display()
    )
}

/// `appended <offset> <epoch>` → (offset, epoch).
fn appended(answer: &str) -> (u64, String) {
    let words: Vec<&str> = answer.split(' ').collect();
    assert_eq!(words.first(), Some(&"appended"), "{answer}");
    (words[1].parse().unwrap(), words[2].to_owned())
}

#[tokio::test]
async fn history_keeps_consecutive_offsets_cuts_by_size_and_is_recovered_after_a_restart() {
    let dir = scratch_dir("memory-history");
    let cert = TestCert::create(&dir);
    let text = config(
        &cert,
        "",
        &keeper_route("/keep", "[route.history]\nsize = 5\n"),
    );
    let mut gw = TestGateway::launch(&dir, &text, &[], Some(cert.der.clone()));
    let mut ws = gw.ws("/keep").await;
    let mut epoch = String::new();
    for i in 1..=7 {
        let (offset, e) = appended(&ask(&mut ws, &format!("append lobby m{i}")).await);
        assert_eq!(offset, i);
        if i > 1 {
            assert_eq!(e, epoch, "the epoch stays while the stream lives");
        }
        epoch = e;
    }
    // Size 5 keeps offsets 3 to 7: a client that saw 2 missed nothing, one that saw 1 missed offset 2.
    assert_eq!(
        ask(&mut ws, "read lobby 3").await,
        format!("page {epoch} true 5:m5,6:m6,7:m7")
    );
    assert_eq!(
        ask(&mut ws, &format!("read lobby 10 2 {epoch}")).await,
        format!("page {epoch} true 3:m3,4:m4,5:m5,6:m6,7:m7")
    );
    assert_eq!(
        ask(&mut ws, &format!("read lobby 2 1 {epoch}")).await,
        format!("page {epoch} false 3:m3,4:m4")
    );
    assert_eq!(
        ask(&mut ws, "read lobby 10 4 another-epoch").await,
        format!("page {epoch} false 3:m3,4:m4,5:m5,6:m6,7:m7")
    );
    assert_eq!(ask(&mut ws, "read empty 10").await, "page - true");
    drop(ws);
    assert!(gw.terminate().success());

    // The same data_dir after a restart: the stream goes on where it was.
    let gw = TestGateway::launch(&dir, &text, &[], Some(cert.der.clone()));
    let mut ws = gw.wss("/keep").await;
    assert_eq!(
        ask(&mut ws, &format!("read lobby 10 5 {epoch}")).await,
        format!("page {epoch} true 6:m6,7:m7")
    );
    assert_eq!(
        appended(&ask(&mut ws, "append lobby m8").await),
        (8, epoch.clone())
    );
    let data = dir.join("data");
    assert!(data.join("wssgate.redb").is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "the data_dir is the gateway user's own"
    );
}

#[tokio::test]
async fn keys_compare_and_set_expire_and_survive_a_restart() {
    let dir = scratch_dir("memory-keys");
    let cert = TestCert::create(&dir);
    let text = config(&cert, "", &keeper_route("/keep", "[route.storage]\n"));
    let mut gw = TestGateway::launch(&dir, &text, &[], Some(cert.der.clone()));
    let mut ws = gw.ws("/keep").await;
    assert_eq!(ask(&mut ws, "get topic").await, "none");
    assert_eq!(ask(&mut ws, "set topic tea if=0").await, "written 1");
    assert_eq!(
        ask(&mut ws, "set topic coffee if=0").await,
        "error Conflict(1)"
    );
    assert_eq!(ask(&mut ws, "get topic").await, "value 1 tea");
    assert_eq!(ask(&mut ws, "set topic coffee if=1").await, "written 2");
    assert_eq!(
        ask(&mut ws, "set topic water if=1").await,
        "error Conflict(2)"
    );
    assert_eq!(ask(&mut ws, "remove topic if=1").await, "error Conflict(2)");
    assert_eq!(ask(&mut ws, "set brief hello ttl=300").await, "written 3");
    assert_eq!(ask(&mut ws, "get brief").await, "value 3 hello");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(ask(&mut ws, "get brief").await, "none", "expired");
    assert_eq!(ask(&mut ws, "set gone x").await, "written 4");
    assert_eq!(ask(&mut ws, "remove gone").await, "written 5");
    assert_eq!(ask(&mut ws, "get gone").await, "none");
    drop(ws);
    assert!(gw.terminate().success());

    let gw = TestGateway::launch(&dir, &text, &[], Some(cert.der.clone()));
    let mut ws = gw.ws("/keep").await;
    assert_eq!(ask(&mut ws, "get topic").await, "value 2 coffee");
    assert_eq!(
        ask(&mut ws, "set topic milk").await,
        "written 6",
        "revisions go on growing after a restart"
    );
}

#[tokio::test]
async fn a_route_never_sees_another_routes_history_or_keys() {
    let tables = "[route.history]\n[route.storage]\n";
    let gw = TestGateway::start(&format!(
        "{}{}",
        keeper_route("/a", tables),
        keeper_route("/b", tables)
    ));
    let (mut a, mut b) = (gw.ws("/a").await, gw.ws("/b").await);
    assert_eq!(appended(&ask(&mut a, "append room secret").await).0, 1);
    assert_eq!(ask(&mut a, "set key mine").await, "written 1");
    assert_eq!(ask(&mut b, "read room 10").await, "page - true");
    assert_eq!(ask(&mut b, "get key").await, "none");
    assert_eq!(
        appended(&ask(&mut b, "append room other").await).0,
        1,
        "b's group of the same name is its own"
    );
    assert_eq!(
        ask(&mut b, "set key theirs if=0").await,
        "written 1",
        "b's revisions are its own too"
    );
    assert_eq!(ask(&mut a, "get key").await, "value 1 mine");
}

#[tokio::test]
async fn every_cap_refuses_at_once_or_answers_quota_exceeded_and_writes_nothing() {
    let routes = format!(
        "{}{}",
        keeper_route(
            "/small",
            "[route.history]\nmax_message_bytes = 8\nmax_groups = 2\nmax_bytes = 20\n\
             [route.storage]\nmax_key_bytes = 4\nmax_value_bytes = 6\nmax_keys = 2\nmax_bytes = 12\n"
        ),
        keeper_route("/bare", "")
    );
    let gw = TestGateway::start_with(
        "workers = 1\n[limits]\nmax_storage_requests_per_instance = 4\nmax_name_bytes = 8\n",
        &routes,
    );
    let mut ws = gw.ws("/small").await;
    assert_eq!(ask(&mut ws, "append g 123456789").await, "refused TooLarge");
    assert_eq!(
        ask(&mut ws, "append groupname9 x").await,
        "refused InvalidName"
    );
    assert_eq!(ask(&mut ws, "set toolong v").await, "refused InvalidName");
    assert_eq!(ask(&mut ws, "set k 1234567").await, "refused TooLarge");
    // History: two groups at most, 20 bytes in all.
    assert_eq!(appended(&ask(&mut ws, "append g1 12345678").await).0, 1);
    assert_eq!(appended(&ask(&mut ws, "append g2 12345678").await).0, 1);
    assert_eq!(ask(&mut ws, "append g3 x").await, "error QuotaExceeded");
    assert_eq!(ask(&mut ws, "append g1 12345").await, "error QuotaExceeded");
    assert_eq!(appended(&ask(&mut ws, "append g1 1234").await).0, 2);
    assert_eq!(ask(&mut ws, "read g3 10").await, "page - true");
    // Storage: two keys at most, 12 bytes of keys and values.
    assert_eq!(ask(&mut ws, "set a 12345").await, "written 1");
    assert_eq!(ask(&mut ws, "set b 123456").await, "error QuotaExceeded");
    assert_eq!(ask(&mut ws, "set b 1234").await, "written 2");
    assert_eq!(ask(&mut ws, "set c 1").await, "error QuotaExceeded");
    assert_eq!(ask(&mut ws, "get b").await, "value 2 1234");
    assert_eq!(ask(&mut ws, "get c").await, "none");
    // Requests waiting for their answers: four at most per instance.
    assert_eq!(ask(&mut ws, "burst 10 a").await, "refused 6 TooManyPending");
    // A route without the tables.
    let mut bare = gw.ws("/bare").await;
    assert_eq!(ask(&mut bare, "append g x").await, "refused NotConfigured");
    assert_eq!(ask(&mut bare, "get k").await, "refused NotConfigured");
}

/// `wssgate serve` on `config` in `dir`, expected to fail: its output.
fn serve_fails(dir: &Path, config: &str) -> String {
    std::fs::write(dir.join("second.toml"), config).unwrap();
    let out = Command::new(gateway_binary())
        .args(["serve", "--config"])
        .arg(dir.join("second.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "a second gateway started");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_second_gateway_on_the_same_data_dir_is_refused_naming_the_file() {
    let dir = scratch_dir("memory-lock");
    let cert = TestCert::create(&dir);
    let text = config(&cert, "", &keeper_route("/keep", "[route.storage]\n"));
    let gw = TestGateway::launch(&dir, &text, &[], Some(cert.der.clone()));
    let output = serve_fails(&dir, &text);
    assert!(
        output.contains("wssgate.redb") && output.contains("another gateway"),
        "{output}"
    );
    drop(gw);
}

#[test]
fn bad_history_and_storage_tables_are_config_errors_naming_the_line_and_key() {
    let dir = scratch_dir("memory-check");
    let cases = [
        ("[route.history]\nsize = 0\n", "`size` must be 1 to 10000"),
        ("[route.history]\nttl_secs = 0\n", "`ttl_secs` must be 1 to"),
        (
            "[route.storage]\nmax_value_bytes = 2000000\n",
            "`max_value_bytes` must be 1 to 1048576",
        ),
        ("[route.storage]\nmax_keyz = 3\n", "max_keyz"),
    ];
    for (tables, needle) in cases {
        let text = format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n{}",
            keeper_route("/keep", tables)
        );
        let (ok, output) = check_config(&dir, &text);
        assert!(!ok, "accepted {tables:?}");
        assert!(output.contains(needle), "{tables:?}: {output}");
        assert!(output.contains("line 9"), "{tables:?}: {output}");
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn send_json(ws: &mut Ws, value: serde_json::Value) {
    use futures_util::SinkExt;
    bounded(ws.send(tokio_tungstenite::tungstenite::Message::text(
        value.to_string(),
    )))
    .await
    .unwrap();
}

async fn next_json(ws: &mut Ws) -> serde_json::Value {
    match next_message(ws).await {
        tokio_tungstenite::tungstenite::Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected JSON text, got {other:?}"),
    }
}

/// Logs `uid` in on `/chat` and joins `room`; returns the client and its `joined` answer.
async fn chat_member(gw: &TestGateway, uid: &str, room: &str) -> (Ws, serde_json::Value) {
    let mut ws = gw.ws("/chat").await;
    send_json(&mut ws, serde_json::json!({"type": "login", "uid": uid})).await;
    assert_eq!(next_json(&mut ws).await["type"], "login");
    send_json(&mut ws, serde_json::json!({"type": "join", "room": room})).await;
    let joined = next_json(&mut ws).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    (ws, joined)
}

/// The next message of `type` (presence events in between are skipped).
async fn next_of(ws: &mut Ws, kind: &str) -> serde_json::Value {
    for _ in 0..20 {
        let value = next_json(ws).await;
        if value["type"] == kind {
            return value;
        }
    }
    panic!("no {kind} among 20 messages");
}

/// The shipped `config/gateway.toml` as the Quick start serves it, on loopback ports of the test's choosing (plus a
/// plain listener for the test's clients), with its data_dir in `dir`.
fn shipped_chat_config(dir: &Path) -> String {
    for name in ["echo-ok", "echo", "chat"] {
        plugin(name);
    }
    let release = target_dir().join("wasm32-wasip2/release");
    let shipped = std::fs::read_to_string(workspace_root().join("config/gateway.toml")).unwrap();
    assert!(shipped.contains("[route.history]") && shipped.contains("[route.storage]"));
    let text = shipped.replace("0.0.0.0:8282", "127.0.0.1:0").replace(
        "../target/wasm32-wasip2/release",
        &release.display().to_string(),
    );
    format!(
        "data_dir = \"{}\"\n{text}\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n",
        dir.join("data").display()
    )
}

#[tokio::test]
async fn the_shipped_chat_numbers_each_say_keeps_the_topic_and_a_client_catches_up_after_reconnecting_and_a_restart()
 {
    let dir = scratch_dir("memory-chat");
    let text = shipped_chat_config(&dir);
    let mut gw = TestGateway::launch(&dir, &text, &[], None);
    let (mut ann, joined) = chat_member(&gw, "ann", "lobby").await;
    assert_eq!(joined["topic"], serde_json::Value::Null, "{joined}");
    let (mut bob, _) = chat_member(&gw, "bob", "lobby").await;
    send_json(
        &mut ann,
        serde_json::json!({"type": "topic", "room": "lobby", "text": "tea"}),
    )
    .await;
    assert_eq!(next_of(&mut bob, "topic").await["text"], "tea");
    let mut epoch = String::new();
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        send_json(
            &mut ann,
            serde_json::json!({"type": "say", "room": "lobby", "text": text}),
        )
        .await;
        let said = next_of(&mut bob, "say").await;
        assert_eq!(
            next_of(&mut ann, "say").await,
            said,
            "the sender gets its say too"
        );
        assert_eq!(said["offset"], i as u64 + 1, "{said}");
        assert_eq!(said["text"], *text);
        epoch = said["epoch"].as_str().unwrap().to_owned();
    }
    // Bob goes away; two more messages; bob comes back and asks for what he missed.
    drop(bob);
    for text in ["four", "five"] {
        send_json(
            &mut ann,
            serde_json::json!({"type": "say", "room": "lobby", "text": text}),
        )
        .await;
        assert_eq!(next_of(&mut ann, "say").await["text"], text);
    }
    let (mut bob, joined) = chat_member(&gw, "bob", "lobby").await;
    assert_eq!(joined["topic"], "tea", "{joined}");
    let since = serde_json::json!({"offset": 3, "epoch": epoch});
    send_json(
        &mut bob,
        serde_json::json!({"type": "history", "room": "lobby", "since": since}),
    )
    .await;
    let page = next_of(&mut bob, "history").await;
    assert_eq!(page["complete"], true, "{page}");
    assert_eq!(page["epoch"], epoch.as_str());
    let missed: Vec<_> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["offset"].clone(), m["text"].clone(), m["uid"].clone()))
        .collect();
    assert_eq!(
        missed,
        [
            (
                serde_json::json!(4),
                serde_json::json!("four"),
                serde_json::json!("ann")
            ),
            (
                serde_json::json!(5),
                serde_json::json!("five"),
                serde_json::json!("ann")
            ),
        ]
    );
    // A position from another epoch: the page says the gap cannot be filled.
    let stale = serde_json::json!({"offset": 3, "epoch": "an-old-epoch"});
    send_json(
        &mut bob,
        serde_json::json!({"type": "history", "room": "lobby", "since": stale}),
    )
    .await;
    let page = next_of(&mut bob, "history").await;
    assert_eq!(page["complete"], false, "{page}");
    assert_eq!(page["messages"].as_array().unwrap().len(), 5);
    drop((ann, bob));
    assert!(gw.terminate().success());

    // After a restart on the same data_dir, the room's history and topic are still there.
    let gw = TestGateway::launch(&dir, &text, &[], None);
    let (mut cid, joined) = chat_member(&gw, "cid", "lobby").await;
    assert_eq!(joined["topic"], "tea", "{joined}");
    let since = serde_json::json!({"offset": 4, "epoch": epoch});
    send_json(
        &mut cid,
        serde_json::json!({"type": "history", "room": "lobby", "since": since}),
    )
    .await;
    let page = next_of(&mut cid, "history").await;
    assert_eq!(page["complete"], true, "{page}");
    assert_eq!(page["messages"][0]["text"], "five", "{page}");
    send_json(
        &mut cid,
        serde_json::json!({"type": "say", "room": "lobby", "text": "six"}),
    )
    .await;
    let said = next_of(&mut cid, "say").await;
    assert_eq!(
        (said["offset"].as_u64(), said["epoch"].as_str()),
        (Some(6), Some(epoch.as_str()))
    );
}

#[tokio::test]
async fn the_status_shows_what_each_route_holds_and_where() {
    use wssgate_tests::admin::call;
    let tables = "[route.history]\n[route.storage]\n";
    // A port of its own: `wssgate status` reads the admin address from the config.
    let port = wssgate_tests::ports::free_port();
    let admin =
        format!("[admin]\naddress = \"127.0.0.1:{port}\"\ntoken = \"test-token-0123456789\"\n");
    let gw = TestGateway::start_with(
        &format!("workers = 2\n{admin}"),
        &format!(
            "{}{}",
            keeper_route("/keep", tables),
            keeper_route("/bare", "")
        ),
    );
    let mut ws = gw.ws("/keep").await;
    assert_eq!(appended(&ask(&mut ws, "append a hello").await).0, 1);
    assert_eq!(appended(&ask(&mut ws, "append b hi").await).0, 1);
    assert_eq!(ask(&mut ws, "set topic tea").await, "written 1");
    let (code, status) = call(
        &gw,
        "GET",
        "/api/status",
        Some("test-token-0123456789"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["store"]["kind"], "file", "{status}");
    assert_eq!(status["store"]["health"], "ok", "{status}");
    let route = |path: &str| {
        status["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == path)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        route("/keep")["stored"],
        serde_json::json!({"history_groups": 2, "history_bytes": 7, "keys": 1, "key_bytes": 8}),
        "two groups of 5 and 2 bytes; the key `topic` with `tea`"
    );
    assert!(route("/bare").get("stored").is_none(), "{status}");
    let out = Command::new(gateway_binary())
        .args(["status", "--config"])
        .arg(gw.config_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("store: file (ok)"), "{text}");
    assert!(
        text.contains("/keep: history 2 group(s), 7 bytes; storage 1 key(s), 8 bytes"),
        "{text}"
    );
}

#[tokio::test]
async fn after_a_reload_the_retired_instance_still_gets_its_answers_so_old_connections_chat_on() {
    let dir = scratch_dir("memory-reload");
    let cert = TestCert::create(&dir);
    let chat = |reply: &str| {
        format!(
            "[[route]]\npath = \"/chat\"\nplugin = \"{}\"\n[route.settings]\nnote = \"{reply}\"\n[route.history]\n[route.storage]\n",
            plugin("chat").display()
        )
    };
    let gw = TestGateway::launch(
        &dir,
        &config(&cert, "", &chat("first")),
        &[],
        Some(cert.der.clone()),
    );
    let (mut ann, _) = chat_member(&gw, "ann", "lobby").await;
    let (mut bob, _) = chat_member(&gw, "bob", "lobby").await;
    assert!(
        gw.reload(&dir, &config(&cert, "", &chat("second"))),
        "{}",
        gw.log()
    );
    // Both connections stay on the retired instance; ann's say is appended without an owner, and its answer (which
    // publishes it) still reaches that instance.
    send_json(
        &mut ann,
        serde_json::json!({"type": "say", "room": "lobby", "text": "still here"}),
    )
    .await;
    let said = next_of(&mut bob, "say").await;
    assert_eq!(said["text"], "still here");
    assert_eq!(said["offset"], 1, "{said}");
}

#[tokio::test]
async fn an_instance_may_wait_for_16_history_reads_at_once() {
    let gw = TestGateway::start(&keeper_route("/keep", "[route.history]\n"));
    let mut ws = gw.ws("/keep").await;
    assert_eq!(ask(&mut ws, "reads 20 g").await, "refused 4 TooManyPending");
}

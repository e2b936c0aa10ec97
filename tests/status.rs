//! `wssgate status` against a running gateway: the numbers match what the test's clients did, `--json` parses,
//! `--watch` refreshes until Ctrl-C, and each way of not reaching the gateway is one line and a failing exit code.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use wssgate_tests::ports::free_port;
use wssgate_tests::*;

const TOKEN: &str = "status-test-token-0123456789";

fn status(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(gateway_binary())
        .arg("status")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn gateway_with_admin() -> (TestGateway, u16) {
    let port = free_port();
    let gw = TestGateway::start_with(
        &format!("workers = 2\n[admin]\naddress = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n"),
        &standard_routes(),
    );
    (gw, port)
}

#[tokio::test]
async fn status_counts_what_the_clients_did_per_worker_and_route() {
    let (gw, _) = gateway_with_admin();
    let mut echoes = Vec::new();
    for _ in 0..3 {
        echoes.push(gw.ws("/echo").await);
    }
    for (n, ws) in echoes.iter_mut().enumerate() {
        for m in 0..=n {
            assert_eq!(ask(ws, &format!("m{m}")).await, format!("m{m}"));
        }
    }
    let mut ok = gw.wss("/wss").await;
    assert_eq!(ask(&mut ok, "tom").await, "ok");

    let out = status(gw.config_path(), &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints one JSON object");
    assert_eq!(json["totals"]["connections_open"], 4, "{json:#}");
    assert_eq!(json["workers"].as_array().unwrap().len(), 2);
    let open: u64 = json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["connections_open"].as_u64().unwrap())
        .sum();
    assert_eq!(open, 4, "the workers' connections add up");
    let route = |path: &str| {
        json["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["route"] == path)
            .unwrap_or_else(|| panic!("no route {path} in {json:#}"))
            .clone()
    };
    assert_eq!(route("/echo")["connections_open"], 3);
    assert_eq!(route("/echo")["messages_in"], 6);
    assert_eq!(route("/echo")["messages_out"], 6);
    assert_eq!(route("/wss")["messages_in"], 1);
    assert_eq!(route("/wss")["bytes_in"], 3);
    assert!(route("/probe")["plugin_memory_bytes"].as_u64().unwrap() > 0);
    // One instance per worker and route (the default `instances = 1`), two workers.
    assert_eq!(route("/echo")["plugin_instances"], 2);
    assert_eq!(json["totals"]["plugin_instances"], 6);
    assert!(json["rss_bytes"].as_u64().unwrap() > 0);
    assert!(json["config"].as_str().unwrap().ends_with("gateway.toml"));
    assert!(json["last_reload_unix_ms"].is_null(), "not reloaded yet");
    assert!(json["cluster"].is_null());

    let out = status(gw.config_path(), &[]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "wssgate ", "worker 0", "worker 1", "total", "/echo", "/wss", "/probe", "msg in/s",
    ] {
        assert!(table.contains(needle), "no {needle:?} in:\n{table}");
    }
}

/// Fails with exit code ≠ 0 and one line on stderr holding `needle`.
fn one_line_failure(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn no_gateway_a_wrong_token_or_no_admin_listener_is_one_line_and_a_failure() {
    let (gw, port) = gateway_with_admin();
    let dir = scratch_dir("status-errors");
    let config = std::fs::read_to_string(gw.config_path()).unwrap();
    let wrong = dir.join("wrong-token.toml");
    std::fs::write(&wrong, config.replace(TOKEN, "not-the-token-0123456789")).unwrap();
    one_line_failure(&status(&wrong, &[]), "refused the config's [admin] token");

    let off = dir.join("no-admin.toml");
    std::fs::write(
        &off,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n[[route]]\npath = \"/echo\"\nplugin = \"{}\"\n",
            plugin("echo").display()
        ),
    )
    .unwrap();
    one_line_failure(&status(&off, &[]), "the admin listener is off");

    let path = gw.config_path().to_path_buf();
    drop(gw);
    // Nothing listens on the admin port once the gateway is gone.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    one_line_failure(&status(&path, &[]), "no gateway answers");
}

#[tokio::test]
async fn watch_refreshes_until_ctrl_c_and_then_exits_cleanly() {
    let (gw, _) = gateway_with_admin();
    let mut watch = Command::new(gateway_binary())
        .args(["status", "--watch", "--config"])
        .arg(gw.config_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // SAFETY: kill(2) on the child's pid; no memory is involved.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(watch.id() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "--watch did not end on SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.matches("worker 0").count() >= 2,
        "refreshed at least twice:\n{text}"
    );
}

fn connections(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(gateway_binary())
        .arg("connections")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn connections_lists_each_connection_with_its_route_user_groups_and_traffic() {
    let port = free_port();
    let gw = TestGateway::start_with(
        &format!("workers = 2\n[admin]\naddress = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n"),
        &format!(
            "{}\n[[route]]\npath = \"/chat\"\nplugin = \"{}\"\n",
            standard_routes(),
            plugin("chat").display()
        ),
    );
    let mut echo = gw.ws("/echo").await;
    for text in ["a", "bb", "ccc"] {
        assert_eq!(ask(&mut echo, text).await, text);
    }
    let mut chat = gw.ws("/chat").await;
    let login = r#"{"type":"login","uid":"ann"}"#;
    assert!(ask(&mut chat, login).await.contains("login"));
    let join = r#"{"type":"join","room":"lobby"}"#;
    assert!(ask(&mut chat, join).await.contains("joined"));

    let out = connections(gw.config_path(), &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["total"], 2, "{json:#}");
    let listed = json["connections"].as_array().unwrap();
    let on = |route: &str| listed.iter().find(|c| c["route"] == route).unwrap().clone();
    let (e, c) = (on("/echo"), on("/chat"));
    assert_eq!(e["messages_in"], 3);
    assert_eq!(e["bytes_in"], 6);
    assert_eq!(e["messages_out"], 3);
    assert_eq!(e["state"], "open");
    assert!(e["user"].is_null());
    assert_eq!(c["user"], "ann");
    assert_eq!(c["groups"], 1);
    assert_eq!(c["messages_in"], 2);
    assert_eq!(c["bytes_in"], (login.len() + join.len()) as u64);
    assert!(
        c["remote_address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(c["id"].as_str().unwrap().parse::<u64>().is_ok());

    let out = connections(gw.config_path(), &["--route", "/chat"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2, "a header and one line:\n{text}");
    assert!(
        text.contains("ann") && text.contains("/chat") && !text.contains("/echo"),
        "{text}"
    );

    let out = connections(gw.config_path(), &["--limit", "1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 of 2 shown"));
    one_line_failure(
        &connections(gw.config_path(), &["--route", "/nowhere"]),
        "no route /nowhere",
    );
}

#[tokio::test]
async fn a_user_id_with_terminal_escapes_is_printed_escaped() {
    let port = free_port();
    let gw = TestGateway::start_with(
        &format!("[admin]\naddress = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n"),
        &format!(
            "[[route]]\npath = \"/chat\"\nplugin = \"{}\"\n",
            plugin("chat").display()
        ),
    );
    let mut chat = gw.ws("/chat").await;
    // An OSC 52 sequence (set the clipboard) and a screen clear, as a client-chosen user id.
    let login = r#"{"type":"login","uid":"\u001b]52;c;aGk=\u0007\u001b[2Jeve"}"#;
    assert!(ask(&mut chat, login).await.contains("login"));
    let out = connections(gw.config_path(), &["--route", "/chat"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(['\u{1b}', '\u{7}']), "{text:?}");
    assert!(
        text.contains(r"\u{1b}]52;c;aGk=\u{7}\u{1b}[2Jeve"),
        "{text}"
    );
}

/// Asks `status --json` until `done` holds for its answer; fails with the last answer after 10 s.
async fn status_until(
    config: &std::path::Path,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..100 {
        let out = status(config, &["--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        last = serde_json::from_slice(&out.stdout).unwrap();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("status never showed {what}:\n{last:#}");
}

fn route_of(json: &serde_json::Value, path: &str, field: &str) -> u64 {
    json["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == path)
        .and_then(|r| r[field].as_u64())
        .unwrap_or_else(|| panic!("no {field} of {path} in {json:#}"))
}

fn workers_sum(json: &serde_json::Value, field: &str) -> u64 {
    json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w[field].as_u64().unwrap_or_else(|| panic!("no {field}")))
        .sum()
}

/// Each route's timers and outbound requests are counted while they live, in the route that started them, and the
/// counts go back down when they end with their connection; throttled addresses and the upgrades each worker
/// refused for them show too.
#[tokio::test]
async fn timers_requests_and_throttling_are_shown_per_route_and_worker() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let backend = wssgate_tests::backend::Backend::start("tests/backends/upstream.py", &[]);
    let port = free_port();
    let gw = TestGateway::start_with(
        &format!(
            "workers = 2\n[admin]\naddress = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n\
             [limits]\nmax_traps_per_ip = 1\n"
        ),
        &format!(
            "{}\n[[upstream]]\nname = \"backend\"\nurl = \"{}\"\ntimeout_ms = 60000\n\
             [[route]]\npath = \"/fetch\"\nplugin = \"{}\"\nupstreams = [\"backend\"]\n",
            standard_routes(),
            backend.url(),
            plugin("fetcher").display()
        ),
    );
    let config = gw.config_path();

    // Two timers on /probe: one for the route, one owned by the connection.
    let mut probe = gw.ws("/probe").await;
    assert!(ask(&mut probe, "timer 3600000").await.starts_with("timer "));
    bounded(probe.send(Message::text("reset"))).await.unwrap();
    // Two requests in flight on /fetch, held by a slow backend.
    let mut fetch = gw.ws("/fetch").await;
    for _ in 0..2 {
        bounded(fetch.send(Message::text("get backend /slow?ms=30000")))
            .await
            .unwrap();
    }
    let json = status_until(config, "2 timers and 2 requests", |j| {
        route_of(j, "/probe", "timers") == 2 && route_of(j, "/fetch", "requests_in_flight") == 2
    })
    .await;
    assert_eq!(route_of(&json, "/probe", "requests_in_flight"), 0);
    assert_eq!(route_of(&json, "/fetch", "timers"), 0);
    assert_eq!(workers_sum(&json, "timers"), 2);
    assert_eq!(json["timers"], 2);
    assert_eq!(json["totals"]["requests_in_flight"], 2);
    let out = status(config, &[]);
    let table = String::from_utf8_lossy(&out.stdout);
    for needle in ["timers", "requests", "throttled"] {
        assert!(table.contains(needle), "no {needle:?} in:\n{table}");
    }

    // Their connections close: the owned timer and both requests end; the route's timer stays.
    bounded(probe.close(None)).await.unwrap();
    bounded(fetch.close(None)).await.unwrap();
    status_until(config, "1 timer and no request", |j| {
        route_of(j, "/probe", "timers") == 1 && route_of(j, "/fetch", "requests_in_flight") == 0
    })
    .await;

    // A client that makes the plugin trap once is throttled (max_traps_per_ip = 1): its next upgrade is refused.
    let mut trapper = wss_from(gw.wss, "127.0.0.7", &gw.cert, "/probe").await;
    bounded(trapper.send(Message::text("panic"))).await.unwrap();
    assert_eq!(expect_close(&mut trapper).await.0, 1011);
    let refused = try_wss_from(gw.wss, "127.0.0.7", &gw.cert, "/probe").await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 429),
        "{:?}",
        refused.map(|_| ())
    );
    let json = status_until(config, "the throttled address", |j| {
        j["throttled_addresses"] == 1
    })
    .await;
    assert_eq!(workers_sum(&json, "throttled_upgrades"), 1, "{json:#}");
}

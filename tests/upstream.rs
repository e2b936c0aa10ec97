//! Outbound HTTP from plugins (`tests/plugins/fetcher`) to real HTTP servers on 127.0.0.1 (`tests/backends/
//! upstream.py`): grants, round trips, every typed failure, caps, HTTPS with a private CA, exactly-once answers,
//! cancellation, and a worker that keeps serving while a backend is slow.

use futures_util::SinkExt;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::{ADMIN, admin_get, metric_until};
use wssgate_tests::backend::Backend;
use wssgate_tests::*;

const UPSTREAM: &str = "tests/backends/upstream.py";

/// A gateway with `upstreams` (TOML) and `/fetch` granted `grants`, beside the standard routes.
fn gateway(workers: usize, upstreams: &str, grants: &str) -> TestGateway {
    let routes = format!(
        "{upstreams}\n{}\n[[route]]\npath = \"/fetch\"\nplugin = \"{}\"\nupstreams = {grants}\n",
        standard_routes(),
        plugin("fetcher").display()
    );
    TestGateway::start_with(&format!("workers = {workers}\n{ADMIN}"), &routes)
}

fn upstream(name: &str, url: &str, extra: &str) -> String {
    format!("[[upstream]]\nname = \"{name}\"\nurl = \"{url}\"\n{extra}\n")
}

/// Asks the fetcher and splits a `status CODE X-BACKEND BODY` answer.
async fn fetch<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    command: &str,
) -> (u16, String, String) {
    let answer = ask(ws, command).await;
    let mut parts = answer.splitn(4, ' ');
    assert_eq!(parts.next(), Some("status"), "{command}: {answer}");
    let status = parts.next().unwrap().parse().unwrap();
    let header = parts.next().unwrap().to_owned();
    (status, header, parts.next().unwrap_or("").to_owned())
}

#[tokio::test]
async fn a_granted_upstream_round_trips_and_nothing_else_is_reachable() {
    let backend = Backend::start(UPSTREAM, &[]);
    let base = format!("{}/base/", backend.url());
    let upstreams = upstream("backend", &base, "") + &upstream("other", &backend.url(), "");
    let gw = gateway(1, &upstreams, "[\"backend\"]");
    let mut ws = gw.ws("/fetch").await;

    let (status, header, body) = fetch(&mut ws, "post backend /echo?x=1 hello").await;
    assert_eq!((status, header.as_str()), (200, "yes"), "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(
        echo["target"], "/base/echo?x=1",
        "the upstream's base path leads"
    );
    assert_eq!(echo["body"], "hello");
    assert_eq!(echo["headers"]["content-type"], "text/plain");
    assert_eq!(echo["headers"]["content-length"], "5");

    // The authority is the upstream's, whatever the plugin says; hop-by-hop headers never leave.
    let (_, _, body) = fetch(&mut ws, "headers backend /echo").await;
    let echo: Value = serde_json::from_str(&body).unwrap();
    let headers = echo["headers"].as_object().unwrap();
    assert_eq!(headers["host"], format!("127.0.0.1:{}", backend.port));
    assert_eq!(headers["x-plugin"], "yes");
    assert!(!headers.contains_key("transfer-encoding"), "{headers:?}");
    assert_ne!(
        headers.get("connection").and_then(Value::as_str),
        Some("close")
    );

    // Not granted, unknown, and not a path under the upstream.
    assert_eq!(ask(&mut ws, "get other /echo").await, "refused NotGranted");
    assert_eq!(ask(&mut ws, "get nosuch /echo").await, "refused NotGranted");
    assert_eq!(
        ask(&mut ws, "get backend echo").await,
        "refused InvalidRequest"
    );
    assert_eq!(
        ask(&mut ws, "get backend //evil.example/echo")
            .await
            .split(' ')
            .nth(1),
        Some("200"),
        "a path that looks like an authority is still a path on the upstream"
    );

    // Statuses other than 2xx are responses too; no redirect is followed.
    let (status, _, _) = fetch(&mut ws, "get backend /status/302").await;
    assert_eq!(status, 302);
    let (status, _, body) = fetch(&mut ws, "get backend /status/503").await;
    assert_eq!((status, body.as_str()), (503, "status 503"));

    // Keep-alive: twenty requests in a row reuse the pooled connection.
    for _ in 0..20 {
        fetch(&mut ws, "get backend /echo").await;
    }
    let (_, _, stats) = fetch(&mut ws, "get backend /stats").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["requests"].as_u64().unwrap() >= 26, "{stats}");
    assert!(
        stats["connections"].as_u64().unwrap() <= 2,
        "a new connection per request: {stats}"
    );

    let (_, metrics) = admin_get(&gw, "/metrics").await;
    for series in [
        "wssgate_upstream_requests_total{upstream=\"backend\",outcome=\"response\"}",
        "wssgate_upstream_request_seconds_count{upstream=\"backend\"}",
    ] {
        assert!(
            admin::sample(&metrics, series) >= 26.0,
            "{series}:\n{metrics}"
        );
    }
    assert_eq!(
        admin::sample(&metrics, "wssgate_upstream_in_flight{upstream=\"backend\"}"),
        0.0
    );
}

#[tokio::test]
async fn failures_arrive_as_typed_errors_and_caps_refuse() {
    let backend = Backend::start(UPSTREAM, &[]);
    // Nothing listens there: a port drawn where no other test's port-0 bind can land on it meanwhile.
    let down = format!("http://127.0.0.1:{}", ports::free_port());
    let url = backend.url();
    let upstreams = [
        upstream("backend", &url, ""),
        upstream("quick", &url, "timeout_ms = 300"),
        upstream("down", &down, ""),
        upstream(
            "capped",
            &url,
            "max_response_bytes = 1000\nmax_request_bytes = 100",
        ),
        upstream("narrow", &url, "max_in_flight = 2"),
    ]
    .concat();
    let grants = "[\"backend\", \"quick\", \"down\", \"capped\", \"narrow\"]";
    let gw = gateway(1, &upstreams, grants);
    let mut ws = gw.ws("/fetch").await;

    let error = |answer: String| answer.split(' ').take(2).collect::<Vec<_>>().join(" ");
    // The plugin's own timeout shortens the upstream's; the upstream's bounds every request.
    assert_eq!(
        error(ask(&mut ws, "timeout backend /slow?ms=3000 200").await),
        "error timeout"
    );
    assert_eq!(
        error(ask(&mut ws, "get quick /slow?ms=3000").await),
        "error timeout"
    );
    assert_eq!(
        error(ask(&mut ws, "timeout quick /slow?ms=1000 60000").await),
        "error timeout",
        "a plugin cannot lengthen the upstream's timeout"
    );
    assert_eq!(
        error(ask(&mut ws, "get down /echo").await),
        "error connect-failed"
    );
    assert_eq!(
        error(ask(&mut ws, "get capped /big?bytes=5000").await),
        "error response-too-large"
    );
    assert_eq!(
        ask(&mut ws, "get capped /big?bytes=500")
            .await
            .split(' ')
            .nth(1),
        Some("200")
    );
    // Headers count toward the response bound: a backend cannot move its bulk into them. A head past the bound is
    // too large whether it fits the read buffer (5,000 bytes) or not (20,000 bytes).
    for bytes in [5_000, 20_000] {
        assert_eq!(
            error(ask(&mut ws, &format!("get capped /heavy?bytes={bytes}")).await),
            "error response-too-large",
            "{bytes} bytes of headers"
        );
    }
    assert_eq!(
        ask(&mut ws, "get capped /heavy?bytes=300")
            .await
            .split(' ')
            .nth(1),
        Some("200")
    );
    assert_eq!(
        error(ask(&mut ws, "get backend /cut").await),
        "error protocol"
    );
    let big = "x".repeat(200);
    assert_eq!(
        ask(&mut ws, &format!("post capped /echo {big}")).await,
        "refused TooLarge"
    );

    // Two in flight at most: the third is refused at once, the two still answer.
    for _ in 0..2 {
        bounded(ws.send(Message::text("get narrow /slow?ms=1500")))
            .await
            .unwrap();
    }
    metric_until(
        &gw,
        "wssgate_upstream_in_flight{upstream=\"narrow\"}",
        |v| v == 2.0,
    )
    .await;
    assert_eq!(
        ask(&mut ws, "get narrow /echo").await,
        "refused TooManyInFlight"
    );
    for _ in 0..2 {
        let answer = next_message(&mut ws).await.into_text().unwrap();
        assert!(answer.starts_with("status 200"), "{answer}");
    }
    let (_, metrics) = admin_get(&gw, "/metrics").await;
    for outcome in [
        "timeout",
        "connect_failed",
        "response_too_large",
        "protocol",
    ] {
        let upstream = match outcome {
            "connect_failed" => "down",
            "response_too_large" => "capped",
            _ => "backend",
        };
        let series = format!(
            "wssgate_upstream_requests_total{{upstream=\"{upstream}\",outcome=\"{outcome}\"}}"
        );
        assert!(
            admin::sample(&metrics, &series) >= 1.0,
            "{series}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_hostile_route_saturating_a_shared_upstream_leaves_the_other_route_its_share() {
    let backend = Backend::start(UPSTREAM, &[]);
    // Eight places per worker, shared by two routes: each gets half by default.
    let shared = upstream(
        "shared",
        &backend.url(),
        "max_in_flight = 8\ntimeout_ms = 60000",
    );
    let route = |path: &str| {
        format!(
            "[[route]]\npath = \"{path}\"\nplugin = \"{}\"\nupstreams = [\"shared\"]\n",
            plugin("fetcher").display()
        )
    };
    let gw = TestGateway::start_with(
        &format!("workers = 1\n{ADMIN}"),
        &format!("{shared}\n{}\n{}", route("/hostile"), route("/victim")),
    );
    // The hostile route asks for a hundred slow requests at once (held 8 s, long past the checks below): it gets
    // its share, the rest are refused.
    let mut hostile = gw.ws("/hostile").await;
    bounded(hostile.send(Message::text("many shared /slow?ms=8000 100 100")))
        .await
        .unwrap();
    metric_until(
        &gw,
        "wssgate_upstream_in_flight{upstream=\"shared\"}",
        |v| v >= 4.0,
    )
    .await;
    assert_eq!(
        ask(&mut hostile, "get shared /echo").await,
        "refused TooManyInFlight"
    );
    // The other route granted the same upstream still gets through while the hostile one holds its share.
    let mut victim = gw.ws("/victim").await;
    let (status, _, body) = fetch(&mut victim, "get shared /echo").await;
    assert_eq!(status, 200, "{body}");
    // Once the victim's answer is handed over, the hostile route alone holds places: exactly its share.
    metric_until(
        &gw,
        "wssgate_upstream_in_flight{upstream=\"shared\"}",
        |v| v == 4.0,
    )
    .await;
    let (_, metrics) = admin_get(&gw, "/metrics").await;
    assert!(
        admin::sample(
            &metrics,
            "wssgate_cap_hits_total{cap=\"upstream_route_share\"}"
        ) >= 97.0,
        "{metrics}"
    );
    let done = tokio::time::timeout(Duration::from_secs(30), next_message(&mut hostile))
        .await
        .expect("the hostile batch did not finish")
        .into_text()
        .unwrap();
    assert!(done.starts_with("done ok=4 error=0"), "{done}");
}

#[tokio::test]
async fn https_upstreams_are_verified_against_their_ca() {
    let dir = scratch_dir("upstream-tls");
    let cert = TestCert::create(&dir);
    let (cert_path, key_path) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    let backend = Backend::start(UPSTREAM, &["--cert", &cert_path, "--key", &key_path]);
    let url = format!("https://localhost:{}", backend.port);
    let upstreams = upstream("secure", &url, &format!("ca = \"{cert_path}\""))
        + &upstream("untrusted", &url, "");
    let gw = gateway(1, &upstreams, "[\"secure\", \"untrusted\"]");
    let mut ws = gw.ws("/fetch").await;
    let (status, _, body) = fetch(&mut ws, "get secure /echo").await;
    assert_eq!(status, 200, "{body}");
    let answer = ask(&mut ws, "get untrusted /echo").await;
    assert!(answer.starts_with("error tls"), "{answer}");
}

#[tokio::test]
async fn every_request_gets_exactly_one_answer_across_ten_thousand_with_random_failures() {
    let backend = Backend::start(UPSTREAM, &[]);
    let gw = gateway(2, &upstream("backend", &backend.url(), ""), "[\"backend\"]");
    let mut ws = gw.ws("/fetch").await;
    bounded(ws.send(Message::text("many backend /flaky 10000 64")))
        .await
        .unwrap();
    // The plugin answers once, at the end of the batch: the whole batch has this bound (`next_message`'s 10 s
    // per message would cut it short on a loaded machine).
    let answer = tokio::time::timeout(Duration::from_secs(300), async {
        loop {
            let message = futures_util::StreamExt::next(&mut ws)
                .await
                .expect("the stream ended")
                .expect("reading");
            if let Message::Text(text) = message {
                return text.to_string();
            }
        }
    })
    .await
    .expect("the batch did not finish");
    let counts: std::collections::HashMap<&str, u64> = answer
        .strip_prefix("done ")
        .unwrap_or_else(|| panic!("{answer}"))
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect();
    assert_eq!(counts["ok"] + counts["error"], 10_000, "{answer}");
    assert_eq!((counts["duplicate"], counts["refused"]), (0, 0), "{answer}");
    assert!(counts["error"] > 0, "the backend failed none: {answer}");
}

#[tokio::test]
async fn requests_die_with_their_connection_and_with_their_instance() {
    let backend = Backend::start(UPSTREAM, &[]);
    let gw = gateway(1, &upstream("backend", &backend.url(), ""), "[\"backend\"]");
    let cancelled = "wssgate_upstream_requests_total{upstream=\"backend\",outcome=\"cancelled\"}";
    let in_flight = "wssgate_upstream_in_flight{upstream=\"backend\"}";

    // The owner closes: the request ends, no event follows.
    let mut owner = gw.ws("/fetch").await;
    bounded(owner.send(Message::text("get backend /slow?ms=1000")))
        .await
        .unwrap();
    metric_until(&gw, in_flight, |v| v == 1.0).await;
    bounded(owner.close(None)).await.unwrap();
    metric_until(&gw, cancelled, |v| v == 1.0).await;
    metric_until(&gw, in_flight, |v| v == 0.0).await;
    let mut witness = gw.ws("/fetch").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ask(&mut witness, "stats").await, "responses 0");

    // The instance is replaced after a trap: its requests end with it, its other connections stay open.
    bounded(witness.send(Message::text("get backend /slow?ms=1000")))
        .await
        .unwrap();
    metric_until(&gw, in_flight, |v| v == 1.0).await;
    let mut crasher = gw.ws("/fetch").await;
    bounded(crasher.send(Message::text("panic"))).await.unwrap();
    assert_eq!(expect_close(&mut crasher).await.0, 1011);
    metric_until(&gw, cancelled, |v| v == 2.0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        ask(&mut witness, "stats").await,
        "responses 0",
        "the replaced instance's request answered into the fresh one"
    );
    let (status, _, _) = fetch(&mut witness, "get backend /echo").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_deferred_upgrade_waits_for_the_backend() {
    let backend = Backend::start(UPSTREAM, &[]);
    let gw = gateway(1, &upstream("backend", &backend.url(), ""), "[\"backend\"]");
    let mut ws = gw.ws("/fetch?auth=/status/204").await;
    assert_eq!(ask(&mut ws, "stats").await, "responses 1");
    let refused = gw.try_wss("/fetch?auth=/status/401").await;
    assert_eq!(refused.err().map(|(status, _)| status), Some(401));
    drop(backend);
    let refused = gw.try_wss("/fetch?auth=/status/204").await;
    assert_eq!(
        refused.err().map(|(status, _)| status),
        Some(502),
        "a backend that is down fails closed"
    );
}

#[tokio::test]
async fn a_slow_backend_never_stalls_the_worker() {
    let backend = Backend::start(UPSTREAM, &[]);
    // A timeout well past the backend's delay: this test is about the worker, not about timeouts.
    let slow = upstream("backend", &backend.url(), "timeout_ms = 60000");
    let gw = gateway(1, &slow, "[\"backend\"]");
    let mut fetcher = gw.ws("/fetch").await;
    bounded(fetcher.send(Message::text("many backend /slow?ms=3000 300 300")))
        .await
        .unwrap();
    metric_until(
        &gw,
        "wssgate_upstream_in_flight{upstream=\"backend\"}",
        |v| v >= 100.0,
    )
    .await;
    // One worker serves both: every round trip of the bystander completes within a generous bound throughout.
    let mut bystander = gw.wss("/wss").await;
    let started = Instant::now();
    let mut round_trips = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let reply = tokio::time::timeout(Duration::from_secs(2), ask(&mut bystander, "tom"))
            .await
            .expect("a round trip took over 2 s while the backend was slow");
        assert_eq!(reply, "ok");
        round_trips += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(round_trips >= 20, "{round_trips}");
    let done = tokio::time::timeout(Duration::from_secs(60), next_message(&mut fetcher))
        .await
        .expect("the slow batch did not finish")
        .into_text()
        .unwrap();
    assert!(done.starts_with("done ok=300 error=0"), "{done}");
}

#[tokio::test]
async fn a_plugin_cannot_reroute_its_request_out_of_the_base_path() {
    let backend = Backend::start(UPSTREAM, &[]);
    let upstreams = upstream("backend", &format!("{}/base/", backend.url()), "");
    let gw = gateway(1, &upstreams, "[\"backend\"]");
    let mut ws = gw.ws("/fetch").await;
    // Dots encoded twice: a proxy in front of the backend that decodes once more would see `/base/../admin`.
    for path in [
        "/%252e%252e/admin",
        "/a/%252E%252e/b",
        "/%25252e%25252e/admin",
        "/%252e%252e%253b/admin",
    ] {
        assert_eq!(
            ask(&mut ws, &format!("get backend {path}")).await,
            "refused InvalidRequest",
            "{path}"
        );
    }
    // An encoded percent sign alone is an ordinary path.
    let (status, _, body) = fetch(&mut ws, "get backend /100%25/echo").await;
    assert_eq!(status, 200, "{body}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["target"], "/base/100%25/echo");

    // Headers that IIS, Symfony and host-routing backends take as the real target or host never leave.
    let (_, _, body) = fetch(&mut ws, "reroute backend /echo").await;
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["target"], "/base/echo");
    let headers = echo["headers"].as_object().unwrap();
    assert_eq!(headers["x-plugin"], "yes");
    for rerouting in ["x-original-url", "x-rewrite-url", "x-forwarded-host"] {
        assert!(!headers.contains_key(rerouting), "{rerouting}: {headers:?}");
    }
}

#[test]
fn bad_upstream_config_names_the_line_and_field() {
    let dir = scratch_dir("upstream-config");
    let route = format!(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n[[route]]\npath = \"/fetch\"\nplugin = \"{}\"\n",
        plugin("fetcher").display()
    );
    let cases = [
        (
            format!("{route}upstreams = [\"nosuch\"]\n"),
            "`upstreams` names `nosuch`, which no [[upstream]] defines",
        ),
        (
            format!("[[upstream]]\nname = \"b\"\nurl = \"ftp://127.0.0.1/\"\n{route}"),
            "must start with http:// or https://",
        ),
        (
            format!(
                "[[upstream]]\nname = \"b\"\nurl = \"http://127.0.0.1/\"\ntimeout_ms = 0\n{route}"
            ),
            "`timeout_ms` must be at least 1",
        ),
        (
            format!(
                "[[upstream]]\nname = \"b\"\nurl = \"https://127.0.0.1/\"\nca = \"missing.pem\"\n{route}"
            ),
            "`ca`",
        ),
    ];
    for (config, expected) in cases {
        let (ok, output) = check_config(&dir, &config);
        assert!(!ok && output.contains(expected), "{expected}: {output}");
        assert!(output.contains("line "), "{output}");
    }
}

//! permessage-deflate (RFC 7692) through the gateway, with raw clients that compress and inflate by hand: what is
//! negotiated for which offer, compressed messages both ways, the bombs and bad frames refused with the close code
//! the RFCs call for (and the gateway's memory flat after them), and a publish to a thousand compressed members
//! compressed once.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wssgate_tests::admin::{ADMIN, metric_until};
use wssgate_tests::process::run_json_client;
use wssgate_tests::*;

/// A route serving `plugin` at `path` with `compression` (a TOML line, or nothing).
fn route(path: &str, plugin_name: &str, compression: &str) -> String {
    format!(
        "[[route]]\npath = \"{path}\"\nplugin = \"{}\"\n{compression}\n",
        plugin(plugin_name).display()
    )
}

/// A gateway with /z (echo, shared compression), /zd (echo, dedicated), /plain (echo, compression off) and /probe
/// (shared, every message compressed).
fn gateway(workers: usize) -> TestGateway {
    TestGateway::start_with(
        &format!("workers = {workers}\n{ADMIN}"),
        &[
            route("/z", "echo", "compression = \"shared\""),
            route("/zd", "echo", "compression = \"dedicated\""),
            route("/plain", "echo", ""),
            route(
                "/probe",
                "probe",
                "compression = \"shared\"\ncompression_min_bytes = 0",
            ),
        ]
        .concat(),
    )
}

/// Upgrades a raw connection to `path` with `extra` request headers; returns it and the response head.
async fn upgrade(gw: &TestGateway, path: &str, extra: &str) -> (TcpStream, String) {
    let mut tcp = bounded(TcpStream::connect(gw.ws))
        .await
        .expect("connecting");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    );
    let head = raw_head(&mut tcp, request.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    (tcp, head)
}

/// The `Sec-WebSocket-Extensions` of a response head.
fn extensions(head: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
        .map(str::to_owned)
}

const SHARED_ANSWER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;

/// A masked client frame.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0xa1, 0xb2, 0xc3, 0xd4];
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// `message` deflated as RFC 7692 sends it: a sync flush, without its last four bytes.
fn deflate(message: &[u8], level: u32) -> Vec<u8> {
    let mut compress = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(message.len() + 1024);
    compress
        .compress_vec(message, &mut out, FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A compressed payload inflated (with a fresh context: the gateway keeps none in shared mode).
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 20 + 1024);
    Decompress::new(false)
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

/// 2 KiB or so of chat JSON.
fn chat_json(n: usize) -> String {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{{\"from\":\"user{}\",\"room\":\"lobby\",\"text\":\"message {i}\"}}",
                i % 5
            )
        })
        .collect();
    format!("[{}]", lines.join(","))
}

#[tokio::test]
async fn what_is_negotiated_for_each_offer() {
    let gw = gateway(1);
    let offer = |o: &str| format!("Sec-WebSocket-Extensions: {o}\r\n");
    // WeChat's and most clients' bare offer.
    let (_, head) = upgrade(&gw, "/z", &offer("permessage-deflate")).await;
    assert_eq!(extensions(&head).as_deref(), Some(SHARED_ANSWER));
    // Chromium's offer, in dedicated mode: windows of 12 bits both ways.
    let (_, head) = upgrade(
        &gw,
        "/zd",
        &offer("permessage-deflate; client_max_window_bits"),
    )
    .await;
    assert_eq!(
        extensions(&head).as_deref(),
        Some("permessage-deflate; client_max_window_bits=12")
    );
    // A declined first offer, the second accepted, across two headers.
    let two = offer("permessage-deflate; server_max_window_bits=8")
        + &offer("permessage-deflate; server_max_window_bits=10");
    let (_, head) = upgrade(&gw, "/z", &two).await;
    assert_eq!(
        extensions(&head).unwrap(),
        format!("{SHARED_ANSWER}; server_max_window_bits=10")
    );
    // Nothing acceptable, compression off, or Safari 15.2: the upgrade succeeds uncompressed.
    let (_, head) = upgrade(&gw, "/z", &offer("permessage-deflate; mystery=1")).await;
    assert_eq!(extensions(&head), None);
    let (_, head) = upgrade(&gw, "/plain", &offer("permessage-deflate")).await;
    assert_eq!(extensions(&head), None);
    let safari = "User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.2 Safari/605.1.15\r\n";
    let (_, head) = upgrade(&gw, "/z", &(offer("permessage-deflate") + safari)).await;
    assert_eq!(extensions(&head), None);
}

#[tokio::test]
async fn compressed_messages_go_both_ways_and_small_ones_stay_plain() {
    let gw = gateway(1);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (mut tcp, _) = upgrade(&gw, "/z", offer).await;
    let json = chat_json(40);
    assert!(json.len() > 1500);
    // A compressed message in, in two fragments with a ping between them.
    let wire = deflate(json.as_bytes(), 6);
    let (a, b) = wire.split_at(wire.len() / 2);
    let mut bytes = frame(RSV1 | 0x1, a);
    bytes.extend(frame(FIN | 0x9, b"hi"));
    bytes.extend(frame(FIN, b));
    // A small plain message (uncompressed messages stay legal), and a small compressed one.
    bytes.extend(frame(FIN | 0x1, b"tom"));
    bytes.extend(frame(FIN | RSV1 | 0x1, &deflate(b"jerry", 1)));
    bounded(tcp.write_all(&bytes)).await.unwrap();

    let (first, payload) = raw_frame(&mut tcp).await;
    assert_eq!(
        (first, payload.as_slice()),
        (FIN | 0xA, &b"hi"[..]),
        "the pong"
    );
    let (first, payload) = raw_frame(&mut tcp).await;
    assert_eq!(first, FIN | RSV1 | 0x1, "the echo goes back compressed");
    assert!(
        payload.len() * 3 < json.len(),
        "{} of {}",
        payload.len(),
        json.len()
    );
    assert_eq!(inflate(&payload), json.as_bytes());
    // Below compression_min_bytes (512): uncompressed.
    assert_eq!(raw_frame(&mut tcp).await, (FIN | 0x1, b"tom".to_vec()));
    assert_eq!(raw_frame(&mut tcp).await, (FIN | 0x1, b"jerry".to_vec()));

    let series = |name: &str, direction: &str| {
        format!("wssgate_deflate_{name}_total{{route=\"/z\",direction=\"{direction}\"}}")
    };
    metric_until(&gw, &series("messages", "in"), |v| v == 2.0).await;
    metric_until(&gw, &series("plain_bytes", "in"), |v| {
        v == (json.len() + 5) as f64
    })
    .await;
    metric_until(&gw, &series("messages", "out"), |v| v == 1.0).await;
    metric_until(&gw, &series("wire_bytes", "out"), |v| {
        v > 0.0 && v * 3.0 < json.len() as f64
    })
    .await;
    metric_until(&gw, "wssgate_compressed_connections{route=\"/z\"}", |v| {
        v == 1.0
    })
    .await;
    drop(tcp);
    metric_until(&gw, "wssgate_compressed_connections{route=\"/z\"}", |v| {
        v == 0.0
    })
    .await;
}

#[tokio::test]
async fn dedicated_mode_keeps_a_context_per_connection() {
    let gw = gateway(1);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (mut tcp, head) = upgrade(&gw, "/zd", offer).await;
    assert_eq!(extensions(&head).as_deref(), Some("permessage-deflate"));
    // The client keeps its context too: the second message refers back to the first.
    let json = chat_json(30);
    let mut compress = Compress::new(Compression::new(6), false);
    let mut inflater = Decompress::new(false);
    let mut sizes = Vec::new();
    for _ in 0..2 {
        let mut out = Vec::with_capacity(json.len() + 64);
        compress
            .compress_vec(json.as_bytes(), &mut out, FlushCompress::Sync)
            .unwrap();
        out.truncate(out.len() - 4);
        bounded(tcp.write_all(&frame(FIN | RSV1 | 0x1, &out)))
            .await
            .unwrap();
        let (first, mut payload) = raw_frame(&mut tcp).await;
        assert_eq!(first, FIN | RSV1 | 0x1);
        sizes.push(payload.len());
        payload.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut plain = Vec::with_capacity(json.len() + 64);
        inflater
            .decompress_vec(&payload, &mut plain, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(plain, json.as_bytes());
    }
    assert!(
        sizes[1] * 4 < sizes[0],
        "the second echo refers back to the first: {sizes:?}"
    );
}

/// The gateway's resident memory, from /proc.
fn rss_kib(gw: &TestGateway) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn bombs_and_bad_compressed_frames_get_their_close_codes_and_memory_stays_flat() {
    let gw = gateway(1);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    // 1 KiB on the wire that inflates to 64 MiB, past max_message_bytes (1 MiB).
    let bomb = deflate(&vec![b'a'; 64 << 20], 9);
    assert!(bomb.len() < 70 * 1024, "{}", bomb.len());
    let small_bomb = deflate(&vec![b'a'; 2 << 20], 9);
    assert!(small_bomb.len() <= 2100, "{}", small_bomb.len());
    let code_for = |bytes: Vec<u8>| {
        let gw = &gw;
        async move {
            let (mut tcp, _) = upgrade(gw, "/z", offer).await;
            bounded(tcp.write_all(&bytes)).await.unwrap();
            raw_close_code(&mut tcp).await
        }
    };
    assert_eq!(code_for(frame(FIN | RSV1 | 0x2, &small_bomb)).await, 1009);
    // The same bomb in fragments: the cap covers the whole message.
    let mut fragments = frame(RSV1 | 0x2, &small_bomb[..500]);
    fragments.extend(frame(0x0, &small_bomb[500..1000]));
    fragments.extend(frame(FIN, &small_bomb[1000..]));
    assert_eq!(code_for(fragments).await, 1009);
    // RSV1 on a continuation or a control frame, and garbage for deflate data.
    let mut continuation = frame(0x1, b"plain start");
    continuation.extend(frame(FIN | RSV1, &deflate(b"end", 1)));
    assert_eq!(code_for(continuation).await, 1002);
    assert_eq!(code_for(frame(FIN | RSV1 | 0x9, b"")).await, 1002);
    assert_eq!(code_for(frame(FIN | RSV1 | 0x1, &[0xff; 64])).await, 1002);
    // Without the extension, RSV1 is a protocol error as before.
    let (mut tcp, _) = upgrade(&gw, "/plain", offer).await;
    bounded(tcp.write_all(&frame(FIN | RSV1 | 0x1, &deflate(b"x", 1))))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut tcp).await, 1002);

    // Many bombs, a few at a time: the memory they would inflate to is never held.
    let before = rss_kib(&gw);
    for _ in 0..10 {
        let rounds = (0..5).map(|_| code_for(frame(FIN | RSV1 | 0x2, &bomb)));
        for code in futures_util::future::join_all(rounds).await {
            assert_eq!(code, 1009);
        }
    }
    let after = rss_kib(&gw);
    assert!(
        after < before + 32 * 1024,
        "50 bombs of 64 MiB each grew the gateway from {before} KiB to {after} KiB"
    );
    // And it still serves.
    let (mut tcp, _) = upgrade(&gw, "/z", offer).await;
    bounded(tcp.write_all(&frame(FIN | 0x1, b"still here")))
        .await
        .unwrap();
    assert_eq!(
        raw_frame(&mut tcp).await,
        (FIN | 0x1, b"still here".to_vec())
    );
}

#[tokio::test]
async fn a_publish_to_a_thousand_compressed_members_is_compressed_once() {
    const MEMBERS: usize = 1000;
    let _ = rlimit::increase_nofile_limit(MEMBERS as u64 * 2 + 1000);
    let gw = gateway(1);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let mut members = Vec::with_capacity(MEMBERS);
    for _ in 0..MEMBERS {
        let (mut tcp, head) = upgrade(&gw, "/probe", offer).await;
        assert_eq!(extensions(&head).as_deref(), Some(SHARED_ANSWER));
        bounded(tcp.write_all(&frame(FIN | 0x1, b"join room")))
            .await
            .unwrap();
        // `compression_min_bytes = 0`: even the short answer is compressed.
        let (first, payload) = raw_frame(&mut tcp).await;
        assert_eq!(
            (first, inflate(&payload)),
            (FIN | RSV1 | 0x1, b"joined".to_vec())
        );
        members.push(tcp);
    }
    let compressions = "wssgate_deflate_compressions_total{route=\"/probe\"}";
    let out = "wssgate_deflate_messages_total{route=\"/probe\",direction=\"out\"}";
    let before = metric_until(&gw, out, |v| v == MEMBERS as f64).await;
    let compressions_before = metric_until(&gw, compressions, |_| true).await;
    let body = chat_json(50);
    let (mut sender, _) = upgrade(&gw, "/probe", offer).await;
    bounded(sender.write_all(&frame(FIN | 0x1, format!("publish room {body}").as_bytes())))
        .await
        .unwrap();
    for member in &mut members {
        let (first, payload) = raw_frame(member).await;
        assert_eq!(first, FIN | RSV1 | 0x1);
        assert!(payload.len() * 3 < body.len());
        assert_eq!(inflate(&payload), body.as_bytes());
    }
    let (_, answer) = raw_frame(&mut sender).await;
    assert_eq!(inflate(&answer), format!("published {MEMBERS}").as_bytes());
    metric_until(&gw, out, |v| v == before + MEMBERS as f64 + 1.0).await;
    // One compression for the thousand copies, one for the sender's answer.
    metric_until(&gw, compressions, |v| v == compressions_before + 2.0).await;
}

#[tokio::test]
async fn compression_settings_are_checked_naming_the_line() {
    let dir = scratch_dir("compression-config");
    let echo = plugin("echo");
    let config = |extra: &str| {
        format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n[[route]]\npath = \"/z\"\nplugin = \"{}\"\n{extra}\n",
            echo.display()
        )
    };
    for (extra, wanted) in [
        (
            "compression = \"zip\"",
            "line 8: `compression` is \"off\", \"shared\" or \"dedicated\"",
        ),
        (
            "compression = \"shared\"\ncompression_level = 0",
            "line 9: `compression_level` is 1",
        ),
        (
            "compression = \"shared\"\ncompression_window_bits = 12",
            "line 9: `compression_window_bits` applies to `compression = \"dedicated\"` only",
        ),
        (
            "compression = \"dedicated\"\ncompression_window_bits = 8",
            "line 9: `compression_window_bits` is 9 to 15",
        ),
        (
            "compression_min_bytes = 100",
            "line 8: `compression_min_bytes` is set but the route's `compression` is off",
        ),
    ] {
        let (ok, text) = check_config(&dir, &config(extra));
        assert!(!ok, "{extra}: {text}");
        assert!(text.contains(wanted), "{extra}: {text}");
    }
    let (ok, text) = check_config(
        &dir,
        &config(
            "compression = \"dedicated\"\ncompression_level = 9\ncompression_min_bytes = 0\ncompression_window_bits = 15",
        ),
    );
    assert!(ok, "{text}");
}

/// Waits until `route`'s compressed messages out add up to 20 KB or more before compression, and to less than a
/// third of that on the wire.
async fn crossed_smaller(gw: &TestGateway, route: &str) {
    let plain = format!("wssgate_deflate_plain_bytes_total{{route=\"{route}\",direction=\"out\"}}");
    let wire = format!("wssgate_deflate_wire_bytes_total{{route=\"{route}\",direction=\"out\"}}");
    let plain = metric_until(gw, &plain, |v| v >= 20_000.0).await;
    metric_until(gw, &wire, |v| v > 0.0 && v * 3.0 < plain).await;
}

#[tokio::test]
#[ignore = "needs Python websockets: ./test.sh installs it and runs this test"]
async fn python_websockets_talks_compressed_in_both_modes_and_with_a_bare_offer() {
    require_python_websockets();
    let gw = gateway(2);
    let ca = ca_file(&gw.cert, &scratch_dir("deflate-python"))
        .display()
        .to_string();
    let script = workspace_root().join("tests/interop/python_deflate.py");
    for (route, offer, answer) in [
        // websockets offers `permessage-deflate; client_max_window_bits`.
        ("/z", "default", SHARED_ANSWER),
        (
            "/zd",
            "default",
            "permessage-deflate; client_max_window_bits=12",
        ),
        // WeChat's offer: no parameters.
        ("/z", "bare", SHARED_ANSWER),
        ("/zd", "bare", "permessage-deflate"),
    ] {
        let url = format!("wss://localhost:{}{route}", gw.wss.port());
        let args = [
            script.display().to_string(),
            url,
            ca.clone(),
            offer.to_owned(),
        ];
        let result = run_json_client("python3", &args).await;
        assert_eq!(result["extensions"], answer, "{route} {offer}: {result}");
        assert_eq!(result["big_ok"], true, "{route} {offer}: {result}");
        assert_eq!(result["small"], "tom");
        if offer == "bare" {
            assert_eq!(result["offered"], "permessage-deflate");
        }
    }
    crossed_smaller(&gw, "/z").await;
    crossed_smaller(&gw, "/zd").await;
    // websockets compresses what it sends: the gateway inflated it.
    let inflated = "wssgate_deflate_messages_total{route=\"/z\",direction=\"in\"}";
    metric_until(&gw, inflated, |v| v >= 4.0).await;
}

#[tokio::test]
#[ignore = "needs the Node packages of tests/interop/node: ./test.sh installs them and runs this test"]
async fn node_ws_talks_compressed_in_both_modes() {
    let node_dir = workspace_root().join("tests/interop/node");
    require(
        "node with `ws`",
        node_dir.join("node_modules/ws/package.json").exists(),
        "cd tests/interop/node && npm ci",
    );
    let gw = gateway(2);
    let ca = ca_file(&gw.cert, &scratch_dir("deflate-node"))
        .display()
        .to_string();
    let script = node_dir.join("deflate.mjs").display().to_string();
    for route in ["/z", "/zd"] {
        let url = format!("wss://localhost:{}{route}", gw.wss.port());
        let result = run_json_client("node", &[script.clone(), url, ca.clone()]).await;
        assert!(
            result["extensions"]
                .as_str()
                .is_some_and(|e| e.starts_with("permessage-deflate")),
            "{route}: {result}"
        );
        assert_eq!(result["big_ok"], true, "{route}: {result}");
        assert_eq!(result["small"], "tom");
        crossed_smaller(&gw, route).await;
    }
}

#[tokio::test]
#[ignore = "needs chromium, nginx and the Node packages: ./test.sh installs them and runs this test"]
async fn chromium_negotiates_deflate_directly_and_through_nginx() {
    use wssgate_tests::nginx::{behind_nginx_gateway_edited, start_nginx};
    let node_dir = workspace_root().join("tests/interop/node");
    require_chromium_and_playwright();
    let gw = TestGateway::start_with(
        &format!("workers = 2\n{ADMIN}"),
        &[
            route("/wss", "echo-ok", "compression = \"shared\""),
            route("/z", "echo", "compression = \"shared\""),
        ]
        .concat(),
    );
    // The shipped behind-nginx config with compression on: nginx passes the offer and the answer through.
    let dir = scratch_dir("browser-deflate");
    let shipped_route = "plugin = \"../target/wasm32-wasip2/release/echo_ok.wasm\"";
    let behind = behind_nginx_gateway_edited(
        &dir,
        &[(
            shipped_route,
            &format!("{shipped_route}\ncompression = \"shared\""),
        )],
    );
    let cert = TestCert::create(&scratch_dir("browser-deflate-cert"));
    let nginx = start_nginx(&dir, &cert, behind.ws);

    let page = format!("https://localhost:{}/", gw.wss.port());
    let echo = format!("wss://localhost:{}/z", gw.wss.port());
    let direct = format!("wss://localhost:{}/wss", gw.wss.port());
    let proxied = format!("wss://localhost:{}/wss", nginx.address.port());
    let mut node = std::process::Command::new("node");
    node.arg(node_dir.join("browser_deflate.mjs"))
        .args([&page, &echo, &direct, &proxied]);
    let output =
        wssgate_tests::process::run_bounded(node, std::time::Duration::from_secs(90)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for url in [&direct, &proxied] {
        assert_eq!(result["ok"][url]["reply"], "ok", "{result}");
        assert_eq!(
            result["ok"][url]["extensions"], SHARED_ANSWER,
            "{url}: {result}"
        );
    }
    assert_eq!(result["echo"]["big_ok"], true, "{result}");
    assert_eq!(result["echo"]["extensions"], SHARED_ANSWER);
    crossed_smaller(&gw, "/z").await;
    // Chromium compresses what it sends too.
    let inflated = "wssgate_deflate_messages_total{route=\"/z\",direction=\"in\"}";
    metric_until(&gw, inflated, |v| v >= 1.0).await;
}

//! Behind a proxy, the plugin sees the client's own address — taken only when the connection comes from a trusted
//! proxy, and only from the one source the listener names (`client_address`: X-Real-IP, X-Forwarded-For or a PROXY
//! protocol header), never from anyone else or from a header the proxy merely passed through. The per-address caps
//! count what that resolves to, IPv6 by its /64.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wssgate_tests::admin::{ADMIN, metric_until};
use wssgate_tests::*;

/// The signature that opens a PROXY protocol v2 header.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// The probe's view of the client address.
async fn remote_seen(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> String {
    let info = ask(ws, "info").await;
    info.split(' ')
        .find_map(|kv| kv.strip_prefix("remote="))
        .unwrap()
        .to_owned()
}

/// What the probe sees for a connection from trusted 127.0.0.1 that sends `headers`.
async fn seen_with(gw: &TestGateway, headers: &[(&str, &str)]) -> String {
    remote_seen(&mut gw.ws_from("127.0.0.1", b"", "/probe", headers).await).await
}

/// What the probe sees for a connection from trusted 127.0.0.1 whose X-Forwarded-For is `chain`.
async fn via_chain(gw: &TestGateway, chain: &str) -> String {
    seen_with(gw, &[("x-forwarded-for", chain)]).await
}

fn trusting_loopback_one(extra: &str) -> TestGateway {
    TestGateway::start_full(
        "workers = 1\n",
        &format!("trusted_proxies = [\"127.0.0.1\"]\n{extra}"),
        &standard_routes(),
    )
}

/// A raw upgrade of `/echo` on the plain listener from `source` with `headers` that the gateway refuses: its whole
/// answer.
async fn upgrade_answer(gw: &TestGateway, source: &str, headers: &[(&str, &str)]) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let tcp = bounded(socket.connect(gw.ws)).await.expect("connecting");
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    );
    raw_exchange(tcp, request.as_bytes()).await
}

#[tokio::test]
async fn a_trusted_proxys_x_real_ip_is_the_client_address() {
    let gw = trusting_loopback_one("");
    let mut ws = gw
        .ws_from("127.0.0.1", b"", "/probe", &[("x-real-ip", "203.0.113.7")])
        .await;
    assert_eq!(remote_seen(&mut ws).await, "203.0.113.7:0");
}

#[tokio::test]
async fn a_trusted_proxys_x_forwarded_for_is_used_right_to_left() {
    let gw = trusting_loopback_one("client_address = \"x-forwarded-for\"\n");
    let chain = "6.6.6.6, 198.51.100.1, 127.0.0.1";
    let mut ws = gw
        .ws_from("127.0.0.1", b"", "/probe", &[("x-forwarded-for", chain)])
        .await;
    assert_eq!(remote_seen(&mut ws).await, "198.51.100.1:0");
}

#[tokio::test]
async fn a_listener_believes_only_the_header_it_names() {
    // Behind a proxy that appends X-Forwarded-For and sets no X-Real-IP (AWS ALB, HAProxy `option forwardfor`),
    // the client adds its own X-Real-IP.
    let gw = trusting_loopback_one("client_address = \"x-forwarded-for\"\n");
    let forged = [
        ("x-real-ip", "203.0.113.9"),
        ("x-forwarded-for", "198.51.100.1"),
    ];
    assert_eq!(seen_with(&gw, &forged).await, "198.51.100.1:0");

    // Behind a proxy that sets X-Real-IP and passes X-Forwarded-For through, the client forges that one.
    let gw = trusting_loopback_one("client_address = \"x-real-ip\"\n");
    let forged = [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-real-ip", "198.51.100.1"),
    ];
    assert_eq!(seen_with(&gw, &forged).await, "198.51.100.1:0");
    // Without the named header there is no word from the proxy: the proxy's own address, not the other header's.
    let seen = seen_with(&gw, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert!(seen.starts_with("127.0.0.1:"), "{seen}");
}

#[tokio::test]
async fn x_forwarded_for_hops_with_ports_are_read_and_one_that_does_not_parse_ends_the_walk() {
    let gw = trusting_loopback_one("client_address = \"x-forwarded-for\"\n");
    let via = |chain| via_chain(&gw, chain);
    // A proxy that writes the client's port: its hop is the client, not the forged entry left of it.
    assert_eq!(
        via("203.0.113.9, 198.51.100.1:4711").await,
        "198.51.100.1:4711"
    );
    assert_eq!(
        via("203.0.113.9, [2001:db8::7]:443, 127.0.0.1:80").await,
        "[2001:db8::7]:443"
    );
    assert_eq!(via("203.0.113.9, [2001:db8::8]").await, "[2001:db8::8]:0");
    // A hop that does not parse: nothing left of it is vouched for, so the walk ends at the last trusted hop.
    let seen = via("203.0.113.9, unknown").await;
    assert!(seen.starts_with("127.0.0.1:"), "{seen}");
    assert_eq!(
        via("203.0.113.9, nonsense, 127.0.0.1:80").await,
        "127.0.0.1:80"
    );
}

#[tokio::test]
async fn a_forged_header_from_an_untrusted_peer_is_ignored() {
    for source in ["x-real-ip", "x-forwarded-for"] {
        let gw = trusting_loopback_one(&format!("client_address = \"{source}\"\n"));
        let headers = [
            ("x-real-ip", "203.0.113.7"),
            ("x-forwarded-for", "203.0.113.8"),
        ];
        let mut ws = gw.ws_from("127.0.0.2", b"", "/probe", &headers).await;
        assert!(remote_seen(&mut ws).await.starts_with("127.0.0.2:"));
    }
}

#[tokio::test]
async fn without_trusted_proxies_headers_are_never_believed() {
    let gw = TestGateway::start_with("workers = 1\n", &standard_routes());
    let mut ws = gw
        .ws_from("127.0.0.1", b"", "/probe", &[("x-real-ip", "203.0.113.7")])
        .await;
    assert!(remote_seen(&mut ws).await.starts_with("127.0.0.1:"));
}

#[tokio::test]
async fn proxy_protocol_v1_and_v2_from_a_trusted_proxy_name_the_client() {
    let gw = trusting_loopback_one("proxy_protocol = true\n");
    let v1 = b"PROXY TCP4 192.0.2.10 127.0.0.1 40123 8282\r\n";
    let mut ws = gw.ws_from("127.0.0.1", v1, "/probe", &[]).await;
    assert_eq!(remote_seen(&mut ws).await, "192.0.2.10:40123");

    let mut v2 = V2_SIGNATURE.to_vec();
    v2.extend_from_slice(&[
        0x21, 0x11, 0, 12, 192, 0, 2, 11, 127, 0, 0, 1, 0x9c, 0x40, 0x20, 0x5a,
    ]);
    let mut ws = gw.ws_from("127.0.0.1", &v2, "/probe", &[]).await;
    assert_eq!(remote_seen(&mut ws).await, "192.0.2.11:40000");
}

#[tokio::test]
async fn a_proxy_header_that_names_no_client_leaves_the_proxy_and_no_request_header_is_believed() {
    let gw = trusting_loopback_one("client_address = \"proxy-protocol\"\n");
    let forged = [
        ("x-real-ip", "203.0.113.9"),
        ("x-forwarded-for", "203.0.113.10"),
    ];
    let mut local = V2_SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    for header in [b"PROXY UNKNOWN\r\n".to_vec(), local] {
        let mut ws = gw.ws_from("127.0.0.1", &header, "/probe", &forged).await;
        let seen = remote_seen(&mut ws).await;
        assert!(seen.starts_with("127.0.0.1:"), "{seen}");
    }
}

#[tokio::test]
async fn an_untrusted_peer_on_a_proxy_listener_is_closed_before_its_header_is_read() {
    // Waiting for the header could take the whole upgrade timeout: a minute here, so "at once" is unmistakable.
    let gw = TestGateway::start_full(
        &format!("workers = 1\n{ADMIN}[limits]\nupgrade_timeout_ms = 60000\n"),
        "trusted_proxies = [\"127.0.0.1\"]\nclient_address = \"proxy-protocol\"\n",
        &standard_routes(),
    );
    // A v2 header that declares 65,535 bytes and sends the first few.
    let mut declared = V2_SIGNATURE.to_vec();
    declared.extend_from_slice(&[0x21, 0x11, 0xff, 0xff, 192, 0, 2]);
    // A v1 header naming another client, with a whole upgrade after it.
    let forged =
        b"PROXY TCP4 192.0.2.10 127.0.0.1 40123 8282\r\nGET /probe HTTP/1.1\r\nHost: x\r\n\r\n";
    for opening in [declared, forged.to_vec()] {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut tcp = bounded(socket.connect(gw.ws)).await.expect("connecting");
        // The gateway may close before or while this is written.
        let _ = tcp.write_all(&opening).await;
        let mut answer = Vec::new();
        let read = bounded(tcp.read_to_end(&mut answer)).await;
        assert!(
            read.is_err() || answer.is_empty(),
            "the gateway answered an untrusted peer: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    metric_until(
        &gw,
        "wssgate_rejected_connections_total{reason=\"untrusted_peer\"}",
        |v| v >= 2.0,
    )
    .await;
    // The trusted proxy is still served.
    let v1 = b"PROXY TCP4 192.0.2.10 127.0.0.1 40123 8282\r\n";
    let mut ws = gw.ws_from("127.0.0.1", v1, "/probe", &[]).await;
    assert_eq!(remote_seen(&mut ws).await, "192.0.2.10:40123");
}

#[tokio::test]
async fn the_per_address_cap_counts_the_resolved_client_address() {
    let gw = TestGateway::start_full(
        "workers = 1\n[limits]\nmax_connections_per_ip = 1\n",
        "trusted_proxies = [\"127.0.0.1\"]\n",
        &standard_routes(),
    );
    let mut first = gw
        .ws_from("127.0.0.1", b"", "/echo", &[("x-real-ip", "203.0.113.1")])
        .await;
    // Another client behind the same proxy is a different address, so it is admitted.
    let mut second = gw
        .ws_from("127.0.0.1", b"", "/echo", &[("x-real-ip", "203.0.113.2")])
        .await;
    assert_eq!(ask(&mut first, "a").await, "a");
    assert_eq!(ask(&mut second, "b").await, "b");
}

#[tokio::test]
async fn the_per_address_cap_counts_an_ipv6_64_as_one_address() {
    let gw = TestGateway::start_full(
        "workers = 1\n[limits]\nmax_connections_per_ip = 1\n",
        "trusted_proxies = [\"127.0.0.1\"]\nclient_address = \"x-forwarded-for\"\n",
        &standard_routes(),
    );
    let mut first = gw
        .ws_from(
            "127.0.0.1",
            b"",
            "/echo",
            &[("x-forwarded-for", "2001:db8:0:1::1")],
        )
        .await;
    // Another address of the same /64 — whoever has one has all 2^64 — counts as the same client.
    for same in ["2001:db8:0:1::2", "[2001:db8:0:1:ffff:ffff:ffff:ffff]:443"] {
        let answer = upgrade_answer(&gw, "127.0.0.1", &[("x-forwarded-for", same)]).await;
        assert!(
            answer.starts_with("HTTP/1.1 503 ") && answer.contains("too many connections from"),
            "{same}: {answer}"
        );
    }
    // The next /64 is another client.
    let mut other = gw
        .ws_from(
            "127.0.0.1",
            b"",
            "/echo",
            &[("x-forwarded-for", "2001:db8:0:2::1")],
        )
        .await;
    assert_eq!(ask(&mut first, "a").await, "a");
    assert_eq!(ask(&mut other, "b").await, "b");
}

#[tokio::test]
async fn the_ipv6_prefix_is_configurable() {
    let gw = TestGateway::start_full(
        "workers = 1\n[limits]\nmax_connections_per_ip = 1\nipv6_prefix_len = 128\n",
        "trusted_proxies = [\"127.0.0.1\"]\nclient_address = \"x-forwarded-for\"\n",
        &standard_routes(),
    );
    let mut first = gw
        .ws_from(
            "127.0.0.1",
            b"",
            "/echo",
            &[("x-forwarded-for", "2001:db8::1")],
        )
        .await;
    let mut second = gw
        .ws_from(
            "127.0.0.1",
            b"",
            "/echo",
            &[("x-forwarded-for", "2001:db8::2")],
        )
        .await;
    let answer = upgrade_answer(&gw, "127.0.0.1", &[("x-forwarded-for", "2001:db8::1")]).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert_eq!(ask(&mut first, "a").await, "a");
    assert_eq!(ask(&mut second, "b").await, "b");
}

#[test]
fn check_says_where_the_client_address_comes_from_and_warns_when_no_source_is_named() {
    let dir = scratch_dir("check-client-address");
    let config = |extra: &str| {
        format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\ntrusted_proxies = [\"10.0.0.0/8\"]\n{extra}\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
            plugin("echo").display()
        )
    };
    // A config written before `client_address`: X-Real-IP, as before, with a warning that says what to write.
    let (ok, text) = check_config(&dir, &config(""));
    assert!(ok, "{text}");
    assert!(
        text.contains("X-Real-IP on connections from 10.0.0.0/8")
            && text.contains("warning:")
            && text.contains("client_address = \"x-real-ip\"")
            && text.contains("\"x-forwarded-for\""),
        "{text}"
    );
    let (ok, text) = check_config(&dir, &config("client_address = \"x-forwarded-for\""));
    assert!(ok, "{text}");
    assert!(
        text.contains("right-most X-Forwarded-For entry") && !text.contains("warning"),
        "{text}"
    );
    let (ok, text) = check_config(
        &dir,
        &config("client_address = \"x-real-ip\"\nproxy_protocol = true"),
    );
    assert!(
        !ok && text.contains("line 1") && text.contains("one source"),
        "{text}"
    );
    let (ok, text) = check_config(&dir, &config("[limits]\nipv6_prefix_len = 0"));
    assert!(!ok && text.contains("ipv6_prefix_len"), "{text}");
}

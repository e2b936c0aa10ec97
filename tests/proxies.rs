//! Behind a proxy, the plugin sees the client's own address — taken from X-Real-IP, X-Forwarded-For or a PROXY
//! protocol header only when the connection comes from a trusted proxy, never from anyone else.

use wssgate_tests::*;

/// The probe's view of the client address.
async fn remote_seen(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> String {
    let info = ask(ws, "info").await;
    info.split(' ')
        .find_map(|kv| kv.strip_prefix("remote="))
        .unwrap()
        .to_owned()
}

fn trusting_loopback_one(extra: &str) -> TestGateway {
    TestGateway::start_full(
        "workers = 1\n",
        &format!("trusted_proxies = [\"127.0.0.1\"]\n{extra}"),
        &standard_routes(),
    )
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
    let gw = trusting_loopback_one("");
    let chain = "6.6.6.6, 198.51.100.1, 127.0.0.1";
    let mut ws = gw
        .ws_from("127.0.0.1", b"", "/probe", &[("x-forwarded-for", chain)])
        .await;
    assert_eq!(remote_seen(&mut ws).await, "198.51.100.1:0");
}

#[tokio::test]
async fn a_forged_header_from_an_untrusted_peer_is_ignored() {
    let gw = trusting_loopback_one("");
    let headers = [
        ("x-real-ip", "203.0.113.7"),
        ("x-forwarded-for", "203.0.113.8"),
    ];
    let mut ws = gw.ws_from("127.0.0.2", b"", "/probe", &headers).await;
    assert!(remote_seen(&mut ws).await.starts_with("127.0.0.2:"));
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

    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[
        0x21, 0x11, 0, 12, 192, 0, 2, 11, 127, 0, 0, 1, 0x9c, 0x40, 0x20, 0x5a,
    ]);
    let mut ws = gw.ws_from("127.0.0.1", &v2, "/probe", &[]).await;
    assert_eq!(remote_seen(&mut ws).await, "192.0.2.11:40000");
}

#[tokio::test]
async fn a_proxy_header_from_an_untrusted_peer_is_not_believed() {
    let gw = trusting_loopback_one("proxy_protocol = true\n");
    let v1 = b"PROXY TCP4 192.0.2.10 127.0.0.1 40123 8282\r\n";
    let mut ws = gw.ws_from("127.0.0.2", v1, "/probe", &[]).await;
    assert!(remote_seen(&mut ws).await.starts_with("127.0.0.2:"));
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

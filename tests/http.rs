//! What a request that is not a WebSocket upgrade on a known route gets: a small, complete HTTP answer.

use wssgate_tests::*;

fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

#[tokio::test]
async fn unknown_path_gets_404_before_the_upgrade() {
    let gw = TestGateway::start(&standard_routes());
    let answer = raw_exchange(
        gw.tls_stream().await,
        upgrade_request("/nowhere").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}

#[tokio::test]
async fn a_known_route_upgrades_with_the_right_accept_key() {
    let gw = TestGateway::start(&standard_routes());
    let tcp = bounded(tokio::net::TcpStream::connect(gw.ws))
        .await
        .unwrap();
    let mut answer = String::new();
    let mut stream = tokio::io::BufReader::new(tcp);
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    bounded(
        stream
            .get_mut()
            .write_all(upgrade_request("/wss").as_bytes()),
    )
    .await
    .unwrap();
    while !answer.ends_with("\r\n\r\n") {
        assert!(
            bounded(stream.read_line(&mut answer)).await.unwrap() > 0,
            "closed early: {answer}"
        );
    }
    assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
    // The example key and accept value from RFC 6455 section 1.3.
    assert!(
        answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{answer}"
    );
}

#[tokio::test]
async fn plain_get_on_a_route_gets_426() {
    let gw = TestGateway::start(&standard_routes());
    let answer = raw_exchange(
        gw.tls_stream().await,
        b"GET /wss HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("Upgrade: websocket"), "{answer}");
}

#[tokio::test]
async fn wrong_websocket_version_gets_426_naming_13() {
    let gw = TestGateway::start(&standard_routes());
    let request = upgrade_request("/wss").replace("Version: 13", "Version: 8");
    let answer = raw_exchange(gw.tls_stream().await, request.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 426 ") && answer.contains("Sec-WebSocket-Version: 13"),
        "{answer}"
    );
}

#[tokio::test]
async fn missing_key_gets_400() {
    let gw = TestGateway::start(&standard_routes());
    let request =
        upgrade_request("/wss").replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    let answer = raw_exchange(gw.tls_stream().await, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

#[tokio::test]
async fn garbage_gets_400_not_a_hang() {
    let gw = TestGateway::start(&standard_routes());
    let answer = raw_exchange(
        gw.tls_stream().await,
        b"\x16\x03\x01 this is not http\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

#[tokio::test]
async fn post_to_a_route_gets_405() {
    let gw = TestGateway::start(&standard_routes());
    let answer = raw_exchange(
        gw.tls_stream().await,
        b"POST /wss HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
}

#[tokio::test]
async fn root_serves_the_page_that_runs_the_seed_check() {
    let gw = TestGateway::start(&standard_routes());
    let answer = raw_exchange(
        gw.tls_stream().await,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("text/html"), "{answer}");
    assert!(
        answer.contains("new WebSocket(")
            && answer.contains("/wss")
            && answer.contains("send(\"tom\")")
    );
}

//! Automatic certificates against a real ACME server: Debian's pebble, validating over TLS-ALPN-01 on the
//! gateway's own listener, with challtestsrv resolving the test domain to 127.0.0.1.

use futures_util::SinkExt;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::*;
use wssgate_tests::pebble::Pebble;
use wssgate_tests::ports::free_port;
use wssgate_tests::*;

const DOMAIN: &str = "gw.wssgate.test";

/// A gateway whose TLS listener on `port` gets its certificate from `directory` over ACME.
fn acme_config(dir: &Path, port: u16, directory: &str, ca: &Path) -> String {
    format!(
        "workers = 1\n{ADMIN}\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n[listener.acme]\ndomains = [\"{DOMAIN}\"]\nemail = \"ops@wssgate.test\"\ndirectory = \"{directory}\"\nca = \"{}\"\ncache = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n",
        ca.display(),
        dir.join("acme-cache").display(),
        plugin("echo-ok").display()
    )
}

/// Waits (bounded) until the gateway's log holds `needle` `times` times.
fn wait_for_count(gw: &TestGateway, needle: &str, times: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while gw.log().matches(needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "`{needle}` not logged {times} times within {limit:?}:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Connects to the gateway as a browser would, verifying its certificate against pebble's `root`; returns the
/// certificate it served and a WebSocket on /wss.
async fn verified_client(
    port: u16,
    root: &CertificateDer<'static>,
) -> (
    CertificateDer<'static>,
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
) {
    let tcp = bounded(tokio::net::TcpStream::connect(("127.0.0.1", port)))
        .await
        .unwrap();
    let tls = bounded(trusting(root).connect(ServerName::try_from(DOMAIN).unwrap(), tcp))
        .await
        .expect("a TLS handshake verified against pebble's root");
    let served = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (ws, _) = bounded(tokio_tungstenite::client_async(
        format!("wss://{DOMAIN}:{port}/wss"),
        tls,
    ))
    .await
    .unwrap();
    (served, ws)
}

async fn tom_gets_ok<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    bounded(ws.send(Message::text("tom"))).await.unwrap();
    assert_eq!(next_message(ws).await, Message::text("ok"));
}

#[tokio::test]
#[ignore = "needs pebble: ./test.sh installs it and runs this test"]
async fn a_certificate_is_obtained_served_renewed_without_dropping_connections_and_reused_from_the_cache()
 {
    let dir = scratch_dir("acme");
    let port = free_port();
    // Certificates valid for 30 s: renewed at two thirds, 20 s after issue.
    let pebble = Pebble::start(&dir.join("pebble"), port, 30, free_port());
    let config = acme_config(&dir, port, &pebble.directory, &pebble.api_ca);
    let dummy = TestCert::create(&dir).der;
    let gw = TestGateway::launch(&dir, &config, &[], Some(dummy.clone()));
    wait_for_count(
        &gw,
        "ACME: obtained a certificate",
        1,
        Duration::from_secs(60),
    );
    let root = pebble.issuing_root().await;
    let (first, mut ws) = verified_client(port, &root).await;
    tom_gets_ok(&mut ws).await;
    let series = format!(
        "wssgate_certificate_expiry_timestamp_seconds{{listener=\"127.0.0.1:{port}\",source=\"acme\"}}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    let expiry = metric_until(&gw, &series, |_| true).await;
    assert!(
        expiry > now && expiry <= now + 31.0,
        "expiry {expiry}, now {now}"
    );

    // The renewal replaces the certificate for new handshakes while the open connection keeps going.
    let renewal_deadline = Instant::now() + Duration::from_secs(60);
    while gw.log().matches("ACME: obtained a certificate").count() < 2 {
        assert!(
            Instant::now() < renewal_deadline,
            "no renewal:\n{}",
            gw.log()
        );
        tom_gets_ok(&mut ws).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tom_gets_ok(&mut ws).await;
    let (second, mut renewed) = verified_client(port, &root).await;
    assert_ne!(first, second, "the renewal did not replace the certificate");
    tom_gets_ok(&mut renewed).await;
    drop((ws, renewed));

    // A restart reuses the cached account and certificate instead of ordering again.
    let mut gw = gw;
    assert!(gw.terminate().success());
    let cache = dir.join("acme-cache");
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&cache.join("certificate-key.pem")), 0o600);
    let restarted = TestGateway::launch(&dir, &config, &[], Some(dummy));
    wait_for_count(&restarted, "ACME: using the cached certificate", 1, WAIT);
    let (cached, mut ws) = verified_client(port, &root).await;
    assert_eq!(cached, second);
    tom_gets_ok(&mut ws).await;
    assert_eq!(
        restarted
            .log()
            .matches("ACME: obtained a certificate")
            .count(),
        0
    );
    // Its next renewal orders with the cached account: pebble never sees a second one.
    wait_for_count(
        &restarted,
        "ACME: obtained a certificate",
        1,
        Duration::from_secs(60),
    );
    let pebble_log = std::fs::read_to_string(dir.join("pebble/pebble.log")).unwrap();
    assert!(
        pebble_log.contains("There are now 1 accounts"),
        "{pebble_log}"
    );
    assert!(
        !pebble_log.contains("There are now 2 accounts"),
        "a second account was created"
    );

    // Switching to another ACME server (staging to production, say) does not serve the old server's certificate:
    // a new account and a new certificate come from the new server.
    let mut restarted = restarted;
    assert!(restarted.terminate().success());
    let other = Pebble::start(&dir.join("pebble-2"), port, 3600, free_port());
    let switched_config = acme_config(&dir, port, &other.directory, &other.api_ca);
    let switched = TestGateway::launch(
        &dir,
        &switched_config,
        &[],
        Some(TestCert::create(&dir).der),
    );
    wait_for_count(
        &switched,
        "ACME: obtained a certificate",
        1,
        Duration::from_secs(60),
    );
    assert!(
        !switched.log().contains("using the cached certificate"),
        "{}",
        switched.log()
    );
    let (from_other, mut ws) = verified_client(port, &other.issuing_root().await).await;
    assert_ne!(from_other, second);
    tom_gets_ok(&mut ws).await;
}

#[tokio::test]
#[ignore = "needs pebble: ./test.sh installs it and runs this test"]
async fn with_the_acme_server_down_at_start_the_gateway_refuses_tls_then_obtains_once_it_is_up() {
    let dir = scratch_dir("acme-down");
    let (port, api_port) = (free_port(), free_port());
    // pebble's API certificate is written when pebble starts: until then the gateway's attempts fail (no server,
    // no root) and are retried.
    let pebble_dir = dir.join("pebble");
    let config = acme_config(
        &dir,
        port,
        &format!("https://127.0.0.1:{api_port}/dir"),
        &pebble_dir.join("cert.pem"),
    );
    let dummy = TestCert::create(&dir).der;
    let gw = TestGateway::launch(&dir, &config, &[], Some(dummy));
    wait_for_count(&gw, "ACME: obtaining a certificate for", 1, WAIT);
    // Before the first certificate, an ordinary TLS client is refused, and the log says why.
    let tcp = bounded(tokio::net::TcpStream::connect(("127.0.0.1", port)))
        .await
        .unwrap();
    let refused = bounded(
        trusting(&TestCert::create(&scratch_dir("acme-any")).der)
            .connect(ServerName::try_from(DOMAIN).unwrap(), tcp),
    )
    .await;
    assert!(
        refused.is_err(),
        "a TLS client was served without a certificate"
    );
    wait_for_count(
        &gw,
        "no ACME certificate yet: refusing TLS clients",
        1,
        WAIT,
    );

    let pebble = Pebble::start(&pebble_dir, port, 3600, api_port);
    wait_for_count(
        &gw,
        "ACME: obtained a certificate",
        1,
        Duration::from_secs(60),
    );
    let root = pebble.issuing_root().await;
    let (_, mut ws) = verified_client(port, &root).await;
    tom_gets_ok(&mut ws).await;
}

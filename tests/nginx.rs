//! The seed's "Method 1": Debian's nginx terminates TLS and proxies to the gateway's plain ws listener
//! (config/behind-nginx.toml behind config/nginx.conf, adapted to loopback test ports).

use wssgate_tests::nginx::{behind_nginx_gateway, error_log, start_nginx};
use wssgate_tests::*;

#[tokio::test]
#[ignore = "needs nginx: ./test.sh installs it and runs this test"]
async fn tom_gets_ok_through_nginx_and_the_plugin_sees_the_clients_own_address() {
    let dir = scratch_dir("nginx");
    let gw = behind_nginx_gateway(&dir);
    let cert = TestCert::create(&scratch_dir("nginx-cert"));
    let nginx = start_nginx(&dir, &cert, gw.ws);

    let mut ws = wss_from(nginx.address, "127.0.0.1", &cert.der, "/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");

    // nginx connects to the gateway from 127.0.0.1 (trusted) and reports the client, 127.0.0.2, in X-Real-IP.
    let mut probe = wss_from(nginx.address, "127.0.0.2", &cert.der, "/probe").await;
    let info = ask(&mut probe, "info").await;
    assert!(
        info.contains("remote=127.0.0.2:0"),
        "{info}; nginx log: {}",
        error_log(&dir)
    );
}

#[tokio::test]
async fn a_client_going_around_nginx_cannot_forge_its_address() {
    let dir = scratch_dir("nginx-forge");
    let gw = behind_nginx_gateway(&dir);
    let mut direct = gw
        .ws_from("127.0.0.2", b"", "/probe", &[("x-real-ip", "203.0.113.66")])
        .await;
    let info = ask(&mut direct, "info").await;
    assert!(
        info.contains("remote=127.0.0.2:") && !info.contains("203.0.113.66"),
        "{info}"
    );
}

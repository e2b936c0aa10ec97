//! The seed's "Method 1": Debian's nginx terminates TLS and proxies to the gateway's plain ws listener
//! (config/behind-nginx.toml behind config/nginx.conf, adapted to loopback test ports).

use wssgate_tests::nginx::{
    behind_nginx_gateway, behind_nginx_gateway_edited, error_log, start_nginx, start_nginx_edited,
};
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

/// The probe's view of the client address, asked through nginx by a client at 127.0.0.2 that forges both headers.
async fn seen_through(nginx: std::net::SocketAddr, cert: &TestCert) -> String {
    let forged = [
        ("x-real-ip", "203.0.113.9"),
        ("x-forwarded-for", "203.0.113.10"),
    ];
    let mut probe = wss_from_with(nginx, "127.0.0.2", &cert.der, "/probe", &forged).await;
    ask(&mut probe, "info").await
}

#[tokio::test]
#[ignore = "needs nginx: ./test.sh installs it and runs this test"]
async fn a_client_forging_x_real_ip_through_a_proxy_that_only_appends_x_forwarded_for_is_not_believed()
 {
    // nginx as AWS ALB or HAProxy `option forwardfor` behave: X-Forwarded-For appended
    // ($proxy_add_x_forwarded_for), no X-Real-IP set, so the client's own X-Real-IP passes through untouched.
    let dir = scratch_dir("nginx-xff");
    let gw = behind_nginx_gateway_edited(
        &dir,
        &[(
            "client_address = \"x-real-ip\"",
            "client_address = \"x-forwarded-for\"",
        )],
    );
    let cert = TestCert::create(&scratch_dir("nginx-xff-cert"));
    let nginx = start_nginx_edited(
        &dir,
        &cert,
        gw.ws,
        &[("proxy_set_header X-Real-IP $remote_addr;", "")],
    );
    let info = seen_through(nginx.address, &cert).await;
    assert!(
        info.contains("remote=127.0.0.2:0"),
        "{info}; nginx log: {}",
        error_log(&dir)
    );
    drop(nginx);

    // The shipped pair (nginx sets X-Real-IP, the listener reads it) is not fooled either.
    let dir = scratch_dir("nginx-real-ip");
    let gw = behind_nginx_gateway(&dir);
    let nginx = start_nginx(&dir, &cert, gw.ws);
    let info = seen_through(nginx.address, &cert).await;
    assert!(
        info.contains("remote=127.0.0.2:0"),
        "{info}; nginx log: {}",
        error_log(&dir)
    );
}

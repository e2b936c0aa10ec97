//! SIGHUP reloads the config, plugins, settings and certificates for new connections; open connections keep what
//! they started with, and a config or plugin that fails to load changes nothing.

use std::path::Path;
use wssgate_tests::*;

/// A config with a TLS listener using `cert`, a plain listener, and `/wss` → `wss_plugin` with `settings`.
fn config(cert: &TestCert, wss_plugin: &Path, settings: &str) -> String {
    format!(
        "workers = 2\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n\n[[route]]\npath = \"/wss\"\nplugin = \"{}\"\n[route.settings]\n{settings}\n",
        cert.cert.display(),
        cert.key.display(),
        wss_plugin.display()
    )
}

fn start(dir: &Path, cert: &TestCert, text: &str) -> TestGateway {
    TestGateway::launch(dir, text, &[], Some(cert.der.clone()))
}

#[tokio::test]
async fn open_connections_keep_their_plugin_and_new_ones_get_the_new_plugin() {
    let dir = scratch_dir("reload-plugin");
    let cert = TestCert::create(&dir);
    let gw = start(&dir, &cert, &config(&cert, &plugin("echo-ok"), ""));
    let mut before = gw.ws("/wss").await;
    assert_eq!(ask(&mut before, "tom").await, "ok");

    assert!(
        gw.reload(&dir, &config(&cert, &plugin("echo"), "")),
        "{}",
        gw.log()
    );
    let mut after = gw.ws("/wss").await;
    assert_eq!(
        ask(&mut after, "tom").await,
        "tom",
        "a new connection still got the old plugin"
    );
    assert_eq!(
        ask(&mut before, "tom").await,
        "ok",
        "an open connection moved to the new plugin"
    );
}

#[tokio::test]
async fn plugin_settings_reload() {
    let dir = scratch_dir("reload-settings");
    let cert = TestCert::create(&dir);
    let gw = start(
        &dir,
        &cert,
        &config(&cert, &plugin("echo-ok"), "reply = \"ok\""),
    );
    assert!(
        gw.reload(&dir, &config(&cert, &plugin("echo-ok"), "reply = \"pong\"")),
        "{}",
        gw.log()
    );
    let mut ws = gw.wss("/wss").await;
    assert_eq!(ask(&mut ws, "ping").await, "pong");
}

#[tokio::test]
async fn a_broken_plugin_at_reload_changes_nothing() {
    let dir = scratch_dir("reload-broken");
    let cert = TestCert::create(&dir);
    let gw = start(&dir, &cert, &config(&cert, &plugin("echo-ok"), ""));
    let mut open = gw.ws("/wss").await;
    let bogus = dir.join("bogus.wasm");
    std::fs::write(&bogus, b"not wasm at all").unwrap();
    assert!(
        !gw.reload(&dir, &config(&cert, &bogus, "")),
        "a broken plugin was accepted"
    );
    assert!(
        gw.log().contains("bogus.wasm"),
        "the rejection does not name the file:\n{}",
        gw.log()
    );
    assert_eq!(ask(&mut open, "tom").await, "ok");
    let mut new = gw.wss("/wss").await;
    assert_eq!(ask(&mut new, "tom").await, "ok");
    // A config error is rejected the same way.
    assert!(!gw.reload(&dir, "workers = \"two\"\n"));
    let mut newer = gw.ws("/wss").await;
    assert_eq!(ask(&mut newer, "tom").await, "ok");
}

#[tokio::test]
async fn certificates_reload_for_new_connections() {
    let dir = scratch_dir("reload-cert");
    let first = TestCert::create(&dir);
    let gw = start(&dir, &first, &config(&first, &plugin("echo-ok"), ""));
    let second = TestCert::create(&scratch_dir("reload-cert-2"));
    assert!(
        gw.reload(&dir, &config(&second, &plugin("echo-ok"), "")),
        "{}",
        gw.log()
    );
    let mut ws = wss_from(gw.wss, "127.0.0.1", &second.der, "/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
    let tcp = bounded(tokio::net::TcpStream::connect(gw.wss))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let old = bounded(trusting(&first.der).connect(name, tcp)).await;
    assert!(
        old.is_err(),
        "a new handshake still presented the old certificate"
    );
}

#[tokio::test]
async fn a_new_listener_address_or_worker_count_needs_a_restart_and_says_so() {
    let dir = scratch_dir("reload-restart");
    let cert = TestCert::create(&dir);
    let gw = start(&dir, &cert, &config(&cert, &plugin("echo-ok"), ""));
    let changed = config(&cert, &plugin("echo"), "").replace("workers = 2", "workers = 3");
    assert!(gw.reload(&dir, &changed), "{}", gw.log());
    assert!(gw.log().contains("needs a restart"), "{}", gw.log());
    // Everything else was applied.
    let mut ws = gw.ws("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "tom");
}

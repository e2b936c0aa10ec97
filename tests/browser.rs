//! The seed's check in a real browser: headless Chromium runs `new WebSocket("wss://…/wss"); ws.send("tom")` and
//! receives `ok` — from the gateway's own test page, against the gateway directly, and through nginx.

use std::time::Duration;
use wssgate_tests::nginx::{behind_nginx_gateway, start_nginx};
use wssgate_tests::process::run_bounded;
use wssgate_tests::*;

#[tokio::test]
#[ignore = "needs chromium, nginx and the Node packages: ./test.sh installs them and runs this test"]
async fn chromium_runs_the_seed_check_directly_and_through_nginx() {
    let node_dir = workspace_root().join("tests/interop/node");
    require_chromium_and_playwright();
    let gw = TestGateway::start(&standard_routes());
    let dir = scratch_dir("browser");
    let behind = behind_nginx_gateway(&dir);
    let cert = TestCert::create(&scratch_dir("browser-cert"));
    let nginx = start_nginx(&dir, &cert, behind.ws);

    let page = format!("https://localhost:{}/", gw.wss.port());
    let direct = format!("wss://localhost:{}/wss", gw.wss.port());
    let proxied = format!("wss://localhost:{}/wss", nginx.address.port());
    let script = node_dir.join("browser.mjs");
    let mut node = std::process::Command::new("node");
    node.arg(&script).args([&page, &direct, &proxied]);
    let output = run_bounded(node, Duration::from_secs(90)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        result["page"], "ok",
        "the built-in page showed {}",
        result["page"]
    );
    assert_eq!(result["replies"][&direct], "ok");
    assert_eq!(result["replies"][&proxied], "ok");
}

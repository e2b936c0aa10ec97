//! Interop with WebSocket clients nobody here wrote: Python `websockets` and Node `ws`, over wss against /echo —
//! text, binary, ping and a close code.

use std::process::Command;
use wssgate_tests::process::run_json_client;
use wssgate_tests::*;

fn gateway_and_ca() -> (TestGateway, String, String) {
    let gw = TestGateway::start(&standard_routes());
    let ca = ca_file(&gw.cert, &scratch_dir("interop"));
    let url = format!("wss://localhost:{}/echo", gw.wss.port());
    (gw, url, ca.display().to_string())
}

#[tokio::test]
#[ignore = "needs Python websockets: ./test.sh installs it and runs this test"]
async fn python_websockets_echoes_text_binary_ping_and_close_codes() {
    require_python_websockets();
    let (_gw, url, ca) = gateway_and_ca();
    let script = workspace_root()
        .join("tests/interop/python_client.py")
        .display()
        .to_string();
    let result = run_json_client("python3", &[script, url, ca]).await;
    assert_eq!(result["text"], "héllo from python");
    assert_eq!(result["binary"], serde_json::json!([0, 1, 255]));
    assert_eq!(result["pong"], true);
    assert_eq!(result["close_code"], 4000);
    assert_eq!(result["close_reason"], "python done");
}

#[tokio::test]
#[ignore = "needs the Node packages of tests/interop/node: ./test.sh installs them and runs this test"]
async fn node_ws_echoes_text_binary_ping_and_close_codes() {
    let node_dir = workspace_root().join("tests/interop/node");
    let present = node_dir.join("node_modules/ws/package.json").exists()
        && Command::new("node")
            .arg("--version")
            .status()
            .is_ok_and(|s| s.success());
    require("node with `ws`", present, "cd tests/interop/node && npm ci");
    let (_gw, url, ca) = gateway_and_ca();
    let script = node_dir.join("client.mjs").display().to_string();
    let result = run_json_client("node", &[script, url, ca]).await;
    assert_eq!(result["text"], "héllo from node");
    assert_eq!(result["binary"], serde_json::json!([0, 1, 255]));
    assert_eq!(result["binary_flag"], true);
    assert_eq!(result["pong"], "are you there");
    assert_eq!(result["close_code"], 4000);
    assert_eq!(result["close_reason"], "node done");
}

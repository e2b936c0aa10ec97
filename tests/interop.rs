//! Interop with WebSocket clients nobody here wrote: Python `websockets` and Node `ws`, over wss against /echo —
//! text, binary, ping and a close code.

use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use wssgate_tests::process::run_bounded;
use wssgate_tests::*;

/// Runs `program args…` (bounded) and parses the JSON line it prints.
async fn run_client(program: &str, args: &[String]) -> Value {
    let mut command = Command::new(program);
    command.args(args);
    let output = run_bounded(command, Duration::from_secs(30)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{program} failed: {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn gateway_and_ca() -> (TestGateway, String, String) {
    let gw = TestGateway::start(&standard_routes());
    let ca = scratch_dir("interop").join("ca.pem");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64(gw.cert.as_ref())
    );
    std::fs::write(&ca, pem).unwrap();
    let url = format!("wss://localhost:{}/echo", gw.wss.port());
    (gw, url, ca.display().to_string())
}

/// Standard base64 with line breaks every 64 characters, for a PEM file.
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                TABLE[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out.as_bytes()
        .chunks(64)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
#[ignore = "needs Python websockets: ./test.sh installs it and runs this test"]
async fn python_websockets_echoes_text_binary_ping_and_close_codes() {
    let present = Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .status();
    require(
        "python3 with `websockets`",
        present.is_ok_and(|s| s.success()),
        "pip install websockets",
    );
    let (_gw, url, ca) = gateway_and_ca();
    let script = workspace_root()
        .join("tests/interop/python_client.py")
        .display()
        .to_string();
    let result = run_client("python3", &[script, url, ca]).await;
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
    let result = run_client("node", &[script, url, ca]).await;
    assert_eq!(result["text"], "héllo from node");
    assert_eq!(result["binary"], serde_json::json!([0, 1, 255]));
    assert_eq!(result["binary_flag"], true);
    assert_eq!(result["pong"], "are you there");
    assert_eq!(result["close_code"], 4000);
    assert_eq!(result["close_reason"], "node done");
}

//! The plugin scenarios of the SDK's scenario suite, run against the real gateway over real sockets: the same
//! scripts the plugins' unit tests run against the mock host (`MockHost::run_scenario`), so the mock and the
//! gateway cannot drift apart without one of the two runs failing.

use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::path::Path;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use wssgate_sdk::Message;
use wssgate_sdk::testing::{Expected, SCENARIO_PATH, Scenario, Step};
use wssgate_tests::*;

/// The SDK's message as a WebSocket frame.
fn frame(message: &Message) -> WsMessage {
    match message {
        Message::Text(text) => WsMessage::text(text.as_str()),
        Message::Binary(bytes) => WsMessage::binary(bytes.clone()),
    }
}

/// Runs `scenario` against a one-worker gateway serving `plugin` at the scenario path.
async fn run_on_gateway(plugin: &Path, scenario: &Scenario) {
    let settings: String = scenario
        .settings
        .iter()
        .map(|(key, value)| format!("{key} = {value:?}\n"))
        .collect();
    let routes = format!(
        "[[route]]\npath = \"{SCENARIO_PATH}\"\nplugin = \"{}\"\naccept_timeout_ms = {}\n[route.settings]\n{settings}",
        plugin.display(),
        scenario.accept_timeout.as_millis()
    );
    // One worker, so every client reaches the one instance whose state the scenario reads.
    let gw = TestGateway::start_with("workers = 1\n", &routes);
    let name = scenario.name;
    let mut clients = BTreeMap::new();
    for (n, step) in scenario.steps.iter().enumerate() {
        match step {
            Step::Connect {
                client,
                query,
                expect,
            } => {
                let path = if query.is_empty() {
                    SCENARIO_PATH.to_owned()
                } else {
                    format!("{SCENARIO_PATH}?{query}")
                };
                let got = match gw.try_wss(&path).await {
                    Ok(ws) => {
                        clients.insert(*client, ws);
                        Expected::Open
                    }
                    Err((status, _body)) => Expected::Rejected(status),
                };
                assert_eq!(got, *expect, "{name}, step {n}: client {client}'s upgrade");
            }
            Step::Send { client, message } => {
                let ws = clients.get_mut(client).expect("connected");
                bounded(ws.send(frame(message))).await.expect("sending");
            }
            Step::Receive { client, message } => {
                let ws = clients.get_mut(client).expect("connected");
                assert_eq!(
                    next_message(ws).await,
                    frame(message),
                    "{name}, step {n}: what client {client} received next"
                );
            }
            Step::Wait(time) => tokio::time::sleep(*time).await,
            Step::Close { client, code } => {
                let ws = clients.get_mut(client).expect("connected");
                let close = CloseFrame {
                    code: (*code).into(),
                    reason: "".into(),
                };
                bounded(ws.close(Some(close))).await.expect("closing");
                // The gateway drops the connection once its on-close ran: wait for that, so later steps see it.
                for _ in 0..1000 {
                    if !matches!(bounded(ws.next()).await, Some(Ok(_))) {
                        break;
                    }
                }
            }
            Step::Closed { client, code } => {
                let ws = clients.get_mut(client).expect("connected");
                assert_eq!(
                    expect_close(ws).await.0,
                    *code,
                    "{name}, step {n}: client {client}'s close code"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_deferred_plugins_scenarios_pass_on_the_gateway_as_on_the_mock() {
    let all = deferred::scenarios();
    assert!(all.len() >= 6);
    for scenario in &all {
        run_on_gateway(&plugin("deferred"), scenario).await;
    }
}

#[tokio::test]
#[ignore = "needs npm's packages (./test.sh runs npm ci)"]
async fn the_typescript_port_of_deferred_passes_the_same_scenarios_on_the_gateway() {
    let plugin = wssgate_tests::languages::ts_plugin("tests/plugins/deferred-ts");
    for scenario in &deferred::scenarios() {
        run_on_gateway(&plugin, scenario).await;
    }
}

#[tokio::test]
#[ignore = "needs the Python venv (./test.sh makes it)"]
async fn the_python_port_of_deferred_passes_the_same_scenarios_on_the_gateway() {
    let plugin = wssgate_tests::languages::py_plugin("tests/plugins/deferred-py");
    for scenario in &deferred::scenarios() {
        run_on_gateway(&plugin, scenario).await;
    }
}

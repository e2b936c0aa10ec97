//! Reads a shared scenario file (`tests/scenarios/*.json`, described in its README) into the SDK's scenarios. The
//! files are written once for every language's SDK, so the Rust mock host runs exactly what the others run.

use serde_json::Value;
use std::time::Duration;
use wssgate_sdk::Message;
use wssgate_sdk::testing::{Expected, Scenario, Step};

/// The SDK's scenarios borrow their text for the whole test run; a test process reads each file once.
fn keep(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// Parses `json`, panicking with the scenario and step that are malformed (the file is the test's input).
pub fn parse(json: &str) -> Vec<Scenario> {
    let file: Value = serde_json::from_str(json).expect("a scenario file is JSON");
    let all = file["scenarios"].as_array().expect("`scenarios` is a list");
    all.iter().map(scenario).collect()
}

fn scenario(value: &Value) -> Scenario {
    let name = keep(value["name"].as_str().expect("a scenario has a `name`"));
    let settings = value["settings"]
        .as_object()
        .map(|settings| {
            settings
                .iter()
                .map(|(k, v)| (keep(k), keep(v.as_str().expect("settings are strings"))))
                .collect()
        })
        .unwrap_or_default();
    let accept_timeout =
        Duration::from_millis(value["accept_timeout_ms"].as_u64().unwrap_or(10_000));
    let steps = value["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: `steps` is a list"))
        .iter()
        .enumerate()
        .map(|(n, s)| step(s).unwrap_or_else(|| panic!("{name}, step {n}: not a step: {s}")))
        .collect();
    Scenario {
        name,
        settings,
        accept_timeout,
        steps,
    }
}

fn client(value: &Value) -> Option<usize> {
    value.as_u64().map(|n| n as usize)
}

fn message(step: &Value) -> Option<Message> {
    if let Some(text) = step["text"].as_str() {
        return Some(Message::from(text));
    }
    let bytes = step["binary"].as_array()?;
    let bytes: Option<Vec<u8>> = bytes
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect();
    Some(Message::Binary(bytes?))
}

fn code(step: &Value) -> Option<u16> {
    step["code"].as_u64().and_then(|c| u16::try_from(c).ok())
}

fn step(step: &Value) -> Option<Step> {
    if let Some(c) = client(&step["connect"]) {
        let expect = match step["expect"].as_u64()? {
            101 => Expected::Open,
            status => Expected::Rejected(u16::try_from(status).ok()?),
        };
        let query = keep(step["query"].as_str().unwrap_or(""));
        return Some(Step::Connect {
            client: c,
            query,
            expect,
        });
    }
    if let Some(c) = client(&step["send"]) {
        return Some(Step::Send {
            client: c,
            message: message(step)?,
        });
    }
    if let Some(c) = client(&step["receive"]) {
        return Some(Step::Receive {
            client: c,
            message: message(step)?,
        });
    }
    if let Some(ms) = step["wait_ms"].as_u64() {
        return Some(Step::Wait(Duration::from_millis(ms)));
    }
    if let Some(c) = client(&step["close"]) {
        return Some(Step::Close {
            client: c,
            code: code(step)?,
        });
    }
    if let Some(c) = client(&step["closed"]) {
        return Some(Step::Closed {
            client: c,
            code: code(step)?,
        });
    }
    None
}

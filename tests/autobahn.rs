//! Autobahn|Testsuite's compression cases (12: permessage-deflate with every parameter set and message size, 13:
//! the same with each context-takeover and window combination) against a compressed echo route in `shared` and in
//! `dedicated` mode. Every case must come back `OK`, for what the client received and for how the connection
//! closed. The suite is Python 2.7 only: ./test.sh installs it into .autobahn/ (see tests/autobahn/requirements.txt).

use std::process::Command;
use std::time::Duration;
use wssgate_tests::process::run_bounded;
use wssgate_tests::*;

/// The cases of sections 12 and 13 of Autobahn|Testsuite 25.10.1, per agent.
const CASES: usize = 216;

#[tokio::test]
#[ignore = "needs Autobahn|Testsuite in .autobahn/: ./test.sh installs it and runs this test"]
async fn autobahn_compression_cases_all_pass_in_shared_and_dedicated_mode() {
    let wstest = workspace_root().join(".autobahn/venv27/bin/wstest");
    require(
        "Autobahn|Testsuite (wstest)",
        wstest.is_file(),
        "./test.sh (it installs Python 2.7 from Debian 11 and the suite into .autobahn/)",
    );
    let route = |path: &str, mode: &str| {
        format!(
            "[[route]]\npath = \"{path}\"\nplugin = \"{}\"\ncompression = \"{mode}\"\n",
            plugin("echo").display()
        )
    };
    let gw = TestGateway::start_with(
        "workers = 2\n",
        &(route("/shared", "shared") + &route("/dedicated", "dedicated")),
    );
    let dir = scratch_dir("autobahn");
    // One wstest per mode, at once: the suite mostly waits (its cases pace themselves), so two runs take the time
    // of one.
    let runs = ["shared", "dedicated"].map(|agent| {
        let run = dir.join(agent);
        std::fs::create_dir_all(&run).unwrap();
        let spec = serde_json::json!({
            "outdir": run.join("reports").display().to_string(),
            "servers": [{"agent": agent, "url": format!("ws://127.0.0.1:{}/{agent}", gw.ws.port())}],
            "cases": ["12.*", "13.*"],
            "exclude-cases": [],
            "exclude-agent-cases": {},
        });
        std::fs::write(run.join("spec.json"), spec.to_string()).unwrap();
        let mut command = Command::new(&wstest);
        command
            .args(["-m", "fuzzingclient", "-s", "spec.json"])
            .current_dir(&run);
        (agent, run, run_bounded(command, Duration::from_secs(40 * 60)))
    });
    let mut index = serde_json::Map::new();
    let mut logs = String::new();
    let [(a, a_dir, a_run), (b, b_dir, b_run)] = runs;
    let (a_out, b_out) = tokio::join!(a_run, b_run);
    for (agent, run, output) in [(a, a_dir, a_out), (b, b_dir, b_out)] {
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // wstest exits 0 whatever happened: the report says.
        assert!(output.status.success(), "wstest ({agent}) failed:\n{log}");
        let report = std::fs::read_to_string(run.join("reports/index.json"))
            .unwrap_or_else(|e| panic!("no report for {agent} ({e}):\n{log}"));
        let report: serde_json::Value = serde_json::from_str(&report).unwrap();
        index.insert(agent.to_owned(), report[agent].clone());
        logs.push_str(&log);
    }
    let log = logs;
    let mut failed = Vec::new();
    for agent in ["shared", "dedicated"] {
        let cases = index[agent]
            .as_object()
            .unwrap_or_else(|| panic!("no results for {agent}:\n{log}"));
        assert_eq!(cases.len(), CASES, "cases run for {agent}");
        for (case, result) in cases {
            if result["behavior"] != "OK" || result["behaviorClose"] != "OK" {
                failed.push(format!(
                    "{agent} {case}: {} / {} (see {})",
                    result["behavior"], result["behaviorClose"], result["reportfile"]
                ));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} cases did not pass (reports in {}):\n{}",
        failed.len(),
        dir.display(),
        failed.join("\n")
    );
}

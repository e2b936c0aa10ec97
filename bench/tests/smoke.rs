//! CI's check that the benchmark harness works: the runner starts the baseline and the (debug) gateway, drives
//! each for two seconds with the load generator, and prints its table. Speed is not judged here — a debug build on
//! a shared CI machine says nothing about it — only that every piece runs and measures something.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;
use wssgate_tests::process::{SIGTERM, stop_group};

/// Runs benchrun's `scenarios` once each against the debug gateway; returns its table and JSON report.
fn run_benchrun(scenarios: &[&str]) -> (String, serde_json::Value) {
    run_benchrun_with(scenarios, &[])
}

/// The same, with more arguments for benchrun.
fn run_benchrun_with(scenarios: &[&str], extra: &[&str]) -> (String, serde_json::Value) {
    let gateway = wssgate_tests::gateway_binary();
    let plugins = wssgate_tests::plugin("echo-ok")
        .parent()
        .unwrap()
        .to_path_buf();
    let json = std::env::temp_dir().join(format!(
        "wssgate-bench-smoke-{}-{}.json",
        std::process::id(),
        scenarios[0]
    ));
    // In a group of its own, so that a timeout stops the servers benchrun started along with it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_benchrun"))
        // From the repository's root, as a person runs it: the node client is found from there.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .process_group(0)
        .arg("--scenario")
        .args(scenarios)
        .args(["--rounds", "1"])
        .arg("--gateway")
        .arg(&gateway)
        .arg("--plugins")
        .arg(&plugins)
        .arg("--json")
        .arg(&json)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting benchrun");
    // Bounded: two server runs per scenario, each started and driven for 2.5 s, well inside two minutes even on a
    // slow machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for benchrun") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            stop_group(&mut child, SIGTERM);
            panic!("benchrun did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut table = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut table).unwrap();
    assert!(status.success(), "benchrun failed: {status}\n{table}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON report")).unwrap();
    let _ = std::fs::remove_file(&json);
    (table, summary)
}

/// Every run answered messages, without errors, and measured the server's CPU and the latency.
fn assert_measured(runs: &[serde_json::Value]) {
    for run in runs {
        let report = &run["report"];
        assert!(
            report["count"].as_u64().unwrap() > 0,
            "no messages answered: {run}"
        );
        assert_eq!(report["errors"].as_u64(), Some(0), "errors: {run}");
        let cpu = report["server"]["cpu_us_per_op"].as_f64().unwrap();
        assert!(
            cpu > 0.0 && cpu.is_finite(),
            "no server CPU measured: {run}"
        );
        assert!(
            report["latency"]["p99_us"].as_u64().unwrap() > 0,
            "no latency: {run}"
        );
    }
}

#[test]
#[ignore = "needs nginx (./test.sh installs it)"]
fn webhook_smoke_runs_the_gateway_and_nginx_against_the_same_backend() {
    wssgate_tests::require_tool(
        "nginx",
        std::path::Path::new("/usr/sbin/nginx"),
        "apt-get install nginx",
    );
    let (table, summary) = run_benchrun(&["smoke-webhook"]);
    assert!(table.contains("| smoke-webhook ("), "no row in:\n{table}");
    let runs = summary["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{summary}");
    assert_eq!(
        runs[0]["report"]["mode"], "http",
        "nginx is driven over HTTP: {summary}"
    );
    assert_measured(runs);
}

#[test]
fn smoke_scenario_runs_both_servers_and_reports() {
    let (table, summary) = run_benchrun(&["smoke", "smoke-paced"]);
    assert!(table.contains("| smoke ("), "no smoke row in:\n{table}");
    assert!(
        table.contains("| smoke-paced ("),
        "no row for the paced client against the tuned baseline in:\n{table}"
    );
    let runs = summary["runs"].as_array().expect("runs");
    assert_eq!(
        runs.len(),
        4,
        "a baseline and a gateway run for each scenario: {summary}"
    );
    assert_measured(runs);
    for gateway_run in [&runs[1], &runs[3]] {
        assert!(
            gateway_run["report"]["server"]["plugin_share"]
                .as_f64()
                .is_some_and(|s| s > 0.0 && s < 1.0),
            "the gateway's plugin share comes from its /metrics: {summary}"
        );
    }
}

/// `--baseline-command` starts any server as the baseline (here our own reference server, standing in for
/// uWebSockets, which is not built in CI), and `--client node` drives both servers with Node's `ws` instead of
/// loadgen: the two ways BENCHMARKS.md compares the gateway with uWebSockets through an independent client.
#[test]
#[ignore = "needs bench/node's ws package (./test.sh installs it)"]
fn an_external_baseline_driven_by_the_node_client() {
    wssgate_tests::require_tool(
        "Node's ws for the benchmarks",
        std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/node/node_modules/ws/package.json"
        )),
        "cd bench/node && npm ci",
    );
    let baseline = std::path::Path::new(env!("CARGO_BIN_EXE_benchrun")).with_file_name("baseline");
    let command = format!(
        "{} --address {{address}} --cert {{cert}} --key {{key}} --mode ok",
        baseline.display()
    );
    for client in ["loadgen", "node"] {
        let (table, summary) = run_benchrun_with(
            &["smoke-external"],
            &["--baseline-command", &command, "--client", client],
        );
        assert!(
            table.contains("| smoke-external ("),
            "no row with the {client} client in:\n{table}"
        );
        let runs = summary["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2, "{summary}");
        assert_measured(runs);
        // The external server is the one measured: its CPU is its own pid's, not a shell's, which would use
        // almost none.
        let external = &runs[0]["report"]["server"];
        assert!(
            external["cpu_us"].as_f64().unwrap() > 1000.0,
            "the external server's CPU is measured through exec: {summary}"
        );
    }
}

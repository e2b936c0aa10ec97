//! The benchmark runner: for each scenario it starts the baseline and the gateway (`--workers 1`), each pinned to
//! the server core, drives them with the same `loadgen` load pinned to the client core, alternating
//! baseline/gateway/baseline/gateway…, and reports medians, ranges and the gateway/baseline ratio against the
//! scenario's target. Every server is started fresh for each run, so peak memory belongs to that run.

use anyhow::{Context, Result, bail};
use clap::Parser;

mod scenarios;

/// Which program drives the load.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Client {
    Loadgen,
    Node,
}
mod servers;
mod summary;

use scenarios::*;
use servers::*;
use std::path::PathBuf;
use summary::*;

#[derive(Parser)]
#[command(about)]
pub(crate) struct Args {
    /// Scenarios to run: a b c d e f g h i n o u1 u8 w x ts py, `all`, or `smoke` and `smoke-paced` (two-second
    /// checks that the harness works, the second with the paced client and the tuned baseline), `smoke-external`
    /// (against `--baseline-command`) and `smoke-webhook` (the webhook route against nginx). w, x and smoke-webhook
    /// need nginx; n and o need nats-server; ts and py need the TypeScript and Python echo plugins (`--ts-echo`,
    /// `--py-echo`); u1 and u8 need `--baseline-command`. `all` leaves out what it lacks, and says so.
    #[arg(long, num_args = 1.., default_values = ["all"])]
    pub(crate) scenario: Vec<String>,
    /// Runs of each server per scenario (alternating baseline and gateway).
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) duration: f64,
    /// Connections for scenario (e) (idle) — the process may open 20,000 files in this sandbox.
    #[arg(long, default_value_t = 19_000)]
    pub(crate) idle_connections: usize,
    /// Group members for scenario (g).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) members: usize,
    /// The gateway binary.
    #[arg(long, default_value = "target/release/wssgate")]
    pub(crate) gateway: PathBuf,
    /// Where the plugins' `.wasm` files are (echo_ok, echo, fanout).
    #[arg(long, default_value = "target/wasm32-wasip2/release")]
    pub(crate) plugins: PathBuf,
    /// A TypeScript plugin that echoes, for scenario ts: misbehaving-ts echoes what it does not take as a command
    /// (`npm run build -w tests/plugins/misbehaving-ts`).
    #[arg(
        long,
        default_value = "tests/plugins/misbehaving-ts/dist/misbehaving-ts.wasm"
    )]
    pub(crate) ts_echo: PathBuf,
    /// A Python plugin that echoes, for scenario py (`sh tests/plugins/misbehaving-py/build.sh`).
    #[arg(
        long,
        default_value = "tests/plugins/misbehaving-py/dist/misbehaving-py.wasm"
    )]
    pub(crate) py_echo: PathBuf,
    /// Core the servers are pinned to.
    #[arg(long, default_value_t = 0)]
    pub(crate) server_core: usize,
    /// Core the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    pub(crate) client_core: usize,
    /// A server of your own as the baseline of scenarios u1, u8 and smoke-external: a shell command, run with `exec`
    /// (so that the process measured is the server itself, which must run in one process), pinned to the server
    /// core, in which `{address}`, `{port}`, `{cert}` and `{key}` are replaced by where to listen (on 127.0.0.1)
    /// and the run's certificate and key (PEM). For example uWebSockets' `SSLApp` answering `ok`:
    /// `--baseline-command '/tmp/uws/ok {port} {cert} {key}'`.
    #[arg(long)]
    pub(crate) baseline_command: Option<String>,
    /// The path the external baseline serves its WebSocket at.
    #[arg(long, default_value = "/")]
    pub(crate) baseline_path: String,
    /// The client that drives the echo scenarios: `loadgen` (ours), or `node` (Node's `ws`, bench/node/echo.mjs,
    /// always paced: an independent witness; `npm ci` in bench/node first). The other modes need loadgen.
    #[arg(long, value_enum, default_value = "loadgen")]
    pub(crate) client: Client,
    /// Also write every run's report and the summary as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tools = Tools::find(&args)?;
    let dir = std::env::temp_dir().join(format!("wssgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem())?;
    std::fs::write(&key_path, cert.signing_key.serialize_pem())?;
    let all = scenarios(&args);
    let wanted: Vec<&Scenario> = if args.scenario.iter().any(|s| s == "all") {
        all.iter()
            .filter(|s| !s.name.starts_with("smoke"))
            .filter(|s| match s.needs_option(&args) {
                Some(option) => {
                    eprintln!("== scenario {} left out: it needs {option}", s.name);
                    false
                }
                None => true,
            })
            .filter(|s| {
                let echo = s.is_echo();
                if !echo && args.client == Client::Node {
                    eprintln!(
                        "== scenario {} left out: the node client drives echo only",
                        s.name
                    );
                }
                echo || args.client == Client::Loadgen
            })
            .filter(|s| match s.needs_plugin(&args) {
                Some(missing) if !missing.is_file() => {
                    eprintln!(
                        "== scenario {} left out: {} is not built",
                        s.name,
                        missing.display()
                    );
                    false
                }
                _ => true,
            })
            .collect()
    } else {
        args.scenario
            .iter()
            .map(|name| {
                all.iter()
                    .find(|s| s.name == name)
                    .with_context(|| format!("no scenario {name:?}"))
            })
            .collect::<Result<_>>()?
    };
    for scenario in &wanted {
        if let Some(option) = scenario.needs_option(&args) {
            bail!("scenario {} needs {option}", scenario.name);
        }
        if args.client == Client::Node && !scenario.is_echo() {
            bail!(
                "scenario {}: the node client drives echo loads only",
                scenario.name
            );
        }
        if let Some(plugin) = scenario.needs_plugin(&args)
            && !plugin.is_file()
        {
            bail!(
                "scenario {}: {} is missing; build it (see --help)",
                scenario.name,
                plugin.display()
            );
        }
    }
    let mut summaries = Vec::new();
    let mut runs = Vec::new();
    for scenario in wanted {
        eprintln!("== scenario {}: {}", scenario.name, scenario.what);
        let (mut baseline, mut gateway) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            for is_gateway in [false, true] {
                let server = Server::start(
                    &tools, &args, &dir, &cert_path, &key_path, scenario, is_gateway,
                )?;
                let report = server.drive(&tools, &args, &cert_path, scenario);
                drop(server);
                let report = report
                    .with_context(|| format!("scenario {} round {}", scenario.name, round + 1))?;
                eprintln!(
                    "  {:8} {}",
                    if is_gateway { "gateway" } else { "baseline" },
                    report.line()
                );
                runs.push(serde_json::json!({"scenario": scenario.name, "server": if is_gateway {"gateway"} else {"baseline"}, "report": report}));
                if is_gateway {
                    gateway.push(report)
                } else {
                    baseline.push(report)
                }
            }
        }
        summaries.push(Summary::of(scenario, &baseline, &gateway));
    }
    println!("{}", Summary::table(&summaries));
    if let Some(path) = &args.json {
        let json = serde_json::json!({"runs": runs, "summary": summaries.iter().map(Summary::json).collect::<Vec<_>>()});
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

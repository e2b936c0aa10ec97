//! The benchmark runner: for each scenario it starts the baseline and the gateway (`--workers 1`), each pinned to
//! the server core, drives them with the same `loadgen` load pinned to the client core, alternating
//! baseline/gateway/baseline/gateway…, and reports medians, ranges and the gateway/baseline ratio against the
//! scenario's target. Every server is started fresh for each run, so peak memory belongs to that run.

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wssgate_bench::report::LoadReport;

#[derive(Parser)]
#[command(about)]
struct Args {
    /// Scenarios to run: a b c d e f g h i, `all`, or `smoke` and `smoke-paced` (two-second checks that the harness
    /// works, the second with the paced client and the tuned baseline).
    #[arg(long, num_args = 1.., default_values = ["all"])]
    scenario: Vec<String>,
    /// Runs of each server per scenario (alternating baseline and gateway).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Connections for scenario (e) (idle) — the process may open 20,000 files in this sandbox.
    #[arg(long, default_value_t = 19_000)]
    idle_connections: usize,
    /// Group members for scenario (g).
    #[arg(long, default_value_t = 10_000)]
    members: usize,
    /// The gateway binary.
    #[arg(long, default_value = "target/release/wssgate")]
    gateway: PathBuf,
    /// Where the plugins' `.wasm` files are (echo_ok, echo, fanout).
    #[arg(long, default_value = "target/wasm32-wasip2/release")]
    plugins: PathBuf,
    /// Core the servers are pinned to.
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Core the load generator is pinned to.
    #[arg(long, default_value_t = 1)]
    client_core: usize,
    /// Also write every run's report and the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// What a scenario's target compares.
#[derive(Clone, Copy)]
enum Goal {
    /// Server CPU per operation, gateway/baseline at most this.
    CpuRatioAtMost(f64),
    /// Operations per second, gateway/baseline at least this.
    RateRatioAtLeast(f64),
    /// Operations per second of server CPU, gateway/baseline at least this: for a load the client cannot push hard
    /// enough to saturate the server (a TLS handshake costs the client as much as the server), the rate either
    /// server could sustain on its core.
    CapacityRatioAtLeast(f64),
    /// Gateway KiB of resident memory per open connection at most this.
    KibPerConnectionAtMost(f64),
}

struct Scenario {
    name: &'static str,
    what: String,
    /// Arguments for loadgen, the same for both servers.
    load: Vec<String>,
    gateway_path: &'static str,
    baseline_mode: &'static str,
    /// The baseline runs tuned (see `baseline --tuned`) rather than naive.
    tuned: bool,
    goal: Goal,
}

fn scenarios(args: &Args) -> Vec<Scenario> {
    let echo = |c: usize, k: usize| -> Vec<String> {
        vec![
            "--mode".into(),
            "echo".into(),
            "--connections".into(),
            c.to_string(),
            "--in-flight".into(),
            k.to_string(),
        ]
    };
    let paced = |k: usize| -> Vec<String> { [echo(100, k), vec!["--paced".into()]].concat() };
    let sources = "127.0.0.2-127.0.0.61".to_string();
    vec![
        Scenario {
            name: "a",
            what: "100 conns x 1 in flight, 32 B".into(),
            load: echo(100, 1),
            gateway_path: "/wss",
            baseline_mode: "ok",
            tuned: false,
            goal: Goal::CpuRatioAtMost(1.0),
        },
        Scenario {
            name: "b",
            what: "100 conns x 8 in flight, 32 B".into(),
            load: echo(100, 8),
            gateway_path: "/wss",
            baseline_mode: "ok",
            tuned: false,
            goal: Goal::CpuRatioAtMost(0.36),
        },
        Scenario {
            name: "c",
            what: "1,000 conns x 1 in flight, 32 B".into(),
            load: echo(1000, 1),
            gateway_path: "/wss",
            baseline_mode: "ok",
            tuned: false,
            goal: Goal::CpuRatioAtMost(0.6),
        },
        Scenario {
            name: "d",
            what: "100 conns x 1, 4 KiB binary echo".into(),
            load: [
                echo(100, 1),
                vec!["--size".into(), "4096".into(), "--binary".into()],
            ]
            .concat(),
            gateway_path: "/echo",
            baseline_mode: "echo",
            tuned: false,
            goal: Goal::CpuRatioAtMost(1.0),
        },
        Scenario {
            name: "e",
            what: format!("{} idle conns, one message each", args.idle_connections),
            load: vec![
                "--mode".into(),
                "idle".into(),
                "--connections".into(),
                args.idle_connections.to_string(),
                "--sources".into(),
                sources.clone(),
                "--warmup".into(),
                "3".into(),
                "--duration".into(),
                "1".into(),
            ],
            gateway_path: "/wss",
            baseline_mode: "ok",
            tuned: false,
            goal: Goal::KibPerConnectionAtMost(16.0),
        },
        Scenario {
            name: "f",
            what: "TLS + upgrade handshakes, 32 loops".into(),
            load: vec![
                "--mode".into(),
                "handshake".into(),
                "--connections".into(),
                "32".into(),
                "--sources".into(),
                sources.clone(),
            ],
            gateway_path: "/wss",
            baseline_mode: "ok",
            tuned: false,
            goal: Goal::CapacityRatioAtLeast(0.9),
        },
        Scenario {
            name: "g",
            what: format!("publish to {} members, 4 under way", args.members),
            load: vec![
                "--mode".into(),
                "fanout".into(),
                "--connections".into(),
                args.members.to_string(),
                "--in-flight".into(),
                "4".into(),
                "--sources".into(),
                sources,
            ],
            gateway_path: "/fanout",
            baseline_mode: "fanout",
            tuned: false,
            goal: Goal::RateRatioAtLeast(0.8),
        },
        Scenario {
            name: "h",
            what: "100 conns x 1 in flight, paced, vs the tuned stack".into(),
            load: paced(1),
            gateway_path: "/wss",
            baseline_mode: "ok",
            tuned: true,
            goal: Goal::CpuRatioAtMost(1.10),
        },
        Scenario {
            name: "i",
            what: "100 conns x 8 in flight, paced, vs the tuned stack".into(),
            load: paced(8),
            gateway_path: "/wss",
            baseline_mode: "ok",
            tuned: true,
            goal: Goal::CpuRatioAtMost(1.10),
        },
        smoke(
            "smoke",
            "10 conns x 1 in flight, 32 B, two seconds",
            &[],
            false,
        ),
        smoke(
            "smoke-paced",
            "10 conns x 1 in flight, paced, vs the tuned stack, two seconds",
            &["--paced"],
            true,
        ),
    ]
}

/// A two-second check that the harness works: 10 connections × 1 in flight, `extra` loadgen arguments.
fn smoke(name: &'static str, what: &str, extra: &[&str], tuned: bool) -> Scenario {
    let load: Vec<String> = [
        "--mode",
        "echo",
        "--connections",
        "10",
        "--in-flight",
        "1",
        "--warmup",
        "0.5",
        "--duration",
        "2",
    ]
    .iter()
    .chain(extra)
    .map(|a| (*a).to_owned())
    .collect();
    Scenario {
        name,
        what: what.into(),
        load,
        gateway_path: "/wss",
        baseline_mode: "ok",
        tuned,
        goal: Goal::CpuRatioAtMost(f64::INFINITY),
    }
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

/// The programs a run starts.
struct Tools {
    gateway: PathBuf,
    baseline: PathBuf,
    loadgen: PathBuf,
}

impl Tools {
    fn find(args: &Args) -> Result<Self> {
        let here = std::env::current_exe()?
            .parent()
            .context("the runner's folder")?
            .to_path_buf();
        let tools = Tools {
            gateway: args.gateway.clone(),
            baseline: here.join("baseline"),
            loadgen: here.join("loadgen"),
        };
        for (path, hint) in [
            (&tools.gateway, "cargo build --release -p wssgate"),
            (&tools.baseline, "cargo build --release -p wssgate-bench"),
            (&tools.loadgen, "cargo build --release -p wssgate-bench"),
        ] {
            if !path.is_file() {
                bail!("{} is missing: build it with `{hint}`", path.display());
            }
        }
        for plugin in ["echo_ok", "echo", "fanout"] {
            let path = args.plugins.join(format!("{plugin}.wasm"));
            if !path.is_file() {
                bail!(
                    "{} is missing: build the plugins with `cargo build --release --target wasm32-wasip2 -p echo-ok -p echo -p fanout`",
                    path.display()
                );
            }
        }
        Ok(tools)
    }
}

/// A server under test; killed when dropped.
struct Server {
    child: Child,
    address: SocketAddr,
    /// The gateway's admin listener, for the plugin share.
    admin: Option<SocketAddr>,
    path: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn pinned(core: usize, program: &Path) -> Command {
    let mut command = Command::new("taskset");
    command.arg("-c").arg(core.to_string()).arg(program);
    command
}

impl Server {
    fn start(
        tools: &Tools,
        args: &Args,
        dir: &Path,
        cert: &Path,
        key: &Path,
        scenario: &Scenario,
        is_gateway: bool,
    ) -> Result<Server> {
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let log = std::fs::File::create(dir.join(if is_gateway {
            "gateway.log"
        } else {
            "baseline.log"
        }))?;
        let (mut command, admin, path) = if is_gateway {
            let admin = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let plugins = std::path::absolute(&args.plugins)?;
            let config = dir.join("gateway.toml");
            let mut file = std::fs::File::create(&config)?;
            writeln!(
                file,
                "workers = 1\n[[listener]]\naddress = \"{address}\"\ntls = true\ncert = {cert:?}\nkey = {key:?}\n"
            )?;
            writeln!(
                file,
                "[admin]\naddress = \"{admin}\"\ntoken = \"benchmark-token-not-secret\"\n"
            )?;
            for (route, plugin) in [
                ("/wss", "echo_ok"),
                ("/echo", "echo"),
                ("/fanout", "fanout"),
            ] {
                writeln!(
                    file,
                    "[[route]]\npath = \"{route}\"\nplugin = {:?}\n",
                    plugins.join(format!("{plugin}.wasm"))
                )?;
            }
            let mut command = pinned(args.server_core, &tools.gateway);
            command
                .arg("serve")
                .arg("--config")
                .arg(&config)
                .arg("--workers")
                .arg("1");
            (command, Some(admin), scenario.gateway_path)
        } else {
            let mut command = pinned(args.server_core, &tools.baseline);
            command
                .arg("--address")
                .arg(address.to_string())
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key)
                .arg("--mode")
                .arg(scenario.baseline_mode);
            if scenario.tuned {
                command.arg("--tuned");
            }
            (command, None, "/")
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting a server (is taskset installed?)")?;
        let server = Server {
            child,
            address,
            admin,
            path,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "the server did not listen on {address} within 60 s (log in {})",
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    fn drive(
        &self,
        tools: &Tools,
        args: &Args,
        cert: &Path,
        scenario: &Scenario,
    ) -> Result<LoadReport> {
        let mut command = pinned(args.client_core, &tools.loadgen);
        command
            .arg("--json")
            .arg("--address")
            .arg(self.address.to_string())
            .arg("--path")
            .arg(self.path)
            .arg("--cert")
            .arg(cert)
            .arg("--server-pid")
            .arg(self.child.id().to_string());
        command.arg("--duration").arg(args.duration.to_string());
        if let Some(admin) = self.admin {
            command.arg("--metrics").arg(admin.to_string());
        }
        // The later of a repeated flag wins, so a scenario's own warm-up and duration stand.
        command.args(&scenario.load);
        let output = command
            .stderr(Stdio::inherit())
            .output()
            .context("running loadgen")?;
        if !output.status.success() {
            bail!("loadgen failed with {}", output.status);
        }
        let report: LoadReport =
            serde_json::from_slice(&output.stdout).context("reading loadgen's JSON")?;
        Ok(report)
    }
}

/// One scenario's results over its rounds.
struct Summary {
    name: &'static str,
    what: String,
    metric: &'static str,
    baseline: Vec<f64>,
    gateway: Vec<f64>,
    goal: Goal,
    /// Gateway medians of latency p99 and peak RSS, for the table.
    gateway_p99_us: Option<f64>,
    baseline_p99_us: Option<f64>,
    gateway_peak_kib: f64,
    baseline_peak_kib: f64,
    plugin_share: Option<f64>,
    errors: u64,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn range(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2}–{:.2}", min, max)
}

impl Summary {
    fn of(scenario: &Scenario, baseline: &[LoadReport], gateway: &[LoadReport]) -> Summary {
        let (metric, pick): (&'static str, fn(&LoadReport) -> f64) = match scenario.goal {
            Goal::CpuRatioAtMost(_) => ("server CPU µs per message", |r| {
                r.server.as_ref().map_or(f64::NAN, |s| s.cpu_us_per_op)
            }),
            Goal::RateRatioAtLeast(_) => ("per second", |r| r.per_sec),
            Goal::CapacityRatioAtLeast(_) => ("per second of server CPU", |r| {
                r.server
                    .as_ref()
                    .map_or(f64::NAN, |s| 1e6 / s.cpu_us_per_op)
            }),
            Goal::KibPerConnectionAtMost(_) => ("KiB RSS per connection", |r| {
                r.server
                    .as_ref()
                    .map_or(f64::NAN, |s| s.rss_per_connection_kib)
            }),
        };
        let p99 = |reports: &[LoadReport]| {
            let v: Vec<f64> = reports
                .iter()
                .filter_map(|r| r.latency.map(|l| l.p99_us as f64))
                .collect();
            (!v.is_empty()).then(|| median(&v))
        };
        let peak = |reports: &[LoadReport]| {
            median(
                &reports
                    .iter()
                    .map(|r| r.server.as_ref().map_or(0.0, |s| s.peak_rss_kib as f64))
                    .collect::<Vec<_>>(),
            )
        };
        let shares: Vec<f64> = gateway
            .iter()
            .filter_map(|r| r.server.as_ref()?.plugin_share)
            .collect();
        Summary {
            name: scenario.name,
            what: scenario.what.clone(),
            metric,
            baseline: baseline.iter().map(pick).collect(),
            gateway: gateway.iter().map(pick).collect(),
            goal: scenario.goal,
            gateway_p99_us: p99(gateway),
            baseline_p99_us: p99(baseline),
            gateway_peak_kib: peak(gateway),
            baseline_peak_kib: peak(baseline),
            plugin_share: (!shares.is_empty()).then(|| median(&shares)),
            errors: baseline.iter().chain(gateway).map(|r| r.errors).sum(),
        }
    }

    fn ratio(&self) -> f64 {
        median(&self.gateway) / median(&self.baseline)
    }

    /// The target and whether it held.
    fn verdict(&self) -> (String, bool) {
        match self.goal {
            Goal::CpuRatioAtMost(max) if max.is_infinite() => ("—".into(), true),
            Goal::CpuRatioAtMost(max) => (format!("≤ {max}×"), self.ratio() <= max),
            Goal::RateRatioAtLeast(min) | Goal::CapacityRatioAtLeast(min) => {
                (format!("≥ {min}×"), self.ratio() >= min)
            }
            Goal::KibPerConnectionAtMost(max) => {
                (format!("≤ {max} KiB"), median(&self.gateway) <= max)
            }
        }
    }

    fn table(summaries: &[Summary]) -> String {
        let mut out = String::from(
            "| scenario | metric | baseline median (range) | gateway median (range) | ratio | target | met | p99 µs base / gw | peak RSS MiB base / gw | plugin share | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for s in summaries {
            let (target, met) = s.verdict();
            let p99 = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.0}"));
            out += &format!(
                "| {} ({}) | {} | {:.2} ({}) | {:.2} ({}) | {:.3} | {} | {} | {} / {} | {:.1} / {:.1} | {} | {} |\n",
                s.name,
                s.what,
                s.metric,
                median(&s.baseline),
                range(&s.baseline),
                median(&s.gateway),
                range(&s.gateway),
                s.ratio(),
                target,
                if met { "yes" } else { "**no**" },
                p99(s.baseline_p99_us),
                p99(s.gateway_p99_us),
                s.baseline_peak_kib / 1024.0,
                s.gateway_peak_kib / 1024.0,
                s.plugin_share
                    .map_or("—".into(), |v| format!("{:.1}%", v * 100.0)),
                s.errors,
            );
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let (target, met) = self.verdict();
        serde_json::json!({
            "scenario": self.name, "what": self.what, "metric": self.metric, "baseline": self.baseline,
            "gateway": self.gateway, "ratio": self.ratio(), "target": target, "met": met,
            "plugin_share": self.plugin_share, "errors": self.errors,
        })
    }
}

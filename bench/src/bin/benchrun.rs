//! The benchmark runner: for each scenario it starts the baseline and the gateway (`--workers 1`), each pinned to
//! the server core, drives them with the same `loadgen` load pinned to the client core, alternating
//! baseline/gateway/baseline/gateway…, and reports medians, ranges and the gateway/baseline ratio against the
//! scenario's target. Every server is started fresh for each run, so peak memory belongs to that run.

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wssgate_bench::ports::{free_port, listens_within};
use wssgate_bench::report::LoadReport;

#[derive(Parser)]
#[command(about)]
struct Args {
    /// Scenarios to run: a b c d e f g h i n o w x, `all`, or `smoke` and `smoke-paced` (two-second checks that the
    /// harness works, the second with the paced client and the tuned baseline), and `smoke-webhook` (the webhook
    /// route against nginx). w, x and smoke-webhook need nginx; n and o need nats-server.
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
    /// No target: reported side by side, as server CPU µs per message (`cpu`) or messages per second.
    Reported { cpu: bool },
}

struct Scenario {
    name: &'static str,
    what: String,
    /// Arguments for loadgen, the same for both servers.
    load: Vec<String>,
    gateway_path: &'static str,
    baseline: Baseline,
    goal: Goal,
    /// How the gateway side runs: one node, or a cluster on a nats-server the run starts.
    nodes: Nodes,
}

/// The gateway side of a scenario.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nodes {
    One,
    /// One node in cluster mode, connected to a nats-server, with no other node.
    Clustered,
    /// Two nodes of a cluster; loadgen spreads the connections over both.
    Two,
}

/// What the gateway is compared with.
#[derive(Clone, Copy)]
enum Baseline {
    /// The `baseline` reference server in this mode, naive or tuned (`baseline --tuned`).
    Stack { mode: &'static str, tuned: bool },
    /// nginx (TLS, one process) with `proxy_pass` to `hookd`, the same backend the gateway's webhook route calls,
    /// driven with loadgen's `http` mode: the reverse-proxy alternative to the webhook route.
    Nginx,
    /// The gateway itself on another route: what the scenario's route adds to it.
    Gateway { path: &'static str },
}

impl Baseline {
    fn stack(mode: &'static str) -> Self {
        Baseline::Stack { mode, tuned: false }
    }

    fn tuned(mode: &'static str) -> Self {
        Baseline::Stack { mode, tuned: true }
    }
}

/// Loopback source addresses to spread many connections over.
const SOURCES: &str = "127.0.0.2-127.0.0.61";

/// loadgen's fan-out load: `members` members, 4 publishes under way.
fn fanout(members: usize) -> Vec<String> {
    [
        "--mode",
        "fanout",
        "--connections",
        &members.to_string(),
        "--in-flight",
        "4",
        "--sources",
        SOURCES,
    ]
    .map(String::from)
    .to_vec()
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
    let sources = SOURCES.to_string();
    vec![
        Scenario {
            name: "a",
            what: "100 conns x 1 in flight, 32 B".into(),
            load: echo(100, 1),
            gateway_path: "/wss",
            baseline: Baseline::stack("ok"),
            goal: Goal::CpuRatioAtMost(1.0),
            nodes: Nodes::One,
        },
        Scenario {
            name: "b",
            what: "100 conns x 8 in flight, 32 B".into(),
            load: echo(100, 8),
            gateway_path: "/wss",
            baseline: Baseline::stack("ok"),
            goal: Goal::CpuRatioAtMost(0.36),
            nodes: Nodes::One,
        },
        Scenario {
            name: "c",
            what: "1,000 conns x 1 in flight, 32 B".into(),
            load: echo(1000, 1),
            gateway_path: "/wss",
            baseline: Baseline::stack("ok"),
            goal: Goal::CpuRatioAtMost(0.6),
            nodes: Nodes::One,
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
            baseline: Baseline::stack("echo"),
            goal: Goal::CpuRatioAtMost(1.0),
            nodes: Nodes::One,
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
            baseline: Baseline::stack("ok"),
            goal: Goal::KibPerConnectionAtMost(16.0),
            nodes: Nodes::One,
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
            baseline: Baseline::stack("ok"),
            goal: Goal::CapacityRatioAtLeast(0.9),
            nodes: Nodes::One,
        },
        Scenario {
            name: "g",
            what: format!("publish to {} members, 4 under way", args.members),
            load: fanout(args.members),
            gateway_path: "/fanout",
            baseline: Baseline::stack("fanout"),
            goal: Goal::RateRatioAtLeast(0.8),
            nodes: Nodes::One,
        },
        Scenario {
            name: "h",
            what: "100 conns x 1 in flight, paced, vs the tuned stack".into(),
            load: paced(1),
            gateway_path: "/wss",
            baseline: Baseline::tuned("ok"),
            goal: Goal::CpuRatioAtMost(1.10),
            nodes: Nodes::One,
        },
        Scenario {
            name: "i",
            what: "100 conns x 8 in flight, paced, vs the tuned stack".into(),
            load: paced(8),
            gateway_path: "/wss",
            baseline: Baseline::tuned("ok"),
            goal: Goal::CpuRatioAtMost(1.10),
            nodes: Nodes::One,
        },
        Scenario {
            name: "w",
            what: "100 conns x 1 in flight through plugins/webhook to a local backend, vs the same backend behind nginx proxy_pass".into(),
            load: paced(1),
            gateway_path: "/hook",
            baseline: Baseline::Nginx,
            goal: Goal::Reported { cpu: false },
            nodes: Nodes::One,
        },
        Scenario {
            name: "x",
            what: "100 conns x 1 in flight, paced: the webhook route (an outstanding HTTP request per message) vs echo-ok on the same gateway".into(),
            load: paced(1),
            gateway_path: "/hook",
            baseline: Baseline::Gateway { path: "/wss" },
            goal: Goal::Reported { cpu: true },
            nodes: Nodes::One,
        },
        Scenario {
            name: "n",
            what: "scenario (a) with cluster mode on (a nats-server, no other node) vs the same gateway without".into(),
            load: echo(100, 1),
            gateway_path: "/wss",
            baseline: Baseline::Gateway { path: "/wss" },
            goal: Goal::CpuRatioAtMost(1.05),
            nodes: Nodes::Clustered,
        },
        Scenario {
            name: "o",
            what: format!(
                "publish to {} members, 4 under way, spread over two cluster nodes vs all on one node",
                args.members
            ),
            load: fanout(args.members),
            gateway_path: "/fanout",
            baseline: Baseline::Gateway { path: "/fanout" },
            goal: Goal::Reported { cpu: false },
            nodes: Nodes::Two,
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
        Scenario {
            name: "smoke-webhook",
            what: "10 conns x 1 in flight through the webhook route, vs nginx proxy_pass, two seconds".into(),
            gateway_path: "/hook",
            baseline: Baseline::Nginx,
            ..smoke("smoke-webhook", "", &["--paced"], false)
        },
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
        baseline: Baseline::Stack { mode: "ok", tuned },
        goal: Goal::CpuRatioAtMost(f64::INFINITY),
        nodes: Nodes::One,
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
    /// The webhook scenarios' backend.
    hookd: PathBuf,
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
            hookd: here.join("hookd"),
        };
        for (path, hint) in [
            (&tools.gateway, "cargo build --release -p wssgate"),
            (&tools.baseline, "cargo build --release -p wssgate-bench"),
            (&tools.loadgen, "cargo build --release -p wssgate-bench"),
            (&tools.hookd, "cargo build --release -p wssgate-bench"),
        ] {
            if !path.is_file() {
                bail!("{} is missing: build it with `{hint}`", path.display());
            }
        }
        for plugin in ["echo_ok", "echo", "fanout", "webhook"] {
            let path = args.plugins.join(format!("{plugin}.wasm"));
            if !path.is_file() {
                bail!(
                    "{} is missing: build the plugins with `cargo build --release --target wasm32-wasip2 -p echo-ok -p echo -p fanout -p webhook`",
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
    /// loadgen arguments for this server only (nginx is driven over HTTP).
    load: Vec<String>,
    /// Programs the server needs (the webhook backend), killed with it.
    helpers: Vec<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in std::iter::once(&mut self.child).chain(&mut self.helpers) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// nginx as the user's alternative to the webhook route: TLS with the same certificate, one process (so its CPU is
/// the pid's), keep-alive to the backend.
const NGINX: &str = "/usr/sbin/nginx";

fn nginx_config(
    dir: &Path,
    address: SocketAddr,
    backend: SocketAddr,
    cert: &Path,
    key: &Path,
) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\nmaster_process off;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         upstream hook {{ server {backend}; keepalive 128; }}\n\
         server {{\n    listen {address} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};\n\
         ssl_protocols TLSv1.2 TLSv1.3;\n    keepalive_requests 1000000;\n\
         location / {{ proxy_pass http://hook; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n  }}\n}}\n",
        cert.display(),
        key.display()
    )
}

/// Starts `hookd` on the server core; returns it and its address.
fn start_hookd(tools: &Tools, args: &Args) -> Result<(Child, SocketAddr)> {
    let mut child = pinned(args.server_core, &tools.hookd)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting hookd")?;
    let mut line = String::new();
    let stdout = child.stdout.take().context("hookd's stdout")?;
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    let address = line.trim().parse().context("hookd's address")?;
    Ok((child, address))
}

/// Waits (bounded: 60 s) until a server listens on `address`.
fn wait_for_listener(address: SocketAddr, dir: &Path) -> Result<()> {
    if !listens_within(address, Duration::from_secs(60)) {
        bail!(
            "the server did not listen on {address} within 60 s (logs in {})",
            dir.display()
        );
    }
    Ok(())
}

/// Debian's nats-server, for the cluster scenarios.
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// Starts a nats-server with its defaults on the server core; returns it and its URL.
fn start_nats(args: &Args) -> Result<(Child, String)> {
    let port = free_port();
    let child = pinned(args.server_core, Path::new(NATS_SERVER))
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nats-server (apt-get install nats-server)")?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_listener(address, Path::new("."))?;
    Ok((child, format!("nats://{address}")))
}

/// One gateway process of a run: its TLS listener, its admin listener, and its cluster (NATS URL, node name).
struct GatewayNode<'a> {
    address: SocketAddr,
    admin: SocketAddr,
    cluster: Option<(&'a str, &'a str)>,
}

impl GatewayNode<'_> {
    /// Writes the node's config (every bench route; `/hook` when there is a `backend`) and returns the command that
    /// starts it, with one worker, on the server core.
    fn command(
        &self,
        tools: &Tools,
        args: &Args,
        dir: &Path,
        cert: &Path,
        key: &Path,
        backend: Option<SocketAddr>,
    ) -> Result<Command> {
        let (address, admin) = (self.address, self.admin);
        let plugins = std::path::absolute(&args.plugins)?;
        let config = dir.join(format!("gateway-{}.toml", address.port()));
        let mut file = std::fs::File::create(&config)?;
        writeln!(
            file,
            "workers = 1\n[[listener]]\naddress = \"{address}\"\ntls = true\ncert = {cert:?}\nkey = {key:?}\n"
        )?;
        writeln!(
            file,
            "[admin]\naddress = \"{admin}\"\ntoken = \"benchmark-token-not-secret\"\n"
        )?;
        if let Some((url, node)) = self.cluster {
            writeln!(
                file,
                "[cluster]\nservers = [\"{url}\"]\nnode = \"{node}\"\n"
            )?;
        }
        if let Some(backend) = backend {
            writeln!(
                file,
                "[[upstream]]\nname = \"hook\"\nurl = \"http://{backend}\"\n\n[[route]]\npath = \"/hook\"\nplugin = {:?}\nupstreams = [\"hook\"]\n[route.settings]\nupstream = \"hook\"\n",
                plugins.join("webhook.wasm")
            )?;
        }
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
        Ok(command)
    }
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
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::fs::File::create(dir.join(if is_gateway {
            "gateway.log"
        } else {
            "baseline.log"
        }))?;
        let needs_backend =
            scenario.gateway_path == "/hook" || matches!(scenario.baseline, Baseline::Nginx);
        let mut helpers = Vec::new();
        let backend = if needs_backend {
            let (child, address) = start_hookd(tools, args)?;
            helpers.push(child);
            Some(address)
        } else {
            None
        };
        let gateway_path = match (is_gateway, scenario.baseline) {
            (true, _) => Some(scenario.gateway_path),
            (false, Baseline::Gateway { path }) => Some(path),
            (false, _) => None,
        };
        let mut load = Vec::new();
        let (mut command, admin, path) = if let Some(route_path) = gateway_path {
            let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let nodes = if is_gateway {
                scenario.nodes
            } else {
                Nodes::One
            };
            let cluster = if nodes == Nodes::One {
                None
            } else {
                let (child, url) = start_nats(args)?;
                helpers.push(child);
                Some(url)
            };
            if nodes == Nodes::Two {
                let second = SocketAddr::from(([127, 0, 0, 1], free_port()));
                let node = GatewayNode {
                    address: second,
                    admin: SocketAddr::from(([127, 0, 0, 1], free_port())),
                    cluster: cluster.as_deref().map(|url| (url, "second")),
                };
                let log = std::fs::File::create(dir.join("gateway-second.log"))?;
                let child = node
                    .command(tools, args, dir, cert, key, backend)?
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .context("starting the second gateway node")?;
                helpers.push(child);
                wait_for_listener(second, dir)?;
                load = vec!["--also".into(), second.to_string()];
            }
            let node = GatewayNode {
                address,
                admin,
                cluster: cluster.as_deref().map(|url| (url, "first")),
            };
            let command = node.command(tools, args, dir, cert, key, backend)?;
            (command, Some(admin), route_path)
        } else if let (Baseline::Nginx, Some(backend)) = (scenario.baseline, backend) {
            let config = dir.join("nginx.conf");
            std::fs::write(&config, nginx_config(dir, address, backend, cert, key))?;
            let mut command = pinned(args.server_core, Path::new(NGINX));
            command.arg("-p").arg(dir).arg("-c").arg(&config);
            load = ["--mode", "http"].map(String::from).to_vec();
            (command, None, "/message")
        } else {
            let Baseline::Stack { mode, tuned } = scenario.baseline else {
                bail!("scenario {}: no baseline to start", scenario.name);
            };
            let mut command = pinned(args.server_core, &tools.baseline);
            command
                .arg("--address")
                .arg(address.to_string())
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key)
                .arg("--mode")
                .arg(mode);
            if tuned {
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
            load,
            helpers,
        };
        wait_for_listener(address, dir)?;
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
        // The later of a repeated flag wins, so a scenario's own warm-up and duration stand, and a server's own
        // arguments (nginx's `--mode http`) replace the scenario's.
        command.args(&scenario.load).args(&self.load);
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
            Goal::CpuRatioAtMost(_) | Goal::Reported { cpu: true } => {
                ("server CPU µs per message", |r| {
                    r.server.as_ref().map_or(f64::NAN, |s| s.cpu_us_per_op)
                })
            }
            Goal::RateRatioAtLeast(_) | Goal::Reported { cpu: false } => {
                ("per second", |r| r.per_sec)
            }
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
            Goal::Reported { .. } => ("—".into(), true),
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

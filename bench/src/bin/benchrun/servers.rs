//! The processes a run starts and supervises: the gateway (one node or several), the baselines, nginx, hookd and
//! nats-server, each pinned to its core.

use crate::scenarios::*;
use crate::{Args, Client};
use anyhow::{Context, Result, bail};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wssgate_bench::ports::{free_port, listens_within};
use wssgate_bench::report::LoadReport;

/// The programs a run starts.
pub(crate) struct Tools {
    pub(crate) gateway: PathBuf,
    pub(crate) baseline: PathBuf,
    pub(crate) loadgen: PathBuf,
    /// The webhook scenarios' backend.
    pub(crate) hookd: PathBuf,
    /// The independent client (`--client node`).
    pub(crate) node_client: PathBuf,
}

/// Node's `ws` client, from the runner's working directory (the repository's root).
const NODE_CLIENT: &str = "bench/node/echo.mjs";

impl Tools {
    pub(crate) fn find(args: &Args) -> Result<Self> {
        let here = std::env::current_exe()?
            .parent()
            .context("the runner's folder")?
            .to_path_buf();
        let tools = Tools {
            gateway: args.gateway.clone(),
            baseline: here.join("baseline"),
            loadgen: here.join("loadgen"),
            hookd: here.join("hookd"),
            node_client: std::path::absolute(NODE_CLIENT)?,
        };
        if args.client == Client::Node
            && !tools
                .node_client
                .with_file_name("node_modules/ws/package.json")
                .is_file()
        {
            bail!(
                "{} or its ws package is missing: run benchrun from the repository's root after `(cd bench/node && npm ci)`",
                tools.node_client.display()
            );
        }
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
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) address: SocketAddr,
    /// The gateway's admin listener, for the plugin share.
    pub(crate) admin: Option<SocketAddr>,
    pub(crate) path: String,
    /// loadgen arguments for this server only (nginx is driven over HTTP).
    pub(crate) load: Vec<String>,
    /// Programs the server needs (the webhook backend), killed with it.
    pub(crate) helpers: Vec<Child>,
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
pub(crate) const NGINX: &str = "/usr/sbin/nginx";

pub(crate) fn nginx_config(
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
pub(crate) fn start_hookd(tools: &Tools, args: &Args) -> Result<(Child, SocketAddr)> {
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
pub(crate) fn wait_for_listener(address: SocketAddr, dir: &Path) -> Result<()> {
    if !listens_within(address, Duration::from_secs(60)) {
        bail!(
            "the server did not listen on {address} within 60 s (logs in {})",
            dir.display()
        );
    }
    Ok(())
}

/// Debian's nats-server, for the cluster scenarios.
pub(crate) const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// Starts a nats-server with its defaults on the server core; returns it and its URL.
pub(crate) fn start_nats(args: &Args) -> Result<(Child, String)> {
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
pub(crate) struct GatewayNode<'a> {
    pub(crate) address: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) cluster: Option<(&'a str, &'a str)>,
}

impl GatewayNode<'_> {
    /// Writes the node's config (every bench route; `/hook` when there is a `backend`) and returns the command that
    /// starts it, with one worker, on the server core.
    pub(crate) fn command(
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
                // The load comes from one address, past the per-address cap a webhook route has by default.
                "[[upstream]]\nname = \"hook\"\nurl = \"http://{backend}\"\n\n[[route]]\npath = \"/hook\"\nplugin = {:?}\nupstreams = [\"hook\"]\nmax_connections_per_ip = 0\n[route.settings]\nupstream = \"hook\"\n",
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
        // The other languages' echo plugins, when built (scenarios ts and py).
        for (route, plugin) in [("/echo-ts", &args.ts_echo), ("/echo-py", &args.py_echo)] {
            if plugin.is_file() {
                writeln!(
                    file,
                    "[[route]]\npath = \"{route}\"\nplugin = {:?}\n",
                    std::path::absolute(plugin)?
                )?;
            }
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

pub(crate) fn pinned(core: usize, program: &Path) -> Command {
    let mut command = Command::new("taskset");
    command.arg("-c").arg(core.to_string()).arg(program);
    command
}

impl Server {
    pub(crate) fn start(
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
            (command, Some(admin), route_path.to_owned())
        } else if let (Baseline::Nginx, Some(backend)) = (scenario.baseline, backend) {
            let config = dir.join("nginx.conf");
            std::fs::write(&config, nginx_config(dir, address, backend, cert, key))?;
            let mut command = pinned(args.server_core, Path::new(NGINX));
            command.arg("-p").arg(dir).arg("-c").arg(&config);
            load = ["--mode", "http"].map(String::from).to_vec();
            (command, None, "/message".to_owned())
        } else if let Baseline::External = scenario.baseline {
            let Some(template) = &args.baseline_command else {
                bail!("scenario {} needs --baseline-command", scenario.name);
            };
            let line = template
                .replace("{address}", &address.to_string())
                .replace("{port}", &address.port().to_string())
                .replace("{cert}", &cert.display().to_string())
                .replace("{key}", &key.display().to_string());
            // `exec`, so that the pid loadgen measures is the server's, not the shell's.
            let mut command = pinned(args.server_core, Path::new("/bin/sh"));
            command.arg("-c").arg(format!("exec {line}"));
            (command, None, args.baseline_path.clone())
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
            (command, None, "/".to_owned())
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

    pub(crate) fn drive(
        &self,
        tools: &Tools,
        args: &Args,
        cert: &Path,
        scenario: &Scenario,
    ) -> Result<LoadReport> {
        let mut command = match args.client {
            Client::Loadgen => pinned(args.client_core, &tools.loadgen),
            Client::Node => {
                let mut command = pinned(args.client_core, Path::new("node"));
                command.arg(&tools.node_client);
                command
            }
        };
        command
            .arg("--json")
            .arg("--address")
            .arg(self.address.to_string())
            .arg("--path")
            .arg(&self.path)
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

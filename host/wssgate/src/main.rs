//! The `wssgate` command: `serve` runs the gateway, `check` validates a config and everything it names.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use wssgate::gateway::{self, Gateway};
use wssgate::privileges;
use wssgate::scaffold;
use wssgate::status;
use wssgate_config::{Config, LogConfig, LogFormat, RunAs, TlsFiles};
use wssgate_edge::tls;
use wssgate_runtime::plugin::{CompileCache, PluginRuntime};

/// A WebAssembly-extensible wss gateway: terminates TLS and WebSockets and hands each connection's events to a
/// sandboxed wasm plugin chosen by the request path.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway until SIGINT or SIGTERM, then close every connection with 1001 and exit. SIGHUP reloads the
    /// config, certificates and plugins for new connections.
    Serve(Options),
    /// Validate the config, the certificates and every plugin (compiled, linked and started with its settings),
    /// then exit: 0 when all is well, 1 with a message naming the file, line, import or setting at fault otherwise.
    Check(Options),
    /// Create a plugin crate: the SDK dependency, an echo plugin, its unit test and a config that serves it.
    New(NewArgs),
    /// Show the running gateway at a glance: uptime, config and last reload, memory, and per worker and route the
    /// connections, messages and bytes per second, plugin memory and traps; cluster and certificates. Asks the admin
    /// listener the config names, with its token.
    Status(StatusArgs),
    /// List the running gateway's connections, one line each: id, route, remote address, user, groups, age,
    /// messages and bytes each way, state (open, or waiting for the plugin's answer). Asks the admin listener.
    Connections(ConnectionsArgs),
}

#[derive(clap::Args)]
struct ConnectionsArgs {
    /// The running gateway's config file (for its `[admin]` address and token).
    #[arg(long, short, default_value = "config/gateway.toml")]
    config: PathBuf,
    /// Only this route's connections.
    #[arg(long)]
    route: Option<String>,
    /// At most this many, by id (the gateway lists at most 10,000 at once).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Print the gateway's answer as one JSON object, for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// The running gateway's config file (for its `[admin]` address and token).
    #[arg(long, short, default_value = "config/gateway.toml")]
    config: PathBuf,
    /// Refresh every second until Ctrl-C, like `top`.
    #[arg(long)]
    watch: bool,
    /// Print the gateway's answer as one JSON object (counters since its start), for scripts.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
}

#[derive(clap::Args)]
struct NewArgs {
    /// The plugin's crate name (lower-case letters, digits, `-` and `_`); its route is `/<name>`.
    name: String,
    /// The folder to create the crate in.
    #[arg(long, default_value = ".")]
    path: PathBuf,
    /// Where the SDK comes from: a wssgate checkout's guest-sdk folder or the wssgate git URL (default: the checkout
    /// this binary was built from). TypeScript and Python need a checkout's folder.
    #[arg(long)]
    sdk: Option<String>,
    /// The plugin's language.
    #[arg(long, value_enum, default_value = "rust")]
    lang: scaffold::Lang,
}

#[derive(clap::Args)]
struct Options {
    /// The TOML config file; relative paths in it are resolved against its folder.
    #[arg(long, short, default_value = "config/gateway.toml")]
    config: PathBuf,
    /// Worker threads (one single-threaded runtime each); overrides the config's `workers`.
    #[arg(long)]
    workers: Option<usize>,
}

impl Options {
    fn load(&self) -> Result<Config> {
        let mut config = Config::load(&self.config)?;
        if let Some(workers) = self.workers {
            anyhow::ensure!((1..=255).contains(&workers), "--workers must be 1 to 255");
            config.workers = workers;
        }
        Ok(config)
    }
}

/// Logs to stderr as the config's `[log]` says; `RUST_LOG`, when set, overrides the level.
fn init_logging(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve(options) => options.load().and_then(|config| {
            init_logging(&config.log);
            serve(options, config)
        }),
        Command::Check(options) => options.load().and_then(|config| {
            init_logging(&config.log);
            check(config)
        }),
        Command::New(args) => new_plugin(args),
        Command::Status(args) => show_status(args),
        Command::Connections(args) => show_connections(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn show_status(args: &StatusArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let target = status::Target::of(&config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut before = target.get("/api/status").await?;
        if args.json {
            println!("{before}");
            return Ok(());
        }
        // Bounded by Ctrl-C with --watch; one round without it.
        loop {
            let tick = tokio::time::sleep(Duration::from_secs(1));
            tokio::select! {
                _ = tick => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
            let now = target.get("/api/status").await?;
            let table = status::table(&now, &before, 1.0);
            if args.watch {
                // Clear the screen and start at its top, like `top`.
                print!("\x1b[2J\x1b[H{table}");
                use std::io::Write as _;
                let _ = std::io::stdout().flush();
            } else {
                print!("{table}");
                return Ok(());
            }
            before = now;
        }
    })
}

fn show_connections(args: &ConnectionsArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let target = status::Target::of(&config)?;
    let mut path = format!("/api/connections?limit={}", args.limit);
    if let Some(route) = &args.route {
        anyhow::ensure!(
            config.routes.iter().any(|r| &r.path == route),
            "{}: no route {route}",
            config.source.display()
        );
        path.push_str(&format!("&route={}", percent_encode(route)));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(target.get(&path))?;
    if args.json {
        println!("{answer}");
    } else {
        print!("{}", status::connection_lines(&answer));
    }
    Ok(())
}

/// `text` for a query string: every byte but unreserved ones as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn new_plugin(args: &NewArgs) -> Result<()> {
    let sdk = scaffold::SdkSource::from_arg(args.sdk.as_deref())?;
    let dir = match args.lang {
        scaffold::Lang::Rust => scaffold::new_plugin(&args.name, &args.path, &sdk)?,
        lang => scaffold::new_plugin_in(&args.name, &args.path, &sdk, lang)?,
    };
    println!(
        "created {}: {} (all in that folder)",
        dir.display(),
        scaffold::next_steps(args.lang)
    );
    Ok(())
}

fn serve(options: &Options, config: Config) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("signal runtime")?;
    // Handlers go in before the gateway starts: once it logs that it listens, a signal must not find the default
    // action (which for SIGHUP would end the process).
    let (mut term, mut int, mut hup) = {
        let _runtime = signals.enter();
        (
            signal(SignalKind::terminate()).context("SIGTERM handler")?,
            signal(SignalKind::interrupt()).context("SIGINT handler")?,
            signal(SignalKind::hangup()).context("SIGHUP handler")?,
        )
    };
    let mut gateway = Gateway::start(&config)?;
    signals.block_on(async {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading {}", options.config.display());
                    gateway.reload(&options.config, options.workers);
                }
            }
        }
    });
    tracing::info!(
        "shutting down: closing every connection with 1001 (grace {:?})",
        config.shutdown_grace
    );
    gateway.stop();
    tracing::info!("stopped");
    Ok(())
}

/// What the account the gateway drops to could not read (or write) that it needs at start, on reloads or for
/// the development certificate.
fn run_as_warnings(config: &Config, run_as: &RunAs) -> Result<Vec<String>> {
    let account = privileges::account(run_as)?;
    // The config file itself is read again on every reload.
    let mut needed: Vec<(PathBuf, bool)> = std::iter::once((config.source.clone(), false))
        .chain(config.routes.iter().map(|r| (r.plugin.clone(), false)))
        .collect();
    for listener in &config.listeners {
        match &listener.tls {
            Some(TlsFiles::Pem { cert, key }) => {
                needed.extend([(cert.clone(), false), (key.clone(), false)]);
            }
            Some(TlsFiles::BySni(certificates)) => {
                for c in certificates {
                    needed.extend([(c.cert.clone(), false), (c.key.clone(), false)]);
                }
            }
            Some(TlsFiles::Acme(acme)) => {
                let existing = if acme.cache.exists() {
                    &acme.cache
                } else {
                    acme.cache.parent().unwrap_or(&acme.cache)
                };
                needed.push((existing.to_path_buf(), true));
            }
            Some(TlsFiles::Development { dir }) => {
                let existing = if dir.exists() {
                    dir
                } else {
                    dir.parent().unwrap_or(dir)
                };
                needed.push((existing.to_path_buf(), true));
            }
            None => {}
        }
    }
    Ok(needed
        .into_iter()
        .filter(|(path, write)| !privileges::allows(&account, path, *write))
        .map(|(path, write)| {
            let verb = if write { "write in" } else { "read" };
            format!(
                "user `{}` cannot {verb} {}, which the gateway needs after dropping to it",
                run_as.user,
                path.display()
            )
        })
        .collect())
}

fn check(config: Config) -> Result<()> {
    for listener in &config.listeners {
        if let Some(note) = listener.client_address_note() {
            println!("{note}");
        }
        if let Some(files) = &listener.tls {
            for warning in tls::inspect::inspect(files)?.warnings {
                println!("warning: {warning}");
            }
            match files {
                // An ACME listener's certificate is obtained when it serves; check only reads its settings.
                TlsFiles::Acme(_) => {}
                // Generated by the gateway itself, as the user it runs as, so that it owns the key.
                TlsFiles::Development { dir } if !tls::has_dev_certificate(dir) => println!(
                    "note: {}: the development certificate will be generated at the first start",
                    dir.display()
                ),
                _ => {
                    tls::server_config(files, listener.address.port(), None)?;
                }
            }
        }
    }
    if let Some(run_as) = &config.run_as {
        for warning in run_as_warnings(&config, run_as)? {
            println!("warning: {warning}");
        }
    }
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    let runtime = PluginRuntime::new(
        config.needs_fuel(),
        CompileCache::open(&config.compile_cache),
    )?;
    // Plugins' init runs here: its deadline needs the epoch to advance, as when serving.
    runtime.start_epoch_ticker();
    let metrics = std::sync::Arc::new(wssgate_hub::metrics::Metrics::new(Vec::new(), 1));
    let routes = gateway::load_routes(&config, &runtime, &metrics)?;
    println!(
        "{}: ok — {} listener(s), {} worker(s), routes: {}",
        config.source.display(),
        config.listeners.len(),
        config.workers,
        routes
            .iter()
            .map(|r| format!("{} → {}", r.config.path, r.config.plugin.display()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

//! A WebSocket load generator. It opens its connections first (ramped, a bounded number at a time), warms up, and
//! then counts what completes in a measured window:
//!
//! - `echo`: every connection keeps `--in-flight` messages outstanding and sends one more per reply; counts replies
//!   and their latency. By default the replies that arrive together are answered with one write (bursts); with
//!   `--paced` each reply is answered at once with a write of its own, as an interactive client would.
//! - `handshake`: `--connections` loops each connect, finish TLS and the upgrade, and close; counts upgrades.
//! - `idle`: opens `--connections`, each sends one message and waits for its reply, then stays open; reports the
//!   server's resident memory per connection.
//! - `fanout`: `--connections` members plus one publisher that keeps `--in-flight` publishes under way; counts the
//!   messages members receive (deliveries) and the time from each publish to each delivery. With `--also`, the
//!   members are spread over several servers (the nodes of a cluster); the publisher is on the first.
//! - `http`: no WebSocket: every connection POSTs a webhook `/message` call (`--path`) on keep-alive HTTP/1.1,
//!   one at a time, as the webhook route would; counts responses. For the reverse-proxy alternative.
//!
//! With `--server-pid` it reads the server's CPU time across the window from `/proc`; with `--metrics` (the
//! gateway's admin address) also the time spent in plugin callbacks. Output: one line, or JSON with `--json`.
//! Pin it to a core of its own (`--pin 1`, or `taskset -c 1`).

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use wssgate_bench::client::{self, Target, Ws};
use wssgate_bench::procfs;
use wssgate_bench::report::{Latency, LoadReport, ServerUsage};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Echo,
    Handshake,
    Idle,
    Fanout,
    Http,
}

#[derive(Parser)]
#[command(about, args_override_self = true)]
struct Args {
    #[arg(long, value_enum, default_value = "echo")]
    mode: Mode,
    /// Server address (`IP:PORT`).
    #[arg(long, default_value = "127.0.0.1:8282")]
    address: SocketAddr,
    /// `fanout`: more servers (cluster nodes) to spread the members over, round robin with `--address`.
    #[arg(long)]
    also: Vec<SocketAddr>,
    /// Request path.
    #[arg(long, default_value = "/wss")]
    path: String,
    /// PEM certificate to trust; without it the connection is plain ws.
    #[arg(long)]
    cert: Option<std::path::PathBuf>,
    /// Source addresses: a range such as `127.0.0.2-127.0.0.40` or a list; empty lets the kernel choose.
    #[arg(long, default_value = "")]
    sources: String,
    /// Connections (in `handshake` mode: concurrent handshake loops; in `fanout` mode: group members).
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Connections being opened at once while ramping up.
    #[arg(long, default_value_t = 64)]
    ramp: usize,
    /// Messages in flight per connection (`fanout`: publishes under way).
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Send binary messages instead of text.
    #[arg(long)]
    binary: bool,
    /// `echo`: answer each reply with a message of its own at once, rather than each batch of replies with one
    /// write.
    #[arg(long)]
    paced: bool,
    /// Warm-up after the ramp, before measuring, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measured time, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// The server's process id, to measure its CPU time and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The gateway's admin listener, to read the time spent in plugins from its /metrics.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Pin this process to this CPU core (as `taskset -c CORE` would).
    #[arg(long)]
    pin: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What the connection tasks share (all on one thread).
struct Shared {
    /// True while the window is open: only then are operations counted.
    measuring: Cell<bool>,
    /// Set at the end: tasks stop.
    stop: Cell<bool>,
    count: Cell<u64>,
    errors: Cell<u64>,
    /// Connections opened so far (ramp progress).
    opened: Cell<usize>,
    latency: RefCell<Histogram<u64>>,
    /// Fan-out: deliveries since the start, and the publisher's wake-up when enough arrived.
    delivered: Cell<u64>,
    /// Fan-out: when each publish under way was sent, by its number modulo the length (far more than the publishes
    /// ever under way at once).
    published_at: RefCell<Vec<Option<Instant>>>,
    wanted: Cell<u64>,
    progress: Notify,
    /// Bounds the connections being opened at once.
    ramp: Semaphore,
}

impl Shared {
    fn record(&self, started: Instant) {
        if self.measuring.get() {
            self.count.set(self.count.get() + 1);
            let us = started.elapsed().as_micros() as u64;
            let _ = self.latency.borrow_mut().record(us.max(1));
        }
    }

    fn error(&self, what: &str, error: impl std::fmt::Display) {
        if self.errors.get() < 5 {
            eprintln!("loadgen: {what}: {error:#}");
        }
        self.errors.set(self.errors.get() + 1);
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(core) = args.pin
        && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
    {
        bail!("cannot pin to core {core}");
    }
    // Every connection is a file descriptor; the idle scenario needs nearly all the process may open.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = tokio::task::LocalSet::new().block_on(&runtime, run(&args))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.line());
    }
    Ok(())
}

async fn run(args: &Args) -> Result<LoadReport> {
    let target = Target {
        address: args.address,
        path: args.path.clone(),
        tls: match &args.cert {
            Some(cert) => Some(client::tls_connector(cert, args.mode != Mode::Handshake)?),
            None => None,
        },
        sources: if args.sources.is_empty() {
            Vec::new()
        } else {
            client::parse_sources(&args.sources)?
        },
    };
    let shared = Rc::new(Shared {
        measuring: Cell::new(false),
        stop: Cell::new(false),
        count: Cell::new(0),
        errors: Cell::new(0),
        opened: Cell::new(0),
        latency: RefCell::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        delivered: Cell::new(0),
        published_at: RefCell::new(vec![None; PUBLISH_SLOTS]),
        wanted: Cell::new(0),
        progress: Notify::new(),
        ramp: Semaphore::new(args.ramp.max(1)),
    });
    let payload = Bytes::from(vec![b'x'; args.size]);
    let message = |body: Bytes| {
        if args.binary {
            Message::Binary(body)
        } else {
            Message::Text(body.try_into().expect("ASCII"))
        }
    };
    let rss_before = args
        .server_pid
        .map(procfs::memory)
        .transpose()?
        .unwrap_or_default();
    let targets: Vec<Target> = std::iter::once(args.address)
        .chain(args.also.iter().copied())
        .map(|address| Target {
            address,
            ..target.clone()
        })
        .collect();
    for n in 0..args.connections {
        let (target, shared) = (targets[n % targets.len()].clone(), shared.clone());
        let task = match args.mode {
            Mode::Echo => {
                let pacing = Pacing {
                    in_flight: args.in_flight,
                    paced: args.paced,
                };
                echo(target, n, shared, message(payload.clone()), pacing).boxed_local()
            }
            Mode::Handshake => handshakes(target, n, shared).boxed_local(),
            Mode::Idle | Mode::Fanout => {
                member(target, n, shared, message(Bytes::from_static(b"hi"))).boxed_local()
            }
            Mode::Http => posts(target, n, shared, args.size).boxed_local(),
        };
        tokio::task::spawn_local(task);
    }
    if args.mode != Mode::Handshake {
        wait_for_ramp(&shared, args.connections).await?;
    }
    if args.mode == Mode::Fanout {
        let publisher = target
            .connect(args.connections)
            .await
            .context("publisher")?;
        let body = Publication {
            size: args.size,
            binary: args.binary,
        };
        tokio::task::spawn_local(publish(
            publisher,
            shared.clone(),
            body,
            args.in_flight,
            args.connections,
        ));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let cpu_start = args.server_pid.map(procfs::scheduled).transpose()?;
    let plugin_start = match args.metrics {
        Some(a) => Some(plugin_seconds(a).await?),
        None => None,
    };
    shared.measuring.set(true);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    shared.measuring.set(false);
    let seconds = started.elapsed().as_secs_f64();
    let cpu_end = args.server_pid.map(procfs::scheduled).transpose()?;
    let plugin_end = match args.metrics {
        Some(a) => Some(plugin_seconds(a).await?),
        None => None,
    };
    shared.stop.set(true);
    let count = match args.mode {
        Mode::Idle => shared.opened.get() as u64,
        _ => shared.count.get(),
    };
    let server = match (args.server_pid, cpu_start, cpu_end) {
        (Some(pid), Some(a), Some(b)) => {
            let after = procfs::memory(pid)?;
            let cpu_us = (b.cpu_ns - a.cpu_ns) as f64 / 1000.0;
            // Plugin callbacks are timed by the wall clock, so a callback the OS interrupted to run another
            // program counts that wait too: they are compared with the time the server ran or was ready to run.
            let waiting_us = (b.waiting_ns - a.waiting_ns) as f64 / 1000.0;
            let connections = shared.opened.get().max(1) as f64;
            Some(ServerUsage {
                cpu_us,
                cpu_us_per_op: if count > 0 {
                    cpu_us / count as f64
                } else {
                    0.0
                },
                cpu_percent: cpu_us / seconds / 1e4,
                rss_before_kib: rss_before.rss_kib,
                rss_after_kib: after.rss_kib,
                peak_rss_kib: after.peak_rss_kib,
                rss_per_connection_kib: if args.mode == Mode::Idle {
                    after.rss_kib.saturating_sub(rss_before.rss_kib) as f64 / connections
                } else {
                    0.0
                },
                plugin_share: plugin_start
                    .zip(plugin_end)
                    .map(|(a, b)| (b - a) * 1e6 / (cpu_us + waiting_us).max(1.0)),
            })
        }
        _ => None,
    };
    Ok(LoadReport {
        mode: args
            .mode
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default(),
        op: match args.mode {
            Mode::Echo | Mode::Http => "message",
            Mode::Handshake => "handshake",
            Mode::Idle => "connection",
            Mode::Fanout => "delivery",
        }
        .into(),
        connections: args.connections,
        in_flight: args.in_flight,
        size: args.size,
        seconds,
        count,
        per_sec: count as f64 / seconds,
        latency: if args.mode == Mode::Idle {
            None
        } else {
            Latency::of(&shared.latency.borrow())
        },
        errors: shared.errors.get(),
        server,
    })
}

/// The `http` mode's connection: POSTs `/message` calls with a `size`-byte text, one at a time, on one keep-alive
/// connection.
async fn posts(target: Target, n: usize, shared: Rc<Shared>, size: usize) {
    let permit = shared.ramp.acquire().await;
    let mut io = match target.stream(n).await {
        Ok(io) => io,
        Err(e) => return shared.error("connect", e),
    };
    shared.opened.set(shared.opened.get() + 1);
    drop(permit);
    let body = format!(
        "{{\"connection\":\"{n}\",\"uid\":null,\"text\":\"{}\"}}",
        "x".repeat(size)
    );
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        target.path,
        body.len()
    );
    let mut buffer = Vec::new();
    while !shared.stop.get() {
        let sent = Instant::now();
        if let Err(e) = io.write_all(request.as_bytes()).await {
            return shared.error("send", e);
        }
        match wssgate_bench::http1::read(&mut io, &mut buffer, false).await {
            Ok(Some(response)) if response.first == "200" => shared.record(sent),
            Ok(Some(response)) => {
                return shared.error("receive", format!("status {}", response.first));
            }
            Ok(None) => return shared.error("receive", "server closed the connection"),
            Err(e) => return shared.error("receive", e),
        }
    }
}

/// Waits until every connection has opened or failed; gives up if the ramp stalls for 30 seconds.
async fn wait_for_ramp(shared: &Shared, connections: usize) -> Result<()> {
    let mut last = (0, Instant::now());
    loop {
        let done = shared.opened.get() + shared.errors.get() as usize;
        if done >= connections {
            return Ok(());
        }
        if done != last.0 {
            last = (done, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(30) {
            bail!("ramp stalled at {done} of {connections} connections");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens connection `n` within the ramp's bound.
async fn open(target: &Target, n: usize, shared: &Shared) -> Option<Ws> {
    let _permit = shared.ramp.acquire().await.ok()?;
    match target.connect(n).await {
        Ok(ws) => {
            shared.opened.set(shared.opened.get() + 1);
            Some(ws)
        }
        Err(e) => {
            shared.error("connect", e);
            None
        }
    }
}

/// How an echo connection keeps its messages in flight.
#[derive(Clone, Copy)]
struct Pacing {
    in_flight: usize,
    /// Each reply is answered at once with a write of its own.
    paced: bool,
}

/// Keeps `in_flight` messages outstanding; answers each batch of replies with as many new messages in one write,
/// or, paced, each reply with one message as it arrives.
async fn echo(target: Target, n: usize, shared: Rc<Shared>, message: Message, pacing: Pacing) {
    let Some(mut ws) = open(&target, n, &shared).await else {
        return;
    };
    let in_flight = pacing.in_flight;
    let mut sent = VecDeque::with_capacity(in_flight);
    let mut owed = in_flight;
    if pacing.paced {
        return paced(ws, &shared, &message, in_flight).await;
    }
    while !shared.stop.get() {
        for _ in 0..owed {
            sent.push_back(Instant::now());
            if let Err(e) = ws.feed(message.clone()).await {
                return shared.error("send", e);
            }
        }
        if let Err(e) = ws.flush().await {
            return shared.error("send", e);
        }
        owed = 0;
        let mut next = ws.next().await;
        loop {
            match next {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    if let Some(at) = sent.pop_front() {
                        shared.record(at);
                    }
                    owed += 1;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return shared.error("receive", e),
                None => return shared.error("receive", "server closed the connection"),
            }
            match ws.next().now_or_never() {
                Some(more) => next = more,
                None => break,
            }
        }
    }
}

/// The paced echo loop: `in_flight` messages go out at the start, then one more right after each reply.
async fn paced(mut ws: Ws, shared: &Shared, message: &Message, in_flight: usize) {
    let mut sent = VecDeque::with_capacity(in_flight);
    for _ in 0..in_flight {
        sent.push_back(Instant::now());
        if let Err(e) = ws.send(message.clone()).await {
            return shared.error("send", e);
        }
    }
    while !shared.stop.get() {
        match ws.next().await {
            Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                if let Some(at) = sent.pop_front() {
                    shared.record(at);
                }
                sent.push_back(Instant::now());
                if let Err(e) = ws.send(message.clone()).await {
                    return shared.error("send", e);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return shared.error("receive", e),
            None => return shared.error("receive", "server closed the connection"),
        }
    }
}

/// Opens, upgrades and closes connections one after another.
async fn handshakes(target: Target, n: usize, shared: Rc<Shared>) {
    // Each loop uses its own stride of source addresses so that loops spread over all of them.
    let mut k = n;
    while !shared.stop.get() {
        let started = Instant::now();
        match target.connect(k).await {
            Ok(mut ws) => {
                shared.record(started);
                let _ = ws.close(None).await;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while ws.next().await.is_some() {}
                })
                .await;
            }
            Err(e) => shared.error("handshake", e),
        }
        k = k.wrapping_add(7919);
    }
}

/// Opens a connection, checks it answers one message, then counts every message it receives until the end.
async fn member(target: Target, n: usize, shared: Rc<Shared>, hello: Message) {
    let Some(mut ws) = open(&target, n, &shared).await else {
        return;
    };
    if let Err(e) = ws.send(hello).await {
        return shared.error("send", e);
    }
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        Ok(Some(Ok(_))) => {}
        Ok(other) => return shared.error("first reply", format!("{other:?}")),
        Err(_) => return shared.error("first reply", "none within 30 s"),
    }
    while !shared.stop.get() {
        match ws.next().await {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                shared.delivery(&message.into_data());
                let delivered = shared.delivered.get() + 1;
                shared.delivered.set(delivered);
                if delivered >= shared.wanted.get() {
                    shared.progress.notify_one();
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return shared.error("receive", e),
            None => return shared.error("receive", "server closed the connection"),
        }
    }
}

/// Fan-out: the slots of [`Shared::published_at`].
const PUBLISH_SLOTS: usize = 4096;

/// A fan-out publication: `pub:`, its number, `:`, padding to `size` bytes. The number lets each member find when
/// it was sent.
struct Publication {
    size: usize,
    binary: bool,
}

impl Publication {
    fn numbered(&self, number: u64) -> Message {
        let head = format!("pub:{number}:");
        let body = format!("{head}{}", "x".repeat(self.size.saturating_sub(head.len())));
        if self.binary {
            Message::Binary(body.into())
        } else {
            Message::text(body)
        }
    }
}

impl Shared {
    /// A member received `body`: counts it and, when it is a numbered publication, its latency.
    fn delivery(&self, body: &[u8]) {
        if !self.measuring.get() {
            return;
        }
        self.count.set(self.count.get() + 1);
        let number = body
            .strip_prefix(b"pub:")
            .and_then(|rest| rest.split(|b| *b == b':').next())
            .and_then(|digits| std::str::from_utf8(digits).ok()?.parse::<u64>().ok());
        if let Some(number) = number
            && let Some(sent) = self.published_at.borrow()[number as usize % PUBLISH_SLOTS]
        {
            let us = sent.elapsed().as_micros() as u64;
            let _ = self.latency.borrow_mut().record(us.max(1));
        }
    }
}

/// Publishes back to back, with at most `window` publishes not yet delivered to every member.
async fn publish(mut ws: Ws, shared: Rc<Shared>, body: Publication, window: usize, members: usize) {
    let window = window.max(1) as u64;
    let members = members as u64;
    let mut published: u64 = 0;
    // The publisher is a member too and gets its own publishes back: drain them so its socket never fills.
    while !shared.stop.get() {
        if published >= window {
            let wanted = (published - window + 1) * members;
            shared.wanted.set(wanted);
            while shared.delivered.get() < wanted && !shared.stop.get() {
                tokio::select! {
                    _ = shared.progress.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = ws.next() => {}
                }
            }
        }
        shared.published_at.borrow_mut()[published as usize % PUBLISH_SLOTS] = Some(Instant::now());
        if let Err(e) = ws.send(body.numbered(published)).await {
            return shared.error("publish", e);
        }
        published += 1;
        while let Some(Some(Ok(_))) = ws.next().now_or_never() {}
    }
}

/// The gateway's time spent in plugin callbacks so far, in seconds, from its /metrics.
async fn plugin_seconds(admin: SocketAddr) -> Result<f64> {
    let mut tcp = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(admin),
    )
    .await
    .context("metrics: connect timed out")??;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut body))
        .await
        .context("metrics: read timed out")??;
    Ok(body
        .lines()
        .filter(|l| l.starts_with("wssgate_plugin_event_seconds_sum"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

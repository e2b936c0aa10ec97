//! A WebSocket load generator: N connections, K messages in flight on each, for a fixed time. With `--server-pid`
//! it reads the server's CPU time (all threads, nanoseconds, from /proc) across the measured window and reports the
//! server CPU per message — the number the gateway's speed targets are stated in.
//!
//! Pin the server and this process to different cores (`taskset -c 0 …` / `taskset -c 1 …`) for stable numbers.

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(about)]
struct Args {
    /// Server address (`IP:PORT`).
    #[arg(long, default_value = "127.0.0.1:8282")]
    address: std::net::SocketAddr,
    /// Request path.
    #[arg(long, default_value = "/wss")]
    path: String,
    /// PEM certificate to trust; without it the connection is plain ws.
    #[arg(long)]
    cert: Option<std::path::PathBuf>,
    /// Connections to open (one after another before measuring).
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Message size in bytes (text).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Warm-up before measuring, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measured time, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// The server's process id, to measure its CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// Nanoseconds of CPU the process has used, summed over its threads.
fn process_cpu_ns(pid: u32) -> Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).context("reading /proc/PID/task")? {
        let stat = std::fs::read_to_string(task?.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let tls = match &args.cert {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
            {
                roots.add(cert.map_err(|e| anyhow!("{}: {e}", path.display()))?)?;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(TlsConnector::from(Arc::new(config)))
        }
        None => None,
    };
    let replies = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let message = "x".repeat(args.size);
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let tcp = TcpStream::connect(args.address)
            .await
            .context("connecting")?;
        tcp.set_nodelay(true)?;
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        let url = format!("{scheme}://localhost:{}{}", args.address.port(), args.path);
        let (replies, stop, message, in_flight) = (
            replies.clone(),
            stop.clone(),
            message.clone(),
            args.in_flight,
        );
        match &tls {
            Some(connector) => {
                let stream = connector
                    .connect(ServerName::try_from("localhost")?, tcp)
                    .await?;
                let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
                tasks.push(tokio::spawn(drive(ws, replies, stop, message, in_flight)));
            }
            None => {
                let (ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
                tasks.push(tokio::spawn(drive(ws, replies, stop, message, in_flight)));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let cpu_start = args.server_pid.map(process_cpu_ns).transpose()?;
    let count_start = replies.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let count = replies.load(Ordering::Relaxed) - count_start;
    let cpu_end = args.server_pid.map(process_cpu_ns).transpose()?;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    print!(
        "connections={} in_flight={} size={} messages={count} rate={:.0}/s",
        args.connections,
        args.in_flight,
        args.size,
        count as f64 / elapsed
    );
    if let (Some(a), Some(b)) = (cpu_start, cpu_end) {
        let cpu_us = (b - a) as f64 / 1000.0;
        print!(
            " server_cpu={:.1}% server_cpu_per_message={:.2}us",
            cpu_us / elapsed / 1e4,
            cpu_us / count as f64
        );
    }
    println!();
    Ok(())
}

/// Keeps `in_flight` messages outstanding on one connection until `stop`.
async fn drive<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    replies: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    message: String,
    in_flight: usize,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for _ in 0..in_flight {
        if ws.feed(Message::text(message.clone())).await.is_err() {
            return;
        }
    }
    if ws.flush().await.is_err() {
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match ws.next().await {
            Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                replies.fetch_add(1, Ordering::Relaxed);
                if ws.send(Message::text(message.clone())).await.is_err() {
                    return;
                }
            }
            Some(Ok(_)) => {}
            _ => return,
        }
    }
    let _ = ws.close(None).await;
}

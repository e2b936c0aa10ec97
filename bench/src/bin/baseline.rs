//! The reference server every benchmark run carries: the same TLS and WebSocket stack as the gateway
//! (tokio-rustls + tokio-tungstenite) with no plugin layer. By default in the naive configuration — one
//! multi-threaded tokio runtime, default buffers, one flush per message; with `--tuned` as a careful hand-written
//! server would be — a current-thread runtime, 4 KiB reads, and every frame already buffered handled before one
//! flush — which is what the gateway does apart from its plugin layer, so the difference is what that layer costs.
//!
//! - `ok` answers every message with `ok` (the seed's check);
//! - `echo` sends every message back;
//! - `fanout` is the fan-out baseline: a message starting with `pub:` is encoded as a WebSocket frame once and the
//!   same bytes are written by hand to every open connection; anything else is answered with `ok`.

use anyhow::{Context, Result};
use clap::ValueEnum;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Ok,
    Echo,
    Fanout,
}

#[derive(clap::Parser)]
#[command(about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8383")]
    address: std::net::SocketAddr,
    /// PEM certificate chain.
    #[arg(long)]
    cert: std::path::PathBuf,
    /// PEM private key.
    #[arg(long)]
    key: std::path::PathBuf,
    #[arg(long, value_enum, default_value = "ok")]
    mode: Mode,
    /// The tuned configuration (`ok` and `echo` modes): current-thread runtime, 4 KiB reads, one flush per batch.
    #[arg(long)]
    tuned: bool,
}

/// Bytes the tuned server reads from the socket at a time, as the gateway does on a plain socket.
const TUNED_READ: usize = 4 * 1024;
/// Frames the tuned server handles from one read before it writes, as the gateway does.
const TUNED_BATCH: usize = 256;

/// Publishes in flight that a slow connection may fall behind by before it misses some.
const FANOUT_BACKLOG: usize = 1024;

fn main() -> Result<()> {
    let args: Args = clap::Parser::parse();
    let runtime = if args.tuned {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<()> {
    // As the gateway does: every connection is a file descriptor.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let acceptor = wssgate_bench::server_tls::acceptor(&args.cert, &args.key)?;
    let listener = TcpListener::bind(args.address).await.context("binding")?;
    println!("baseline listening on {}", listener.local_addr()?);
    let (fanout, _) = broadcast::channel::<Bytes>(FANOUT_BACKLOG);
    let (mode, tuned) = (args.mode, args.tuned);
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let fanout = fanout.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let config = tuned.then(|| {
                tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .read_buffer_size(TUNED_READ)
            });
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(tls, config).await else {
                return;
            };
            match mode {
                Mode::Ok | Mode::Echo if tuned => {
                    answer_batched(ws, matches!(mode, Mode::Echo)).await
                }
                Mode::Ok | Mode::Echo => answer(ws, matches!(mode, Mode::Echo)).await,
                Mode::Fanout => fan_out(ws, &fanout).await,
            }
        });
    }
}

async fn answer<S>(mut ws: WebSocketStream<S>, echo: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = ws.next().await {
        if message.is_text() || message.is_binary() {
            let reply = if echo { message } else { Message::text("ok") };
            if ws.send(reply).await.is_err() {
                return;
            }
        }
    }
}

/// The tuned answer loop: after each read, answers every frame already buffered, then flushes once.
async fn answer_batched<S>(mut ws: WebSocketStream<S>, echo: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::FutureExt;
    while let Some(Ok(first)) = ws.next().await {
        let mut next = Some(first);
        for _ in 0..TUNED_BATCH {
            let Some(message) = next.take() else { break };
            if (message.is_text() || message.is_binary())
                && ws
                    .feed(if echo { message } else { Message::text("ok") })
                    .await
                    .is_err()
            {
                return;
            }
            match ws.next().now_or_never() {
                Some(Some(Ok(more))) => next = Some(more),
                Some(_) => return,
                None => break,
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}

/// One connection of the fan-out baseline: reads the client and writes every published frame to it.
async fn fan_out<S>(mut ws: WebSocketStream<S>, fanout: &broadcast::Sender<Bytes>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut published = fanout.subscribe();
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(message)) if message.is_text() || message.is_binary() => {
                    if message.clone().into_data().starts_with(b"pub:") {
                        // Lagging receivers miss frames, and are counted as losses by the load generator.
                        let _ = fanout.send(encode_frame(&message));
                    } else if ws.send(Message::text("ok")).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            frame = published.recv() => match frame {
                Ok(frame) => {
                    // tungstenite has nothing buffered between messages, so the raw frame goes straight to TLS.
                    let tls = ws.get_mut();
                    if tls.write_all(&frame).await.is_err() || tls.flush().await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// A server-to-client (unmasked) WebSocket frame carrying `message`, encoded once for every recipient.
fn encode_frame(message: &Message) -> Bytes {
    let opcode: u8 = if message.is_text() { 0x1 } else { 0x2 };
    let payload = message.clone().into_data();
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n if n <= u16::MAX as usize => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&payload);
    Bytes::from(frame)
}

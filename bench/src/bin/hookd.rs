//! The webhook benchmark's backend: answers `/connect` with 200 (accept), `/message` with `{"reply":"ok"}` (the
//! seed's answer) and anything else with 204, on keep-alive HTTP/1.1 connections. Written in Rust on one core so
//! that the backend is not what the benchmark measures; both the gateway's webhook route and nginx's `proxy_pass`
//! reach this same backend.

use anyhow::Result;
use clap::Parser;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use wssgate_bench::http1;

#[derive(Parser)]
#[command(about)]
struct Args {
    /// Address to listen on; port 0 picks one (printed on start).
    #[arg(long, default_value = "127.0.0.1:0")]
    address: std::net::SocketAddr,
}

const REPLY: &[u8] = b"{\"reply\":\"ok\"}";

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.address).await?;
        println!("{}", listener.local_addr()?);
        loop {
            let (tcp, _) = listener.accept().await?;
            tokio::spawn(serve(tcp));
        }
    })
}

async fn serve(mut tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let mut buffer = Vec::new();
    // Bounded by the peer: each turn answers one request, and ends when it closes.
    while let Ok(Some(request)) = http1::read(&mut tcp, &mut buffer, true).await {
        let (status, body): (&str, &[u8]) = match request.first.as_str() {
            "/connect" => ("200 OK", b""),
            "/message" => ("200 OK", REPLY),
            _ => ("204 No Content", b""),
        };
        let mut answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(body);
        if tcp.write_all(&answer).await.is_err() {
            return;
        }
    }
}

//! The reference server every benchmark run carries: the same TLS and WebSocket stack as the gateway
//! (tokio-rustls + tokio-tungstenite) answering `ok` to every message, with no plugin layer, in the naive
//! configuration — one multi-threaded tokio runtime, default buffers, one flush per message.

use anyhow::{Context, Result, anyhow};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Parser)]
#[command(about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8383")]
    address: std::net::SocketAddr,
    /// PEM certificate chain.
    #[arg(long)]
    cert: std::path::PathBuf,
    /// PEM private key.
    #[arg(long)]
    key: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Args = clap::Parser::parse();
    let chain = CertificateDer::pem_file_iter(&args.cert)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("{}: {e}", args.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&args.key)
        .map_err(|e| anyhow!("{}: {e}", args.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(args.address).await.context("binding")?;
    println!("baseline listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_text() || message.is_binary())
                    && ws.send(Message::text("ok")).await.is_err()
                {
                    return;
                }
            }
        });
    }
}

//! How the load generator reaches a server: TCP from a chosen loopback source address, then TLS when a
//! certificate is given, then the WebSocket upgrade.
//!
//! Spreading connections over several source addresses (127.0.0.2, 127.0.0.3, …) gives each its own ephemeral
//! port range, so tens of thousands of connections, or a handshake benchmark's stream of short-lived ones, do not
//! run out of ports or trip over `TIME_WAIT`.

use anyhow::{Context, Result, anyhow};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A byte stream a WebSocket runs over: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Ws = WebSocketStream<Box<dyn Io>>;

/// Bytes the client reads at a time: small, so that 19,000 idle client connections fit in memory too.
const CLIENT_READ_BUFFER: usize = 4 * 1024;

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    pub address: SocketAddr,
    pub path: String,
    /// `None` for plain ws.
    pub tls: Option<TlsConnector>,
    /// Source addresses to spread connections over; empty lets the kernel choose.
    pub sources: Vec<IpAddr>,
}

/// A TLS client that trusts exactly the certificate(s) in `cert`. `resume` keeps rustls' session cache, which a
/// handshake benchmark turns off so that every handshake is a full one.
pub fn tls_connector(cert: &Path, resume: bool) -> Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for der in
        CertificateDer::pem_file_iter(cert).map_err(|e| anyhow!("{}: {e}", cert.display()))?
    {
        roots.add(der.map_err(|e| anyhow!("{}: {e}", cert.display()))?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Parses `127.0.0.2-127.0.0.9` (a range in the last octet) or a comma-separated list of addresses.
pub fn parse_sources(spec: &str) -> Result<Vec<IpAddr>> {
    if let Some((first, last)) = spec.split_once('-') {
        let first: std::net::Ipv4Addr = first.trim().parse().context("source range start")?;
        let last: std::net::Ipv4Addr = last.trim().parse().context("source range end")?;
        let [a, b, c, from] = first.octets();
        let to = last.octets()[3];
        anyhow::ensure!(
            last.octets()[..3] == [a, b, c] && from <= to,
            "a source range differs only in its last octet, low to high: {spec}"
        );
        return Ok((from..=to).map(|d| IpAddr::from([a, b, c, d])).collect());
    }
    spec.split(',')
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("source address {s:?}"))
        })
        .collect()
}

impl Target {
    /// Opens connection number `n` (which picks its source address) through TLS and the upgrade.
    pub async fn connect(&self, n: usize) -> Result<Ws> {
        let io = self.stream(n).await?;
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let url = format!("{scheme}://localhost:{}{}", self.address.port(), self.path);
        let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, io, Some(config))
            .await
            .context("WebSocket upgrade")?;
        Ok(ws)
    }

    /// Opens connection number `n` through TLS (when the target has it): the byte stream, before any protocol.
    pub async fn stream(&self, n: usize) -> Result<Box<dyn Io>> {
        let tcp = self.tcp(n).await?;
        tcp.set_nodelay(true)?;
        Ok(match &self.tls {
            Some(connector) => Box::new(
                connector
                    .connect(ServerName::try_from("localhost")?, tcp)
                    .await
                    .context("TLS handshake")?,
            ),
            None => Box::new(tcp),
        })
    }

    async fn tcp(&self, n: usize) -> Result<TcpStream> {
        if self.sources.is_empty() {
            return TcpStream::connect(self.address).await.context("connecting");
        }
        let source = self.sources[n % self.sources.len()];
        let socket = if source.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("binding source address {source}"))?;
        socket.connect(self.address).await.context("connecting")
    }
}

//! For the fuzz targets (`fuzz/`, crate `wssgate-fuzz`) only: serves bytes as one admin connection, through the
//! same hyper settings, token check, body reading and push API handling as a real one, and returns what it wrote.
//! Hidden from the docs and used by nothing else.

use crate::{AdminApi, ProcessInfo, Served, Tokens, serve_connection};
use std::cell::Cell;
use std::collections::HashSet;
use std::future::{Future, poll_fn};
use std::io;
use std::net::IpAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wssgate_hub::Hub;
use wssgate_hub::metrics::Metrics;

/// The token every request but `/healthz` and `/metrics` needs.
pub const TOKEN: &str = "fuzz-admin-token";
/// The token `/metrics` needs (or [`TOKEN`]).
pub const METRICS_TOKEN: &str = "fuzz-metrics-token";
/// The routes the push API knows.
pub const ROUTES: [&str; 2] = ["/chat", "/wss"];

/// Serves `input` as what one client sent on a connection from `peer`, to a fresh admin listener's state (so that
/// one input's token failures do not throttle the next), until the server waits for more; returns the bytes written
/// back. Needs a tokio runtime with
/// time (hyper's and the body's timeouts).
pub async fn serve(peer: IpAddr, input: &[u8]) -> Vec<u8> {
    let limits = wssgate_config::limits::Limits::default();
    let metrics = Arc::new(Metrics::new(
        ROUTES.iter().map(|r| r.to_string()).collect(),
        1,
    ));
    let (hub, _deliveries) = Hub::new(1, limits.max_worker_queue_bytes, metrics.clone());
    let served = Arc::new(Served {
        api: AdminApi {
            metrics,
            hub,
            tokens: Arc::new(RwLock::new(Tokens {
                token: TOKEN.into(),
                metrics_token: Some(METRICS_TOKEN.into()),
            })),
            routes: Arc::new(RwLock::new(
                ROUTES.iter().map(|r| r.to_string()).collect::<HashSet<_>>(),
            )),
            cluster: None,
            max_connections: 1,
            admission: wssgate_hub::admission::Admission::new(&limits),
            process: Arc::new(ProcessInfo::new("fuzz.toml".into())),
            store: None,
        },
        failures: Mutex::default(),
    });
    let (starved, closed) = (Cell::new(false), Cell::new(false));
    let mut stream = Memory {
        input,
        output: Vec::new(),
        starved: &starved,
        closed: &closed,
    };
    {
        let mut connection = pin!(serve_connection(&mut stream, peer, served));
        // The client waits for the answers to all it sent: until the server waits for more.
        let ended = poll_fn(|cx| match connection.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(true),
            Poll::Pending if starved.get() => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        })
        .await;
        // Then it closes the connection, and the server sees it.
        if !ended {
            closed.set(true);
            poll_fn(|cx| {
                let _ = connection.as_mut().poll(cx);
                Poll::Ready(())
            })
            .await;
        }
    }
    stream.output
}

/// A connection whose client sent `input`, then waited (`starved` once the server read it all), then closed
/// (`closed`, set from outside); what the server writes is kept.
struct Memory<'a> {
    input: &'a [u8],
    output: Vec<u8>,
    starved: &'a Cell<bool>,
    closed: &'a Cell<bool>,
}

impl AsyncRead for Memory<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.input.is_empty() && !this.closed.get() {
            this.starved.set(true);
            return Poll::Pending;
        }
        let n = this.input.len().min(buf.remaining());
        buf.put_slice(&this.input[..n]);
        this.input = &this.input[n..];
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Memory<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().output.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

//! A worker: one thread, one single-threaded tokio runtime, its own listening sockets and its own plugin instances.
//! A connection lives on one worker for life, so its events reach one plugin instance in order, with no
//! cross-thread hop and no lock on the hot path (like nginx workers or Workerman's `count`).

use crate::admission::Admission;
use crate::connection;
use crate::hub::{self, Delivery, Hub};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::proxy::TrustedProxies;
use crate::registry;
use crate::route::{Route, RouteTemplate, Routes};
use crate::timers::Fire;
use anyhow::{Context, Result};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

/// What a worker's connections share.
pub struct WorkerContext {
    /// This worker's number: its metrics shard and the high bits of its ids.
    pub index: usize,
    /// Counters for /metrics.
    pub metrics: Arc<Metrics>,
    /// This worker's instances of every route.
    pub routes: Routes,
    /// The connection and protocol limits.
    pub limits: Arc<Limits>,
    /// The gateway-wide connection caps.
    pub admission: Arc<Admission>,
    /// Groups, users and sessions shared by all workers.
    pub hub: Arc<Hub>,
    /// Turns true when the gateway shuts down: sessions send 1001 and end.
    pub shutdown: watch::Receiver<bool>,
}

/// One listener as a worker serves it.
pub struct ListenerSpec {
    /// The worker's own socket on the listener's address.
    pub socket: std::net::TcpListener,
    /// What its connections share.
    pub options: Arc<ListenerOptions>,
}

/// How a listener treats its connections.
pub struct ListenerOptions {
    /// TLS settings; `None` for plain ws.
    pub tls: Option<TlsAcceptor>,
    /// Peers believed about the client's address.
    pub trusted_proxies: TrustedProxies,
    /// Connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
}

/// Everything a worker thread starts from.
pub struct WorkerSpec {
    pub index: usize,
    /// This worker's own socket for each listener.
    pub listeners: Vec<ListenerSpec>,
    pub routes: Arc<Vec<RouteTemplate>>,
    pub limits: Arc<Limits>,
    pub admission: Arc<Admission>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Messages other workers publish to this worker's connections.
    pub deliveries: UnboundedReceiver<Delivery>,
    pub shutdown: watch::Receiver<bool>,
    /// How long the worker waits for its connections to close after shutdown began.
    pub grace: Duration,
}

/// Starts the worker thread; it reports on `ready` once it serves, or why it could not start.
pub fn spawn(
    spec: WorkerSpec,
    ready: std::sync::mpsc::Sender<Result<()>>,
) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("wssgate-worker-{}", spec.index))
        .spawn(move || {
            if let Err(e) = run(spec, &ready) {
                let _ = ready.send(Err(e));
            }
        })
        .context("spawning a worker thread")
}

fn run(spec: WorkerSpec, ready: &std::sync::mpsc::Sender<Result<()>>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("worker runtime")?;
    registry::init_worker(spec.index);
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let (fire, mut fired) = unbounded_channel::<Fire>();
        let routes = spec
            .routes
            .iter()
            .map(|template| {
                Route::instantiate(template, &spec.hub, &fire, &spec.metrics, spec.index)
            })
            .collect::<Result<Vec<_>>>()?;
        let context = Rc::new(WorkerContext {
            index: spec.index,
            metrics: spec.metrics.clone(),
            routes: Routes::new(routes),
            limits: spec.limits.clone(),
            admission: spec.admission.clone(),
            hub: spec.hub.clone(),
            shutdown: spec.shutdown.clone(),
        });
        let mut deliveries = spec.deliveries;
        tokio::task::spawn_local(async move {
            while let Some(delivery) = deliveries.recv().await {
                hub::deliver_here(&delivery.message, &delivery.targets);
            }
        });
        let timer_context = context.clone();
        tokio::task::spawn_local(async move {
            while let Some(fired) = fired.recv().await {
                let route = timer_context.routes.get(fired.route);
                if let Some(instance) = route.and_then(|r| r.instance(fired.instance)) {
                    // A trap is logged and handled by the instance.
                    let _ = instance.borrow_mut().on_timer(fired.timer);
                }
            }
        });
        // Each connection holds a clone of `done`; when all are dropped, every connection has ended.
        let (done, mut all_done) = mpsc::channel::<()>(1);
        for listener in spec.listeners {
            let socket =
                TcpListener::from_std(listener.socket).context("registering a listener")?;
            let options = listener.options;
            tokio::task::spawn_local(accept_loop(socket, options, context.clone(), done.clone()));
        }
        drop(done);
        let _ = ready.send(Ok(()));
        let mut shutdown = spec.shutdown;
        let _ = shutdown.wait_for(|down| *down).await;
        if tokio::time::timeout(spec.grace, all_done.recv())
            .await
            .is_err()
        {
            tracing::warn!(
                worker = spec.index,
                "{} connections still open after the {:?} grace period; dropping them",
                registry::open_count(),
                spec.grace
            );
        }
        Ok(())
    })
}

async fn accept_loop(
    listener: TcpListener,
    options: Arc<ListenerOptions>,
    context: Rc<WorkerContext>,
    done: mpsc::Sender<()>,
) {
    let mut shutdown = context.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|down| *down) => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let (options, context, done) = (options.clone(), context.clone(), done.clone());
                    tokio::task::spawn_local(async move {
                        connection::serve(tcp, peer, options, context).await;
                        drop(done);
                    });
                }
                Err(e) => {
                    // Out of file descriptors or a transient error: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

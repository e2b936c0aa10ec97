//! A worker: one thread, one single-threaded tokio runtime, its own listening sockets and its own plugin instances.
//! A connection lives on one worker for life, so its events reach one plugin instance in order, with no
//! cross-thread hop and no lock on the hot path (like nginx workers or Workerman's `count`).

use crate::connection;
use crate::context::WorkerContext;
pub use crate::context::{ListenerOptions, Reload};
use anyhow::{Context, Result};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::sync::{mpsc, watch};
use wssgate_config::limits::Limits;
use wssgate_hub::admission::Admission;
use wssgate_hub::metrics::Metrics;
use wssgate_hub::outbound::{SHUTTING_DOWN, close_frame};
use wssgate_hub::{DeliveryReceiver, Hub};
use wssgate_runtime::owned::{Due, DueEvent};
use wssgate_runtime::route::{RouteTemplate, Routes};
use wssgate_runtime::upstream::{UpstreamConfig, WorkerUpstreams};
use wssgate_runtime::worker::Worker;
use wssgate_storage::Store;

/// One listener as a worker serves it.
pub struct ListenerSpec {
    /// The worker's own socket on the listener's address.
    pub socket: std::net::TcpListener,
    /// What its connections share.
    pub options: Arc<ListenerOptions>,
}

/// Everything a worker thread starts from.
pub struct WorkerSpec {
    pub index: usize,
    /// This worker's own socket for each listener.
    pub listeners: Vec<ListenerSpec>,
    pub routes: Arc<Vec<RouteTemplate>>,
    pub limits: Arc<Limits>,
    pub upstreams: Arc<Vec<Arc<UpstreamConfig>>>,
    pub admission: Arc<Admission>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Messages other workers publish to this worker's connections.
    pub deliveries: DeliveryReceiver,
    /// New configurations, on SIGHUP.
    pub reloads: UnboundedReceiver<Reload>,
    pub shutdown: watch::Receiver<bool>,
    /// How long the worker waits for its connections to close after shutdown began.
    pub grace: Duration,
    /// Where routes' history and storage are kept, when some route has either.
    pub store: Option<Arc<dyn Store>>,
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
    let local = Worker::new(spec.index, spec.metrics.clone());
    Worker::enter(&local);
    let tasks = tokio::task::LocalSet::new();
    tasks.block_on(&runtime, async move {
        let (events, mut due_events) = unbounded_channel::<Due>();
        let context = Rc::new(WorkerContext {
            index: spec.index,
            local: local.clone(),
            metrics: spec.metrics.clone(),
            routes: RefCell::new(Rc::new(Routes::new(Vec::new()))),
            generations: RefCell::default(),
            limits: RefCell::new(spec.limits.clone()),
            listeners: RefCell::new(spec.listeners.iter().map(|l| l.options.clone()).collect()),
            admission: spec.admission.clone(),
            hub: spec.hub.clone(),
            shutdown: spec.shutdown.clone(),
            events,
            upstreams: Arc::new(WorkerUpstreams::new(
                &spec.upstreams,
                &spec.metrics.upstreams,
            )),
            codecs: crate::compression::WorkerCodecs::new(),
            store: spec.store.clone(),
        });
        *context.routes.borrow_mut() = context.instantiate(&spec.routes, 0, &spec.limits)?;
        tokio::task::spawn_local(spec.deliveries.run(local.connections.clone()));
        let due_context = context.clone();
        tokio::task::spawn_local(async move {
            while let Some(due) = due_events.recv().await {
                let wanted = match &due.event {
                    // Exactly once: a timer, request or storage answer cancelled (or whose owner ended) after it
                    // was queued is dropped here.
                    DueEvent::Timer(timer) => due_context.local.timers.delivered(*timer),
                    DueEvent::Response { request, .. } => {
                        due_context.local.requests.delivered(*request)
                    }
                    DueEvent::Stored { request, .. } => {
                        due_context.local.storage.delivered(*request)
                    }
                };
                let routes = due_context
                    .generations
                    .borrow()
                    .get(&due.generation)
                    .and_then(Weak::upgrade);
                let route = routes.as_ref().and_then(|r| r.get(due.route_index));
                if wanted && let Some(instance) = route.and_then(|r| r.instance(due.instance_index))
                {
                    // A trap is logged and handled by the instance.
                    let _ = instance.borrow_mut().on_due(due);
                }
            }
        });
        let reload_context = context.clone();
        let mut reloads = spec.reloads;
        tokio::task::spawn_local(async move {
            while let Some(reload) = reloads.recv().await {
                let _ = reload.done.send(reload_context.apply(&reload));
            }
        });
        // Each connection holds a clone of `done`; when all are dropped, every connection has ended.
        let (done, mut all_done) = mpsc::channel::<()>(1);
        for (index, listener) in spec.listeners.into_iter().enumerate() {
            let socket =
                TcpListener::from_std(listener.socket).context("registering a listener")?;
            tokio::task::spawn_local(accept_loop(socket, index, context.clone(), done.clone()));
        }
        drop(done);
        let _ = ready.send(Ok(()));
        let mut shutdown = spec.shutdown;
        let _ = shutdown.wait_for(|down| *down).await;
        local
            .connections
            .close_all(&close_frame(1001, SHUTTING_DOWN));
        if tokio::time::timeout(spec.grace, all_done.recv())
            .await
            .is_err()
        {
            tracing::warn!(
                worker = spec.index,
                "{} connections still open after the {:?} grace period; dropping them",
                local.connections.len(),
                spec.grace
            );
        }
        Ok(())
    })
}

async fn accept_loop(
    listener: TcpListener,
    index: usize,
    context: Rc<WorkerContext>,
    done: mpsc::Sender<()>,
) {
    let mut shutdown = context.shutdown.clone();
    // Accepts that failed in a row: the first is logged, and the recovery, not each retry (20 a second).
    let mut failed = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|down| *down) => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    if failed > 0 {
                        tracing::info!("accepting again after {failed} failed accepts");
                        failed = 0;
                    }
                    // The listener's settings as of now: a reload applies to the next connection.
                    let options = context.listeners.borrow()[index].clone();
                    let (context, done) = (context.clone(), done.clone());
                    tokio::task::spawn_local(connection::serve(tcp, peer, options, context, done));
                }
                Err(e) => {
                    // Out of file descriptors or a transient error: back off instead of spinning.
                    if failed == 0 {
                        tracing::warn!("accept failed: {e} (retrying every 50 ms; logged again once it works)");
                    }
                    failed += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

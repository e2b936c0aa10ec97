//! Starting and stopping the whole gateway: compile the plugins once, bind every listener once per worker, start
//! the workers and wait until each serves; on shutdown, tell them all and wait for them to finish.

use crate::admin::{self, AdminApi};
use crate::admission::Admission;
use crate::config::Config;
use crate::hub::Hub;
use crate::listener;
use crate::metrics::Metrics;
use crate::plugin::{PluginRuntime, RouteContext};
use crate::route::RouteTemplate;
use crate::tls;
use crate::worker::{self, ListenerOptions, ListenerSpec, WorkerSpec};
use anyhow::{Context, Result, anyhow};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// A running gateway.
pub struct Gateway {
    /// The worker threads and the admin thread.
    workers: Vec<std::thread::JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    /// Each listener's bound address and whether it speaks TLS.
    pub addresses: Vec<(SocketAddr, bool)>,
}

/// Compiles every route's plugin; what `check` validates and `serve` starts from.
pub fn load_routes(config: &Config, runtime: &PluginRuntime) -> Result<Vec<RouteTemplate>> {
    config
        .routes
        .iter()
        .enumerate()
        .map(|(index, route)| {
            Ok(RouteTemplate {
                config: route.clone(),
                context: Arc::new(RouteContext::new(route, index, runtime.fuel_metering)),
                plugin: runtime.load(&route.plugin)?,
            })
        })
        .collect()
}

impl Gateway {
    pub fn start(config: &Config) -> Result<Gateway> {
        listener::raise_open_files_limit();
        let runtime = PluginRuntime::new(config.needs_fuel())?;
        runtime.start_epoch_ticker();
        let routes = Arc::new(load_routes(config, &runtime)?);

        let mut per_worker: Vec<Vec<_>> = (0..config.workers).map(|_| Vec::new()).collect();
        let mut addresses = Vec::new();
        for l in &config.listeners {
            let sockets = listener::bind_shared(l.address, config.workers)?;
            let bound = sockets[0].local_addr().context("reading a bound address")?;
            let acceptor = match &l.tls {
                Some(files) => Some(TlsAcceptor::from(tls::server_config(files, bound.port())?)),
                None => None,
            };
            addresses.push((bound, acceptor.is_some()));
            let options = Arc::new(ListenerOptions {
                tls: acceptor,
                trusted_proxies: l.trusted_proxies.clone(),
                proxy_protocol: l.proxy_protocol,
            });
            for (worker, socket) in per_worker.iter_mut().zip(sockets) {
                worker.push(ListenerSpec {
                    socket,
                    options: options.clone(),
                });
            }
        }

        let limits = Arc::new(config.limits.clone());
        let admission = Admission::new(&config.limits);
        let (hub, deliveries) = Hub::new(config.workers);
        let metrics = Arc::new(Metrics::new(
            config.routes.iter().map(|r| r.path.clone()).collect(),
            config.workers,
        ));
        let (shutdown, watch_shutdown) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut gateway = Gateway {
            workers: Vec::new(),
            shutdown,
            addresses,
        };
        for (index, (listeners, deliveries)) in per_worker.into_iter().zip(deliveries).enumerate() {
            let spec = WorkerSpec {
                index,
                listeners,
                routes: routes.clone(),
                limits: limits.clone(),
                admission: admission.clone(),
                hub: hub.clone(),
                metrics: metrics.clone(),
                deliveries,
                shutdown: watch_shutdown.clone(),
                grace: config.shutdown_grace,
            };
            gateway.workers.push(worker::spawn(spec, ready_tx.clone())?);
        }
        drop(ready_tx);
        for _ in 0..config.workers {
            let started = ready_rx
                .recv()
                .map_err(|_| anyhow!("a worker stopped before it was ready"))
                .and_then(|r| r);
            if let Err(e) = started {
                gateway.stop();
                return Err(e);
            }
        }
        if let Some(admin) = &config.admin {
            let api = AdminApi {
                metrics: metrics.clone(),
                hub: hub.clone(),
                token: admin.token.clone(),
                routes: Arc::new(RwLock::new(
                    routes.iter().map(|r| r.config.path.clone()).collect(),
                )),
            };
            match admin::start(admin.address, api, watch_shutdown.clone()) {
                Ok((bound, thread)) => {
                    gateway.workers.push(thread);
                    tracing::info!("admin API listening on http://{bound}");
                }
                Err(e) => {
                    gateway.stop();
                    return Err(e);
                }
            }
        }
        for (address, tls) in &gateway.addresses {
            let scheme = if *tls { "wss" } else { "ws" };
            tracing::info!(
                "listening on {scheme}://{address} with {} workers",
                config.workers
            );
        }
        Ok(gateway)
    }

    /// Stops accepting, closes every connection with 1001, and waits for the workers (each bounded by the grace
    /// period).
    pub fn stop(self) {
        let _ = self.shutdown.send(true);
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

//! Starting and stopping the whole gateway: bind every listener once per worker, drop root if configured, compile
//! the plugins once, start the workers and wait until each serves; on shutdown, tell them all and wait for them to
//! finish.

use crate::privileges;
use anyhow::{Context, Result, anyhow};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use wssgate_admin::{AdminApi, Tokens};
use wssgate_config::{AcmeConfig, Config, ListenerConfig, TlsFiles};
use wssgate_edge::acme;
use wssgate_edge::listener;
use wssgate_edge::tls;
use wssgate_edge::worker::{self, ListenerOptions, ListenerSpec, Reload, WorkerSpec};
use wssgate_hub::Hub;
use wssgate_hub::admission::Admission;
use wssgate_hub::metrics::Metrics;
use wssgate_hub::sync;
use wssgate_runtime::plugin::{CompileCache, HostLinks, PluginRuntime, RouteContext};
use wssgate_runtime::route::{Route, RouteTemplate};
use wssgate_runtime::worker::Worker;
use wssgate_storage::Store;

/// A running gateway.
pub struct Gateway {
    /// Every thread the gateway started: the workers, the admin listener's and the cluster link's.
    threads: Vec<std::thread::JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    /// Each listener's bound address and whether it speaks TLS.
    pub addresses: Vec<(SocketAddr, bool)>,
    /// The engine plugins are compiled with; a reload compiles with the same one.
    runtime: PluginRuntime,
    /// The config the gateway started with: what a reload cannot change without a restart.
    started_with: Config,
    /// Each worker's reload channel.
    reloads: Vec<UnboundedSender<Reload>>,
    admission: Arc<Admission>,
    /// Takes the delivery queue bound of a reload.
    hub: Arc<Hub>,
    /// The admin API's set of routes and its tokens, when the admin listener runs: a reload replaces them.
    admin: Option<AdminLinks>,
    /// The start, config file and last reload, which `/api/status` reports.
    process: Arc<wssgate_admin::ProcessInfo>,
    /// The number of the last routes generation handed to the workers.
    generation: u64,
    /// Builds listeners' TLS settings, at start and on reload.
    certificates: Certificates,
    /// Where routes' history and storage are kept, when some route had either at start; dropped after the workers
    /// stop, so that what they asked is written before the gateway exits.
    store: Option<Arc<dyn Store>>,
}

/// The store of routes' memory, when some route configures `[route.history]` or `[route.storage]`: NATS JetStream
/// with `[cluster]` (every node sees the same data), else one file under `data_dir`.
fn open_store(config: &Config) -> Result<Option<Arc<dyn Store>>> {
    if !config
        .routes
        .iter()
        .any(|r| r.history.is_some() || r.storage.is_some())
    {
        return Ok(None);
    }
    let store: Arc<dyn Store> = match &config.cluster {
        Some(cluster) => {
            let spaces: Vec<_> = config
                .routes
                .iter()
                .filter(|r| r.history.is_some() || r.storage.is_some())
                .map(|r| {
                    Arc::new(wssgate_storage::Namespace {
                        route: r.path.clone(),
                        history: r.history.clone(),
                        storage: r.storage.clone(),
                    })
                })
                .collect();
            Arc::new(wssgate_storage::jetstream::JetStream::start(
                cluster, &spaces,
            )?)
        }
        None => Arc::new(wssgate_storage::Embedded::open(&config.data_dir)?),
    };
    Ok(Some(store))
}

/// What a reload changes in the running admin listener.
struct AdminLinks {
    routes: Arc<RwLock<HashSet<String>>>,
    tokens: Arc<RwLock<Tokens>>,
}

/// The tokens `[admin]` names.
fn admin_tokens(admin: &wssgate_config::AdminConfig) -> Tokens {
    Tokens {
        token: admin.token.clone(),
        metrics_token: admin.metrics_token.clone(),
    }
}

/// Where listeners' certificates come from beyond their files: the ACME clients, which live as long as the
/// process, and the expiry metric.
struct Certificates {
    metrics: Arc<Metrics>,
    /// One ACME client per `[listener.acme]` setting: listeners with the same settings (`0.0.0.0:443` and
    /// `[::]:443`) share its certificate and its validation answers, whichever of them the ACME server reaches.
    acme: HashMap<AcmeConfig, Arc<acme::Slot>>,
}

impl Certificates {
    /// A listener's TLS and proxy settings; `port` (the bound one) goes into the development certificate hint.
    fn listener_options(
        &mut self,
        listener: &ListenerConfig,
        port: u16,
    ) -> Result<Arc<ListenerOptions>> {
        let tls = match &listener.tls {
            Some(files) => {
                let report = tls::inspect::inspect(files)?;
                for warning in &report.warnings {
                    tracing::warn!("{warning}");
                }
                if let Some(expires) = report.expires {
                    let label = listener.address.to_string();
                    self.metrics.certificate_expiry(&label, "file", expires);
                }
                let slot = match files {
                    TlsFiles::Acme(acme_config) => Some(match self.acme.get(acme_config) {
                        Some(slot) => slot.clone(),
                        None => {
                            let label = listener.address.to_string();
                            let slot = acme::start(acme_config, label, self.metrics.clone())?;
                            self.acme.insert(acme_config.clone(), slot.clone());
                            slot
                        }
                    }),
                    _ => None,
                };
                Some(TlsAcceptor::from(tls::server_config(files, port, slot)?))
            }
            None => None,
        };
        Ok(Arc::new(ListenerOptions {
            tls,
            trusted_proxies: listener.trusted_proxies.clone(),
            client_address: listener.client_address,
        }))
    }
}

/// Compiles every route's plugin and starts it once (see [`validate_routes`]); what `check` validates and `serve`
/// and a reload start from. An `init` that refuses its settings is counted in `metrics`.
pub fn load_routes(
    config: &Config,
    runtime: &PluginRuntime,
    metrics: &Arc<Metrics>,
) -> Result<Vec<RouteTemplate>> {
    let routes = config
        .routes
        .iter()
        .enumerate()
        .map(|(index, route)| {
            let plugin = runtime.load(&route.plugin)?;
            let context = RouteContext::new(route, index, runtime.fuel_metering, plugin.language);
            Ok(RouteTemplate {
                config: route.clone(),
                context: Arc::new(context),
                plugin,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    validate_routes(&routes, &config.limits, metrics)?;
    Ok(routes)
}

/// Starts each route's plugin once, as a worker would, and runs its `init` on the route's settings: a plugin that
/// traps at start, outgrows its memory cap or refuses its settings fails here — in `check`, before `serve` starts
/// its workers, and before a reload reaches them — and not in a worker. Runs on a thread of its own, inside a task
/// set like a worker's, so whatever `init` starts (timers) works and ends with it.
pub fn validate_routes(
    routes: &[RouteTemplate],
    limits: &wssgate_config::limits::Limits,
    metrics: &Arc<Metrics>,
) -> Result<()> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("validation runtime")?;
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async {
                    let (events, _due) = tokio::sync::mpsc::unbounded_channel();
                    // `init` cannot send requests: no upstream clients are needed to validate.
                    let links = HostLinks::alone(metrics.clone(), limits, events);
                    // `init` may start route-wide timers: they need a worker to live on.
                    let worker = Worker::new(0, links.metrics.clone());
                    Worker::enter(&worker);
                    for route in routes {
                        Route::instantiate(route, &links, &worker)?;
                    }
                    Ok(())
                })
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("validating the plugins panicked")))
    })
}

impl Gateway {
    pub fn start(config: &Config) -> Result<Gateway> {
        listener::raise_open_files_limit();
        // Listeners first, while the process may still be root (port 443); then drop to `user` before reading a
        // certificate or a plugin.
        let mut inherited = listener::Inherited::from_env()?;
        let mut bound = Vec::with_capacity(config.listeners.len());
        for l in &config.listeners {
            let sockets = listener::listen(l.address, config.workers, &mut inherited);
            bound.push(sockets.map_err(|e| inherited.explain(e))?);
        }
        inherited.warn_unused();
        if let Some(run_as) = &config.run_as {
            privileges::drop_to(run_as)?;
        }
        let runtime = PluginRuntime::new(
            config.needs_fuel(),
            CompileCache::open(&config.compile_cache),
        )?;
        runtime.start_epoch_ticker();
        let metrics = Arc::new(Metrics::new(
            config.routes.iter().map(|r| r.path.clone()).collect(),
            config.workers,
        ));
        let routes = Arc::new(load_routes(config, &runtime, &metrics)?);
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        let mut certificates = Certificates {
            metrics: metrics.clone(),
            acme: HashMap::new(),
        };

        let mut per_worker: Vec<Vec<_>> = (0..config.workers).map(|_| Vec::new()).collect();
        let mut addresses = Vec::new();
        for (l, sockets) in config.listeners.iter().zip(bound) {
            let local = sockets[0].local_addr().context("reading a bound address")?;
            let options = certificates.listener_options(l, local.port())?;
            addresses.push((local, options.tls.is_some()));
            for (worker, socket) in per_worker.iter_mut().zip(sockets) {
                worker.push(ListenerSpec {
                    socket,
                    options: options.clone(),
                });
            }
        }

        let limits = Arc::new(config.limits.clone());
        let admission = Admission::new(&config.limits);
        let (hub, deliveries) = Hub::new(
            config.workers,
            config.limits.max_worker_queue_bytes,
            metrics.clone(),
        );
        let (shutdown, watch_shutdown) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut gateway = Gateway {
            threads: Vec::new(),
            shutdown,
            addresses,
            runtime,
            started_with: config.clone(),
            reloads: Vec::new(),
            admission: admission.clone(),
            admin: None,
            process: Arc::new(wssgate_admin::ProcessInfo::new(
                std::fs::canonicalize(&config.source).unwrap_or_else(|_| config.source.clone()),
            )),
            generation: 0,
            hub: hub.clone(),
            certificates,
            store: open_store(config)?,
        };
        // Before the workers, so that no join or login can happen before the hub has its link to tell.
        let cluster = match &config.cluster {
            None => None,
            Some(cluster) => {
                let link = wssgate_cluster::ClusterLink::start(
                    cluster,
                    hub.clone(),
                    watch_shutdown.clone(),
                )?;
                tracing::info!(node = %cluster.node, "cluster: this node is {}; connecting to {}", cluster.node, cluster.servers.join(", "));
                gateway.threads.push(link.thread);
                Some(link.state)
            }
        };
        for (index, (listeners, deliveries)) in per_worker.into_iter().zip(deliveries).enumerate() {
            let (reload_tx, reloads) = unbounded_channel();
            gateway.reloads.push(reload_tx);
            let spec = WorkerSpec {
                index,
                reloads,
                listeners,
                routes: routes.clone(),
                limits: limits.clone(),
                upstreams: Arc::new(config.upstreams.clone()),
                admission: admission.clone(),
                hub: hub.clone(),
                metrics: metrics.clone(),
                deliveries,
                shutdown: watch_shutdown.clone(),
                grace: config.shutdown_grace,
                store: gateway.store.clone(),
            };
            gateway.threads.push(worker::spawn(spec, ready_tx.clone())?);
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
            let links = AdminLinks {
                routes: Arc::new(RwLock::new(
                    routes.iter().map(|r| r.config.path.clone()).collect(),
                )),
                tokens: Arc::new(RwLock::new(admin_tokens(admin))),
            };
            let api = AdminApi {
                metrics: metrics.clone(),
                hub: hub.clone(),
                tokens: links.tokens.clone(),
                routes: links.routes.clone(),
                cluster,
                max_connections: admin.max_connections,
                admission: admission.clone(),
                process: gateway.process.clone(),
                store: gateway.store.clone(),
            };
            gateway.admin = Some(links);
            match wssgate_admin::start(admin.address, api, watch_shutdown.clone()) {
                Ok((bound, thread)) => {
                    gateway.threads.push(thread);
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

    /// Re-reads the config at `path` (with `workers` as `--workers` gave it) and applies routes, plugins, plugin
    /// settings, limits, origins, certificates and trusted proxies to new connections; open connections stay on
    /// what they started with. A config or plugin that fails to load changes nothing.
    pub fn reload(&mut self, path: &Path, workers: Option<usize>) {
        match self.try_reload(path, workers) {
            Ok(()) => {
                self.process.reloaded();
                tracing::info!("reload complete: new connections use {}", path.display())
            }
            Err(e) => tracing::error!("reload rejected, still serving the previous config: {e:#}"),
        }
    }

    fn try_reload(&mut self, path: &Path, workers: Option<usize>) -> Result<()> {
        let mut config = Config::load(path)?;
        if let Some(workers) = workers {
            config.workers = workers;
        }
        anyhow::ensure!(
            config.needs_fuel() == self.runtime.fuel_metering,
            "turning fuel metering on or off (a route's `fuel`) needs a restart"
        );
        let old = &self.started_with;
        let addresses = |c: &Config| c.listeners.iter().map(|l| l.address).collect::<Vec<_>>();
        if config.workers != old.workers || addresses(&config) != addresses(old) {
            tracing::warn!(
                "the reloaded config changes the listener addresses or the worker count, which needs a restart; \
                 applying everything else"
            );
        }
        match (&config.admin, &old.admin) {
            (Some(new), Some(old)) if !new.same_listener(old) => tracing::warn!(
                "the reloaded config changes the admin listener's `address`, `allow_public` or `max_connections`, \
                 which needs a restart; its tokens are applied"
            ),
            (None, Some(_)) => tracing::warn!(
                "the reloaded config removes `[admin]`: turning the admin listener off needs a restart; until then it \
                 keeps accepting its current tokens"
            ),
            (Some(_), None) => {
                tracing::warn!("the reloaded config adds `[admin]`, which needs a restart")
            }
            _ => {}
        }
        let same_cluster = match (&config.cluster, &old.cluster) {
            (Some(new), Some(old)) => new.same_link(old),
            (new, old) => new.is_none() && old.is_none(),
        };
        if !same_cluster {
            tracing::warn!("the reloaded config changes `[cluster]`, which needs a restart");
        }
        if config.run_as != old.run_as {
            tracing::warn!("the reloaded config changes `user` or `group`, which needs a restart");
        }
        if config.data_dir != old.data_dir {
            tracing::warn!("the reloaded config changes `data_dir`, which needs a restart");
        }
        let remembers =
            |r: &wssgate_config::RouteConfig| r.history.is_some() || r.storage.is_some();
        if config.cluster.is_some() {
            for route in &config.routes {
                let before = old.routes.iter().find(|o| o.path == route.path);
                if before
                    .is_some_and(|o| (&o.history, &o.storage) != (&route.history, &route.storage))
                {
                    tracing::warn!(route = %route.path,
                        "the reloaded config changes the route's [route.history] or [route.storage]: in JetStream \
                         its stream and bucket keep their limits until a restart");
                }
            }
        }
        if self.store.is_none() && config.routes.iter().any(remembers) {
            tracing::warn!(
                "the reloaded config gives a route [route.history] or [route.storage], but the gateway started \
                 without any: opening the store needs a restart; until then those routes' requests are refused \
                 (not-configured)"
            );
        }
        let routes = Arc::new(load_routes(
            &config,
            &self.runtime,
            &self.certificates.metrics,
        )?);
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        // A listener keeps its running settings unless the new config has one at the same place with the same
        // address.
        let mut listeners = Vec::new();
        for (index, (bound, _)) in self.addresses.iter().enumerate() {
            let running = &old.listeners[index];
            let mut new = config
                .listeners
                .get(index)
                .filter(|l| l.address == running.address)
                .unwrap_or(running);
            let is_acme = |l: &ListenerConfig| matches!(l.tls, Some(TlsFiles::Acme(_)));
            if (is_acme(new) || is_acme(running)) && new.tls != running.tls {
                tracing::warn!(listener = %running.address,
                    "the reloaded config changes `[listener.acme]` or whether the listener uses it, which needs a \
                     restart; the listener keeps its running TLS settings");
                new = running;
            }
            listeners.push(self.certificates.listener_options(new, bound.port())?);
        }
        let limits = Arc::new(config.limits.clone());
        self.generation += 1;
        let (done, answers) = std::sync::mpsc::channel();
        for worker in &self.reloads {
            let reload = Reload {
                generation: self.generation,
                routes: routes.clone(),
                limits: limits.clone(),
                upstreams: Arc::new(config.upstreams.clone()),
                listeners: listeners.clone(),
                done: done.clone(),
            };
            worker
                .send(reload)
                .map_err(|_| anyhow!("a worker has stopped"))?;
        }
        drop(done);
        for _ in 0..self.reloads.len() {
            answers
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| anyhow!("a worker did not apply the reload within 30 s"))??;
        }
        self.admission.set_limits(&config.limits);
        self.hub
            .set_max_queue_bytes(config.limits.max_worker_queue_bytes);
        if let Some(links) = &self.admin {
            *sync::write(&links.routes) = routes.iter().map(|r| r.config.path.clone()).collect();
            if let Some(admin) = &config.admin {
                let tokens = admin_tokens(admin);
                let mut running = sync::write(&links.tokens);
                if *running != tokens {
                    tracing::info!("admin listener: the reloaded tokens replace the previous ones");
                    *running = tokens;
                }
            }
        }
        Ok(())
    }

    /// Stops accepting, closes every connection with 1001, and waits for every thread (each worker bounded by the
    /// grace period).
    pub fn stop(self) {
        let _ = self.shutdown.send(true);
        for thread in self.threads {
            let _ = thread.join();
        }
        // The workers are gone: the store serves what they queued, then closes.
        drop(self.store);
    }
}

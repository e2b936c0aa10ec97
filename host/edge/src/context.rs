//! What a worker's connections share: the worker's context (its routes as of the last reload, its limits and
//! listener settings, the hub, the shutdown signal and its own [`Worker`] handle), and how a reload changes it.
//! Everything on the connection's path — `connection`, `verdict`, `session` — reads it; `worker` makes it.

use anyhow::Result;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use wssgate_config::limits::Limits;
use wssgate_config::{ClientAddress, TrustedProxies};
use wssgate_hub::Hub;
use wssgate_hub::admission::Admission;
use wssgate_hub::metrics::Metrics;
use wssgate_runtime::owned::{Due, InstanceAddress};
use wssgate_runtime::plugin::HostLinks;
use wssgate_runtime::route::{Route, RouteTemplate, Routes};
use wssgate_runtime::upstream::{UpstreamConfig, WorkerUpstreams};
use wssgate_runtime::worker::Worker;

/// What a worker's connections share.
pub(crate) struct WorkerContext {
    /// This worker's number: its metrics shard and bits 36 to 43 of its connection ids.
    pub index: usize,
    /// What the worker owns that its plugins reach: its connections, timers and requests.
    pub local: Rc<Worker>,
    /// Counters for /metrics.
    pub metrics: Arc<Metrics>,
    /// This worker's instances of every route, as of the last reload. A connection keeps the generation it
    /// started with (its `Rc`) until it closes, so a reload never moves it to another plugin instance.
    pub routes: RefCell<Rc<Routes>>,
    /// Every generation of routes still in use, by number, so a timer reaches the instance that started it.
    pub(crate) generations: RefCell<HashMap<u64, Weak<Routes>>>,
    /// The connection and protocol limits, as of the last reload.
    pub limits: RefCell<Arc<Limits>>,
    /// Each listener's TLS and proxy settings, as of the last reload.
    pub listeners: RefCell<Vec<Arc<ListenerOptions>>>,
    /// The gateway-wide connection caps.
    pub admission: Arc<Admission>,
    /// Groups, users and sessions shared by all workers.
    pub hub: Arc<Hub>,
    /// Turns true when the gateway shuts down: sessions send 1001 and end.
    pub shutdown: watch::Receiver<bool>,
    /// Where this worker's plugin timers and outbound responses report.
    pub(crate) events: UnboundedSender<Due>,
    /// This worker's upstream clients, renewed by reloads and shared by every generation's instances.
    pub(crate) upstreams: Arc<WorkerUpstreams>,
    /// The compressors and the inflater its compressed connections share.
    pub(crate) codecs: crate::compression::WorkerCodecs,
    /// Where routes' history and storage are kept (the same for every generation: a reload cannot change it).
    pub(crate) store: Option<Arc<dyn wssgate_storage::Store>>,
}

impl WorkerContext {
    /// Instantiates `templates` on this worker as routes generation `generation`, under `limits`.
    pub(crate) fn instantiate(
        &self,
        templates: &[RouteTemplate],
        generation: u64,
        limits: &Arc<Limits>,
    ) -> Result<Rc<Routes>> {
        let links = HostLinks {
            metrics: self.metrics.clone(),
            worker: self.index,
            hub: self.hub.clone(),
            address: InstanceAddress {
                events: self.events.clone(),
                generation,
                route_index: 0,
                instance_index: 0,
            },
            upstreams: self.upstreams.clone(),
            limits: limits.clone(),
            admission: self.admission.clone(),
            store: self.store.clone(),
        };
        let routes = templates
            .iter()
            .map(|t| Route::instantiate(t, &links, &self.local))
            .collect::<Result<Vec<_>>>()?;
        let routes = Rc::new(Routes::new(routes));
        let mut generations = self.generations.borrow_mut();
        generations.retain(|_, routes| routes.strong_count() > 0);
        generations.insert(generation, Rc::downgrade(&routes));
        Ok(routes)
    }

    /// Applies a reload: new connections get the new routes, limits and listener settings; the old routes' instances
    /// are retired (they serve their open connections until those close, and their route-wide timers end now).
    pub(crate) fn apply(&self, reload: &Reload) -> Result<()> {
        let routes = self.instantiate(&reload.routes, reload.generation, &reload.limits)?;
        self.upstreams
            .renew(&reload.upstreams, &self.metrics.upstreams);
        let retired = std::mem::replace(&mut *self.routes.borrow_mut(), routes);
        retired.retire();
        *self.limits.borrow_mut() = reload.limits.clone();
        *self.listeners.borrow_mut() = reload.listeners.clone();
        Ok(())
    }
}

/// A new configuration for running workers (see `Gateway::reload` in the `wssgate` crate).
pub struct Reload {
    /// Numbers this set of routes for the timers its instances start.
    pub generation: u64,
    pub routes: Arc<Vec<RouteTemplate>>,
    pub limits: Arc<Limits>,
    pub upstreams: Arc<Vec<Arc<UpstreamConfig>>>,
    /// One per listener, in the order the worker's sockets were given.
    pub listeners: Vec<Arc<ListenerOptions>>,
    /// Each worker answers here once it applied the reload, or why it could not.
    pub done: std::sync::mpsc::Sender<Result<()>>,
}

/// How a listener treats its connections.
pub struct ListenerOptions {
    /// TLS settings; `None` for plain ws.
    pub tls: Option<TlsAcceptor>,
    /// Peers believed about the client's address.
    pub trusted_proxies: TrustedProxies,
    /// The one place their word is read from; `None`: the socket's peer is the client. With `ProxyProtocol`, every
    /// connection starts with a PROXY header and only trusted proxies may connect.
    pub client_address: Option<ClientAddress>,
}

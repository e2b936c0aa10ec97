//! A worker's routes: request path → the route's settings and its plugin instance on this worker.

use crate::owned::InstanceAddress;
use crate::plugin::{HostLinks, PluginInstance, PluginTemplate, RouteContext};
use crate::worker::Worker;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use wssgate_config::RouteConfig;

/// What one worker needs to serve one route.
pub struct Route {
    /// The route's position in the config (the same on every worker).
    pub index: usize,
    pub path: String,
    /// Subprotocols the route speaks, in order of preference.
    pub subprotocols: Vec<String>,
    /// Origins allowed to connect; empty allows any.
    pub allowed_origins: Vec<String>,
    /// How long an upgrade the plugin deferred waits for its answer.
    pub accept_timeout: std::time::Duration,
    /// The route's own cap on connections from one client address (0: none).
    pub max_connections_per_ip: usize,
    /// permessage-deflate for the route's connections.
    pub compression: wssgate_config::Compression,
    /// The instances that serve this route's connections on this worker, each connection staying with one (and
    /// holding it). Plugin calls are synchronous and never overlap, so a `RefCell` borrow is never contended.
    instances: Vec<Rc<RefCell<PluginInstance>>>,
    /// Where the round-robin over `instances` goes next.
    next: Cell<usize>,
}

/// The compiled plugin of a route, shared by all workers, which each instantiate it.
#[derive(Clone)]
pub struct RouteTemplate {
    pub config: RouteConfig,
    pub context: Arc<RouteContext>,
    pub plugin: PluginTemplate,
}

impl Route {
    /// Instantiates the route's plugin on this worker; `links` are the worker's, and each instance gets its own
    /// address for its timers and responses.
    pub fn instantiate(
        template: &RouteTemplate,
        links: &HostLinks,
        worker: &Rc<Worker>,
    ) -> anyhow::Result<Route> {
        let mut instances = Vec::with_capacity(template.config.instances);
        for instance in 0..template.config.instances {
            let links = HostLinks {
                address: InstanceAddress {
                    route_index: template.context.index,
                    instance_index: instance,
                    ..links.address.clone()
                },
                ..links.clone()
            };
            let instance = PluginInstance::new(
                template.plugin.clone(),
                template.context.clone(),
                links,
                worker.clone(),
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "route {} ({}): {e}",
                    template.config.path,
                    template.config.plugin.display()
                )
            })?;
            instances.push(Rc::new(RefCell::new(instance)));
        }
        Ok(Route {
            instances,
            ..Route::without_instances(template.context.index, &template.config)
        })
    }

    /// The route's settings, with no plugin instance yet: [`Route::instantiate`] adds them. Public (hidden) for the
    /// fuzz targets (`fuzz/`), which decide upgrades against routes without wasmtime; such a route's connections
    /// find no instance (503).
    #[doc(hidden)]
    pub fn without_instances(index: usize, config: &RouteConfig) -> Route {
        Route {
            index,
            path: config.path.clone(),
            subprotocols: config.subprotocols.clone(),
            allowed_origins: config.allowed_origins.clone(),
            accept_timeout: config.accept_timeout,
            max_connections_per_ip: config.max_connections_per_ip,
            compression: config.compression,
            instances: Vec::new(),
            next: Cell::new(0),
        }
    }

    /// Stops the route-wide work of every instance: a reload replaced this generation (see
    /// [`PluginInstance::retire`]).
    pub fn retire(&self) {
        for instance in &self.instances {
            instance.borrow_mut().retire();
        }
    }

    /// Instance `index` of this route.
    pub fn instance(&self, index: usize) -> Option<&RefCell<PluginInstance>> {
        self.instances.get(index).map(|instance| &**instance)
    }

    /// The instance a new connection goes to: the next one round-robin that is up, or `None` when all are down
    /// (the client then gets 503).
    pub fn pick_instance(&self) -> Option<Rc<RefCell<PluginInstance>>> {
        let count = self.instances.len();
        (0..count).find_map(|_| {
            let index = self.next.get();
            self.next.set((index + 1) % count);
            let instance = &self.instances[index];
            instance
                .borrow_mut()
                .is_available()
                .then(|| instance.clone())
        })
    }
}

/// The routes of one worker, looked up by exact path.
pub struct Routes(Vec<Route>);

impl Routes {
    pub fn new(routes: Vec<Route>) -> Self {
        Routes(routes)
    }

    pub fn find(&self, path: &str) -> Option<&Route> {
        self.0.iter().find(|r| r.path == path)
    }

    /// Retires every route's instances (see [`Route::retire`]).
    pub fn retire(&self) {
        for route in &self.0 {
            route.retire();
        }
    }

    /// The route at `index` in the config.
    pub fn get(&self, index: usize) -> Option<&Route> {
        self.0.get(index)
    }
}

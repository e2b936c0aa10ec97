//! A worker's routes: request path → the route's settings and its plugin instance on this worker.

use crate::config::RouteConfig;
use crate::plugin::{PluginInstance, PluginTemplate, RouteContext};
use std::cell::RefCell;
use std::sync::Arc;

/// What one worker needs to serve one route.
pub struct Route {
    pub path: String,
    /// Subprotocols the route speaks, in order of preference.
    pub subprotocols: Vec<String>,
    /// Origins allowed to connect; empty allows any.
    pub allowed_origins: Vec<String>,
    /// The instance that serves all of this route's connections on this worker. Plugin calls are synchronous and
    /// never overlap, so a `RefCell` borrow is never contended.
    pub plugin: RefCell<PluginInstance>,
}

/// The compiled plugin of a route, shared by all workers, which each instantiate it.
#[derive(Clone)]
pub struct RouteTemplate {
    pub config: RouteConfig,
    pub context: Arc<RouteContext>,
    pub plugin: PluginTemplate,
}

impl Route {
    pub fn instantiate(template: &RouteTemplate) -> anyhow::Result<Route> {
        let instance = PluginInstance::new(template.plugin.clone(), template.context.clone())
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: cannot instantiate the plugin: {e:#}",
                    template.config.plugin.display()
                )
            })?;
        Ok(Route {
            path: template.config.path.clone(),
            subprotocols: template.config.subprotocols.clone(),
            allowed_origins: template.config.allowed_origins.clone(),
            plugin: RefCell::new(instance),
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
}

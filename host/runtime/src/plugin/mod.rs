//! Plugins: WebAssembly components run by wasmtime, one set of instances per worker and route.
//!
//! Calls into a plugin are synchronous and inline on the worker thread (a few hundred nanoseconds), bounded by a
//! budget of CPU time (checked at epoch deadlines) so that a plugin that loops cannot stall its worker. Instances
//! are shared by all of a route's connections on a worker: an instance costs tens of KiB, far too much to spend per
//! connection.

mod bindings;
mod compile_cache;
pub(crate) mod cpu_budget;
mod exports;
mod host_calls;
mod http_calls;
mod instance;
mod language;
mod links;
mod memory_calls;
mod memory_cap;
mod stdio;
mod wasi;
mod wasi_sockets;

pub use bindings::wssgate::plugin::types::{LogLevel, Rejection, Verdict};
pub use bindings::wssgate::plugin::types::{MessageParam, RequestInfo as RequestInfoParam};
pub use compile_cache::CompileCache;
pub(crate) use host_calls::HostState;
pub use instance::{PluginInstance, Trapped};
pub use language::Language;
pub use links::{HostLinks, RouteContext};

use anyhow::{Result, anyhow};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine};

/// How often the epoch advances; event deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(5);

/// A compiled and linked plugin with its exports found, ready to instantiate on any worker.
#[derive(Clone)]
pub struct PluginTemplate {
    /// The language the plugin was written in, as its build tool recorded it.
    pub language: Language,
    pre: InstancePre<HostState>,
    exports: Arc<exports::ExportIndices>,
}

/// The wasmtime engine and the host functions every plugin links against.
#[derive(Clone)]
pub struct PluginRuntime {
    pub engine: Engine,
    linker: Linker<HostState>,
    /// Whether the engine meters fuel: only when some route sets `fuel`, since metering slows every call.
    pub fuel_metering: bool,
    /// Where compiled plugins are kept between loads; `None` compiles at every load.
    cache: Option<CompileCache>,
}

impl PluginRuntime {
    pub fn new(fuel_metering: bool, cache: Option<CompileCache>) -> Result<Self> {
        let mut config = Config::new();
        config.consume_fuel(fuel_metering);
        config.wasm_component_model(true);
        // A synchronous call costs about a third of one with concurrency support on; plugins never await.
        config.concurrency_support(false);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| anyhow!("configuring wasmtime: {e}"))?;
        let mut linker = Linker::new(&engine);
        wasi::add_to_linker(&mut linker).map_err(|e| anyhow!("linking WASI: {e}"))?;
        wasi_sockets::add_to_linker(&mut linker)
            .map_err(|e| anyhow!("linking WASI sockets: {e}"))?;
        bindings::PluginFull::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| anyhow!("linking the host interface: {e}"))?;
        Ok(PluginRuntime {
            engine,
            linker,
            fuel_metering,
            cache,
        })
    }

    /// Advances the epoch every [`EPOCH_TICK`] on a background thread for as long as the process lives.
    pub fn start_epoch_ticker(&self) {
        let engine = self.engine.weak();
        std::thread::Builder::new()
            .name("wssgate-epoch".into())
            .spawn(move || {
                while let Some(engine) = engine.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawning the epoch thread");
    }

    /// Compiles the plugin at `path` and checks that it was built for this contract's major version, imports only
    /// what the host provides, and exports what it must (see [`exports`]). Every error names the file.
    pub fn load(&self, path: &Path) -> Result<PluginTemplate> {
        let wasm =
            std::fs::read(path).map_err(|e| anyhow!("{}: cannot read it: {e}", path.display()))?;
        let component = match &self.cache {
            Some(cache) => cache.component(&self.engine, &wasm),
            None => Component::new(&self.engine, &wasm),
        }
        .map_err(|e| {
            anyhow!(
                "{}: not a loadable WebAssembly component: {e:#}",
                path.display()
            )
        })?;
        exports::check_contract_version(&component, &self.engine, path)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            anyhow!(
                "{}: imports something the gateway does not provide: {e:#}",
                path.display()
            )
        })?;
        let exports = exports::ExportIndices::probe(&pre, &self.engine, path)?;
        Ok(PluginTemplate {
            language: Language::of(&wasm),
            pre,
            exports: Arc::new(exports),
        })
    }
}

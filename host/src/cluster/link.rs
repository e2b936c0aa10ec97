//! The link to NATS: one client per process, on a thread of its own with its own runtime, so that a slow or absent
//! broker can never stall a worker (workers will hand it work through bounded queues and never wait on it). It
//! connects when the broker is there — also when it comes up after the gateway — and reconnects forever; its state
//! is what `/healthz` and `/metrics` report.

use super::config::{ClusterConfig, Credentials};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// How often the client pings the broker: a broker that vanished without closing the connection is noticed within
/// about three of these (async-nats' default of a minute would take three minutes).
const PING_INTERVAL: Duration = Duration::from_secs(2);

/// What the link reports.
#[derive(Default)]
pub struct LinkState {
    connected: AtomicBool,
    /// Times the link connected, the first included.
    connects: AtomicU64,
    disconnects: AtomicU64,
}

impl LinkState {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Appends the link's `/metrics` lines.
    pub fn render(&self, out: &mut String) {
        let connected = u8::from(self.is_connected());
        let (connects, disconnects) = (
            self.connects.load(Ordering::Relaxed),
            self.disconnects.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP wssgate_cluster_connected Whether the link to NATS is up\n# TYPE wssgate_cluster_connected gauge\nwssgate_cluster_connected {connected}\n# HELP wssgate_cluster_connects_total Times the link to NATS connected\n# TYPE wssgate_cluster_connects_total counter\nwssgate_cluster_connects_total {connects}\n# HELP wssgate_cluster_disconnects_total Times the link to NATS was lost\n# TYPE wssgate_cluster_disconnects_total counter\nwssgate_cluster_disconnects_total {disconnects}"
        );
    }
}

/// The running link; its thread ends with the gateway's shutdown.
pub struct ClusterLink {
    pub state: Arc<LinkState>,
    pub thread: std::thread::JoinHandle<()>,
}

impl ClusterLink {
    /// Starts the link's thread. Returns at once: the broker may come later.
    pub fn start(
        config: &ClusterConfig,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<ClusterLink> {
        let servers = config
            .servers
            .iter()
            .map(|s| s.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .context("[cluster] servers")?;
        let state = Arc::new(LinkState::default());
        let events = state.clone();
        let node = config.node.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name(&config.node)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .ping_interval(PING_INTERVAL)
            .event_callback(move |event| {
                let (state, node) = (events.clone(), node.clone());
                async move { state.record(&node, event) }
            });
        options = match &config.credentials {
            Credentials::None => options,
            Credentials::Token(token) => options.token(token.clone()),
            Credentials::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
        };
        if let Some(ca) = &config.ca {
            options = options.add_root_certificates(ca.clone());
        }
        let thread = std::thread::Builder::new()
            .name("wssgate-cluster".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => return tracing::error!("cluster runtime: {e}"),
                };
                runtime.block_on(async move {
                    // With `retry_on_initial_connect` this returns at once and connects in the background.
                    let client = match options.connect(servers).await {
                        Ok(client) => client,
                        Err(e) => return tracing::error!("cluster: {e}"),
                    };
                    let _ = shutdown.wait_for(|down| *down).await;
                    drop(client);
                });
            })
            .context("spawning the cluster thread")?;
        Ok(ClusterLink { state, thread })
    }
}

impl LinkState {
    fn record(&self, node: &str, event: async_nats::Event) {
        match event {
            async_nats::Event::Connected => {
                self.connected.store(true, Ordering::Relaxed);
                self.connects.fetch_add(1, Ordering::Relaxed);
                tracing::info!(node, "cluster: connected to NATS");
            }
            async_nats::Event::Disconnected => {
                self.connected.store(false, Ordering::Relaxed);
                self.disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    node,
                    "cluster: lost the connection to NATS; serving local clients, reconnecting"
                );
            }
            other => tracing::debug!(node, "cluster: {other}"),
        }
    }
}

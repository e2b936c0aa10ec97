//! Connection and protocol limits: the `[limits]` table of the config. Every limit has a default that suits a
//! production gateway; each one that ends a connection does so with the close code or HTTP status in its comment.

use serde::Deserialize;
use std::time::Duration;

/// The gateway-wide limits. A value of 0 turns off the limits documented as optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest message a client may send (after joining fragments); larger closes with 1009.
    pub max_message_bytes: usize,
    /// Largest single frame a client may send; larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Bytes that may wait in one connection's outbound queue; a send beyond it closes the connection with 1008
    /// ("slow consumer") and fails in the plugin.
    pub max_outbound_bytes: usize,
    /// Time a client has to finish the TLS handshake; then the socket is closed.
    pub tls_handshake_timeout_ms: u64,
    /// Time a client has to send its complete upgrade request; then the socket is closed.
    pub upgrade_timeout_ms: u64,
    /// Interval of server pings; 0 turns heartbeats off.
    pub ping_interval_ms: u64,
    /// Pings in a row a client may leave unanswered (no frame at all in between); one more closes with 1001.
    pub max_missed_pongs: u32,
    /// Time without a data message from the client after which it is closed with 1001; 0 = never.
    pub idle_timeout_ms: u64,
    /// WebSocket connections open at once across all workers; the excess gets HTTP 503.
    pub max_connections: usize,
    /// WebSocket connections open at once from one client address; the excess gets HTTP 503; 0 = unlimited.
    pub max_connections_per_ip: usize,
    /// Messages per second one connection may send; more closes with 1008; 0 = unlimited.
    pub max_messages_per_sec: u32,
    /// Payload bytes per second one connection may send; more closes with 1008; 0 = unlimited.
    pub max_bytes_per_sec: u64,
    /// Live timers one plugin instance may hold; `set-timer` past it is refused (`too-many-timers`).
    pub max_timers_per_instance: usize,
    /// Groups one connection may be in; `join-group` past it is refused (`too-many-groups`).
    pub max_groups_per_connection: usize,
    /// Longest group name, user id or session key, in bytes; longer is refused (`name-too-long`).
    pub max_name_bytes: usize,
    /// Log lines (host `log` calls and stdout/stderr lines) one plugin instance may write per second; the excess
    /// is dropped and counted (`rate-limited`).
    pub max_plugin_log_lines_per_sec: u32,
    /// Bytes of publications queued toward one worker from the others; past it, that worker's copy of a
    /// publication is dropped and counted in `wssgate_cap_hits_total{cap="delivery_queue"}`.
    pub max_worker_queue_bytes: usize,
    /// Plugin traps caused by one client address within `trap_window_ms` after which new upgrades from that
    /// address get HTTP 429 for `trap_cooloff_ms` (its open connections stay); 0 = no throttle.
    pub max_traps_per_ip: u32,
    pub trap_window_ms: u64,
    pub trap_cooloff_ms: u64,
    /// Handshakes (a PROXY header, TLS and the upgrade request) in progress at once from one TCP peer address; the
    /// excess is disconnected before anything is read. Trusted proxies are exempt; 0 = unlimited.
    pub max_handshakes_per_ip: usize,
    /// The per-address caps (`max_connections_per_ip`, `max_handshakes_per_ip`, the trap throttle) count IPv6
    /// clients by the network of this prefix length rather than by address: one subscriber usually holds a whole
    /// /64, and 2^64 addresses would make a per-address cap no cap. 128 counts each address; IPv4 always does.
    pub ipv6_prefix_len: u8,
    /// History and storage requests one plugin instance may have waiting for their events; past it a request is
    /// refused (`too-many-pending`).
    pub max_storage_requests_per_instance: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 1 << 20,
            max_frame_bytes: 1 << 20,
            max_outbound_bytes: 1 << 20,
            tls_handshake_timeout_ms: 10_000,
            upgrade_timeout_ms: 10_000,
            ping_interval_ms: 30_000,
            max_missed_pongs: 2,
            idle_timeout_ms: 0,
            max_connections: 100_000,
            max_connections_per_ip: 0,
            max_messages_per_sec: 0,
            max_bytes_per_sec: 0,
            max_timers_per_instance: 1024,
            max_groups_per_connection: 64,
            max_name_bytes: 256,
            max_plugin_log_lines_per_sec: 100,
            max_worker_queue_bytes: 64 << 20,
            max_traps_per_ip: 5,
            trap_window_ms: 10_000,
            trap_cooloff_ms: 60_000,
            max_handshakes_per_ip: 1024,
            ipv6_prefix_len: 64,
            max_storage_requests_per_instance: 1024,
        }
    }
}

impl Limits {
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.tls_handshake_timeout_ms)
    }

    pub fn upgrade_timeout(&self) -> Duration {
        Duration::from_millis(self.upgrade_timeout_ms)
    }

    /// `None` when heartbeats are off.
    pub fn ping_interval(&self) -> Option<Duration> {
        (self.ping_interval_ms > 0).then(|| Duration::from_millis(self.ping_interval_ms))
    }

    /// `None` when there is no idle timeout.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_ms > 0).then(|| Duration::from_millis(self.idle_timeout_ms))
    }

    pub fn trap_window(&self) -> Duration {
        Duration::from_millis(self.trap_window_ms)
    }

    pub fn trap_cooloff(&self) -> Duration {
        Duration::from_millis(self.trap_cooloff_ms)
    }

    /// What makes no sense, named by key.
    pub fn problems(&self) -> Option<String> {
        let zero_is_wrong = [
            ("max_message_bytes", self.max_message_bytes as u64),
            ("max_frame_bytes", self.max_frame_bytes as u64),
            ("max_outbound_bytes", self.max_outbound_bytes as u64),
            ("tls_handshake_timeout_ms", self.tls_handshake_timeout_ms),
            ("upgrade_timeout_ms", self.upgrade_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("max_name_bytes", self.max_name_bytes as u64),
            ("max_worker_queue_bytes", self.max_worker_queue_bytes as u64),
            ("trap_window_ms", self.trap_window_ms),
            ("trap_cooloff_ms", self.trap_cooloff_ms),
            (
                "max_storage_requests_per_instance",
                self.max_storage_requests_per_instance as u64,
            ),
        ];
        if !(1..=128).contains(&self.ipv6_prefix_len) {
            return Some("[limits] `ipv6_prefix_len` must be between 1 and 128".to_owned());
        }
        zero_is_wrong
            .iter()
            .find(|(_, v)| *v == 0)
            .map(|(k, _)| format!("[limits] `{k}` must be at least 1"))
    }
}

//! `[cluster]`: the NATS servers, this node's name, the subject prefix several deployments can share one NATS
//! with, credentials, and the secret the nodes seal their messages with. Every error names the field.

use serde::Deserialize;
use std::path::PathBuf;

/// `[cluster]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    servers: Vec<String>,
    node: Option<String>,
    prefix: Option<String>,
    token: Option<String>,
    user: Option<String>,
    password: Option<String>,
    /// A PEM root for `tls://` servers signed by a private CA.
    ca: Option<String>,
    secret: Option<String>,
    replicas: Option<usize>,
}

/// How the link authenticates to NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Token(String),
    UserPassword { user: String, password: String },
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `nats://host:port` or `tls://host:port`, several for a NATS cluster.
    pub servers: Vec<String>,
    /// This node's name: unique in the cluster (default: the host name and a random suffix).
    pub node: String,
    /// The first token of every subject, so deployments can share one NATS (default `wssgate`).
    pub prefix: String,
    pub credentials: Credentials,
    pub ca: Option<PathBuf>,
    /// The key every node of the cluster seals its messages with (HMAC-SHA256), the same on all: without it any
    /// client that can publish on the broker can speak for a node.
    pub secret: Option<String>,
    /// How many copies JetStream keeps of each route's history stream and key-value bucket (the NATS operator's
    /// choice: 1 on a single server, 3 on a cluster of three or more to survive losing one).
    pub replicas: usize,
}

/// The shortest `secret` taken: 16 bytes, 128 bits if random.
const MIN_SECRET: usize = 16;

/// A subject token: letters, digits, `-` and `_`.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// This machine's host name (as a subject token), for the default node name.
fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let token: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if token.is_empty() {
        "node".into()
    } else {
        token
    }
}

impl ClusterConfig {
    /// Whether `other` would make the same link (the node name aside: without `node`, each load draws another
    /// default).
    pub fn same_link(&self, other: &ClusterConfig) -> bool {
        (
            &self.servers,
            &self.prefix,
            &self.credentials,
            &self.ca,
            &self.secret,
        ) == (
            &other.servers,
            &other.prefix,
            &other.credentials,
            &other.ca,
            &other.secret,
        )
    }

    pub(crate) fn from_raw(
        raw: RawCluster,
        resolve: impl Fn(&str) -> PathBuf,
    ) -> Result<Self, String> {
        if raw.servers.is_empty() {
            return Err("[cluster] `servers` lists none".into());
        }
        for server in &raw.servers {
            let scheme_ok = ["nats://", "tls://"].iter().any(|s| server.starts_with(s));
            if !scheme_ok
                || server
                    .parse::<http::Uri>()
                    .ok()
                    .and_then(|u| u.port_u16())
                    .is_none()
            {
                return Err(format!(
                    "[cluster] `servers`: {server:?} is not nats://HOST:PORT or tls://HOST:PORT"
                ));
            }
        }
        let node = match raw.node {
            Some(node) if is_token(&node) => node,
            Some(node) => {
                return Err(format!(
                    "[cluster] `node` {node:?} must be 1 to 64 letters, digits, `-` or `_`"
                ));
            }
            None => {
                use std::hash::BuildHasher;
                let suffix = std::collections::hash_map::RandomState::new().hash_one(0u8) as u32;
                format!("{}-{suffix:08x}", host_name())
            }
        };
        let prefix = raw.prefix.unwrap_or_else(|| "wssgate".into());
        if !is_token(&prefix) {
            return Err(format!(
                "[cluster] `prefix` {prefix:?} must be 1 to 64 letters, digits, `-` or `_`"
            ));
        }
        let credentials = match (raw.token, raw.user, raw.password) {
            (None, None, None) => Credentials::None,
            (Some(token), None, None) => Credentials::Token(token),
            (None, Some(user), Some(password)) => Credentials::UserPassword { user, password },
            _ => {
                return Err(
                    "[cluster] give either `token`, or `user` and `password`, or none".into(),
                );
            }
        };
        if let Some(secret) = &raw.secret
            && secret.len() < MIN_SECRET
        {
            return Err(format!(
                "[cluster] `secret` must be at least {MIN_SECRET} bytes (it has {}): use a long random string, the \
                 same on every node",
                secret.len()
            ));
        }
        let replicas = raw.replicas.unwrap_or(1);
        if !(1..=5).contains(&replicas) {
            return Err(format!(
                "[cluster] `replicas` must be 1 to 5 (JetStream's own limit), not {replicas}"
            ));
        }
        Ok(ClusterConfig {
            replicas,
            servers: raw.servers,
            node,
            prefix,
            credentials,
            ca: raw.ca.as_deref().map(resolve),
            secret: raw.secret,
        })
    }
}

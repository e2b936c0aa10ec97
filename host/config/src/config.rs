//! The gateway's TOML configuration: parsing, defaults and validation.
//!
//! Every error names the file, and where the TOML parser or a value's position can tell, the line and the key, so
//! that `wssgate check` explains a bad config without the user opening the source.

use crate::TrustedProxies;
use crate::limits::Limits;
use crate::upstream::RawUpstream;
use crate::upstream::UpstreamConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// The whole configuration, with paths resolved against the config file's folder.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages.
    pub source: PathBuf,
    /// How many worker threads (one per core by default); each runs its own listeners and plugin instances.
    pub workers: usize,
    /// How long shutdown waits for clients to finish the close handshake.
    pub shutdown_grace: Duration,
    pub listeners: Vec<ListenerConfig>,
    pub routes: Vec<RouteConfig>,
    pub limits: Limits,
    /// The admin listener (push API); `None` keeps it off.
    pub admin: Option<AdminConfig>,
    /// How the gateway logs.
    pub log: LogConfig,
    /// The account to run as after binding the listeners, when started as root (`user`, `group`).
    pub run_as: Option<RunAs>,
    /// The backends plugins may reach (`[[upstream]]`), each only from the routes that grant it.
    pub upstreams: Vec<Arc<UpstreamConfig>>,
    /// Cluster mode (`[cluster]`): `None` runs a single node.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// Top-level `user` and optional `group`: who the gateway becomes once its listeners are bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    /// `None`: the user's primary group.
    pub group: Option<String>,
}

/// The `[log]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter (`info`, `debug`, `wssgate=debug,access=off`, …); `RUST_LOG` overrides it.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// Human-readable lines, or one JSON object per line for log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the admin listener listens and the token it requires.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: the push API is for the backend on this machine.
    #[serde(default = "admin_address")]
    pub address: SocketAddr,
    /// Every request must carry `Authorization: Bearer <token>`.
    pub token: String,
}

fn admin_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

/// One address the gateway accepts connections on.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    /// `None` for plain ws (behind a TLS-terminating proxy).
    pub tls: Option<TlsFiles>,
    /// Peers whose PROXY header, `X-Real-IP` or `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Every connection starts with a PROXY protocol (v1 or v2) header.
    pub proxy_protocol: bool,
}

/// Where a TLS listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFiles {
    /// A PEM certificate chain and its private key.
    Pem { cert: PathBuf, key: PathBuf },
    /// Several certificates chosen by the client's SNI (`[[listener.certificate]]`); the first is the default.
    BySni(Vec<NamedCertificate>),
    /// A certificate obtained and renewed over ACME (`[listener.acme]`).
    Acme(AcmeConfig),
    /// A self-signed localhost certificate the gateway generates once and keeps in this folder.
    Development { dir: PathBuf },
}

/// `[listener.acme]`: where and for which names the gateway obtains its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcmeConfig {
    /// The names the certificate is for (lower case).
    pub domains: Vec<String>,
    /// A contact address for the ACME account.
    pub email: Option<String>,
    /// The ACME server's directory URL.
    pub directory: String,
    /// Where the account key and the certificates are kept (owner-only permissions).
    pub cache: PathBuf,
    /// A PEM root to trust for the ACME server's own HTTPS API (a private server such as pebble).
    pub ca: Option<PathBuf>,
}

/// Let's Encrypt's production directory: the default for `[listener.acme] directory`.
pub(crate) const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// One of a listener's certificates and the server names it is chosen for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Lower-case DNS names; `*.example.com` stands for any one label in front of `example.com`.
    pub names: Vec<String>,
}

/// One request path served by one plugin.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub path: String,
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// Subprotocols this route speaks, in order of preference.
    pub subprotocols: Vec<String>,
    /// Origins allowed to connect (against cross-site WebSocket hijacking); empty allows any, and no Origin.
    pub allowed_origins: Vec<String>,
    /// Handed to the plugin as string key/values.
    pub settings: BTreeMap<String, String>,
    /// The most linear memory one plugin instance may grow to.
    pub max_memory_bytes: usize,
    /// How long one plugin callback may run before it is interrupted.
    pub event_deadline: Duration,
    /// Fuel one callback may burn, when set; off by default since metering slows every call.
    pub fuel: Option<u64>,
    /// Plugin instances per worker; the route's connections are spread over them.
    pub instances: usize,
    /// The first wait before replacing an instance that trapped twice in a row (then doubling).
    pub restart_backoff: Duration,
    /// How long an upgrade the plugin deferred waits for its `accept` or `reject` before it is answered 504.
    pub accept_timeout: Duration,
    /// The `[[upstream]]` names the route's plugin may send requests to.
    pub upstreams: Vec<String>,
}

const DEFAULT_GRACE_MS: u64 = 5_000;
/// How long a deferred upgrade waits for the plugin's answer: long enough for a backend's login check, short enough
/// that a plugin that forgets to answer does not hold clients (and connection slots) for long.
const DEFAULT_ACCEPT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_MAX_MEMORY_MIB: usize = 64;
const DEFAULT_EVENT_DEADLINE_MS: u64 = 50;
const DEFAULT_RESTART_BACKOFF_MS: u64 = 1_000;
/// Where the development certificate is kept, relative to the config file's folder.
pub(crate) const DEV_CERT_DIR: &str = ".wssgate-dev-cert";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    workers: Option<usize>,
    shutdown_grace_ms: Option<u64>,
    user: Option<String>,
    group: Option<String>,
    #[serde(default)]
    listener: Vec<Spanned<RawListener>>,
    #[serde(default)]
    route: Vec<RawRoute>,
    #[serde(default)]
    upstream: Vec<Spanned<RawUpstream>>,
    cluster: Option<Spanned<crate::cluster::RawCluster>>,
    limits: Option<Spanned<Limits>>,
    admin: Option<Spanned<AdminConfig>>,
    log: Option<Spanned<LogConfig>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: SocketAddr,
    #[serde(default = "yes")]
    tls: bool,
    cert: Option<String>,
    key: Option<String>,
    /// `[[listener.certificate]]`: several certificates chosen by SNI.
    #[serde(default)]
    certificate: Vec<RawCertificate>,
    /// `[listener.acme]`: a certificate obtained over ACME.
    acme: Option<RawAcme>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    proxy_protocol: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcme {
    domains: Vec<String>,
    email: Option<String>,
    directory: Option<String>,
    cache: Option<String>,
    ca: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    cert: String,
    key: String,
    names: Vec<String>,
}

fn yes() -> bool {
    true
}

/// A server name as a certificate may be chosen for: a DNS name, or `*.` and one, in lower case.
fn server_name(name: &str) -> Result<String, String> {
    let name = name.to_ascii_lowercase();
    let host = name.strip_prefix("*.").unwrap_or(&name);
    let valid = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if valid {
        Ok(name)
    } else {
        Err(format!(
            "`{name}` is not a DNS name (a wildcard is `*.` in front of one)"
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: Spanned<String>,
    plugin: Spanned<String>,
    #[serde(default)]
    subprotocols: Vec<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    settings: BTreeMap<String, Spanned<toml::Value>>,
    max_memory_mib: Option<usize>,
    event_deadline_ms: Option<u64>,
    fuel: Option<u64>,
    instances: Option<usize>,
    restart_backoff_ms: Option<u64>,
    accept_timeout_ms: Option<u64>,
    upstreams: Option<Spanned<Vec<String>>>,
}

/// A config error that points into the file.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "{}: cannot read the config file: {e}",
                path.display()
            ))
        })?;
        Config::parse(path, &text)
    }

    /// Parses `text` as if read from `path` (which names the file in errors and anchors relative paths).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let at = |span: std::ops::Range<usize>, what: String| {
            ConfigError(format!(
                "{}: line {}: {what}",
                path.display(),
                line_of(text, span.start)
            ))
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| {
            if Path::new(p).is_absolute() {
                PathBuf::from(p)
            } else {
                dir.join(p)
            }
        };

        let workers = match raw.workers {
            Some(0) => {
                return Err(ConfigError(format!(
                    "{}: `workers` must be at least 1",
                    path.display()
                )));
            }
            Some(n) if n > 255 => {
                return Err(ConfigError(format!(
                    "{}: `workers` must be at most 255",
                    path.display()
                )));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get().min(255)),
        };
        if raw.listener.is_empty() {
            return Err(ConfigError(format!(
                "{}: no [[listener]] is configured",
                path.display()
            )));
        }
        let mut listeners = Vec::new();
        for spanned in raw.listener {
            let span = spanned.span();
            let l = spanned.into_inner();
            if !l.certificate.is_empty() && (l.cert.is_some() || l.key.is_some() || !l.tls) {
                return Err(at(
                    span,
                    "[[listener.certificate]] replaces `cert` and `key` and needs `tls = true`"
                        .into(),
                ));
            }
            let mut by_sni = Vec::new();
            for c in l.certificate {
                if c.names.is_empty() {
                    return Err(at(
                        span.clone(),
                        format!("[[listener.certificate]] {}: `names` lists none", c.cert),
                    ));
                }
                let names = c
                    .names
                    .iter()
                    .map(|n| server_name(n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        at(span.clone(), format!("[[listener.certificate]] names: {e}"))
                    })?;
                by_sni.push(NamedCertificate {
                    cert: resolve(&c.cert),
                    key: resolve(&c.key),
                    names,
                });
            }
            let acme = match l.acme {
                None => None,
                Some(a) => {
                    if l.cert.is_some() || l.key.is_some() || !by_sni.is_empty() || !l.tls {
                        return Err(at(
                            span,
                            "[listener.acme] replaces `cert`, `key` and [[listener.certificate]] and needs `tls = true`"
                                .into(),
                        ));
                    }
                    if a.domains.is_empty() {
                        return Err(at(span, "[listener.acme] `domains` lists none".into()));
                    }
                    let domains = a
                        .domains
                        .iter()
                        .map(|d| server_name(d))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| at(span.clone(), format!("[listener.acme] domains: {e}")))?;
                    if let Some(wildcard) = domains.iter().find(|d| d.starts_with("*.")) {
                        return Err(at(
                            span,
                            format!(
                                "[listener.acme] domains: `{wildcard}`: TLS-ALPN-01 cannot validate a wildcard name"
                            ),
                        ));
                    }
                    Some(AcmeConfig {
                        domains,
                        email: a.email,
                        directory: a.directory.unwrap_or_else(|| LETS_ENCRYPT.to_owned()),
                        cache: a
                            .cache
                            .map_or_else(|| dir.join(".wssgate-acme"), |c| resolve(&c)),
                        ca: a.ca.map(|c| resolve(&c)),
                    })
                }
            };
            let tls = match (l.tls, l.cert, l.key) {
                _ if acme.is_some() => acme.map(TlsFiles::Acme),
                _ if !by_sni.is_empty() => Some(TlsFiles::BySni(by_sni)),
                (false, None, None) => None,
                (false, _, _) => return Err(at(span, "`cert` and `key` need `tls = true`".into())),
                (true, Some(cert), Some(key)) => Some(TlsFiles::Pem {
                    cert: resolve(&cert),
                    key: resolve(&key),
                }),
                (true, None, None) => Some(TlsFiles::Development {
                    dir: dir.join(DEV_CERT_DIR),
                }),
                (true, _, _) => {
                    return Err(at(
                        span,
                        "a TLS listener needs both `cert` and `key`, or neither".into(),
                    ));
                }
            };
            let mut trusted = Vec::new();
            for entry in &l.trusted_proxies {
                let net = TrustedProxies::parse_entry(entry)
                    .map_err(|e| at(span.clone(), format!("trusted_proxies: {e}")))?;
                trusted.push(net);
            }
            if l.proxy_protocol && trusted.is_empty() {
                return Err(at(
                    span,
                    "`proxy_protocol = true` needs `trusted_proxies`: a PROXY header is believed only from them"
                        .into(),
                ));
            }
            listeners.push(ListenerConfig {
                address: l.address,
                tls,
                trusted_proxies: TrustedProxies(trusted),
                proxy_protocol: l.proxy_protocol,
            });
        }

        let mut upstreams: Vec<Arc<UpstreamConfig>> = Vec::new();
        for spanned in raw.upstream {
            let span = spanned.span();
            let upstream = UpstreamConfig::from_raw(spanned.into_inner(), |p| resolve(p))
                .map_err(|e| at(span.clone(), e))?;
            if upstreams.iter().any(|u| u.name == upstream.name) {
                return Err(at(
                    span,
                    format!("[[upstream]] `{}` is configured twice", upstream.name),
                ));
            }
            upstreams.push(Arc::new(upstream));
        }

        let mut routes: Vec<RouteConfig> = Vec::new();
        for r in raw.route {
            let path_span = r.path.span();
            let route_path = r.path.into_inner();
            if !route_path.starts_with('/') || route_path.contains('?') {
                return Err(at(
                    path_span,
                    format!("route path `{route_path}` must start with `/` and hold no query"),
                ));
            }
            if routes.iter().any(|other| other.path == route_path) {
                return Err(at(
                    path_span,
                    format!("route path `{route_path}` is configured twice"),
                ));
            }
            let plugin_span = r.plugin.span();
            let plugin = resolve(r.plugin.get_ref());
            if !plugin.is_file() {
                return Err(at(
                    plugin_span,
                    format!("plugin file {} does not exist", plugin.display()),
                ));
            }
            let mut settings = BTreeMap::new();
            for (key, value) in r.settings {
                let span = value.span();
                let text = match value.into_inner() {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    toml::Value::Datetime(d) => d.to_string(),
                    _ => {
                        return Err(at(
                            span,
                            format!("setting `{key}` must be a string, number or boolean"),
                        ));
                    }
                };
                settings.insert(key, text);
            }
            let max_memory_mib = r.max_memory_mib.unwrap_or(DEFAULT_MAX_MEMORY_MIB);
            let deadline_ms = r.event_deadline_ms.unwrap_or(DEFAULT_EVENT_DEADLINE_MS);
            let instances = r.instances.unwrap_or(1);
            let accept_timeout_ms = r.accept_timeout_ms.unwrap_or(DEFAULT_ACCEPT_TIMEOUT_MS);
            if max_memory_mib == 0
                || deadline_ms == 0
                || instances == 0
                || r.fuel == Some(0)
                || accept_timeout_ms == 0
            {
                return Err(at(
                    path_span,
                    "`max_memory_mib`, `event_deadline_ms`, `instances`, `fuel` and `accept_timeout_ms` must be at least 1".into(),
                ));
            }
            let (grants_span, grants) = match r.upstreams {
                Some(grants) => (grants.span(), grants.into_inner()),
                None => (path_span.clone(), Vec::new()),
            };
            if let Some(unknown) = grants
                .iter()
                .find(|g| !upstreams.iter().any(|u| &&u.name == g))
            {
                return Err(at(
                    grants_span,
                    format!(
                        "route `{route_path}`: `upstreams` names `{unknown}`, which no [[upstream]] defines"
                    ),
                ));
            }
            routes.push(RouteConfig {
                upstreams: grants,
                path: route_path,
                plugin,
                subprotocols: r.subprotocols,
                allowed_origins: r.allowed_origins,
                settings,
                max_memory_bytes: max_memory_mib << 20,
                event_deadline: Duration::from_millis(deadline_ms),
                fuel: r.fuel,
                instances,
                restart_backoff: Duration::from_millis(
                    r.restart_backoff_ms.unwrap_or(DEFAULT_RESTART_BACKOFF_MS),
                ),
                accept_timeout: Duration::from_millis(accept_timeout_ms),
            });
        }
        let limits = match raw.limits {
            None => Limits::default(),
            Some(spanned) => {
                let span = spanned.span();
                let limits = spanned.into_inner();
                if let Some(problem) = limits.problems() {
                    return Err(at(span, problem));
                }
                limits
            }
        };
        let admin = match raw.admin {
            None => None,
            Some(spanned) => {
                let span = spanned.span();
                let admin = spanned.into_inner();
                if admin.token.len() < 16 {
                    return Err(at(
                        span,
                        "[admin] `token` must be at least 16 characters".into(),
                    ));
                }
                Some(admin)
            }
        };
        let log = match raw.log {
            None => LogConfig::default(),
            Some(spanned) => {
                let span = spanned.span();
                let log = spanned.into_inner();
                if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log.level) {
                    return Err(at(
                        span,
                        format!("[log] `level` {:?} is not a log filter: {e}", log.level),
                    ));
                }
                log
            }
        };
        let run_as = match (raw.user, raw.group) {
            (Some(user), group) => Some(RunAs { user, group }),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(ConfigError(format!(
                    "{}: `group` needs `user`",
                    path.display()
                )));
            }
        };
        let cluster = match raw.cluster {
            None => None,
            Some(spanned) => {
                let span = spanned.span();
                let cluster =
                    crate::cluster::ClusterConfig::from_raw(spanned.into_inner(), |p| resolve(p))
                        .map_err(|e| at(span, e))?;
                Some(cluster)
            }
        };
        Ok(Config {
            cluster,
            upstreams,
            run_as,
            log,
            admin,
            limits,
            source: path.to_path_buf(),
            workers,
            shutdown_grace: Duration::from_millis(
                raw.shutdown_grace_ms.unwrap_or(DEFAULT_GRACE_MS),
            ),
            listeners,
            routes,
        })
    }
}

impl Config {
    /// Settings that work, but probably not as meant: a route whose `accept_timeout_ms` is not longer than the
    /// `timeout_ms` of an upstream it grants, so that an upgrade deferred on that upstream's answer gets the
    /// gateway's 504 before the backend's answer (or its own timeout).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for route in &self.routes {
            for upstream in self
                .upstreams
                .iter()
                .filter(|u| route.upstreams.contains(&u.name))
            {
                if route.accept_timeout <= upstream.timeout {
                    warnings.push(format!(
                        "route {}: accept_timeout_ms ({} ms) is not longer than upstream {}'s timeout_ms ({} ms): an \
                         upgrade deferred on it is answered 504 before the upstream answers",
                        route.path,
                        route.accept_timeout.as_millis(),
                        upstream.name,
                        upstream.timeout.as_millis()
                    ));
                }
            }
        }
        warnings
    }

    /// Whether any route meters fuel, which the engine must then do for all.
    pub fn needs_fuel(&self) -> bool {
        self.routes.iter().any(|r| r.fuel.is_some())
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/nowhere/gw.toml"), text)
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("workers = 1\n[[listener]]\naddress = \"127.0.0.1:0\"\nbogus = 1\n")
            .unwrap_err()
            .0;
        assert!(err.contains("/nowhere/gw.toml"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let err = parse("workers = \"two\"\n").unwrap_err().0;
        assert!(
            err.contains("/nowhere/gw.toml") && err.contains("line 1") && err.contains("workers"),
            "{err}"
        );
    }

    #[test]
    fn tls_without_files_uses_the_dev_certificate_next_to_the_config() {
        let c = parse("[[listener]]\naddress = \"[::1]:0\"\n").unwrap();
        assert_eq!(
            c.listeners[0].tls,
            Some(TlsFiles::Development {
                dir: PathBuf::from("/nowhere").join(DEV_CERT_DIR)
            })
        );
        assert!(c.listeners[0].address.is_ipv6());
    }

    #[test]
    fn half_a_certificate_is_an_error() {
        let err = parse("[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"a.pem\"\n")
            .unwrap_err()
            .0;
        assert!(err.contains("line 1") && err.contains("`key`"), "{err}");
    }

    #[test]
    fn sni_certificates_are_read_in_order_and_exclude_cert_and_key() {
        let listener = "[[listener]]\naddress = \"127.0.0.1:0\"\n";
        let two = "[[listener.certificate]]\ncert = \"a.pem\"\nkey = \"a-key.pem\"\nnames = [\"A.test\"]\n[[listener.certificate]]\ncert = \"b.pem\"\nkey = \"b-key.pem\"\nnames = [\"*.b.test\"]\n";
        let config = parse(&format!("{listener}{two}")).unwrap();
        let Some(TlsFiles::BySni(certificates)) = &config.listeners[0].tls else {
            panic!("{:?}", config.listeners[0].tls);
        };
        assert_eq!(certificates[0].names, vec!["a.test"]);
        assert_eq!(certificates[1].names, vec!["*.b.test"]);
        let err = parse(&format!(
            "{listener}cert = \"c.pem\"\nkey = \"k.pem\"\n{two}"
        ))
        .unwrap_err()
        .0;
        assert!(
            err.contains("line 1") && err.contains("replaces `cert` and `key`"),
            "{err}"
        );
    }

    #[test]
    fn an_acme_wildcard_domain_is_refused() {
        let err = parse("[[listener]]\naddress = \"127.0.0.1:0\"\n[listener.acme]\ndomains = [\"*.example.com\"]\n")
            .unwrap_err()
            .0;
        assert!(err.contains("cannot validate a wildcard"), "{err}");
    }

    #[test]
    fn a_route_waiting_no_longer_than_its_upstream_is_warned_about() {
        let plugin = std::env::current_exe().unwrap();
        let text = format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\n[[upstream]]\nname = \"b\"\nurl = \"http://127.0.0.1:1\"\ntimeout_ms = 3000\n[[route]]\npath = \"/a\"\nplugin = {:?}\nupstreams = [\"b\"]\naccept_timeout_ms = {{}}\n",
            plugin.display().to_string()
        );
        let warnings = |ms: u64| {
            parse(&text.replace("{}", &ms.to_string()))
                .unwrap()
                .warnings()
        };
        assert!(warnings(3001).is_empty());
        let warned = warnings(3000);
        assert!(
            warned.len() == 1 && warned[0].contains("route /a") && warned[0].contains("upstream b"),
            "{warned:?}"
        );
    }

    #[test]
    fn missing_plugin_file_names_its_line() {
        let err =
            parse("[[listener]]\naddress = \"127.0.0.1:0\"\n[[route]]\npath = \"/wss\"\nplugin = \"x.wasm\"\n").unwrap_err().0;
        assert!(
            err.contains("line 5") && err.contains("/nowhere/x.wasm"),
            "{err}"
        );
    }
}

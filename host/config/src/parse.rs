//! How the TOML text becomes a [`Config`]: what the file may say (the raw, `deny_unknown_fields` types), the
//! defaults, and the validation of each section, one function per section. Every error names the file and, where
//! a value's position is known, its line.

use crate::cluster::ClusterConfig;
use crate::config::{
    AcmeConfig, AdminConfig, CompileCache, Compression, CompressionMode, Config, ConfigError,
    DEV_CERT_DIR, LETS_ENCRYPT, ListenerConfig, LogConfig, NamedCertificate, RouteConfig, RunAs,
    TlsFiles,
};
use crate::limits::Limits;
use crate::memory::{HistoryConfig, RawHistory, RawStorage, StorageConfig};
use crate::upstream::RawUpstream;
use crate::upstream::UpstreamConfig;
use crate::{ClientAddress, TrustedProxies};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

const DEFAULT_GRACE_MS: u64 = 5_000;
/// How long a deferred upgrade waits for the plugin's answer: long enough for a backend's login check, short enough
/// that a plugin that forgets to answer does not hold clients (and connection slots) for long.
const DEFAULT_ACCEPT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_RESTART_BACKOFF_MS: u64 = 1_000;
/// Where a single node keeps routes' history and storage, relative to the config file (like the ACME cache).
const DEFAULT_DATA_DIR: &str = "data";
/// The per-address connection cap of a route that grants an upstream (the webhook route among them), whose plugin
/// may hold each upgrade on a backend call: a few clients cannot open enough upgrades to take the upstream's
/// in-flight places (and the route's connections) from everyone else. Enough for many users behind one NAT.
const DEFAULT_UPSTREAM_ROUTE_MAX_CONNECTIONS_PER_IP: usize = 64;

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
    compile_cache: Option<RawCompileCache>,
    data_dir: Option<String>,
}

/// `compile_cache = "folder"`, or `true`/`false` for the default folder or none.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawCompileCache {
    On(bool),
    At(String),
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
    /// The one source of the client's address believed from trusted proxies.
    client_address: Option<ClientAddress>,
    /// The older spelling of `client_address = "proxy-protocol"`.
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
    max_connections_per_ip: Option<usize>,
    compression: Option<Spanned<String>>,
    compression_level: Option<Spanned<u32>>,
    compression_min_bytes: Option<Spanned<usize>>,
    compression_window_bits: Option<Spanned<u8>>,
    history: Option<Spanned<RawHistory>>,
    storage: Option<Spanned<RawStorage>>,
}

/// The file being parsed: its path (which errors name) and folder (which relative paths are resolved against).
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    dir: PathBuf,
}

impl Source<'_> {
    /// An error at the value spanning `span`: the file and the line.
    fn at(&self, span: std::ops::Range<usize>, what: String) -> ConfigError {
        ConfigError(format!(
            "{}: line {}: {what}",
            self.path.display(),
            line_of(self.text, span.start)
        ))
    }

    /// An error about the file as a whole.
    fn whole(&self, what: &str) -> ConfigError {
        ConfigError(format!("{}: {what}", self.path.display()))
    }

    /// `p` as written, resolved against the config file's folder unless absolute.
    fn resolve(&self, p: &str) -> PathBuf {
        if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            self.dir.join(p)
        }
    }
}

impl Config {
    /// Parses `text` as if read from `path` (which names the file in errors and anchors relative paths).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let src = Source {
            path,
            text,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let workers = workers(&src, raw.workers)?;
        if raw.listener.is_empty() {
            return Err(src.whole("no [[listener]] is configured"));
        }
        let listeners = raw
            .listener
            .into_iter()
            .map(|l| listener(&src, l))
            .collect::<Result<Vec<_>, _>>()?;
        let mut upstreams = upstreams(&src, raw.upstream)?;
        let mut routes: Vec<RouteConfig> = Vec::new();
        for r in raw.route {
            let route = route(&src, r, &routes, &upstreams)?;
            routes.push(route);
        }
        for upstream in &mut upstreams {
            upstream.share_among(
                routes
                    .iter()
                    .filter(|r| r.upstreams.contains(&upstream.name))
                    .count(),
            );
        }
        let upstreams = upstreams.into_iter().map(Arc::new).collect();
        let limits = limits(&src, raw.limits)?;
        let admin = admin(&src, raw.admin)?;
        let log = log(&src, raw.log)?;
        let run_as = run_as(&src, raw.user, raw.group)?;
        let cluster = cluster(&src, raw.cluster)?;
        let compile_cache = match raw.compile_cache {
            None | Some(RawCompileCache::On(true)) => CompileCache::Default,
            Some(RawCompileCache::On(false)) => CompileCache::Off,
            Some(RawCompileCache::At(folder)) => CompileCache::At(src.resolve(&folder)),
        };
        let data_dir = src.resolve(raw.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR));
        Ok(Config {
            data_dir,
            compile_cache,
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

/// `workers`: at least 1, at most 255 (the bits a connection id has for it); by default one per core.
fn workers(src: &Source<'_>, workers: Option<usize>) -> Result<usize, ConfigError> {
    Ok(match workers {
        Some(0) => {
            return Err(ConfigError(format!(
                "{}: `workers` must be at least 1",
                src.path.display()
            )));
        }
        Some(n) if n > 255 => {
            return Err(ConfigError(format!(
                "{}: `workers` must be at most 255",
                src.path.display()
            )));
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get().min(255)),
    })
}

/// One `[[listener]]`: its TLS (files, SNI certificates, ACME or a development certificate) and proxies.
fn listener(
    src: &Source<'_>,
    spanned: Spanned<RawListener>,
) -> Result<ListenerConfig, ConfigError> {
    let span = spanned.span();
    let l = spanned.into_inner();
    if !l.certificate.is_empty() && (l.cert.is_some() || l.key.is_some() || !l.tls) {
        return Err(src.at(
            span,
            "[[listener.certificate]] replaces `cert` and `key` and needs `tls = true`".into(),
        ));
    }
    let mut by_sni = Vec::new();
    for c in l.certificate {
        if c.names.is_empty() {
            return Err(src.at(
                span.clone(),
                format!("[[listener.certificate]] {}: `names` lists none", c.cert),
            ));
        }
        let names = c
            .names
            .iter()
            .map(|n| server_name(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| src.at(span.clone(), format!("[[listener.certificate]] names: {e}")))?;
        by_sni.push(NamedCertificate {
            cert: src.resolve(&c.cert),
            key: src.resolve(&c.key),
            names,
        });
    }
    let acme = match l.acme {
        None => None,
        Some(a) => {
            if l.cert.is_some() || l.key.is_some() || !by_sni.is_empty() || !l.tls {
                return Err(src.at(
                    span,
                    "[listener.acme] replaces `cert`, `key` and [[listener.certificate]] and needs `tls = true`"
                        .into(),
                ));
            }
            if a.domains.is_empty() {
                return Err(src.at(span, "[listener.acme] `domains` lists none".into()));
            }
            let domains = a
                .domains
                .iter()
                .map(|d| server_name(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| src.at(span.clone(), format!("[listener.acme] domains: {e}")))?;
            if let Some(wildcard) = domains.iter().find(|d| d.starts_with("*.")) {
                return Err(src.at(
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
                    .map_or_else(|| src.dir.join(".wssgate-acme"), |c| src.resolve(&c)),
                ca: a.ca.map(|c| src.resolve(&c)),
            })
        }
    };
    let tls = match (l.tls, l.cert, l.key) {
        _ if acme.is_some() => acme.map(TlsFiles::Acme),
        _ if !by_sni.is_empty() => Some(TlsFiles::BySni(by_sni)),
        (false, None, None) => None,
        (false, _, _) => return Err(src.at(span, "`cert` and `key` need `tls = true`".into())),
        (true, Some(cert), Some(key)) => Some(TlsFiles::Pem {
            cert: src.resolve(&cert),
            key: src.resolve(&key),
        }),
        (true, None, None) => Some(TlsFiles::Development {
            dir: src.dir.join(DEV_CERT_DIR),
        }),
        (true, _, _) => {
            return Err(src.at(
                span,
                "a TLS listener needs both `cert` and `key`, or neither".into(),
            ));
        }
    };
    let mut trusted = Vec::new();
    for entry in &l.trusted_proxies {
        let net = TrustedProxies::parse_entry(entry)
            .map_err(|e| src.at(span.clone(), format!("trusted_proxies: {e}")))?;
        trusted.push(net);
    }
    let (client_address, client_address_implied) = match (l.client_address, l.proxy_protocol) {
        (None | Some(ClientAddress::ProxyProtocol), true) => {
            (Some(ClientAddress::ProxyProtocol), false)
        }
        (Some(header), true) => {
            return Err(src.at(
                span,
                format!(
                    "`proxy_protocol = true` takes the client's address from the PROXY header and \
                     `client_address = \"{}\"` from a request header: a listener believes one source; keep one of them",
                    header.name()
                ),
            ));
        }
        (Some(source), false) => (Some(source), false),
        // Configs written before `client_address` existed: X-Real-IP is what the shipped nginx and Apache setups
        // send, and reading only it keeps them working; `Config::warnings` asks for the source to be named.
        (None, false) if !trusted.is_empty() => (Some(ClientAddress::XRealIp), true),
        (None, false) => (None, false),
    };
    if client_address.is_some() && trusted.is_empty() {
        let key = if l.proxy_protocol {
            "`proxy_protocol = true`"
        } else {
            "`client_address`"
        };
        return Err(src.at(
            span,
            format!(
                "{key} needs `trusted_proxies`: the client's address is believed only from them"
            ),
        ));
    }
    Ok(ListenerConfig {
        address: l.address,
        tls,
        trusted_proxies: TrustedProxies(trusted),
        client_address,
        client_address_implied,
    })
}

/// The `[[upstream]]`s, each named once.
fn upstreams(
    src: &Source<'_>,
    raw: Vec<Spanned<RawUpstream>>,
) -> Result<Vec<UpstreamConfig>, ConfigError> {
    let mut upstreams: Vec<UpstreamConfig> = Vec::new();
    for spanned in raw {
        let span = spanned.span();
        let upstream = UpstreamConfig::from_raw(spanned.into_inner(), |p| src.resolve(p))
            .map_err(|e| src.at(span.clone(), e))?;
        if upstreams.iter().any(|u| u.name == upstream.name) {
            return Err(src.at(
                span,
                format!("[[upstream]] `{}` is configured twice", upstream.name),
            ));
        }
        upstreams.push(upstream);
    }

    Ok(upstreams)
}

/// One `[[route]]`, given the routes before it (a path is configured once) and the upstreams it may grant.
fn route(
    src: &Source<'_>,
    r: RawRoute,
    routes: &[RouteConfig],
    upstreams: &[UpstreamConfig],
) -> Result<RouteConfig, ConfigError> {
    let path_span = r.path.span();
    let route_path = r.path.into_inner();
    if !route_path.starts_with('/') || route_path.contains('?') {
        return Err(src.at(
            path_span,
            format!("route path `{route_path}` must start with `/` and hold no query"),
        ));
    }
    if routes.iter().any(|other| other.path == route_path) {
        return Err(src.at(
            path_span,
            format!("route path `{route_path}` is configured twice"),
        ));
    }
    let plugin_span = r.plugin.span();
    let plugin = src.resolve(r.plugin.get_ref());
    if !plugin.is_file() {
        return Err(src.at(
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
                return Err(src.at(
                    span,
                    format!("setting `{key}` must be a string, number or boolean"),
                ));
            }
        };
        settings.insert(key, text);
    }
    let max_memory_mib = r.max_memory_mib;
    let deadline_ms = r.event_deadline_ms;
    let instances = r.instances.unwrap_or(1);
    let accept_timeout_ms = r.accept_timeout_ms.unwrap_or(DEFAULT_ACCEPT_TIMEOUT_MS);
    if max_memory_mib == Some(0)
        || deadline_ms == Some(0)
        || instances == 0
        || r.fuel == Some(0)
        || accept_timeout_ms == 0
    {
        return Err(src.at(
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
        return Err(src.at(
            grants_span,
            format!(
                "route `{route_path}`: `upstreams` names `{unknown}`, which no [[upstream]] defines"
            ),
        ));
    }
    let max_connections_per_ip = r.max_connections_per_ip.unwrap_or(if grants.is_empty() {
        0
    } else {
        DEFAULT_UPSTREAM_ROUTE_MAX_CONNECTIONS_PER_IP
    });
    let compression = compression(
        src,
        &RawCompression {
            compression: r.compression,
            compression_level: r.compression_level,
            compression_min_bytes: r.compression_min_bytes,
            compression_window_bits: r.compression_window_bits,
        },
    )?;
    let history = r
        .history
        .map(HistoryConfig::from_raw)
        .transpose()
        .map_err(|(span, e)| src.at(span, e))?;
    let storage = r
        .storage
        .map(StorageConfig::from_raw)
        .transpose()
        .map_err(|(span, e)| src.at(span, e))?;
    Ok(RouteConfig {
        history,
        storage,
        compression,
        max_connections_per_ip,
        upstreams: grants,
        path: route_path,
        plugin,
        subprotocols: r.subprotocols,
        allowed_origins: r.allowed_origins,
        settings,
        max_memory_bytes: max_memory_mib.map(|mib| mib << 20),
        event_deadline: deadline_ms.map(Duration::from_millis),
        fuel: r.fuel,
        instances,
        restart_backoff: Duration::from_millis(
            r.restart_backoff_ms.unwrap_or(DEFAULT_RESTART_BACKOFF_MS),
        ),
        accept_timeout: Duration::from_millis(accept_timeout_ms),
    })
}

/// A route's compression keys, as written.
struct RawCompression {
    compression: Option<Spanned<String>>,
    compression_level: Option<Spanned<u32>>,
    compression_min_bytes: Option<Spanned<usize>>,
    compression_window_bits: Option<Spanned<u8>>,
}

/// A route's `compression` and its `compression_*` settings, each checked.
fn compression(src: &Source<'_>, r: &RawCompression) -> Result<Compression, ConfigError> {
    let mut c = Compression::default();
    if let Some(mode) = &r.compression {
        c.mode = match mode.get_ref().as_str() {
            "off" => CompressionMode::Off,
            "shared" => CompressionMode::Shared,
            "dedicated" => CompressionMode::Dedicated,
            other => {
                return Err(src.at(
                    mode.span(),
                    format!("`compression` is \"off\", \"shared\" or \"dedicated\", not {other:?}"),
                ));
            }
        };
    }
    let set_while_off = [
        r.compression_level
            .as_ref()
            .map(|v| ("compression_level", v.span())),
        r.compression_min_bytes
            .as_ref()
            .map(|v| ("compression_min_bytes", v.span())),
        r.compression_window_bits
            .as_ref()
            .map(|v| ("compression_window_bits", v.span())),
    ];
    if c.mode == CompressionMode::Off
        && let Some((key, span)) = set_while_off.into_iter().flatten().next()
    {
        return Err(src.at(
            span,
            format!("`{key}` is set but the route's `compression` is off (set `compression = \"shared\"` or \"dedicated\")"),
        ));
    }
    if let Some(level) = &r.compression_level {
        if !(1..=9).contains(level.get_ref()) {
            return Err(src.at(
                level.span(),
                "`compression_level` is 1 (fastest) to 9 (smallest)".into(),
            ));
        }
        c.level = *level.get_ref();
    }
    if let Some(min) = &r.compression_min_bytes {
        c.min_bytes = *min.get_ref();
    }
    if let Some(bits) = &r.compression_window_bits {
        if c.mode != CompressionMode::Dedicated {
            return Err(src.at(
                bits.span(),
                "`compression_window_bits` applies to `compression = \"dedicated\"` only (shared keeps no window)".into(),
            ));
        }
        if !(9..=15).contains(bits.get_ref()) {
            return Err(src.at(bits.span(), "`compression_window_bits` is 9 to 15".into()));
        }
        c.window_bits = *bits.get_ref();
    }
    Ok(c)
}

/// `[limits]`, each checked.
fn limits(src: &Source<'_>, raw: Option<Spanned<Limits>>) -> Result<Limits, ConfigError> {
    Ok(match raw {
        None => Limits::default(),
        Some(spanned) => {
            let span = spanned.span();
            let limits = spanned.into_inner();
            if let Some(problem) = limits.problems() {
                return Err(src.at(span, problem));
            }
            limits
        }
    })
}

/// Whether a client can present `token` as it is: visible ASCII (inner spaces allowed) with no space at either end,
/// since the gateway trims what follows `Bearer ` and a header value holds nothing else.
fn sendable_token(token: &str) -> bool {
    token.trim() == token && token.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// `[admin]`: its tokens must be long enough that guessing them is hopeless and sendable in a header, and it listens on loopback unless
/// `allow_public` says the operator means otherwise.
fn admin(
    src: &Source<'_>,
    raw: Option<Spanned<AdminConfig>>,
) -> Result<Option<AdminConfig>, ConfigError> {
    Ok(match raw {
        None => None,
        Some(spanned) => {
            let span = spanned.span();
            let admin = spanned.into_inner();
            let tokens = [
                ("token", Some(&admin.token)),
                ("metrics_token", admin.metrics_token.as_ref()),
            ];
            for (key, token) in tokens {
                let Some(token) = token else { continue };
                if token.len() < 16 {
                    return Err(src.at(
                        span.clone(),
                        format!("[admin] `{key}` must be at least 16 characters"),
                    ));
                }
                if !sendable_token(token) {
                    return Err(src.at(
                        span.clone(),
                        format!(
                            "[admin] `{key}` could never match: a client sends it in an `Authorization: Bearer` header, \
                             which carries visible ASCII only, and spaces at either end are dropped"
                        ),
                    ));
                }
            }
            if admin.max_connections == 0 {
                return Err(src.at(span, "[admin] `max_connections` must be at least 1".into()));
            }
            if !admin.address.ip().to_canonical().is_loopback() && !admin.allow_public {
                return Err(src.at(
                    span,
                    format!(
                        "[admin] `address` {} is not a loopback address: the push API (which can send to and close \
                         any connection) would be reachable from the network; listen on 127.0.0.1, or set \
                         `allow_public = true` if that is meant (and firewall it)",
                        admin.address
                    ),
                ));
            }
            Some(admin)
        }
    })
}

/// `[log]`: its level must be a filter the logger understands.
fn log(src: &Source<'_>, raw: Option<Spanned<LogConfig>>) -> Result<LogConfig, ConfigError> {
    Ok(match raw {
        None => LogConfig::default(),
        Some(spanned) => {
            let span = spanned.span();
            let log = spanned.into_inner();
            if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log.level) {
                return Err(src.at(
                    span,
                    format!("[log] `level` {:?} is not a log filter: {e}", log.level),
                ));
            }
            log
        }
    })
}

/// `user` and `group` to run as after binding.
fn run_as(
    src: &Source<'_>,
    user: Option<String>,
    group: Option<String>,
) -> Result<Option<RunAs>, ConfigError> {
    Ok(match (user, group) {
        (Some(user), group) => Some(RunAs { user, group }),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ConfigError(format!(
                "{}: `group` needs `user`",
                src.path.display()
            )));
        }
    })
}

/// `[cluster]`.
fn cluster(
    src: &Source<'_>,
    raw: Option<Spanned<crate::cluster::RawCluster>>,
) -> Result<Option<ClusterConfig>, ConfigError> {
    Ok(match raw {
        None => None,
        Some(spanned) => {
            let span = spanned.span();
            let cluster =
                crate::cluster::ClusterConfig::from_raw(spanned.into_inner(), |p| src.resolve(p))
                    .map_err(|e| src.at(span, e))?;
            Some(cluster)
        }
    })
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

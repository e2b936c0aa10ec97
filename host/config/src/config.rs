//! The gateway's TOML configuration: parsing, defaults and validation.
//!
//! Every error names the file, and where the TOML parser or a value's position can tell, the line and the key, so
//! that `wssgate check` explains a bad config without the user opening the source.

use crate::limits::Limits;
use crate::upstream::UpstreamConfig;
use crate::{ClientAddress, TrustedProxies};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
    /// Where compiled plugins are kept between starts and reloads (top-level `compile_cache`).
    pub compile_cache: CompileCache,
    /// Where this node keeps routes' history and storage when there is no `[cluster]` (one file, `wssgate.redb`).
    pub data_dir: PathBuf,
}

/// Top-level `compile_cache`: a folder for compiled plugins, so that a restart or a reload does not compile a
/// plugin again (a JavaScript or Python component takes seconds to compile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileCache {
    /// Absent or `true`: systemd's `CacheDirectory` (`$CACHE_DIRECTORY`), else `$XDG_CACHE_HOME/wssgate`, else
    /// `~/.cache/wssgate`; none of those known, no cache.
    Default,
    /// `false`: compile every plugin at every load.
    Off,
    /// A folder (resolved against the config file's folder).
    At(PathBuf),
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

/// Where the admin listener listens, the tokens it requires and how many clients it serves at once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: the push API is for the backend on this machine.
    #[serde(default = "admin_address")]
    pub address: SocketAddr,
    /// A non-loopback `address` is refused unless this says the operator means it: the push API can send to and
    /// close any connection.
    #[serde(default)]
    pub allow_public: bool,
    /// Every request must carry `Authorization: Bearer <token>` (`/healthz` excepted; `/metrics` see below).
    pub token: String,
    /// When set, `/metrics` needs `Authorization: Bearer <metrics_token>` (or the `token`); without it, `/metrics`
    /// needs no token.
    pub metrics_token: Option<String>,
    /// Admin connections open at once; more are answered 503 and closed at once.
    #[serde(default = "admin_max_connections")]
    pub max_connections: usize,
}

impl AdminConfig {
    /// Whether `other` differs only in what a reload applies to the running listener (its tokens).
    pub fn same_listener(&self, other: &AdminConfig) -> bool {
        (self.address, self.allow_public, self.max_connections)
            == (other.address, other.allow_public, other.max_connections)
    }
}

fn admin_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

/// Enough for a backend's pool of keep-alive connections and a scraper; few enough that the admin listener's sockets
/// cannot take a noticeable share of the process's file descriptors, which the WebSocket listeners need.
const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 64;

fn admin_max_connections() -> usize {
    DEFAULT_ADMIN_MAX_CONNECTIONS
}

/// One address the gateway accepts connections on.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    /// `None` for plain ws (behind a TLS-terminating proxy).
    pub tls: Option<TlsFiles>,
    /// Peers whose word about the client (in the source `client_address` names) is believed.
    pub trusted_proxies: TrustedProxies,
    /// Where the client's address is read from connections of trusted proxies; `None` without trusted proxies (the
    /// socket's peer is the client). `ProxyProtocol`: every connection starts with a PROXY (v1 or v2) header.
    pub client_address: Option<ClientAddress>,
    /// The listener trusts proxies but named no `client_address` (nor `proxy_protocol`): `X-Real-IP` is read, as
    /// before the key existed, and `check` warns.
    pub client_address_implied: bool,
}

impl ListenerConfig {
    /// What `check` says about whose word names the client, for a listener that trusts proxies.
    pub fn client_address_note(&self) -> Option<String> {
        let source = self.client_address?;
        Some(format!(
            "listener {}: the client's address is {} on connections from {} (from anyone else: the socket's \
             address){}",
            self.address,
            source.describe(),
            self.trusted_proxies,
            if self.client_address_implied {
                ", the default for a listener with `trusted_proxies` and no `client_address`"
            } else {
                ""
            }
        ))
    }
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
    /// The most linear memory one plugin instance may grow to; `None`: the default for the plugin's language (the
    /// runtime knows it once the plugin is loaded).
    pub max_memory_bytes: Option<usize>,
    /// How much CPU time one plugin callback may use before it is interrupted; `None`: the default for the
    /// plugin's language.
    pub event_deadline: Option<Duration>,
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
    /// This route's connections (upgrades the plugin has not answered yet included) open at once from one client
    /// address; the excess gets HTTP 503. 0 = no cap of the route's own (`[limits] max_connections_per_ip` still
    /// applies). On by default for a route that grants an upstream.
    pub max_connections_per_ip: usize,
    /// permessage-deflate (RFC 7692) for the route's connections.
    pub compression: Compression,
    /// `[route.history]`: the route's groups keep their last messages (the `history` interface).
    pub history: Option<crate::memory::HistoryConfig>,
    /// `[route.storage]`: the route's keys and values (the `storage` interface).
    pub storage: Option<crate::memory::StorageConfig>,
}

/// A route's `compression` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    pub mode: CompressionMode,
    /// zlib's level, 1 (fastest, the default) to 9.
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (RFC 7692 lets each message choose).
    pub min_bytes: usize,
    /// `dedicated`: the largest sliding window a connection's contexts keep (9 to 15 bits).
    pub window_bits: u8,
}

/// `compression = "off" | "shared" | "dedicated"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionMode {
    /// The extension is declined: the default.
    Off,
    /// No context is kept between messages by either side: a worker's codecs serve all its connections, and a
    /// message published to many is compressed once.
    Shared,
    /// Each connection keeps its own contexts, which compress streams of similar messages better, at a cost in
    /// memory per connection.
    Dedicated,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            mode: CompressionMode::Off,
            level: 1,
            min_bytes: 512,
            window_bits: 12,
        }
    }
}

/// Where the development certificate is kept, relative to the config file's folder.
pub(crate) const DEV_CERT_DIR: &str = ".wssgate-dev-cert";

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
}

impl Config {
    /// Settings that work, but probably not as meant: an admin listener on a public address (`allow_public`); a
    /// route whose `accept_timeout_ms` is not longer than the `timeout_ms` of an upstream it grants, so that an
    /// upgrade deferred on that upstream's answer gets the gateway's 504 before the backend's answer (or its own
    /// timeout); a listener that trusts proxies without naming `client_address`: it reads `X-Real-IP`, which only a
    /// proxy that sets it on every request makes true.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(admin) = self
            .admin
            .as_ref()
            .filter(|a| !a.address.ip().to_canonical().is_loopback())
        {
            warnings.push(format!(
                "[admin] listens on {}, which is not loopback (`allow_public`): the token is all that guards the push \
                 API there, so firewall it{}",
                admin.address,
                if admin.metrics_token.is_none() {
                    "; /metrics answers anyone without `metrics_token`"
                } else {
                    ""
                }
            ));
        }
        for listener in self.listeners.iter().filter(|l| l.client_address_implied) {
            warnings.push(format!(
                "listener {}: `trusted_proxies` without `client_address`: the client's address is read from \
                 X-Real-IP alone, which is right only if every trusted proxy sets it on every request (nginx: \
                 `proxy_set_header X-Real-IP $remote_addr`); a proxy that only appends X-Forwarded-For (AWS ALB, \
                 Google Cloud load balancers, HAProxy `option forwardfor`, Caddy, Traefik) passes a client's own \
                 X-Real-IP through. Name the source: `client_address = \"x-real-ip\"` or `\"x-forwarded-for\"`",
                listener.address
            ));
        }
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
        if let Some(cluster) = &self.cluster
            && cluster.secret.is_none()
        {
            warnings.push(format!(
                "[cluster] has no `secret`: any client that can publish on the NATS server under `{}.>` can send to \
                 this gateway's users, close their connections and rewrite its view of the other nodes; set the same \
                 long random `secret` on every node",
                cluster.prefix
            ));
        }
        warnings
    }

    /// Whether any route meters fuel, which the engine must then do for all.
    pub fn needs_fuel(&self) -> bool {
        self.routes.iter().any(|r| r.fuel.is_some())
    }
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
    fn a_cluster_secret_is_checked_warned_about_when_absent_and_part_of_the_link() {
        let cluster = |secret: &str| {
            parse(&format!(
                "[[listener]]\naddress = \"127.0.0.1:0\"\n[cluster]\nservers = [\"nats://127.0.0.1:4222\"]\nnode = \"a\"\n{secret}\n"
            ))
        };
        let none = cluster("").unwrap();
        assert!(
            none.warnings()
                .iter()
                .any(|w| w.contains("has no `secret`"))
        );
        let one = cluster("secret = \"0123456789abcdef\"").unwrap();
        assert!(one.warnings().is_empty());
        let other = cluster("secret = \"fedcba9876543210\"").unwrap();
        let link = |c: &Config| c.cluster.clone().unwrap();
        assert!(link(&one).same_link(&link(&one)));
        // A changed secret is another link: a reload says it needs a restart.
        assert!(!link(&none).same_link(&link(&one)) && !link(&one).same_link(&link(&other)));
        let err = cluster("secret = \"short\"").unwrap_err().0;
        assert!(err.contains("`secret` must be at least 16 bytes"), "{err}");
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
    fn a_listener_believes_one_named_source_of_the_client_address() {
        let listener = |extra: &str| {
            parse(&format!(
                "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n{extra}\n"
            ))
        };
        let trusting = "trusted_proxies = [\"127.0.0.1\"]\n";
        let c = listener("").unwrap();
        assert_eq!(c.listeners[0].client_address, None);
        assert!(c.warnings().is_empty());

        for (named, source) in [
            ("x-forwarded-for", ClientAddress::XForwardedFor),
            ("x-real-ip", ClientAddress::XRealIp),
            ("proxy-protocol", ClientAddress::ProxyProtocol),
        ] {
            let c = listener(&format!("{trusting}client_address = \"{named}\"")).unwrap();
            assert_eq!(c.listeners[0].client_address, Some(source));
            assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        }
        let c = listener(&format!("{trusting}proxy_protocol = true")).unwrap();
        assert_eq!(
            c.listeners[0].client_address,
            Some(ClientAddress::ProxyProtocol)
        );

        // A config from before the key: X-Real-IP alone, with a warning that says why and what to write.
        let c = listener(trusting).unwrap();
        assert_eq!(c.listeners[0].client_address, Some(ClientAddress::XRealIp));
        let warned = c.warnings();
        assert!(
            warned.len() == 1 && warned[0].contains("client_address = \"x-real-ip\""),
            "{warned:?}"
        );
        assert!(
            c.listeners[0]
                .client_address_note()
                .unwrap()
                .contains("X-Real-IP on connections from 127.0.0.1/32")
        );

        let err = listener(&format!(
            "{trusting}proxy_protocol = true\nclient_address = \"x-real-ip\""
        ))
        .unwrap_err()
        .0;
        assert!(
            err.contains("line 1") && err.contains("one source"),
            "{err}"
        );
        let err = listener("client_address = \"x-forwarded-for\"")
            .unwrap_err()
            .0;
        assert!(err.contains("needs `trusted_proxies`"), "{err}");
        let err = listener(&format!("{trusting}client_address = \"forwarded\""))
            .unwrap_err()
            .0;
        assert!(
            err.contains("line 5") && err.contains("x-forwarded-for"),
            "{err}"
        );
    }

    #[test]
    fn a_public_admin_address_needs_allow_public_and_is_warned_about() {
        let listener = "[[listener]]\naddress = \"127.0.0.1:0\"\n";
        let admin = |extra: &str| {
            parse(&format!(
                "{listener}[admin]\naddress = \"0.0.0.0:9090\"\ntoken = \"0123456789abcdef\"\n{extra}"
            ))
        };
        let err = admin("").unwrap_err().0;
        assert!(
            err.contains("line 3") && err.contains("allow_public") && err.contains("0.0.0.0:9090"),
            "{err}"
        );
        let warned = admin("allow_public = true\n").unwrap().warnings();
        assert!(
            warned.len() == 1 && warned[0].contains("metrics_token"),
            "{warned:?}"
        );
        let config = admin("allow_public = true\nmetrics_token = \"fedcba9876543210\"\n").unwrap();
        assert!(!config.warnings()[0].contains("metrics_token"));
        for loopback in ["127.0.0.2:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            let text = format!(
                "{listener}[admin]\naddress = \"{loopback}\"\ntoken = \"0123456789abcdef\"\n"
            );
            let config = parse(&text).unwrap();
            assert!(config.warnings().is_empty(), "{loopback}");
            assert_eq!(config.admin.unwrap().max_connections, 64);
        }
        let err = parse(&format!(
            "{listener}[admin]\ntoken = \"0123456789abcdef\"\nmetrics_token = \"short\"\n"
        ))
        .unwrap_err()
        .0;
        assert!(err.contains("`metrics_token` must be at least 16"), "{err}");
        for (key, unsendable) in [
            ("token", "\"0123456789abcdef \""),
            ("token", "\"\\t0123456789abcdef\""),
            ("metrics_token", "\"0123456789abcdéf\""),
            ("metrics_token", "\"0123456789\\nabcdef\""),
        ] {
            let (token, metrics) = if key == "token" {
                (unsendable, "\"fedcba9876543210\"")
            } else {
                ("\"fedcba9876543210\"", unsendable)
            };
            let err = parse(&format!(
                "{listener}[admin]\ntoken = {token}\nmetrics_token = {metrics}\n"
            ))
            .unwrap_err()
            .0;
            assert!(
                err.contains(&format!("`{key}` could never match")) && err.contains("line 3"),
                "{unsendable}: {err}"
            );
        }
        let inner_space = format!("{listener}[admin]\ntoken = \"0123456789 abcdef\"\n");
        assert!(parse(&inner_space).is_ok());
    }

    #[test]
    fn routes_sharing_an_upstream_get_half_of_it_each_and_a_per_address_cap() {
        let plugin = format!(
            "{:?}",
            std::env::current_exe().unwrap().display().to_string()
        );
        let upstream =
            "[[upstream]]\nname = \"b\"\nurl = \"http://127.0.0.1:1\"\nmax_in_flight = 10\n";
        let route = |path: &str, extra: &str| {
            format!("[[route]]\npath = \"{path}\"\nplugin = {plugin}\n{extra}\n")
        };
        let granted = "upstreams = [\"b\"]";
        let config = |text: String| {
            parse(&format!("[[listener]]\naddress = \"127.0.0.1:0\"\n{text}")).unwrap()
        };
        let alone = config(format!(
            "{upstream}{}{}",
            route("/a", granted),
            route("/x", "")
        ));
        assert_eq!(alone.upstreams[0].max_in_flight_per_route, 10);
        assert_eq!(alone.routes[0].max_connections_per_ip, 64);
        assert_eq!(
            alone.routes[1].max_connections_per_ip, 0,
            "no upstream, no cap of its own"
        );
        let shared = config(format!(
            "{upstream}{}{}",
            route("/a", granted),
            route("/b", granted)
        ));
        assert_eq!(shared.upstreams[0].max_in_flight_per_route, 5);
        let written = config(format!(
            "{upstream}max_in_flight_per_route = 30\n{}{}",
            route("/a", granted),
            route("/b", &format!("{granted}\nmax_connections_per_ip = 0"))
        ));
        assert_eq!(
            written.upstreams[0].max_in_flight_per_route, 10,
            "at most max_in_flight"
        );
        assert_eq!(written.routes[1].max_connections_per_ip, 0);
        let err = parse(&format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\n{upstream}max_in_flight_per_route = 0\n"
        ))
        .unwrap_err()
        .0;
        assert!(
            err.contains("`max_in_flight_per_route` must be at least 1"),
            "{err}"
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

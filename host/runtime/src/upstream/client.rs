//! One upstream's client on one worker: a hyper connection pool (keep-alive, so a request does not pay a TCP and
//! TLS handshake each time), the in-flight cap and each route's share of it, and the checks that turn a plugin's
//! request into an HTTP request that can only go where the operator said.

use super::{HttpError, UpstreamConfig, UpstreamResponse};
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wssgate_hub::metrics::Live;
use wssgate_hub::sync::lock;
use wssgate_hub::upstream_stats::UpstreamStats;

/// Headers the gateway sets or that concern only one hop (RFC 9110 section 7.6.1): a plugin's are dropped, and so
/// are the hop-by-hop ones (from `connection` on) of a response.
const DROPPED_HEADERS: [&str; 11] = [
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers some backends and frameworks take as the request's real target or host (IIS and Symfony's
/// `X-Original-URL` and `X-Rewrite-URL`, `X-Forwarded-Host` for host-based routing): from a plugin — which may have
/// copied them from its client — they could move a request out from under the upstream's base path, so they are
/// dropped like the headers the gateway sets.
const REROUTING_HEADERS: [&str; 3] = ["x-original-url", "x-rewrite-url", "x-forwarded-host"];
/// hyper's smallest allowed read buffer for a response head, and its default largest one.
const MIN_HEAD_BUFFER: usize = 8 * 1024;
const DEFAULT_HEAD_BUFFER: usize = 8 * 1024 + 4096 * 100;

/// Why a plugin's request was not sent (`request-refusal` in the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestRefusal {
    NotGranted,
    TooManyInFlight,
    TooLarge,
    InvalidRequest,
    UnknownConnection,
    NotNow,
}

pub struct UpstreamClient {
    pub config: Arc<UpstreamConfig>,
    pool: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Requests of this upstream running on this worker, or answered and not yet handed to their plugin. Taken on
    /// the worker's own thread (but when a stopping worker drops what it still held), so the lock is not contended.
    in_flight: Mutex<InFlightCounts>,
    stats: Arc<UpstreamStats>,
}

/// The requests in flight, in all and per route.
#[derive(Default)]
struct InFlightCounts {
    /// Capped at `max_in_flight`, which so bounds the response bodies (and heads) a worker holds at `max_in_flight`
    /// × `max_response_bytes`.
    total: usize,
    /// Each route's, capped at `max_in_flight_per_route`; a route is here while it has requests in flight.
    per_route: HashMap<String, usize>,
}

/// Why there was no place under the in-flight cap: both are `TooManyInFlight` to the plugin.
#[derive(Debug, PartialEq, Eq)]
pub enum NoPlace {
    /// The upstream has `max_in_flight` requests running on this worker.
    Upstream,
    /// The asking route has its share, `max_in_flight_per_route`, running.
    RouteShare,
}

/// A checked request, ready to run.
pub struct OutboundRequest {
    request: http::Request<Full<Bytes>>,
    timeout: Duration,
}

/// A request's place under its upstream's in-flight cap and its route's share, given back when the request ends
/// however it ends.
pub struct InFlight {
    client: Arc<UpstreamClient>,
    route: String,
    /// Counts the request in its route's gauge as long as it holds the place.
    _live: Live,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let client = &self.client;
        {
            let mut counts = lock(&client.in_flight);
            counts.total -= 1;
            if let Some(mine) = counts.per_route.get_mut(&self.route) {
                *mine -= 1;
                if *mine == 0 {
                    counts.per_route.remove(&self.route);
                }
            }
        }
        client.stats.in_flight(&client.config.name, -1);
    }
}

impl UpstreamClient {
    /// A client with an empty pool; must be created on the runtime whose tasks will use it.
    pub fn new(config: Arc<UpstreamConfig>, stats: Arc<UpstreamStats>) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.timeout));
        // Plain-http upstreams never reach the TLS config; https ones were given theirs when the config loaded.
        let tls = config.tls.as_deref().cloned().unwrap_or_else(|| {
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        });
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let pool = Client::builder(TokioExecutor::new())
            // hyper reads a response head into a buffer of at most this size: no larger than the response bound
            // (within hyper's minimum and its default), so a head cannot hold more than the bound either.
            .http1_max_buf_size(
                config
                    .max_response_bytes
                    .clamp(MIN_HEAD_BUFFER, DEFAULT_HEAD_BUFFER),
            )
            .pool_max_idle_per_host(config.pool_max_idle)
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        stats.in_flight(&config.name, 0);
        UpstreamClient {
            config,
            pool,
            in_flight: Mutex::default(),
            stats,
        }
    }

    /// Counts a request that was cancelled (no event followed).
    pub fn cancelled(&self) {
        self.stats.cancelled(&self.config.name);
    }

    /// Takes a place under the in-flight cap for a request of the route at `route`, or says which cap is full: the
    /// upstream's `max_in_flight`, or the route's share of it. The place keeps `live` (the route's count of the
    /// request) until it is given back; a refused request's count ends at once.
    pub fn acquire(self: &Arc<Self>, route: &str, live: Live) -> Result<InFlight, NoPlace> {
        {
            let mut counts = lock(&self.in_flight);
            if counts.total >= self.config.max_in_flight {
                return Err(NoPlace::Upstream);
            }
            let mine = counts.per_route.get(route).copied().unwrap_or(0);
            if mine >= self.config.max_in_flight_per_route {
                return Err(NoPlace::RouteShare);
            }
            counts.total += 1;
            counts.per_route.insert(route.to_owned(), mine + 1);
        }
        self.stats.in_flight(&self.config.name, 1);
        Ok(InFlight {
            client: self.clone(),
            route: route.to_owned(),
            _live: live,
        })
    }

    /// Checks a plugin's request and builds it against this upstream's scheme, authority and base path.
    pub fn prepare(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout_ms: Option<u32>,
    ) -> Result<OutboundRequest, RequestRefusal> {
        let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        if body.len().saturating_add(header_bytes) > self.config.max_request_bytes {
            return Err(RequestRefusal::TooLarge);
        }
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| RequestRefusal::InvalidRequest)?;
        if matches!(method, http::Method::CONNECT | http::Method::TRACE) || !stays_under_base(path)
        {
            return Err(RequestRefusal::InvalidRequest);
        }
        let path_and_query = PathAndQuery::try_from(format!("{}{path}", self.config.base_path))
            .map_err(|_| RequestRefusal::InvalidRequest)?;
        let uri = http::Uri::builder()
            .scheme(self.config.scheme.clone())
            .authority(self.config.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| RequestRefusal::InvalidRequest)?;
        let mut request = http::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let map = request.headers_mut();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| RequestRefusal::InvalidRequest)?;
            let value = HeaderValue::from_str(value).map_err(|_| RequestRefusal::InvalidRequest)?;
            if !DROPPED_HEADERS.contains(&name.as_str())
                && !REROUTING_HEADERS.contains(&name.as_str())
            {
                map.append(name, value);
            }
        }
        let asked = timeout_ms.map_or(self.config.timeout, |ms| {
            Duration::from_millis(ms.into()).max(Duration::from_millis(1))
        });
        Ok(OutboundRequest {
            request,
            timeout: asked.min(self.config.timeout),
        })
    }

    /// Runs a prepared request to its end: the whole response (head and body at most `max_response_bytes`) or an error,
    /// within its timeout. Counted in /metrics by outcome and latency.
    pub(crate) async fn execute(
        &self,
        outbound: OutboundRequest,
    ) -> Result<UpstreamResponse, HttpError> {
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(outbound.timeout, self.run(outbound.request))
            .await
            .unwrap_or(Err(HttpError::Timeout));
        let outcome = result
            .as_ref()
            .map_or_else(HttpError::outcome, |_| "response");
        self.stats
            .finished(&self.config.name, outcome, started.elapsed());
        result
    }

    async fn run(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<UpstreamResponse, HttpError> {
        let response = self.pool.request(request).await.map_err(classify)?;
        let (parts, mut body) = response.into_parts();
        // The headers count toward the bound as they would be written (`name: value` and a line end): a backend
        // cannot make the gateway hold more than `max_response_bytes` per answer by moving its bulk into headers.
        let head_bytes: usize = parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        let max = self
            .config
            .max_response_bytes
            .checked_sub(head_bytes)
            .ok_or(HttpError::ResponseTooLarge)?;
        let announced = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|len| len > max as u64) {
            return Err(HttpError::ResponseTooLarge);
        }
        let mut buffer = BytesMut::new();
        // Bounded: every turn consumes a frame of the body, whose total is capped below.
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| HttpError::Protocol(root_cause(&e)))?;
            if let Ok(data) = frame.into_data() {
                if buffer.len() + data.len() > max {
                    return Err(HttpError::ResponseTooLarge);
                }
                buffer.extend_from_slice(&data);
            }
        }
        // Hop-by-hop headers describe the gateway's connection to the upstream, not the answer.
        let headers = parts
            .headers
            .iter()
            .filter(|(n, _)| !DROPPED_HEADERS[2..].contains(&n.as_str()))
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        Ok(UpstreamResponse {
            status: parts.status.as_u16(),
            headers,
            body: buffer.freeze(),
        })
    }
}

/// Whether `path` (with its query) is a path under the upstream's base: it starts with `/`, has no fragment, and no
/// segment a backend could resolve upward — `..` or `.`, also percent-encoded, encoded more than once (`%252e`,
/// which a proxy in front of the backend decodes once more) or followed by `;parameters` (which Java servers
/// strip) — and no encoded slash or backslash some servers treat as a separator, so that `/api` + `/../admin`
/// cannot reach `/admin`.
fn stays_under_base(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let path_only = rest.split('?').next().unwrap_or("");
    if path.contains('#') || path_only.contains('\\') {
        return false;
    }
    path_only.split('/').all(|segment| {
        // `%25` is an encoded `%`: undo every layer of it, so `%25252e` is judged as `%2e`. Bounded: each turn
        // shortens the segment.
        let mut segment = segment.to_ascii_lowercase();
        while segment.contains("%25") {
            segment = segment.replace("%25", "%");
        }
        let decoded = segment.replace("%2e", ".").replace("%3b", ";");
        let name = decoded.split(';').next().unwrap_or("");
        name != "." && name != ".." && !decoded.contains("%2f") && !decoded.contains("%5c")
    })
}

/// What went wrong, as the plugin sees it: a TLS failure anywhere in the chain, a response head larger than the
/// read buffer (a response too large), else a failure to connect, else broken HTTP.
fn classify(error: hyper_util::client::legacy::Error) -> HttpError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    // Bounded by the error chain's length.
    while let Some(e) = cause {
        if let Some(tls) = tls_error(e) {
            return HttpError::Tls(tls.to_string());
        }
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse_too_large)
        {
            return HttpError::ResponseTooLarge;
        }
        cause = e.source();
    }
    if error.is_connect() {
        HttpError::ConnectFailed(root_cause(&error))
    } else {
        HttpError::Protocol(root_cause(&error))
    }
}

/// The rustls error inside `error`, looking through the `io::Error`s the connector wraps it in (an `io::Error`'s
/// `source` skips the error it wraps, so the chain alone does not reach it).
fn tls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = error;
    // Bounded: the connector wraps twice.
    for _ in 0..8 {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = current.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
    None
}

/// The innermost error's message, which says what actually failed ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::stays_under_base;

    #[test]
    fn a_path_cannot_climb_out_of_the_base() {
        for ok in [
            "/",
            "/echo?x=1",
            "/a/b.c/d",
            "/a?next=../x",
            "/..a/b",
            "//evil.example/x",
            "/files/100%25",
            "/a%25b/c",
        ] {
            assert!(stays_under_base(ok), "{ok}");
        }
        for bad in [
            "echo",
            "/../admin",
            "/a/../../b",
            "/a/..",
            "/./a",
            "/%2e%2e/admin",
            "/%2E./x",
            "/a%2f..%2fb",
            "/a\\..\\b",
            "/a#frag",
            "/..;/admin",
            "/%2e%2e;x/admin",
            "/.;/a",
            "/..%3b/admin",
            "/%252e%252e/admin",
            "/a/%252E%252e/b",
            "/%25252e%25252e/admin",
            "/.%252e/admin",
            "/a%252f..%252fb",
            "/%252e%252e%253b/admin",
        ] {
            assert!(!stays_under_base(bad), "{bad}");
        }
    }
}

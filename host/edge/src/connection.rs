//! One client connection from accept to the WebSocket session: TLS, the upgrade request, the admission checks,
//! and the HTTP answer for everything that does not become a session.
//!
//! The handshake runs in the task the worker spawned for the accepted socket. A connection that upgrades gets a
//! task of its own for its session, holding exactly the session's state, and the handshake task ends: an open
//! connection costs neither the memory of the largest state the handshake ever had, nor pointer hops through it on
//! every message.

use crate::compression::Compressing;
use crate::context::{ListenerOptions, WorkerContext};
use crate::proxy::{self, read_proxy_header};
use crate::session::{Holds, Session};
use crate::upgrade::{self, Answer};
use crate::verdict::{self, Asked, Decision, Registration};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use wssgate_config::ClientAddress;
use wssgate_config::limits::Limits;
use wssgate_deflate::reader::Limits as ReaderLimits;
use wssgate_hub::ConnectionDetails;
use wssgate_hub::admission::Refusal;
use wssgate_hub::metrics::{CapHit, Rejection};

/// Bytes tungstenite reads from a plain socket at a time. Its default (128 KiB) would be what a connection costs at
/// rest.
const PLAIN_READ_CHUNK: usize = 4 * 1024;
/// Bytes tungstenite takes at a time from rustls, which has already read the socket in 4 KiB reads: a smaller
/// chunk costs only a few more copies out of rustls' buffer for large messages, and 3 KiB less per connection.
const TLS_READ_CHUNK: usize = 1024;
/// Bytes tungstenite collects before it writes on its own; the session flushes once per batch anyway.
const WRITE_BUFFER: usize = 64 * 1024;

/// Serves one accepted TCP connection up to its upgrade; its session then runs as a task of its own. `done` is
/// dropped when the connection has ended.
pub(crate) async fn serve(
    mut tcp: TcpStream,
    mut peer: SocketAddr,
    listener: Arc<ListenerOptions>,
    worker: Rc<WorkerContext>,
    done: mpsc::Sender<()>,
) {
    let _ = tcp.set_nodelay(true);
    // The limits as of this connection's start: a reload applies to the next connection.
    let limits = worker.limits.borrow().clone();
    let trusted = listener.trusted_proxies.trusts(peer.ip());
    // One address may hold only so many handshakes open at once (a PROXY header, TLS and the upgrade request), so
    // it cannot pin thousands of half-open connections; counted before a byte is read. A trusted proxy speaks for
    // many clients and is exempt.
    let _handshake = if trusted {
        None
    } else {
        match worker.admission.begin_handshake(peer.ip()) {
            Some(ticket) => Some(ticket),
            None => {
                worker.metrics.cap_hit(worker.index, CapHit::Handshakes);
                tracing::debug!(%peer, "too many handshakes in progress from this address");
                return;
            }
        }
    };
    if listener.client_address == Some(ClientAddress::ProxyProtocol) {
        // Only a trusted proxy may open a PROXY listener's connection: anyone else could make the gateway wait for
        // a header of up to 64 KiB, and has no address of another to report anyway.
        if !trusted {
            worker
                .metrics
                .rejected(worker.index, Rejection::UntrustedPeer);
            tracing::debug!(%peer, "closed: not a trusted proxy, on a PROXY-protocol listener");
            return;
        }
        match timeout(limits.upgrade_timeout(), read_proxy_header(&mut tcp)).await {
            // `UNKNOWN` or `LOCAL` names no client: the proxy is the peer, and no request header is believed.
            Ok(Ok(client)) => peer = client.unwrap_or(peer),
            Ok(Err(e)) => {
                tracing::debug!(%peer, "bad PROXY header: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "no PROXY header in time");
                return;
            }
        }
    }
    match &listener.tls {
        None => serve_http(tcp, peer, &listener, limits, worker, done).await,
        Some(acceptor) => {
            match timeout(limits.tls_handshake_timeout(), acceptor.accept(tcp)).await {
                Ok(Ok(mut stream)) => {
                    // A TLS-ALPN-01 validation ends with the handshake.
                    if stream.get_ref().1.alpn_protocol() == Some(crate::acme::ACME_TLS_ALPN) {
                        let _ = stream.shutdown().await;
                        return;
                    }
                    serve_http(stream, peer, &listener, limits, worker, done).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

/// Reads the upgrade request and answers it; when the answer is 101, starts the session's task.
async fn serve_http<S: AsyncRead + AsyncWrite + Unpin + 'static>(
    mut stream: S,
    peer: SocketAddr,
    listener: &ListenerOptions,
    limits: Arc<Limits>,
    worker: Rc<WorkerContext>,
    done: mpsc::Sender<()>,
) {
    // The routes as of now; this connection keeps them (and its plugin instance) even if a reload replaces them.
    let routes = worker.routes.borrow().clone();
    let (head, rest) =
        match timeout(limits.upgrade_timeout(), upgrade::read_head(&mut stream)).await {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                if let Some(answer) = upgrade::head_error(&e) {
                    let _ = upgrade::respond(&mut stream, &answer).await;
                }
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "no complete request within {:?}", limits.upgrade_timeout());
                return;
            }
        };
    let client = proxy::client_address(
        listener.client_address,
        &listener.trusted_proxies,
        peer,
        &head.headers,
    );
    let mut answer = upgrade::decide(&head, &routes);
    if matches!(answer, Answer::Upgrade { .. }) && worker.admission.is_throttled(client.ip()) {
        worker.metrics.cap_hit(worker.index, CapHit::TrapThrottled);
        tracing::debug!(%client, "upgrade refused: this address's clients keep making plugins trap");
        answer = upgrade::too_many_requests(limits.trap_cooloff());
    }
    let mut ticket = None;
    let mut instance = None;
    if let Answer::Upgrade { route, .. } = &answer {
        instance = route.pick_instance();
        if instance.is_none() {
            tracing::warn!(%client, route = %route.path, "connection refused: the route's plugin is down");
            worker.metrics.rejected(worker.index, Rejection::PluginDown);
            answer = upgrade::unavailable("the plugin of this route is restarting\n");
        }
    }
    if let (Answer::Upgrade { route, .. }, Some(_)) = (&answer, &instance) {
        match worker
            .admission
            .admit(client.ip(), (&route.path, route.max_connections_per_ip))
        {
            Ok(admitted) => ticket = Some(admitted),
            Err(refusal) => {
                tracing::warn!(%client, route = %route.path, "connection refused: {refusal:?}");
                worker.metrics.rejected(
                    worker.index,
                    match refusal {
                        Refusal::TooManyConnections => Rejection::TooManyConnections,
                        Refusal::TooManyFromAddress => Rejection::TooManyFromAddress,
                    },
                );
                answer = upgrade::unavailable(match refusal {
                    Refusal::TooManyConnections => "too many connections\n",
                    Refusal::TooManyFromAddress => "too many connections from your address\n",
                });
            }
        }
    }
    if let Answer::Error { status, .. } = &answer {
        let why = match *status {
            403 => Rejection::Origin,
            429 => Rejection::Throttled,
            _ => Rejection::BadRequest,
        };
        worker.metrics.rejected(worker.index, why);
    }
    let (route, accept_key, subprotocol, deflate, instance, ticket) =
        match (answer, instance, ticket) {
            (
                Answer::Upgrade {
                    route,
                    accept_key,
                    subprotocol,
                    deflate,
                },
                Some(instance),
                Some(ticket),
            ) => (route, accept_key, subprotocol, deflate, instance, ticket),
            // Every refusal above replaced the upgrade with its error answer.
            (answer, _, _) => {
                if upgrade::respond(&mut stream, &answer).await.is_ok() {
                    let _ = stream.shutdown().await;
                }
                return;
            }
        };
    let details = Arc::new(ConnectionDetails {
        route: route.path.clone(),
        path: head.path,
        query: head.query,
        headers: head.headers,
        remote_address: client.to_string(),
        client_ip: client.ip(),
        subprotocol: subprotocol.clone(),
        connected_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        traffic: Default::default(),
    });
    let slot = worker.metrics.slot(&route.path);
    let served_by = instance.borrow().uid();
    let registration = Registration::open(
        &worker,
        (&route.path, served_by),
        limits.max_outbound_bytes,
        details.clone(),
    );
    let mut early = rest;
    let asked = Asked {
        instance: &instance,
        worker: &worker,
        slot,
        accept_timeout: route.accept_timeout,
    };
    if let Decision::Refuse(answer) =
        verdict::ask(&mut stream, &mut early, &registration, &details, asked).await
    {
        if let Some(answer) = answer {
            worker.metrics.rejected(worker.index, Rejection::Plugin);
            if upgrade::respond(&mut stream, &answer).await.is_ok() {
                let _ = stream.shutdown().await;
            }
        }
        return;
    }
    worker.hub.opened(registration.id);
    let compression = route.compression;
    let open = Answer::Upgrade {
        route,
        accept_key,
        subprotocol,
        deflate: deflate.clone(),
    };
    if upgrade::respond(&mut stream, &open).await.is_err() {
        // The plugin accepted the connection, so its end reaches the plugin as for any other.
        let _ = instance
            .borrow_mut()
            .on_close(registration.id, 1006, "connection lost");
        return;
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(if listener.tls.is_some() {
            TLS_READ_CHUNK
        } else {
            PLAIN_READ_CHUNK
        })
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_frame_bytes));
    let holds = Holds {
        generation: routes,
        ticket,
        done,
        registration,
    };
    let Some(agreement) = deflate else {
        let ws =
            WebSocketStream::from_partially_read(stream, early, Role::Server, Some(config)).await;
        let session = Session::open(ws, slot, instance, worker, limits, holds, details, None);
        tokio::task::spawn_local(session.run());
        return;
    };
    // A compressed connection reads through the inflating reader, which takes the early bytes too.
    let compressing = Compressing::new(agreement, &compression);
    let reader_limits = ReaderLimits {
        max_frame_bytes: limits.max_frame_bytes,
        max_message_bytes: limits.max_message_bytes,
    };
    let reader = compressing.reader(stream, early, &worker.codecs, reader_limits);
    let ws = WebSocketStream::from_raw_socket(reader, Role::Server, Some(config)).await;
    let session = Session::open(
        ws,
        slot,
        instance,
        worker,
        limits,
        holds,
        details,
        Some(compressing),
    );
    tokio::task::spawn_local(session.run());
}

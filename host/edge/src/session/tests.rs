//! The session's frame handling without a network: sessions over in-memory pipes, a real plugin (`probe`, built
//! from source) on a real worker context, and a client that writes and reads raw frames, so the tests see exactly
//! what the session writes and when — batching, the close handshake, the close codes of RFC 6455, rate limits,
//! heartbeats and slow consumers.
//!
//! Two connections share the probe instance in most tests: the probe tells every other open connection
//! `closed <id> <code> <reason>` from its on-close, which is how a test sees the end a session reported.

use super::*;
use crate::context::WorkerContext;
use crate::verdict::Registration;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use wssgate_hub::Hub;
use wssgate_hub::admission::Admission;
use wssgate_hub::metrics::Metrics;
use wssgate_runtime::owned::InstanceAddress;
use wssgate_runtime::plugin::{HostLinks, PluginRuntime, RouteContext, Verdict};
use wssgate_runtime::upstream::WorkerUpstreams;
use wssgate_runtime::worker::Worker;

mod allocations;

const ROUTE: &str = "/probe";
/// Bounds every wait on the client side, so a session that never answers fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// One worker with one probe instance; sessions are opened on it with [`Bench::open`].
struct Bench {
    worker: Rc<WorkerContext>,
    instance: Rc<RefCell<PluginInstance>>,
    limits: Arc<Limits>,
    _shutdown: tokio::sync::watch::Sender<bool>,
    done: mpsc::Sender<()>,
}

impl Bench {
    fn new(limits: Limits) -> Bench {
        let limits = Arc::new(limits);
        let metrics = Arc::new(Metrics::new(vec![ROUTE.into()], 1));
        let (hub, _deliveries) = Hub::new(1, limits.max_worker_queue_bytes, metrics.clone());
        let admission = Admission::new(&limits);
        let (events, _due) = tokio::sync::mpsc::unbounded_channel();
        let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        let local = Worker::new(0, metrics.clone());
        Worker::enter(&local);
        let upstreams = Arc::new(WorkerUpstreams::new(&[], &metrics.upstreams));
        let links = HostLinks {
            metrics: metrics.clone(),
            worker: 0,
            hub: hub.clone(),
            address: InstanceAddress {
                events: events.clone(),
                generation: 0,
                route_index: 0,
                instance_index: 0,
            },
            upstreams: upstreams.clone(),
            limits: limits.clone(),
            admission: admission.clone(),
            store: None,
        };
        let runtime = PluginRuntime::new(false, None).expect("engine");
        runtime.start_epoch_ticker();
        let template = runtime
            .load(&wssgate_tests::plugin("probe"))
            .expect("loading probe");
        let route = Arc::new(RouteContext {
            index: 0,
            path: ROUTE.into(),
            plugin: "probe.wasm".into(),
            settings: BTreeMap::new(),
            upstreams: Vec::new(),
            max_memory_bytes: 64 << 20,
            event_deadline: Duration::from_millis(500),
            fuel: None,
            restart_backoff: Duration::from_secs(60),
            fuel_metering: false,
            memory: Arc::new(wssgate_storage::Namespace {
                route: ROUTE.into(),
                history: None,
                storage: None,
            }),
        });
        let instance = PluginInstance::new(template, route, links, local.clone()).expect("probe");
        let worker = Rc::new(WorkerContext {
            index: 0,
            local,
            metrics,
            routes: RefCell::new(Rc::new(Routes::new(Vec::new()))),
            generations: RefCell::default(),
            limits: RefCell::new(limits.clone()),
            listeners: RefCell::new(Vec::new()),
            admission,
            hub,
            shutdown,
            events,
            upstreams,
            codecs: crate::compression::WorkerCodecs::new(),
            store: None,
        });
        Bench {
            worker,
            instance: Rc::new(RefCell::new(instance)),
            limits,
            _shutdown: shutdown_tx,
            done: mpsc::channel(1).0,
        }
    }

    /// Opens a connection the probe accepted, over a pipe of `pipe_bytes`; returns its id, its session (to be run)
    /// and the client's end, which counts the server's flushes.
    async fn open(&self, pipe_bytes: usize) -> (ConnectionId, Session<Counted>, Client) {
        let details = details();
        let uid = self.instance.borrow().uid();
        let registration = Registration::open(
            &self.worker,
            (ROUTE, uid),
            self.limits.max_outbound_bytes,
            details.clone(),
        );
        let id = registration.id;
        self.worker.hub.opened(id);
        assert!(matches!(
            self.instance.borrow_mut().on_connect(id, &details),
            Ok(Verdict::Accept)
        ));
        let (server, client) = tokio::io::duplex(pipe_bytes);
        let flushes = Rc::new(std::cell::Cell::new(0));
        let server = Counted {
            inner: server,
            flushes: flushes.clone(),
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.limits.max_message_bytes))
            .max_frame_size(Some(self.limits.max_frame_bytes));
        let ws = WebSocketStream::from_raw_socket(server, Role::Server, Some(config)).await;
        let holds = Holds {
            registration,
            generation: self.worker.routes.borrow().clone(),
            ticket: self
                .worker
                .admission
                .admit([127, 0, 0, 1].into(), (ROUTE, 0))
                .expect("admitted"),
            done: self.done.clone(),
        };
        let session = Session::open(
            ws,
            0,
            self.instance.clone(),
            self.worker.clone(),
            self.limits.clone(),
            holds,
            details,
            None,
        );
        let client = Client {
            io: client,
            buffer: Vec::new(),
            flushes,
        };
        (id, session, client)
    }
}

/// The session's end of the pipe, counting flushes: a flush is what ends a batch of writes.
struct Counted {
    inner: DuplexStream,
    flushes: Rc<std::cell::Cell<usize>>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flushes.set(self.flushes.get() + 1);
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A client that speaks raw frames, so it can send what a library would refuse to and leave pings unanswered.
struct Client {
    io: DuplexStream,
    /// Bytes read and not yet parsed into a frame.
    buffer: Vec<u8>,
    flushes: Rc<std::cell::Cell<usize>>,
}

/// One frame as the client builds it: masked, as RFC 6455 requires of clients.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

impl Client {
    async fn send_raw(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.io.write_all(bytes))
            .await
            .expect("the session stopped reading")
            .expect("writing to the pipe");
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.send_raw(&frame(opcode, payload)).await;
    }

    /// The next frame the server wrote: its opcode and payload (servers do not mask).
    async fn next(&mut self) -> (u8, Vec<u8>) {
        loop {
            if let Some((header, length)) = parse_header(&self.buffer)
                && self.buffer.len() >= header + length
            {
                let opcode = self.buffer[0] & 0x0f;
                let payload = self.buffer[header..header + length].to_vec();
                self.buffer.drain(..header + length);
                return (opcode, payload);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = timeout(WAIT, self.io.read(&mut chunk))
                .await
                .expect("no frame from the session")
                .expect("reading the pipe");
            assert!(n > 0, "the session ended without sending a frame");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// The session ends without writing another frame: the pipe closes.
    async fn ends(&mut self) {
        let mut chunk = [0u8; 1024];
        let n = timeout(WAIT, self.io.read(&mut chunk))
            .await
            .expect("the session did not end")
            .expect("reading the pipe");
        assert_eq!(n, 0, "the session wrote {:?}", &chunk[..n]);
    }

    async fn text(&mut self) -> String {
        let (opcode, payload) = self.next().await;
        assert_eq!(opcode, TEXT, "expected a text frame, got {payload:?}");
        String::from_utf8(payload).unwrap()
    }

    /// The next frame is a close: its code and reason.
    async fn close(&mut self) -> (u16, String) {
        let (opcode, payload) = self.next().await;
        assert_eq!(opcode, CLOSE, "expected a close frame, got {payload:?}");
        (
            u16::from_be_bytes([payload[0], payload[1]]),
            String::from_utf8(payload[2..].to_vec()).unwrap(),
        )
    }
}

/// The header length and payload length of the frame at the start of `bytes`, once its header is complete.
fn parse_header(bytes: &[u8]) -> Option<(usize, usize)> {
    let short = *bytes.get(1)? & 0x7f;
    match short {
        126 => Some((
            4,
            u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]) as usize,
        )),
        127 => Some((
            10,
            u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize,
        )),
        n => Some((2, n as usize)),
    }
}

/// What every test connection opened with: a client on 127.0.0.1 at the probe's route.
fn details() -> Arc<ConnectionDetails> {
    Arc::new(ConnectionDetails {
        route: ROUTE.into(),
        path: ROUTE.into(),
        query: String::new(),
        headers: Vec::new(),
        remote_address: "127.0.0.1:1000".into(),
        client_ip: [127, 0, 0, 1].into(),
        subprotocol: None,
        connected_at_ms: 0,
        traffic: Default::default(),
    })
}

/// Runs `session` to its end alongside `client_side`, both on this thread, within `WAIT`.
async fn drive<F: std::future::Future<Output = ()>>(session: Session<Counted>, client_side: F) {
    timeout(WAIT * 2, async {
        tokio::join!(session.run(), client_side);
    })
    .await
    .expect("the session ended");
}

#[tokio::test(flavor = "current_thread")]
async fn pipelined_messages_are_answered_in_order_with_one_flush_per_read() {
    let bench = Bench::new(Limits::default());
    let (_, session, mut client) = bench.open(1 << 20).await;
    drive(session, async move {
        // The session's first flush happens before anything arrives; let it pass so the count below is the batch's.
        tokio::task::yield_now().await;
        let before = client.flushes.get();
        let mut burst = Vec::new();
        for i in 0..200 {
            burst.extend(frame(TEXT, format!("m{i}").as_bytes()));
        }
        client.send_raw(&burst).await;
        for _ in 0..200 {
            assert_eq!(client.text().await, "?");
        }
        let flushes = client.flushes.get() - before;
        assert!(
            flushes <= 2,
            "200 pipelined messages cost {flushes} flushes, not one per read"
        );
        client.send(CLOSE, &close_payload(1000, "")).await;
        assert_eq!(client.close().await.0, 1000);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_clients_close_is_answered_and_its_code_reaches_on_close() {
    let bench = Bench::new(Limits::default());
    let (a, session_a, mut client_a) = bench.open(1 << 16).await;
    let (_, session_b, mut client_b) = bench.open(1 << 16).await;
    tokio::join!(
        drive(session_a, async move {
            client_a.send(CLOSE, &close_payload(4100, "bye")).await;
            assert_eq!(client_a.close().await, (4100, "bye".into()));
        }),
        drive(session_b, async move {
            assert_eq!(client_b.text().await, format!("closed {a} 4100 bye"));
            // A close without a code is answered without one.
            client_b.send(CLOSE, &[]).await;
            let (opcode, payload) = client_b.next().await;
            assert_eq!((opcode, payload.len()), (CLOSE, 0));
        }),
    );
}

#[tokio::test(flavor = "current_thread")]
async fn invalid_utf8_closes_with_1007_after_the_answers_to_earlier_messages() {
    let bench = Bench::new(Limits::default());
    let (a, session_a, mut client_a) = bench.open(1 << 16).await;
    let (_, session_b, mut client_b) = bench.open(1 << 16).await;
    tokio::join!(
        drive(session_a, async move {
            let mut burst = frame(TEXT, b"first");
            burst.extend(frame(TEXT, &[0x66, 0xff, 0x66]));
            client_a.send_raw(&burst).await;
            assert_eq!(client_a.text().await, "?");
            assert_eq!(client_a.close().await, (1007, "invalid UTF-8".into()));
            // The stream is unusable after a protocol error: the session does not wait for an answer.
            client_a.ends().await;
        }),
        drive(session_b, async move {
            assert_eq!(
                client_b.text().await,
                format!("closed {a} 1007 invalid UTF-8")
            );
            client_b.send(CLOSE, &close_payload(1000, "")).await;
            client_b.close().await;
        }),
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_message_over_the_limit_closes_with_1009_and_a_bad_frame_with_1002() {
    let limits = Limits {
        max_message_bytes: 1024,
        max_frame_bytes: 1024,
        ..Limits::default()
    };
    let bench = Bench::new(limits);
    let (_, session, mut client) = bench.open(1 << 16).await;
    drive(session, async move {
        client.send(BINARY, &[0u8; 2000]).await;
        assert_eq!(client.close().await, (1009, "message too big".into()));
    })
    .await;

    let (_, session, mut client) = bench.open(1 << 16).await;
    drive(session, async move {
        // An unmasked client frame breaks RFC 6455 §5.1.
        client.send_raw(&[0x81, 0x02, b'h', b'i']).await;
        assert_eq!(client.close().await, (1002, "protocol error".into()));
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn messages_and_pings_over_the_rate_limit_close_with_1008() {
    let limits = Limits {
        max_messages_per_sec: 5,
        ..Limits::default()
    };
    let bench = Bench::new(limits);
    for opcode in [TEXT, PING] {
        let (_, session, mut client) = bench.open(1 << 16).await;
        drive(session, async move {
            let mut burst = Vec::new();
            for _ in 0..20 {
                burst.extend(frame(opcode, b"x"));
            }
            client.send_raw(&burst).await;
            let mut answers = 0;
            let code = loop {
                match client.next().await {
                    (CLOSE, payload) => break u16::from_be_bytes([payload[0], payload[1]]),
                    _ => answers += 1,
                }
            };
            assert_eq!(code, 1008, "opcode {opcode}");
            if opcode == TEXT {
                // The five within the limit were answered; nothing after the sixth reached the plugin.
                assert_eq!(answers, 5);
            }
            client.send(CLOSE, &close_payload(1008, "")).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_plugins_close_waits_for_the_answer_and_ends_without_one_after_the_timeout() {
    let bench = Bench::new(Limits::default());
    let (a, session_a, mut client_a) = bench.open(1 << 16).await;
    let (_, session_b, mut client_b) = bench.open(1 << 16).await;
    tokio::join!(
        drive(session_a, async move {
            client_a.send(TEXT, b"close").await;
            assert_eq!(client_a.close().await, (4002, "closed by plugin".into()));
            // The client never answers, and what it sends meanwhile is not delivered to the plugin: the session
            // writes nothing more and gives up after its close timeout (time is paused and jumps there).
            client_a.send(TEXT, b"info").await;
            client_a.ends().await;
        }),
        drive(session_b, async move {
            let started = Instant::now();
            assert_eq!(
                client_b.text().await,
                format!("closed {a} 4002 closed by plugin")
            );
            assert!(started.elapsed() >= CLOSE_TIMEOUT);
            client_b.send(CLOSE, &close_payload(1000, "")).await;
            client_b.close().await;
        }),
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_client_that_never_answers_pings_is_closed_with_1001() {
    let limits = Limits {
        ping_interval_ms: 1000,
        max_missed_pongs: 2,
        ..Limits::default()
    };
    let bench = Bench::new(limits);
    let (_, session, mut client) = bench.open(1 << 16).await;
    drive(session, async move {
        assert_eq!(client.next().await.0, PING);
        assert_eq!(client.next().await.0, PING);
        assert_eq!(client.close().await, (1001, "ping timeout".into()));
    })
    .await;

    // A client that answers stays: its pongs reset the count.
    let (_, session, mut client) = bench.open(1 << 16).await;
    drive(session, async move {
        for _ in 0..5 {
            let (opcode, payload) = client.next().await;
            assert_eq!(opcode, PING);
            client.send(0xA, &payload).await;
        }
        client.send(CLOSE, &close_payload(1000, "")).await;
        assert_eq!(client.close().await.0, 1000);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_stops_reading_is_closed_as_a_slow_consumer() {
    let limits = Limits {
        max_outbound_bytes: 256 * 1024,
        ..Limits::default()
    };
    let bench = Bench::new(limits);
    let (a, session_a, mut client_a) = bench.open(16 * 1024).await;
    let (_, session_b, mut client_b) = bench.open(1 << 16).await;
    tokio::join!(
        drive(session_a, async move {
            // 64 messages of 64 KiB: the pipe holds 16 KiB and the queue 256 KiB, and the client never reads.
            client_a
                .send(TEXT, format!("flood {a} 64 65536").as_bytes())
                .await;
            // The queue overflowed before anything was written: the client is told why, and nothing else.
            assert_eq!(client_a.close().await, (1008, SLOW_CONSUMER.into()));
            client_a.send(CLOSE, &close_payload(1008, "")).await;
            client_a.ends().await;
        }),
        drive(session_b, async move {
            assert_eq!(
                client_b.text().await,
                format!("closed {a} 1008 {SLOW_CONSUMER}")
            );
            client_b.send(CLOSE, &close_payload(1000, "")).await;
            client_b.close().await;
        }),
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_client_that_drops_the_connection_without_a_close_ends_with_1006_or_the_close_already_sent()
 {
    let bench = Bench::new(Limits::default());
    let (a, session_a, mut client_a) = bench.open(1 << 16).await;
    let (c, session_c, mut client_c) = bench.open(1 << 16).await;
    let (_, session_b, mut client_b) = bench.open(1 << 16).await;
    tokio::join!(
        drive(session_a, async move {
            client_a.send(TEXT, b"hi").await;
            assert_eq!(client_a.text().await, "?");
            // The client goes away mid-conversation (a killed app): its end of the pipe closes, no close frame.
            drop(client_a);
        }),
        drive(session_c, async move {
            // The plugin closes; the client hangs up instead of answering. The code the gateway sent stands.
            client_c.send(TEXT, b"close").await;
            assert_eq!(client_c.close().await, (4002, "closed by plugin".into()));
            drop(client_c);
        }),
        drive(session_b, async move {
            let mut seen = [client_b.text().await, client_b.text().await];
            seen.sort();
            let mut expected = [
                format!("closed {a} 1006 connection lost"),
                format!("closed {c} 4002 closed by plugin"),
            ];
            expected.sort();
            assert_eq!(seen, expected);
            client_b.send(CLOSE, &close_payload(1000, "")).await;
            client_b.close().await;
        }),
    );
}

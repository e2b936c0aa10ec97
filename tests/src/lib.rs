//! Helpers for the end-to-end tests: build the gateway and the plugins once, start the real `wssgate` binary on
//! loopback port 0 with a config the test writes, and connect real clients over real TLS.
//!
//! Every wait here is bounded: [`WAIT`] for network steps, [`START`] for a gateway to come up.

pub mod admin;
pub mod backend;
pub mod cluster;
pub mod languages;
pub mod nats;
pub mod nginx;
pub mod pebble;
pub mod ports;
pub mod process;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The longest any single network step of a test may take.
pub const WAIT: Duration = Duration::from_secs(10);
/// The longest a gateway may take to start (it compiles its plugins first).
pub const START: Duration = Duration::from_secs(60);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where Cargo builds the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The plugins the tests load, by crate name.
const PLUGINS: &[&str] = &[
    "echo-ok",
    "echo",
    "chat",
    "probe",
    "keeper",
    "needs-sockets",
    "not-a-plugin",
    "fanout",
    "deferred",
    "frozen-1-0",
    "frozen-1-1",
    "timers-without-events",
    "contract-0-3",
    "fetcher",
    "webhook",
    "http-without-events",
    "imports-unknown",
    "history-without-events",
    "storage-without-events",
    "frozen-1-2",
];

/// A `cargo` command as the test's own cargo would run it, without the variables Cargo sets for the test process:
/// passed on, they would make build scripts (ring's) see a changed environment and rebuild on every test run.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name.starts_with("CARGO_CRATE_")
            || name.starts_with("CARGO_BIN_")
            || name == "CARGO_PRIMARY_PACKAGE"
            || name == "OUT_DIR"
        {
            command.env_remove(&*name);
        }
    }
    command
}

/// Builds the gateway binary (debug) and every plugin (release wasm) once per test process; returns the binary.
pub fn gateway_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let run = |args: &[&str]| {
                let status = cargo()
                    .args(args)
                    .current_dir(workspace_root())
                    .status()
                    .unwrap_or_else(|e| panic!("running cargo {args:?}: {e}"));
                assert!(status.success(), "cargo {args:?} failed");
            };
            run(&["build", "--quiet", "-p", "wssgate", "--bin", "wssgate"]);
            let mut wasm = vec!["build", "--quiet", "--release", "--target", "wasm32-wasip2"];
            for p in PLUGINS {
                wasm.extend(["-p", p]);
            }
            run(&wasm);
            target_dir().join("debug/wssgate")
        })
        .clone()
}

/// The built wasm file of plugin crate `name` (e.g. `echo-ok`); a library's file name has `_` for `-`.
pub fn plugin(name: &str) -> PathBuf {
    gateway_binary();
    let release = target_dir().join("wasm32-wasip2/release");
    let library = release.join(format!("{}.wasm", name.replace('-', "_")));
    if library.is_file() {
        library
    } else {
        release.join(format!("{name}.wasm"))
    }
}

/// Runs `wssgate check` on `config`, written into `dir`; returns whether it passed, and its stdout then stderr.
pub fn check_config(dir: &Path, config: &str) -> (bool, String) {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    check_file(&path)
}

/// Runs `wssgate check --config path`; returns whether it passed, and its stdout then stderr.
pub fn check_file(path: &Path) -> (bool, String) {
    let out = Command::new(gateway_binary())
        .args(["check", "--config"])
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "check panicked:\n{text}");
    (out.status.success(), text)
}

/// A fresh folder under the system temp dir for one test's files.
///
/// The folders stay while their test process runs (a failing test's files can be read); the first call in a test
/// process removes those of test processes that have ended, so a run's scratch space is bounded by one test binary's
/// rather than growing with every binary (some hold a plugin project's `node_modules` or a venv).
pub fn scratch_dir(tag: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_scratch_of_ended_processes);
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("{SCRATCH_PREFIX}{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch dir");
    dir
}

const SCRATCH_PREFIX: &str = "wssgate-test-";

/// Removes the scratch folders whose test process (the pid in the name) is no longer running.
fn remove_scratch_of_ended_processes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SCRATCH_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM into `dir`.
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

impl TestCert {
    pub fn create(dir: &Path) -> TestCert {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let made =
            rcgen::generate_simple_self_signed(names).expect("generating a test certificate");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        TestCert {
            cert,
            key,
            der: made.cert.der().clone(),
        }
    }
}

/// The routes most tests use: `/wss` → echo-ok, `/echo` → echo, `/probe` → probe (with a subprotocol).
pub fn standard_routes() -> String {
    format!(
        r#"
[[route]]
path = "/wss"
plugin = "{}"

[[route]]
path = "/echo"
plugin = "{}"

[[route]]
path = "/probe"
plugin = "{}"
subprotocols = ["probe.v2", "probe.v1"]
"#,
        plugin("echo-ok").display(),
        plugin("echo").display(),
        plugin("probe").display()
    )
}

/// A running `wssgate serve` process, killed when dropped.
pub struct TestGateway {
    child: Child,
    /// The TLS listener's bound address.
    pub wss: SocketAddr,
    /// The plain-ws listener's bound address.
    pub ws: SocketAddr,
    /// The certificate the TLS listener serves, for clients to trust.
    pub cert: CertificateDer<'static>,
    /// Everything the gateway logged so far.
    log: Arc<Mutex<String>>,
    /// The config file it serves.
    config: PathBuf,
}

impl TestGateway {
    /// Starts a gateway with 2 workers, a TLS and a plain listener on 127.0.0.1:0, and `routes`.
    pub fn start(routes: &str) -> TestGateway {
        TestGateway::start_with("workers = 2\nshutdown_grace_ms = 3000\n", routes)
    }

    /// Starts a gateway with `top` (top-level keys) and `routes` around the two standard listeners.
    pub fn start_with(top: &str, routes: &str) -> TestGateway {
        TestGateway::start_full(top, "", routes)
    }

    /// Like [`TestGateway::start_with`], with `plain_extra` added to the plain listener's table.
    pub fn start_full(top: &str, plain_extra: &str, routes: &str) -> TestGateway {
        let dir = scratch_dir("gw");
        let cert = TestCert::create(&dir);
        let config = format!(
            "{top}\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n{plain_extra}\n{routes}",
            cert.cert.display(),
            cert.key.display()
        );
        TestGateway::launch(&dir, &config, &[], Some(cert.der))
    }

    /// Starts `wssgate serve` on `config` (written into `dir`) with `extra` arguments. The config must have one TLS
    /// and one plain listener. Without `cert`, the TLS listener's certificate is read from the development
    /// certificate the gateway generates in `dir`.
    pub fn launch(
        dir: &Path,
        config: &str,
        extra: &[&str],
        cert: Option<CertificateDer<'static>>,
    ) -> TestGateway {
        TestGateway::launch_wrapped(dir, config, &[], extra, cert)
    }

    /// Like [`TestGateway::launch`], with the gateway started by `wrapper` (a program and its arguments, which
    /// ends by executing the gateway in its own place, like `systemd-socket-activate`).
    pub fn launch_wrapped(
        dir: &Path,
        config: &str,
        wrapper: &[&str],
        extra: &[&str],
        cert: Option<CertificateDer<'static>>,
    ) -> TestGateway {
        let binary = gateway_binary();
        let config_path = dir.join("gateway.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(["serve", "--config"])
            .arg(&config_path)
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wssgate");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("");
                    let _ = addr_tx.send(url.to_owned());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (mut wss, mut ws) = (None, None);
        let deadline = Instant::now() + START;
        while wss.is_none() || ws.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let url = match addr_rx.recv_timeout(left) {
                Ok(url) => url,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "the gateway did not start within {START:?}; its log:\n{}",
                        log.lock().unwrap()
                    );
                }
            };
            if let Some(a) = url.strip_prefix("wss://") {
                wss = a.parse().ok();
            } else if let Some(a) = url.strip_prefix("ws://") {
                ws = a.parse().ok();
            }
        }
        let cert = cert.unwrap_or_else(|| {
            CertificateDer::from_pem_file(dir.join(".wssgate-dev-cert/localhost.pem"))
                .expect("reading the generated development certificate")
        });
        TestGateway {
            config: config_path,
            child,
            wss: wss.unwrap(),
            ws: ws.unwrap(),
            cert,
            log,
        }
    }

    /// Writes `config` as the gateway's config file in `dir` (the one it was launched with) and sends SIGHUP; waits
    /// (bounded) for the outcome: true when the reload was applied, false when it was rejected.
    pub fn reload(&self, dir: &Path, config: &str) -> bool {
        let count = |log: &str, needle: &str| log.matches(needle).count();
        let before = self.log();
        let (applied, rejected) = (
            count(&before, "reload complete"),
            count(&before, "reload rejected"),
        );
        std::fs::write(dir.join("gateway.toml"), config).unwrap();
        let _ = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + START;
        while Instant::now() < deadline {
            let log = self.log();
            if count(&log, "reload complete") > applied {
                return true;
            }
            if count(&log, "reload rejected") > rejected {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no reload outcome within {START:?}:\n{}", self.log());
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Keeps every thread of the gateway on `cpu`.
    pub fn pin_to_cpu(&self, cpu: usize) {
        let pinned = Command::new("taskset")
            .args([
                "-a",
                "-p",
                "-c",
                &cpu.to_string(),
                &self.child.id().to_string(),
            ])
            .stdout(Stdio::null())
            .status()
            .expect("running taskset");
        assert!(
            pinned.success(),
            "taskset could not pin the gateway to CPU {cpu}"
        );
    }

    /// The gateway process's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_field(&self.child.id().to_string(), "VmRSS")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("reading VmRSS")
    }

    /// What the gateway logged so far.
    /// The config file the gateway serves.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; false after [`WAIT`].
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the gateway") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not exit within {WAIT:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A TLS client that trusts this gateway's certificate.
    pub fn tls(&self) -> TlsConnector {
        trusting(&self.cert)
    }

    /// A TLS connection to the wss listener, before any HTTP.
    pub async fn tls_stream(&self) -> TlsStream<TcpStream> {
        let tcp = bounded(TcpStream::connect(self.wss))
            .await
            .expect("connecting");
        bounded(
            self.tls()
                .connect(ServerName::try_from("localhost").unwrap(), tcp),
        )
        .await
        .expect("TLS handshake")
    }

    /// A WebSocket client on the wss listener, at `path` (which may carry a query).
    pub async fn wss(&self, path: &str) -> WebSocketStream<TlsStream<TcpStream>> {
        self.wss_with(path, &[]).await
    }

    /// The upgrade's outcome on the wss listener: the WebSocket, or the HTTP status and body the gateway answered
    /// instead.
    pub async fn try_wss(
        &self,
        path: &str,
    ) -> Result<WebSocketStream<TlsStream<TcpStream>>, (u16, String)> {
        let url = format!("wss://localhost:{}{path}", self.wss.port());
        match try_handshake(self.tls_stream().await, &url, &[]).await {
            Ok(ws) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err((
                response.status().as_u16(),
                String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .into_owned(),
            )),
            Err(e) => panic!("the upgrade of {path} failed: {e}"),
        }
    }

    /// Like [`TestGateway::wss`], with extra request headers.
    pub async fn wss_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> WebSocketStream<TlsStream<TcpStream>> {
        let url = format!("wss://localhost:{}{path}", self.wss.port());
        handshake(self.tls_stream().await, &url, headers).await
    }

    /// A WebSocket client on the plain-ws listener from source address `source` (e.g. `127.0.0.2`), that first
    /// sends `prelude` (e.g. a PROXY header) and adds `headers` to the upgrade request.
    pub async fn ws_from(
        &self,
        source: &str,
        prelude: &[u8],
        path: &str,
        headers: &[(&str, &str)],
    ) -> WebSocketStream<TcpStream> {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(format!("{source}:0").parse().unwrap())
            .expect("binding the source address");
        let mut tcp = bounded(socket.connect(self.ws)).await.expect("connecting");
        bounded(tcp.write_all(prelude)).await.unwrap();
        handshake(tcp, &format!("ws://{}{path}", self.ws), headers).await
    }

    /// A WebSocket client on the plain-ws listener.
    pub async fn ws(&self, path: &str) -> WebSocketStream<TcpStream> {
        let tcp = bounded(TcpStream::connect(self.ws))
            .await
            .expect("connecting");
        handshake(tcp, &format!("ws://{}{path}", self.ws), &[]).await
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // The gateway's own account of what went wrong belongs next to the failed assertion.
            eprintln!("--- the gateway's log ---\n{}", self.log());
        }
    }
}

/// One CPU this process may run on.
pub fn allowed_cpu() -> usize {
    proc_status_field("self", "Cpus_allowed_list")
        .and_then(|list| list.trim().split([',', '-']).next()?.parse().ok())
        .expect("reading Cpus_allowed_list")
}

/// How many file descriptors process `pid` has open, from `/proc/PID/fd`. Fails the test when that cannot be read,
/// or lists none (a process that has exited but is not yet reaped): a count of 0 would make every "no more fds
/// than before" assertion hold whatever the gateway leaked.
pub fn open_fds(pid: u32) -> usize {
    let path = format!("/proc/{pid}/fd");
    let count = std::fs::read_dir(&path)
        .and_then(|fds| fds.collect::<std::io::Result<Vec<_>>>())
        .unwrap_or_else(|e| panic!("cannot count open fds: reading {path}: {e}"))
        .len();
    assert!(
        count > 0,
        "{path} lists no open fds: has process {pid} exited?"
    );
    count
}

/// The value of field `name` in `/proc/PROCESS/status` (`PROCESS` a pid or `self`).
fn proc_status_field(process: &str, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    status.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        (field == name).then(|| value.trim().to_owned())
    })
}

/// Busy loops pinned to one CPU, taking it from whatever else runs there; stopped when dropped, and each stops by
/// itself after a minute should the test die before that.
pub struct CpuHogs {
    loops: Vec<Child>,
}

impl CpuHogs {
    pub fn start(cpu: usize, count: usize) -> CpuHogs {
        let loops = (0..count)
            .map(|_| {
                Command::new("taskset")
                    .args(["-c", &cpu.to_string(), "bash", "-c"])
                    .arg("while [ $SECONDS -lt 60 ]; do :; done")
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("starting a busy loop with taskset and bash")
            })
            .collect();
        CpuHogs { loops }
    }
}

impl Drop for CpuHogs {
    fn drop(&mut self) {
        for hog in &mut self.loops {
            let _ = hog.kill();
            let _ = hog.wait();
        }
    }
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    url: &str,
    headers: &[(&str, &str)],
) -> WebSocketStream<S> {
    try_handshake(stream, url, headers)
        .await
        .expect("WebSocket handshake")
}

/// The WebSocket handshake, with the gateway's refusal (an HTTP status) as an error.
async fn try_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<WebSocketStream<S>, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(8 << 20))
        .max_frame_size(Some(8 << 20));
    let (ws, _response) = bounded(tokio_tungstenite::client_async_with_config(
        request,
        stream,
        Some(config),
    ))
    .await?;
    Ok(ws)
}

/// Writes a request and reads only the response head: after a 101 the connection stays open.
pub async fn raw_head<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> String {
    bounded(stream.write_all(request))
        .await
        .expect("writing the request");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if bounded(stream.read(&mut byte)).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A raw TCP connection to `address` that has completed the upgrade to `path`, for writing frames by hand.
pub async fn raw_websocket(address: SocketAddr, path: &str) -> TcpStream {
    let mut tcp = bounded(TcpStream::connect(address))
        .await
        .expect("connecting");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    bounded(tcp.write_all(request.as_bytes())).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        bounded(tcp.read_exact(&mut byte))
            .await
            .expect("reading the upgrade answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// Reads server frames until a close frame and returns its code (skipping data frames).
pub async fn raw_close_code(tcp: &mut TcpStream) -> u16 {
    raw_frames_until_close(tcp).await.1
}

/// Reads one server frame: its first byte (FIN, RSV1, opcode) and its payload.
pub async fn raw_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    bounded(tcp.read_exact(&mut header))
        .await
        .expect("reading a frame header");
    let len = match header[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            bounded(tcp.read_exact(&mut l)).await.unwrap();
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            bounded(tcp.read_exact(&mut l)).await.unwrap();
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    bounded(tcp.read_exact(&mut payload)).await.unwrap();
    (header[0], payload)
}

/// Reads server frames until a close frame: the frames before it (opcode and payload) and the close code.
pub async fn raw_frames_until_close(tcp: &mut TcpStream) -> (Vec<(u8, Vec<u8>)>, u16) {
    let mut frames = Vec::new();
    for _ in 0..1000 {
        let (first, payload) = raw_frame(tcp).await;
        if first & 0x0f == 0x8 {
            assert!(payload.len() >= 2, "a close frame without a code");
            return (frames, u16::from_be_bytes([payload[0], payload[1]]));
        }
        frames.push((first & 0x0f, payload));
    }
    panic!("no close frame among the first 1000 frames");
}

/// Writes `cert` as a PEM file `ca.pem` into `dir`, for clients in other languages to trust; returns its path.
pub fn ca_file(cert: &CertificateDer<'static>, dir: &Path) -> PathBuf {
    let path = dir.join("ca.pem");
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64(cert.as_ref())
    );
    std::fs::write(&path, pem).unwrap();
    path
}

/// Standard base64 with line breaks every 64 characters, for a PEM file.
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                TABLE[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out.as_bytes()
        .chunks(64)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A TLS connector that trusts `cert` only.
pub fn trusting(cert: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A wss client to `address` (e.g. a proxy in front of the gateway) from source address `source`, trusting `cert`.
pub async fn wss_from(
    address: SocketAddr,
    source: &str,
    cert: &CertificateDer<'static>,
    path: &str,
) -> WebSocketStream<TlsStream<TcpStream>> {
    try_wss_from(address, source, cert, path)
        .await
        .expect("WebSocket handshake")
}

/// Like [`wss_from`], with the gateway's refusal of the upgrade (e.g. HTTP 429) as an error.
pub async fn try_wss_from(
    address: SocketAddr,
    source: &str,
    cert: &CertificateDer<'static>,
    path: &str,
) -> Result<WebSocketStream<TlsStream<TcpStream>>, tokio_tungstenite::tungstenite::Error> {
    try_wss_from_with(address, source, cert, path, &[]).await
}

/// Like [`wss_from`], adding `headers` to the upgrade request (e.g. a forged `X-Real-IP`).
pub async fn wss_from_with(
    address: SocketAddr,
    source: &str,
    cert: &CertificateDer<'static>,
    path: &str,
    headers: &[(&str, &str)],
) -> WebSocketStream<TlsStream<TcpStream>> {
    try_wss_from_with(address, source, cert, path, headers)
        .await
        .expect("WebSocket handshake")
}

async fn try_wss_from_with(
    address: SocketAddr,
    source: &str,
    cert: &CertificateDer<'static>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<WebSocketStream<TlsStream<TcpStream>>, tokio_tungstenite::tungstenite::Error> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{source}:0").parse().unwrap())
        .expect("binding the source address");
    let tcp = bounded(socket.connect(address)).await.expect("connecting");
    let tls = bounded(trusting(cert).connect(ServerName::try_from("localhost").unwrap(), tcp))
        .await
        .expect("TLS handshake");
    try_handshake(
        tls,
        &format!("wss://localhost:{}{path}", address.port()),
        headers,
    )
    .await
}

/// Checks that a system tool a test needs is here, and fails the test naming it and its install command if not.
/// Tests that need one are `#[ignore]`d, so a plain `cargo test` reports them as ignored; `./test.sh` installs the
/// tools and runs them: a test that runs must never pass without doing its work.
pub fn require_tool(name: &str, path: &Path, install: &str) {
    require(
        &format!("{name} ({})", path.display()),
        path.exists(),
        install,
    );
}

/// Fails the test unless `python3` can import `websockets` (which ./test.sh installs).
pub fn require_python_websockets() {
    let present = Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .status();
    require(
        "python3 with `websockets`",
        present.is_ok_and(|s| s.success()),
        "pip install websockets",
    );
}

/// Fails the test unless Debian's Chromium and the Node packages that drive it (tests/interop/node) are installed.
pub fn require_chromium_and_playwright() {
    require_tool(
        "chromium",
        Path::new("/usr/bin/chromium"),
        "apt-get install chromium",
    );
    require(
        "node with `playwright-core`",
        workspace_root()
            .join("tests/interop/node/node_modules/playwright-core/package.json")
            .exists(),
        "cd tests/interop/node && npm ci",
    );
}

/// Like [`require_tool`], for a check the caller made: `present` says whether `what` is there.
pub fn require(what: &str, present: bool, install: &str) {
    assert!(
        present,
        "{what} is not installed, so this test cannot run: `./test.sh` installs it, or run `{install}`"
    );
}

/// Runs `future` with the [`WAIT`] timeout, panicking when it runs out.
pub async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("a network step timed out")
}

/// The next data or close message, skipping pings and pongs.
pub async fn next_message<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> Message {
    loop {
        let message = bounded(ws.next())
            .await
            .expect("the stream ended")
            .expect("reading a message");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// Sends `text` and returns the text that comes back.
pub async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    text: &str,
) -> String {
    bounded(ws.send(Message::text(text)))
        .await
        .expect("sending");
    match next_message(ws).await {
        Message::Text(reply) => reply.to_string(),
        other => panic!("expected a text reply to {text:?}, got {other:?}"),
    }
}

/// Waits for the close frame and returns its code and reason.
pub async fn expect_close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> (u16, String) {
    match next_message(ws).await {
        Message::Close(Some(frame)) => (frame.code.into(), frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Writes raw bytes and reads the whole answer until the server closes.
pub async fn raw_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> String {
    bounded(stream.write_all(request))
        .await
        .expect("writing the request");
    let mut answer = Vec::new();
    let _ = bounded(stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn open_fds_counts_a_live_process_and_fails_loudly_where_proc_cannot_be_read() {
        // Other unit tests open and close sockets meanwhile, so only: some, and no panic.
        assert!(super::open_fds(std::process::id()) >= 3);
        // No process has this pid (it is above the kernel's pid_max limit of 2^22).
        let missing = std::panic::catch_unwind(|| super::open_fds(u32::MAX - 1))
            .expect_err("counting the fds of no process");
        let message = missing
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert!(
            message.contains(&format!("/proc/{}/fd", u32::MAX - 1)),
            "{message}"
        );
    }
}

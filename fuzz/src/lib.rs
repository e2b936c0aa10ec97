//! # wssgate-fuzz: the fuzz targets
//!
//! One function per parser a stranger can reach, each taking arbitrary bytes, calling the real code (through the
//! crates' hidden `fuzzing` modules where the parser is private) and asserting what must hold beyond not panicking.
//! The fuzzer harnesses in `afl/` call them (built by `cargo afl`, see `run.sh`); `tests/replay.rs` runs every file
//! of `corpus/` and `regressions/` through them in the normal test suite. Inputs are plain bytes: where a target
//! takes several values, the first bytes choose them (see each target's doc), so seeds stay easy to write.

mod admin;
mod cluster;
mod config;
mod deflate;
mod upgrade;
mod webhook;

pub use admin::admin;
pub use cluster::{cluster_envelope, cluster_presence, cluster_publication};
pub use config::config;
pub use deflate::{deflate_inflate, deflate_offer};
pub use upgrade::{proxy, upgrade};
pub use webhook::webhook;

/// A fuzz target: it panics on an input that breaks a property.
pub type Target = fn(&[u8]);

/// Every target by name: the names of `corpus/` and `regressions/`'s folders and of `afl/`'s binaries.
pub const TARGETS: &[(&str, Target)] = &[
    ("upgrade", upgrade),
    ("proxy", proxy),
    ("admin", admin),
    ("cluster_publication", cluster_publication),
    ("cluster_presence", cluster_presence),
    ("cluster_envelope", cluster_envelope),
    ("webhook", webhook),
    ("deflate_offer", deflate_offer),
    ("deflate_inflate", deflate_inflate),
    ("config", config),
];

/// Splits `data` into messages, each written as its length (u16, big-endian) and its bytes, led by one byte the
/// target reads as it likes (whose sender, say); a message cut short ends the list. The format of the targets that
/// take a sequence of messages.
pub fn messages(mut data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let [lead, high, low, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*high, *low])).min(rest.len());
        out.push((*lead, &rest[..len]));
        data = &rest[len..];
    }
    out
}

/// The inverse of [`messages`], for writing seeds.
pub fn message(lead: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).expect("a seed message under 64 KiB");
    let mut out = vec![lead];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Runs `future` on this thread's runtime (current-thread, with time for the admin listener's timeouts).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// Polls `future` once: a target's in-memory input never makes it wait, so a future still pending is a hang.
fn poll_once<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("waits although all its input is at hand: a hang"),
    }
}

/// The HTTP responses in `bytes`, each as its status and headers (names in lower case); panics on bytes that are
/// not whole responses.
fn responses(mut bytes: &[u8]) -> Vec<(u16, Vec<(String, String)>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => len,
            other => panic!(
                "not an HTTP response ({other:?}): {:?}",
                String::from_utf8_lossy(bytes)
            ),
        };
        let headers: Vec<(String, String)> = response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let body = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .map_or(0, |(_, value)| {
                value.parse::<usize>().expect("a numeric Content-Length")
            });
        let rest = &bytes[len..];
        // The answer to a HEAD request keeps its Content-Length and has no body: the next response follows.
        let body = if rest.is_empty() || rest.starts_with(b"HTTP/1.") {
            0
        } else {
            body
        };
        assert!(
            rest.len() >= body,
            "a response shorter than its Content-Length"
        );
        out.push((response.code.expect("a status"), headers));
        bytes = &rest[body..];
    }
    out
}

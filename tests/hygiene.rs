//! The gateway gives back what connections and traps take: file descriptors return to their baseline and memory
//! stays flat across many connect/close cycles and many plugin traps.

use futures_util::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::*;

/// The gateway's open fds once they stop changing (bounded): the baseline after a warm-up.
async fn steady_fds(pid: u32) -> usize {
    let mut last = open_fds(pid);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = open_fds(pid);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// Polls (bounded) until the gateway's open fds are back to `baseline`; returns the last count.
async fn fds_settle(pid: u32, baseline: usize) -> usize {
    let mut now = open_fds(pid);
    for _ in 0..100 {
        if now <= baseline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        now = open_fds(pid);
    }
    now
}

/// `count` connect → message → close cycles on `path`, `parallel` at a time.
async fn cycles(
    gw: &std::sync::Arc<TestGateway>,
    path: &'static str,
    message: &'static str,
    count: usize,
) {
    let parallel = 50;
    for _ in 0..count / parallel {
        let mut batch = Vec::new();
        for _ in 0..parallel {
            let gw = gw.clone();
            batch.push(tokio::spawn(async move {
                let mut ws = gw.ws(path).await;
                bounded(ws.send(Message::text(message))).await.unwrap();
                // Either the answer or the 1011 of a trap; then the close handshake.
                let _ = next_message(&mut ws).await;
                let _ = bounded(ws.close(None)).await;
            }));
        }
        for task in batch {
            bounded(task).await.expect("a cycle failed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connect_close_cycles_leak_no_fds_or_memory() {
    let gw = std::sync::Arc::new(TestGateway::start_with("workers = 2\n", &standard_routes()));
    let pid = gw.pid();
    cycles(&gw, "/echo", "warm", 500).await;
    let fds = steady_fds(pid).await;
    let rss = gw.rss_kib();
    cycles(&gw, "/echo", "cycle", 10_000).await;
    let fds_after = fds_settle(pid, fds).await;
    assert!(fds_after <= fds, "open fds went from {fds} to {fds_after}");
    let grown = gw.rss_kib().saturating_sub(rss);
    assert!(
        grown < 16 * 1024,
        "RSS grew by {grown} KiB over 10,000 cycles"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_plugin_traps_leak_no_fds_or_memory() {
    let routes = format!(
        "{}\n[[route]]\npath = \"/fragile\"\nplugin = \"{}\"\nrestart_backoff_ms = 0\n",
        standard_routes(),
        plugin("probe").display()
    );
    // The trap throttle would refuse this client after a few traps; here the traps themselves are under test.
    let top = "workers = 2\n[limits]\nmax_traps_per_ip = 0\n";
    let gw = std::sync::Arc::new(TestGateway::start_with(top, &routes));
    let pid = gw.pid();
    cycles(&gw, "/fragile", "panic", 100).await;
    let fds = steady_fds(pid).await;
    let rss = gw.rss_kib();
    cycles(&gw, "/fragile", "panic", 1_000).await;
    let fds_after = fds_settle(pid, fds).await;
    assert!(fds_after <= fds, "open fds went from {fds} to {fds_after}");
    let grown = gw.rss_kib().saturating_sub(rss);
    assert!(
        grown < 16 * 1024,
        "RSS grew by {grown} KiB over 1,000 traps"
    );
    let mut ws = gw.ws("/fragile").await;
    assert_eq!(ask(&mut ws, "print").await, "printed");
}

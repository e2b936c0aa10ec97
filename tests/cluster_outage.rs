//! Cluster mode when the broker is away: nodes started before their `nats-server` serve their own clients and
//! report `degraded`; they connect when it comes, notice when it goes, and come back with it — subscriptions and
//! presence restored, without a restart — while clients on each node are answered throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wssgate_tests::admin::{admin_get, metric_until, sample};
use wssgate_tests::cluster::*;
use wssgate_tests::nats::Nats;
use wssgate_tests::ports::free_port;
use wssgate_tests::*;

/// How long one `/wss` round trip may take while the broker comes and goes: generous, a liveness bound.
const ROUND_TRIP: Duration = Duration::from_secs(5);
/// A change on one node reaches the others' presence within 100 ms plus transit; tested with room.
const PRESENCE: Duration = Duration::from_secs(2);
/// Remote presence is gone 3 s after the broker is; tested with room.
const EXPIRED: Duration = Duration::from_millis(4500);

/// A client doing `/wss` round trips on `gw` until `stop`; each must come back within [`ROUND_TRIP`]. Returns how
/// many it did.
fn bystander(gw: &TestGateway, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<usize> {
    let (address, cert) = (gw.wss, gw.cert.clone());
    tokio::spawn(async move {
        let mut ws = wss_from(address, "127.0.0.1", &cert, "/wss").await;
        let mut round_trips = 0;
        // Bounded: stopped by the test, or at 100,000 round trips.
        while !stop.load(Ordering::Relaxed) && round_trips < 100_000 {
            let answer = tokio::time::timeout(ROUND_TRIP, ask(&mut ws, "tom")).await;
            assert_eq!(
                answer.as_deref(),
                Ok("ok"),
                "a round trip did not complete within {ROUND_TRIP:?}"
            );
            round_trips += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        round_trips
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn nodes_started_before_their_broker_serve_locally_and_follow_it_down_and_up_again() {
    let port = free_port();
    let servers = format!("\"nats://127.0.0.1:{port}\"");
    let (a, b) = (node("a", &servers), node("b", &servers));
    let stop = Arc::new(AtomicBool::new(false));
    let bystanders = [bystander(&a, stop.clone()), bystander(&b, stop.clone())];
    health_becomes(&a, "degraded").await;
    health_becomes(&b, "degraded").await;

    // No broker yet: each node serves its own clients.
    let mut member = a.wss("/probe").await;
    assert_eq!(reply(&mut member, "join room", "joined").await, "joined");
    let mut local = a.wss("/probe").await;
    assert_eq!(
        reply(&mut local, "publish room early", "published").await,
        "published 1"
    );
    assert_eq!(receives_starting(&mut member, "early").await, "early");
    let mut remote = b.wss("/probe").await;
    assert_eq!(
        reply(&mut remote, "publish room lost", "published").await,
        "published 0"
    );
    metric_until(&b, "wssgate_cluster_dropped_total", |n| n >= 1.0).await;

    // The broker comes: both connect, and node b reaches the member on a.
    let broker = Nats::start_on(port);
    health_becomes(&a, "ok").await;
    health_becomes(&b, "ok").await;
    crosses(&mut remote, &mut member, "first").await;

    // The broker goes: local delivery goes on, cross-node publications are dropped and counted, and remote
    // presence expires.
    drop(broker);
    let gone = std::time::Instant::now();
    health_becomes(&a, "degraded").await;
    health_becomes(&b, "degraded").await;
    assert_eq!(
        reply(&mut local, "publish room during", "published").await,
        "published 1"
    );
    assert_eq!(receives_starting(&mut member, "during").await, "during");
    let dropped = sample(
        &admin_get(&b, "/metrics").await.1,
        "wssgate_cluster_dropped_total",
    );
    assert_eq!(
        reply(&mut remote, "publish room gone", "published").await,
        "published 0"
    );
    metric_until(&b, "wssgate_cluster_dropped_total", |n| n > dropped).await;
    let left = EXPIRED.saturating_sub(gone.elapsed());
    within!(
        left,
        "node a's member leaving node b's presence",
        group_size(&mut remote, "room").await == 0
    );
    eprintln!(
        "remote presence expired {:?} after the broker stopped",
        gone.elapsed()
    );

    // The broker comes back on the same port: the nodes reconnect and resubscribe by themselves.
    let _broker = Nats::start_on(port);
    health_becomes(&a, "ok").await;
    health_becomes(&b, "ok").await;
    metric_until(&a, "wssgate_cluster_connects_total", |n| n >= 2.0).await;
    metric_until(&a, "wssgate_cluster_disconnects_total", |n| n >= 1.0).await;
    crosses(&mut remote, &mut member, "again").await;
    for gw in [&a, &b] {
        assert!(
            gw.log().contains("cluster: connected to NATS"),
            "{}",
            gw.log()
        );
        assert!(
            gw.log().contains("lost the connection to NATS"),
            "{}",
            gw.log()
        );
    }

    stop.store(true, Ordering::Relaxed);
    for bystander in bystanders {
        let round_trips = bounded(bystander).await.expect("a bystander failed");
        assert!(round_trips > 0);
        eprintln!("a /wss bystander completed {round_trips} round trips");
    }
}

/// Waits until node b's presence counts the member on a (so a's subscription is in place: it went to the broker
/// before a's announcement), then publishes from b and expects the member to get it.
async fn crosses<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    publisher: &mut tokio_tungstenite::WebSocketStream<S>,
    member: &mut tokio_tungstenite::WebSocketStream<S>,
    text: &str,
) {
    within!(PRESENCE * 2, "node b counting the member on a", {
        group_size(publisher, "room").await == 1
    });
    let command = format!("publish room {text}");
    assert_eq!(reply(publisher, &command, "published").await, "published 0");
    // The next message is this one: what node b published while the broker was away never arrives late.
    assert_eq!(
        next_message(member).await,
        tokio_tungstenite::tungstenite::Message::text(text)
    );
}

//! Cluster mode, so far (issue 12, in progress): the link to a real `nats-server` started here — a gateway that
//! starts before its broker serves its own clients and reports `degraded`, connects once the broker comes, notices
//! when it goes and comes back, without a restart.

use std::time::Duration;
use wssgate_tests::admin::{ADMIN, admin_get, metric_until};
use wssgate_tests::nats::Nats;
use wssgate_tests::pebble::free_port;
use wssgate_tests::*;

/// Polls `/healthz` (bounded: 10 s) until its status is `wanted`.
async fn health_becomes(gw: &TestGateway, wanted: &str) {
    let mut last = String::new();
    for _ in 0..200 {
        last = admin_get(gw, "/healthz").await.1;
        if last.contains(&format!("\"status\":\"{wanted}\"")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/healthz never said {wanted}: {last}");
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_node_started_before_its_broker_serves_locally_then_follows_the_broker_up_down_and_up() {
    let port = free_port();
    let cluster = format!("[cluster]\nservers = [\"nats://127.0.0.1:{port}\"]\nnode = \"a\"\n");
    let gw = TestGateway::start_with(
        &format!("workers = 1\n{ADMIN}{cluster}"),
        &standard_routes(),
    );
    let mut ws = gw.wss("/wss").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
    health_becomes(&gw, "degraded").await;

    let broker = Nats::start_on(port);
    health_becomes(&gw, "ok").await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");

    drop(broker);
    health_becomes(&gw, "degraded").await;
    assert_eq!(
        ask(&mut ws, "tom").await,
        "ok",
        "local delivery goes on without the broker"
    );

    let _broker = Nats::start_on(port);
    health_becomes(&gw, "ok").await;
    metric_until(&gw, "wssgate_cluster_connects_total", |v| v >= 2.0).await;
    metric_until(&gw, "wssgate_cluster_disconnects_total", |v| v >= 1.0).await;
    assert_eq!(ask(&mut ws, "tom").await, "ok");
    assert!(
        gw.log().contains("cluster: connected to NATS"),
        "{}",
        gw.log()
    );
}

#[test]
fn bad_cluster_config_names_the_field() {
    let dir = scratch_dir("cluster-config");
    let listener = "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n";
    for (cluster, expected) in [
        ("servers = []", "`servers` lists none"),
        ("servers = [\"127.0.0.1:4222\"]", "is not nats://HOST:PORT"),
        (
            "servers = [\"nats://127.0.0.1:4222\"]\nnode = \"a.b\"",
            "`node`",
        ),
        (
            "servers = [\"nats://127.0.0.1:4222\"]\nprefix = \"x>\"",
            "`prefix`",
        ),
        (
            "servers = [\"nats://127.0.0.1:4222\"]\nuser = \"u\"",
            "`token`, or `user` and `password`",
        ),
    ] {
        let (ok, output) = check_config(&dir, &format!("{listener}[cluster]\n{cluster}\n"));
        assert!(
            !ok && output.contains(expected) && output.contains("line 4"),
            "{cluster}: {output}"
        );
    }
}

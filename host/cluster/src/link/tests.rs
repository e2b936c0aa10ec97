//! A subscription whose task ends unasked is subscribed again. Nothing a broker or a peer sends can end one today
//! (async-nats ends a subscription only when its subscriber is dropped, and the tasks no longer panic on any
//! input), so the test ends the task itself and watches the real nats-server see the subscription come back.

use super::*;
use wssgate_hub::ConnectionDetails;
use wssgate_hub::metrics::Metrics;
use wssgate_tests::WAIT;
use wssgate_tests::cluster::subscription_ids_of;
use wssgate_tests::nats::Nats;

/// The broker's subscription ids for `subject` on the connection named `node`.
async fn sids(broker: &Nats, node: &str, subject: &str) -> Vec<String> {
    subscription_ids_of(broker, node)
        .await
        .into_iter()
        .filter(|(s, _)| s == subject)
        .map(|(_, sid)| sid)
        .collect()
}

/// Polls `sids` until `done` holds for them, within [`WAIT`].
async fn wait_for_sids(
    broker: &Nats,
    node: &str,
    subject: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = sids(broker, node, subject).await;
        if done(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "the broker's subscriptions to {subject} stayed {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ends the task of `subject`'s subscription and waits for the broker to see a new one (another id), the link
/// having counted `restarts` in all.
async fn kill_and_see_it_back(
    broker: &Nats,
    link: &ClusterLink,
    node: &str,
    subject: &str,
    before: &[String],
    restarts: u64,
) {
    let task = {
        let tasks = link.state.tasks.lock().unwrap();
        let (_, task) = tasks.iter().rfind(|(s, _)| s == subject).unwrap();
        task.clone()
    };
    assert_eq!(link.state.restarts.load(Ordering::Relaxed), restarts - 1);
    task.abort();
    wait_for_sids(broker, node, subject, |s| s.len() == 1 && s != before).await;
    assert_eq!(link.state.restarts.load(Ordering::Relaxed), restarts);
    let mut exposition = String::new();
    link.state.render(&mut exposition);
    let line = format!("wssgate_cluster_subscription_restarts_total {restarts}");
    assert!(exposition.contains(&line), "{exposition}");
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_subscription_whose_task_ended_is_subscribed_again_and_counted() {
    let broker = Nats::start();
    let config = ClusterConfig {
        servers: vec![format!("nats://127.0.0.1:{}", broker.port)],
        node: "restarting".to_owned(),
        prefix: "restart-test".to_owned(),
        credentials: Credentials::None,
        ca: None,
        secret: Some("a secret of sixteen bytes or more".to_owned()),
        replicas: 1,
    };
    let (hub, _deliveries) = Hub::new(1, 1 << 20, Arc::new(Metrics::new(Vec::new(), 1)));
    let (stop, shutdown) = watch::channel(false);
    let link = ClusterLink::start(&config, hub.clone(), shutdown).unwrap();
    let own = wire::node_subject(&config.prefix, registry::node_tag());
    let before = wait_for_sids(&broker, &config.node, &own, |s| s.len() == 1).await;

    // One of the node's own subscriptions, then one for a group a member here joined.
    kill_and_see_it_back(&broker, &link, &config.node, &own, &before, 1).await;
    // An id as this node gives them (its tag in the top bits).
    let id = (u64::from(registry::node_tag()) << 44) | 7;
    hub.register(
        id,
        Arc::new(ConnectionDetails {
            route: "/r".to_owned(),
            path: "/r".to_owned(),
            query: String::new(),
            headers: Vec::new(),
            remote_address: "127.0.0.1:1".to_owned(),
            client_ip: std::net::Ipv4Addr::LOCALHOST.into(),
            subprotocol: None,
            connected_at_ms: 0,
            traffic: Default::default(),
        }),
    );
    hub.join("/r", id, "room", 8).unwrap();
    let room = wire::subject(&config.prefix, "/r", &Audience::Group("room".to_owned()));
    let before = wait_for_sids(&broker, &config.node, &room, |s| s.len() == 1).await;
    kill_and_see_it_back(&broker, &link, &config.node, &room, &before, 2).await;

    stop.send(true).unwrap();
    let thread = link.thread;
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap()
        .unwrap();
}

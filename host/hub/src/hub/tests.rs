//! The hub without sockets: two workers' connection tables and outboxes, the hub between them.

use super::*;
use crate::outbound::Outbox;
use std::rc::Rc;

/// A node of two workers with `max_queue_bytes` per worker queue.
fn node(max_queue_bytes: usize) -> (Arc<Hub>, Vec<DeliveryReceiver>, [Rc<Connections>; 2]) {
    let metrics = Arc::new(Metrics::new(vec!["/chat".into(), "/other".into()], 2));
    let (hub, receivers) = Hub::new(2, max_queue_bytes, metrics);
    let workers = [Rc::new(Connections::new(0)), Rc::new(Connections::new(1))];
    (hub, receivers, workers)
}

/// Opens a connection of `route` on `worker` and tells the hub; returns its id and outbox.
fn connect(hub: &Hub, worker: &Connections, route: &str) -> (ConnectionId, Rc<Outbox>) {
    let outbox = Rc::new(Outbox::new(1 << 20));
    let id = worker.open(outbox.clone(), route.into(), 1);
    let details = ConnectionDetails {
        route: route.into(),
        path: route.into(),
        query: String::new(),
        headers: Vec::new(),
        remote_address: "127.0.0.1:1".into(),
        client_ip: [127, 0, 0, 1].into(),
        subprotocol: None,
        connected_at_ms: 0,
        traffic: Default::default(),
    };
    hub.register(id, Arc::new(details));
    hub.opened(id);
    (id, outbox)
}

fn drained(outbox: &Outbox) -> Vec<String> {
    std::iter::from_fn(|| outbox.pop())
        .map(|m| m.into_text().unwrap().to_string())
        .collect()
}

fn text(s: &str) -> Message {
    Message::Text(s.into())
}

/// Runs worker 1's delivery task until what is queued for it has arrived.
async fn deliver_to_worker_1(receivers: Vec<DeliveryReceiver>, worker: Rc<Connections>) {
    let receiver = receivers.into_iter().nth(1).unwrap();
    let task = tokio::task::spawn_local(receiver.run(worker));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    task.abort();
}

#[tokio::test]
async fn a_publish_reaches_its_groups_members_on_every_worker_and_no_other_route() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (hub, receivers, [w0, w1]) = node(1 << 20);
            let (a, a_out) = connect(&hub, &w0, "/chat");
            let (b, b_out) = connect(&hub, &w1, "/chat");
            let (c, c_out) = connect(&hub, &w0, "/other");
            for (route, id) in [("/chat", a), ("/chat", b), ("/other", c)] {
                hub.join(route, id, "room", 8).unwrap();
            }
            assert_eq!(hub.group_size("/chat", "room"), 2);
            let reached = hub.publish(Some(&w0), "/chat", "room", text("hi"), &[]);
            assert_eq!(reached, 2);
            // The caller's own worker's member has it at once; the other worker's once its task ran.
            assert_eq!(drained(&a_out), ["hi"]);
            assert!(drained(&b_out).is_empty());
            deliver_to_worker_1(receivers, w1.clone()).await;
            assert_eq!(drained(&b_out), ["hi"]);
            // The same group name on another route is another group.
            assert!(drained(&c_out).is_empty());
        })
        .await;
}

#[tokio::test]
async fn exclusions_and_closed_members_are_skipped() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (hub, receivers, [w0, w1]) = node(1 << 20);
            let (a, a_out) = connect(&hub, &w0, "/chat");
            let (b, b_out) = connect(&hub, &w1, "/chat");
            let (gone, _) = connect(&hub, &w0, "/chat");
            hub.close(gone);
            assert_eq!(
                hub.broadcast(Some(&w0), "/chat", text("all but a"), &[a]),
                1
            );
            assert!(drained(&a_out).is_empty());
            deliver_to_worker_1(receivers, w1.clone()).await;
            assert_eq!(drained(&b_out), ["all but a"]);
            // Its user and groups went with it.
            assert!(hub.details("/chat", gone).is_none());
            assert!(hub.details("/chat", b).is_some());
        })
        .await;
}

#[tokio::test]
async fn a_connection_is_reached_by_id_only_from_its_own_route() {
    let (hub, _receivers, [w0, _w1]) = node(1 << 20);
    let (a, a_out) = connect(&hub, &w0, "/chat");
    assert_eq!(
        hub.send_to_connection(Some(&w0), "/other", a, text("x")),
        Reached::Unknown
    );
    assert_eq!(
        hub.send_to_connection(Some(&w0), "/chat", a, text("mine")),
        Reached::Queued
    );
    assert_eq!(drained(&a_out), ["mine"]);
    assert_eq!(
        hub.join("/other", a, "room", 8),
        Err(HubRefusal::UnknownConnection)
    );
}

#[tokio::test]
async fn without_a_worker_of_its_own_the_caller_reaches_everyone_through_the_queues() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (hub, receivers, [_w0, w1]) = node(1 << 20);
            let (_b, b_out) = connect(&hub, &w1, "/chat");
            // The push API's thread is no worker: it passes no connections of its own.
            assert_eq!(hub.send_to_user(None, "/chat", "nobody", text("x")), 0);
            assert_eq!(hub.broadcast(None, "/chat", text("from the api"), &[]), 1);
            deliver_to_worker_1(receivers, w1.clone()).await;
            assert_eq!(drained(&b_out), ["from the api"]);
        })
        .await;
}

#[tokio::test]
async fn a_full_worker_queue_drops_that_workers_copy_and_counts_it() {
    // Room for one delivery: an empty queue always takes one, however large.
    let (hub, _receivers, [w0, w1]) = node(64);
    let (_a, _) = connect(&hub, &w0, "/chat");
    let (_b, _) = connect(&hub, &w1, "/chat");
    let big = "x".repeat(1000);
    assert_eq!(hub.broadcast(Some(&w0), "/chat", text(&big), &[]), 2);
    // Worker 1 has not taken the first: its copy of the second is dropped, worker 0's is not.
    assert_eq!(hub.broadcast(Some(&w0), "/chat", text(&big), &[]), 1);
    let out = hub.metrics.render();
    assert!(
        out.lines()
            .any(|l| l.contains("\"delivery_queue\"") && l.trim_end().ends_with(" 1")),
        "the drop is counted:\n{out}"
    );
}

#[test]
fn a_group_cap_and_a_session_cap_hold() {
    let (hub, _receivers, [w0, _w1]) = node(1 << 20);
    let (a, _) = connect(&hub, &w0, "/chat");
    hub.join("/chat", a, "one", 2).unwrap();
    hub.join("/chat", a, "two", 2).unwrap();
    // Joining a group it is in costs nothing; a third group is refused.
    hub.join("/chat", a, "one", 2).unwrap();
    assert_eq!(
        hub.join("/chat", a, "three", 2),
        Err(HubRefusal::TooManyGroups)
    );
    let mut groups = hub.groups_of("/chat", a);
    groups.sort();
    assert_eq!(groups, ["one", "two"]);
    let huge = "v".repeat(MAX_SESSION_BYTES);
    assert_eq!(
        hub.session_set("/chat", a, "k", &huge),
        Err(HubRefusal::TooLarge)
    );
}

//! The JetStream store against a real `nats-server -js`: the conformance checks, and what only a cluster store
//! meets — two nodes appending to one group, a broker without JetStream, a broker that goes away and comes back —
//! plus the answers the store owes with no broker at all (a full queue, a store dropped with requests waiting).

use super::*;
use crate::conformance::{self, ask};
use crate::{Message, Position};
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use wssgate_config::memory::{HistoryConfig, StorageConfig};
use wssgate_tests::nats::Nats;
use wssgate_tests::ports::free_port;
use wssgate_tests::{WAIT, scratch_dir};

/// A broker with JetStream storing under `dir`, on `port` or one of its choosing.
fn broker(port: Option<u16>, dir: &Path) -> Nats {
    Nats::start_with(
        port,
        &["-js", "-sd", dir.to_str().expect("a UTF-8 temp dir")],
    )
}

fn config(url: String, prefix: &str) -> ClusterConfig {
    ClusterConfig {
        servers: vec![url],
        node: format!("{prefix}-node"),
        prefix: prefix.into(),
        credentials: Credentials::None,
        ca: None,
        secret: None,
        replicas: 1,
    }
}

/// Waits (within `within`) until `store`'s health is what `wanted` says; the health it saw last.
fn health_becomes(store: &JetStream, within: Duration, wanted: impl Fn(&Health) -> bool) -> Health {
    let deadline = std::time::Instant::now() + within;
    // Bounded: by the deadline.
    loop {
        let health = store.health();
        if wanted(&health) || std::time::Instant::now() >= deadline {
            return health;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A store on `url`, answering.
fn healthy_store(url: String, prefix: &str, spaces: &[Arc<Namespace>]) -> JetStream {
    let store = JetStream::start(&config(url, prefix), spaces).expect("start");
    let health = health_becomes(&store, WAIT, |h| *h == Health::Ok);
    assert_eq!(health, Health::Ok);
    store
}

fn history_space(route: &str, size: u32) -> Arc<Namespace> {
    Arc::new(Namespace {
        route: route.into(),
        history: Some(HistoryConfig {
            size,
            ..HistoryConfig::defaults()
        }),
        storage: None,
    })
}

fn append_request(body: &str) -> Request {
    Request::Append {
        group: "room".into(),
        message: Message {
            binary: false,
            body: body.as_bytes().to_vec(),
        },
    }
}

fn read_request(limit: u32) -> Request {
    Request::Read {
        group: "room".into(),
        since: None,
        limit,
    }
}

/// Submits every request at once; their answers, in the order they came.
fn submit_all(
    store: &JetStream,
    space: &Arc<Namespace>,
    requests: Vec<Request>,
) -> std_mpsc::Receiver<Answer> {
    let (tx, rx) = std_mpsc::channel();
    for request in requests {
        let tx = tx.clone();
        store.submit(
            space,
            request,
            Box::new(move |answer| drop(tx.send(answer))),
        );
    }
    rx
}

/// The broker's JetStream report (`/jsz` on its monitoring port, with `query`).
fn jsz(nats: &Nats, query: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut tcp =
        std::net::TcpStream::connect(("127.0.0.1", nats.monitor)).expect("the monitoring port");
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    write!(tcp, "GET /jsz?{query} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).expect("the report");
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON")
}

/// The number of messages in stream `name`.
fn messages_in(nats: &Nats, name: &str) -> u64 {
    let report = jsz(nats, "streams=true");
    report["account_details"][0]["stream_detail"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["state"]["messages"].as_u64())
        .unwrap_or_else(|| panic!("no stream {name}: {report}"))
}

#[test]
#[ignore = "needs nats-server (./test.sh installs it)"]
fn conformance() {
    let dir = scratch_dir("jetstream-conformance");
    let nats = broker(None, &dir);
    let store = healthy_store(nats.url(), "conformance", &conformance::spaces());
    conformance::run_all(&store);
    // What the checks leave on the broker: no read consumer, and of the keys only the live ones (the quota check
    // leaves a, c and d; b's deletion marker was purged).
    assert_eq!(jsz(&nats, "")["consumers"], 0, "read consumers are deleted");
    let keys = names::RouteNames::new("conformance", "/keys").kv_stream();
    assert_eq!(messages_in(&nats, &keys), 3);
}

#[test]
#[ignore = "needs nats-server (./test.sh installs it)"]
fn two_nodes_append_to_one_group() {
    let dir = scratch_dir("jetstream-two-nodes");
    let nats = broker(None, &dir);
    let space = history_space("/race", 1000);
    let spaces = [space.clone()];
    let (a, b) = (
        healthy_store(nats.url(), "race", &spaces),
        healthy_store(nats.url(), "race", &spaces),
    );
    let appends = |node: &str| {
        (0..200)
            .map(|n| append_request(&format!("{node}{n}")))
            .collect()
    };
    let (from_a, from_b) = (
        submit_all(&a, &space, appends("a")),
        submit_all(&b, &space, appends("b")),
    );
    let mut positions = Vec::new();
    for answers in [from_a, from_b] {
        for _ in 0..200 {
            match answers.recv_timeout(WAIT).expect("an answer") {
                Answer::Appended(Ok(position)) => positions.push(position),
                other => panic!("{other:?}"),
            }
        }
    }
    let epoch = positions[0].epoch.clone();
    assert!(positions.iter().all(|p| p.epoch == epoch));
    let mut offsets: Vec<u64> = positions.iter().map(|p| p.offset).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=400).collect::<Vec<_>>());
    // Each node read what both wrote, in offset order, each node's own messages in the order it sent them.
    for node in [&a, &b] {
        let Answer::History(Ok(page)) = ask(node, &space, read_request(1000)) else {
            panic!("read failed");
        };
        assert_eq!(page.epoch, epoch);
        let read: Vec<u64> = page.entries.iter().map(|e| e.offset).collect();
        assert_eq!(read, (1..=400).collect::<Vec<_>>());
        for prefix in [b'a', b'b'] {
            let numbers: Vec<u32> = page
                .entries
                .iter()
                .filter(|e| e.message.body[0] == prefix)
                .map(|e| {
                    std::str::from_utf8(&e.message.body[1..])
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            assert_eq!(numbers, (0..200).collect::<Vec<_>>());
        }
    }
}

#[test]
#[ignore = "needs nats-server (./test.sh installs it)"]
fn broker_away_and_back() {
    let dir = scratch_dir("jetstream-outage");
    let nats = broker(None, &dir);
    let port = nats.port;
    let space = history_space("/outage", 100);
    let store = healthy_store(nats.url(), "outage", std::slice::from_ref(&space));
    let mut epoch = String::new();
    for n in 0..3 {
        let Answer::Appended(Ok(position)) = ask(&store, &space, append_request(&format!("{n}")))
        else {
            panic!("append failed");
        };
        epoch = position.epoch;
    }

    drop(nats);
    let health = health_becomes(&store, WAIT, |h| *h != Health::Ok);
    assert!(matches!(health, Health::Degraded(_)), "{health:?}");
    let asked = std::time::Instant::now();
    let answer = ask(&store, &space, append_request("lost?"));
    assert!(
        matches!(answer, Answer::Appended(Err(StoreError::Unavailable(_)))),
        "{answer:?}"
    );
    let answer = ask(&store, &space, read_request(10));
    assert!(
        matches!(answer, Answer::History(Err(StoreError::Unavailable(_)))),
        "{answer:?}"
    );
    assert!(
        asked.elapsed() < 2 * ANSWER_WITHIN + Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );

    let _nats = broker(Some(port), &dir);
    let health = health_becomes(&store, 2 * WAIT, |h| *h == Health::Ok);
    assert_eq!(health, Health::Ok);
    let Answer::History(Ok(page)) = ask(&store, &space, read_request(10)) else {
        panic!("read failed");
    };
    assert_eq!(
        page.epoch, epoch,
        "the history survived the broker's restart"
    );
    let bodies: Vec<&[u8]> = page
        .entries
        .iter()
        .take(3)
        .map(|e| &e.message.body[..])
        .collect();
    assert_eq!(bodies, [b"0", b"1", b"2"]);
    let Answer::Appended(Ok(Position { offset, epoch: now })) =
        ask(&store, &space, append_request("3"))
    else {
        panic!("append failed");
    };
    assert_eq!(now, epoch);
    assert_eq!(offset, page.entries.len() as u64 + 1);
}

#[test]
#[ignore = "needs nats-server (./test.sh installs it)"]
fn a_broker_that_lost_its_data() {
    let nats = broker(None, &scratch_dir("jetstream-before"));
    let port = nats.port;
    let space = Arc::new(Namespace {
        storage: Some(StorageConfig::defaults()),
        ..(*history_space("/amnesia", 100)).clone()
    });
    let store = healthy_store(nats.url(), "amnesia", std::slice::from_ref(&space));
    let Answer::Appended(Ok(before)) = ask(&store, &space, append_request("a")) else {
        panic!("append failed");
    };
    let set = || Request::Set {
        key: "k".into(),
        value: b"v".to_vec(),
        ttl: None,
        if_revision: Some(0),
    };
    assert!(matches!(ask(&store, &space, set()), Answer::Written(Ok(_))));

    // The same broker address, an empty store directory: the streams the store made are gone, and it makes them
    // again.
    drop(nats);
    let _nats = broker(Some(port), &scratch_dir("jetstream-after"));
    assert_eq!(
        health_becomes(&store, 2 * WAIT, |h| *h == Health::Ok),
        Health::Ok
    );
    let Answer::Appended(Ok(after)) = ask(&store, &space, append_request("b")) else {
        panic!("append failed");
    };
    assert_eq!(after.offset, 1);
    assert_ne!(
        after.epoch, before.epoch,
        "a new epoch: the history was lost"
    );
    assert!(
        matches!(ask(&store, &space, set()), Answer::Written(Ok(_))),
        "the key is gone too"
    );
}

#[test]
#[ignore = "needs nats-server (./test.sh installs it)"]
fn without_jetstream_the_store_is_degraded() {
    let nats = Nats::start();
    let space = history_space("/plain", 10);
    let store = JetStream::start(&config(nats.url(), "plain"), std::slice::from_ref(&space))
        .expect("start");
    let health = health_becomes(
        &store,
        WAIT,
        |h| matches!(h, Health::Degraded(why) if why.contains("JetStream")),
    );
    assert!(
        matches!(&health, Health::Degraded(why) if why.contains("JetStream")),
        "{health:?}"
    );
    let answer = ask(&store, &space, read_request(10));
    assert!(
        matches!(answer, Answer::History(Err(StoreError::Unavailable(_)))),
        "{answer:?}"
    );
}

/// A store whose broker never answers: nothing listens on its port.
fn store_without_broker() -> (JetStream, Arc<Namespace>) {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let space = history_space("/nowhere", 10);
    let store =
        JetStream::start(&config(url, "nowhere"), std::slice::from_ref(&space)).expect("start");
    (store, space)
}

#[test]
fn a_full_queue_refuses_at_once() {
    let (store, space) = store_without_broker();
    let started = std::time::Instant::now();
    let answers = submit_all(
        &store,
        &space,
        (0..QUEUE + 50).map(|_| read_request(1)).collect(),
    );
    let mut full = 0;
    for _ in 0..QUEUE + 50 {
        match answers.recv_timeout(WAIT).expect("an answer") {
            Answer::History(Err(StoreError::Unavailable(why))) if why == "store queue full" => {
                full += 1;
                assert!(
                    started.elapsed() < ANSWER_WITHIN,
                    "refused only after {:?}",
                    started.elapsed()
                );
            }
            Answer::History(Err(StoreError::Unavailable(_))) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(full, 50);
    assert!(answers.try_recv().is_err(), "one answer per request");
}

#[test]
fn dropping_the_store_answers_what_waits() {
    let (store, space) = store_without_broker();
    let answers = submit_all(&store, &space, (0..100).map(|_| read_request(1)).collect());
    drop(store);
    for _ in 0..100 {
        let answer = answers
            .try_recv()
            .expect("answered by the time drop returns");
        assert!(
            matches!(answer, Answer::History(Err(StoreError::Unavailable(_)))),
            "{answer:?}"
        );
    }
    assert!(answers.try_recv().is_err(), "one answer per request");
}

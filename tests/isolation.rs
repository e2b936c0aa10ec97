//! Isolation: a plugin reaches only its own route's connections and its own timers, a client that makes a plugin
//! trap costs only its own connections (and, repeated, its address's new upgrades), and what a plugin creates is
//! capped and dies with it.

use futures_util::{FutureExt, SinkExt, StreamExt};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wssgate_tests::admin::*;
use wssgate_tests::*;

/// `info`'s `key=value` words.
async fn info<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
) -> HashMap<String, String> {
    ask(ws, "info")
        .await
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn id_of<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> u64 {
    info(ws).await["id"].parse().unwrap()
}

/// Routes `/a` and `/b`, both the probe, and `/echo`.
fn two_routes() -> String {
    let probe = plugin("probe");
    format!(
        "[[route]]\npath = \"/a\"\nplugin = \"{0}\"\n\n[[route]]\npath = \"/b\"\nplugin = \"{0}\"\n\n[[route]]\npath = \"/echo\"\nplugin = \"{1}\"\n",
        probe.display(),
        plugin("echo").display()
    )
}

#[tokio::test]
async fn a_plugin_reaches_no_connection_or_timer_of_another_route() {
    let gw = TestGateway::start_with(&format!("workers = 1\n{ADMIN}"), &two_routes());
    let mut b = gw.wss("/b").await;
    assert_eq!(ask(&mut b, "remember secret mine").await, "Ok(())");
    assert_eq!(ask(&mut b, "join room").await, "joined");
    let timer: u64 = ask(&mut b, "timer 3000").await[6..].parse().unwrap();
    let b_id = id_of(&mut b).await;
    let mut a = gw.wss("/a").await;
    let a_id = id_of(&mut a).await;

    // Ids are sequential per worker: the range around both covers every neighbour a plugin could guess.
    let (low, high) = (a_id.min(b_id).saturating_sub(5), a_id.max(b_id) + 5);
    assert_eq!(
        ask(&mut a, &format!("reach {low} {high}")).await,
        "reached none"
    );
    assert_eq!(
        ask(
            &mut a,
            &format!("cancel {} {}", timer.saturating_sub(5), timer + 5)
        )
        .await,
        "cancelled 0"
    );

    // /b noticed nothing: no message, no close, its session, group and timer are as they were.
    assert_eq!(ask(&mut b, "recall secret").await, "mine");
    assert_eq!(ask(&mut b, "mygroups").await, "groups room");
    assert_eq!(
        next_message(&mut b).await,
        Message::text(format!("fired {timer}"))
    );
    assert_eq!(info(&mut b).await["id"], b_id.to_string());
    // What /a tried created nothing: no timer owned by /b's connection is alive.
    metric_until(&gw, "wssgate_plugin_timers", |live| live == 0.0).await;
}

/// What one attack does, and what its connection must see.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Message(&'static str),
    /// A query that makes on-connect panic: the upgrade is answered 500.
    Connect(&'static str),
    /// A timer owned by the connection that panics when it fires.
    Timer,
    /// on-close panics when the client closes.
    Close,
}

const FAULTS: [Fault; 7] = [
    Fault::Message("panic"),
    Fault::Message("overflow"),
    Fault::Message("spin"),
    Fault::Message("hog"),
    Fault::Connect("panic"),
    Fault::Timer,
    Fault::Close,
];

/// Runs `fault` from `source`; true when it was carried out, false when the throttle refused the upgrade.
async fn attack(gw: &TestGateway, source: &str, fault: Fault) -> bool {
    let path = match fault {
        Fault::Connect(query) => format!("/a?{query}"),
        Fault::Close => "/a?panic-on-close".to_owned(),
        _ => "/a".to_owned(),
    };
    let mut ws = match try_wss_from(gw.wss, source, &gw.cert, &path).await {
        Ok(ws) => ws,
        Err(WsError::Http(response)) if response.status() == 429 => return false,
        Err(WsError::Http(response))
            if matches!(fault, Fault::Connect(_)) && response.status() == 500 =>
        {
            return true;
        }
        Err(e) => panic!("{fault:?}: unexpected handshake error {e}"),
    };
    match fault {
        Fault::Message(command) => {
            bounded(ws.send(Message::text(command))).await.unwrap();
            assert_eq!(expect_close(&mut ws).await.0, 1011, "{fault:?}");
        }
        Fault::Connect(_) => {
            panic!("{fault:?}: the upgrade opened; on-connect trapped, so it is answered 500")
        }
        Fault::Timer => {
            assert!(ask(&mut ws, "timerpanic 1").await.starts_with("timer "));
            assert_eq!(expect_close(&mut ws).await.0, 1011, "{fault:?}");
        }
        Fault::Close => {
            assert_eq!(ask(&mut ws, "print").await, "printed");
            bounded(ws.close(None)).await.unwrap();
            while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, ws.next()).await {}
        }
    }
    true
}

#[tokio::test]
async fn faults_from_one_address_close_only_its_connections_and_throttle_only_it() {
    // The default limits and one worker: every connection of a route shares one plugin instance.
    let gw = TestGateway::start_with(&format!("workers = 1\n{ADMIN}"), &two_routes());
    let mut same_route = wss_from(gw.wss, "127.0.0.1", &gw.cert, "/a").await;
    let mut other_route = wss_from(gw.wss, "127.0.0.1", &gw.cert, "/echo").await;
    let (mut carried_out, mut throttled) = (Vec::new(), 0);
    let started = Instant::now();
    // Two attacking addresses, each running every fault in a row, the second in reverse order: each address is
    // throttled after its fifth trap, and between them every kind of fault is carried out.
    let rounds = [
        ("127.0.0.2", FAULTS.to_vec()),
        ("127.0.0.3", FAULTS.iter().rev().copied().collect()),
    ];
    for (round, (attacker, faults)) in rounds.iter().enumerate() {
        for &fault in faults {
            if attack(&gw, attacker, fault).await {
                carried_out.push(format!("{fault:?}"));
            } else {
                throttled += 1;
            }
            // Every bystander is answered after every fault.
            assert_eq!(
                ask(&mut same_route, "print").await,
                "printed",
                "after {fault:?} in round {round}"
            );
            assert_eq!(ask(&mut other_route, "still here").await, "still here");
        }
    }
    eprintln!(
        "faults carried out: {carried_out:?}; {throttled} upgrades throttled; in {:?}",
        started.elapsed()
    );
    for fault in FAULTS {
        assert!(
            carried_out.contains(&format!("{fault:?}")),
            "{fault:?} never ran"
        );
    }
    // The default throttle (5 traps in 10 s) refused the attackers' later upgrades, and only theirs.
    assert_eq!(
        throttled,
        2 * (FAULTS.len() - 5),
        "upgrades refused by the throttle"
    );
    let mut newcomer = wss_from(gw.wss, "127.0.0.1", &gw.cert, "/a").await;
    assert_eq!(ask(&mut newcomer, "print").await, "printed");
    let rejected = metric_until(
        &gw,
        "wssgate_rejected_connections_total{reason=\"trap_throttle\"}",
        |n| n > 0.0,
    )
    .await;
    assert_eq!(rejected, throttled as f64);
    assert_eq!(info(&mut same_route).await["restored"], "true");
}

#[tokio::test]
async fn ten_thousand_connections_ride_out_a_trap_every_ten_milliseconds() {
    const IDLE: usize = 10_000;
    let _ = rlimit::increase_nofile_limit(IDLE as u64 + 2_000);
    // The throttle would stop this attacker after five traps; it is off so that every trap happens.
    let top = format!("workers = 1\n{ADMIN}[limits]\nmax_traps_per_ip = 0\n");
    let gw = TestGateway::start_with(&top, &two_routes());
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE / 100 {
        let batch: Vec<_> = (0..100).map(|_| gw.ws("/a")).collect();
        idle.extend(futures_util::future::join_all(batch).await);
    }
    let mut bystander = gw.wss("/a").await;
    let attacker = async {
        let mut traps = 0u32;
        let until = Instant::now() + Duration::from_secs(10);
        let mut every = tokio::time::interval(Duration::from_millis(10));
        while Instant::now() < until {
            every.tick().await;
            let mut ws = gw.ws("/a").await;
            bounded(ws.send(Message::text("panic"))).await.unwrap();
            assert_eq!(expect_close(&mut ws).await.0, 1011);
            traps += 1;
        }
        traps
    };
    let round_trips = async {
        let mut took = Vec::new();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            let start = Instant::now();
            assert_eq!(ask(&mut bystander, "print").await, "printed");
            took.push(start.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        took
    };
    let (traps, mut took) = tokio::join!(attacker, round_trips);
    took.sort();
    let p99 = took[took.len() * 99 / 100];
    eprintln!(
        "trap storm: {traps} traps in 10 s beside {IDLE} open connections; bystander round trips: {} \
         (p50 {:?}, p99 {:?}, max {:?})",
        took.len(),
        took[took.len() / 2],
        p99,
        took[took.len() - 1]
    );
    assert!(traps >= 100, "only {traps} traps happened");
    // A liveness bound, not a speed target: a trap must not cost work in proportion to the open connections.
    assert!(p99 < Duration::from_secs(2), "bystander p99 {p99:?}");
    // Every idle connection is still open (once the attacker's last close is counted, exactly the idle ones and
    // the bystander are), and each answers (its on-connect is replayed first).
    metric_until(&gw, "wssgate_connections_open{route=\"/a\"}", |n| {
        n == (IDLE + 1) as f64
    })
    .await;
    for ws in &mut idle {
        let pending = ws.next().now_or_never();
        assert!(
            matches!(pending, None | Some(Some(Ok(Message::Ping(_))))),
            "an idle connection heard {pending:?}"
        );
    }
    for ws in idle.iter_mut().step_by(IDLE / 20) {
        assert_eq!(info(ws).await["restored"], "true");
    }
}

#[tokio::test]
async fn a_timer_of_a_replaced_instance_never_fires_into_its_replacement() {
    let gw = TestGateway::start_with(&format!("workers = 1\n{ADMIN}"), &two_routes());
    let mut setter = gw.wss("/a").await;
    assert!(ask(&mut setter, "timer 700").await.starts_with("timer "));
    metric_until(&gw, "wssgate_plugin_timers", |live| live == 1.0).await;
    let mut victim = gw.wss("/a").await;
    bounded(victim.send(Message::text("panic"))).await.unwrap();
    assert_eq!(expect_close(&mut victim).await.0, 1011);
    // The replacement's first event for this connection is the replayed on-connect, and no `stray timer`
    // arrives: before, the old timer fired into the new instance, which announced it.
    metric_until(&gw, "wssgate_plugin_timers", |live| live == 0.0).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(info(&mut setter).await["restored"], "true");
    assert_eq!(ask(&mut setter, "print").await, "printed");
}

#[tokio::test]
async fn a_reload_retires_the_old_generations_route_wide_timers() {
    let dir = scratch_dir("isolation-reload");
    let cert = TestCert::create(&dir);
    let config = format!(
        "workers = 1\n{ADMIN}\n[[listener]]\naddress = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\n[[listener]]\naddress = \"127.0.0.1:0\"\ntls = false\n{}",
        cert.cert.display(),
        cert.key.display(),
        two_routes()
    );
    let gw = TestGateway::launch(&dir, &config, &[], Some(cert.der.clone()));
    let mut old = gw.wss("/a").await;
    let mut old_victim = gw.wss("/a").await;
    assert!(ask(&mut old, "timer 3600000").await.starts_with("timer "));
    assert!(ask(&mut old, "timer 3600000").await.starts_with("timer "));
    metric_until(&gw, "wssgate_plugin_timers", |live| live == 2.0).await;
    assert!(gw.reload(&dir, &config), "{}", gw.log());
    metric_until(&gw, "wssgate_plugin_timers", |live| live == 0.0).await;
    // The old generation still serves its connection, which still belongs to the route: the new generation's
    // plugin reaches it. It may no longer start route-wide timers, also after a trap replaced it.
    assert_eq!(ask(&mut old, "print").await, "printed");
    assert_eq!(
        ask(&mut old, "timer 3600000").await,
        "timer refused TooManyTimers"
    );
    bounded(old_victim.send(Message::text("panic")))
        .await
        .unwrap();
    assert_eq!(expect_close(&mut old_victim).await.0, 1011);
    assert_eq!(info(&mut old).await["restored"], "true");
    assert_eq!(
        ask(&mut old, "timer 3600000").await,
        "timer refused TooManyTimers"
    );
    let old_id = id_of(&mut old).await;
    let mut new = gw.wss("/a").await;
    assert_eq!(
        ask(&mut new, &format!("flood {old_id} 1 3")).await,
        "flood sent=1 error=none"
    );
    assert_eq!(next_message(&mut old).await, Message::binary(vec![1u8; 3]));
}

#[tokio::test]
async fn a_timeout_reset_on_each_of_100000_messages_holds_one_timer() {
    let gw = TestGateway::start_with(&format!("workers = 1\n{ADMIN}"), &two_routes());
    let mut ws = gw.wss("/a").await;
    // Each thousand resets is one network step, bounded like any other: a round trip after each batch waits for
    // the gateway to have handled it, so the bound is on one batch, never on the speed of all 100,000 (a debug
    // build beside the other tests of this file can take longer than one step's bound for them all).
    for _ in 0..100 {
        for _ in 0..1_000 {
            bounded(ws.feed(Message::text("reset"))).await.unwrap();
        }
        bounded(ws.flush()).await.unwrap();
        assert!(ask(&mut ws, "info").await.starts_with("path=/a "));
    }
    assert_eq!(
        metric_until(&gw, "wssgate_plugin_timers", |_| true).await,
        1.0
    );
    drop(ws);
    metric_until(&gw, "wssgate_plugin_timers", |live| live == 0.0).await;
}

#[tokio::test]
async fn each_cap_gives_its_documented_refusal() {
    let top = format!(
        "workers = 1\n{ADMIN}[limits]\nmax_timers_per_instance = 3\nmax_groups_per_connection = 2\nmax_name_bytes = 8\nmax_plugin_log_lines_per_sec = 5\n"
    );
    let gw = TestGateway::start_with(&top, &two_routes());
    let mut ws = gw.wss("/a").await;
    assert_eq!(
        ask(&mut ws, "timers 10").await,
        "timers started=3 refused=TooManyTimers"
    );
    assert_eq!(
        ask(&mut ws, "groups 5").await,
        "groups joined=2 refused=TooManyGroups"
    );
    assert_eq!(
        ask(&mut ws, "longname 9").await,
        "join=Err(NameTooLong) bind=Err(NameTooLong) session=Err(NameTooLong)"
    );
    assert_eq!(
        ask(&mut ws, "longname 8").await,
        "join=Err(TooManyGroups) bind=Ok(()) session=Ok(())"
    );
    let logs = ask(&mut ws, "logs 50").await;
    let written: u32 = logs.split(['=', ' ']).nth(2).unwrap().parse().unwrap();
    assert!((5..=10).contains(&written), "{logs}");
    for cap in [
        "timers_per_instance",
        "groups_per_connection",
        "name_bytes",
        "plugin_log_lines",
    ] {
        metric_until(
            &gw,
            &format!("wssgate_cap_hits_total{{cap=\"{cap}\"}}"),
            |n| n > 0.0,
        )
        .await;
    }
}

#[tokio::test]
async fn a_stalled_worker_drops_its_deliveries_rather_than_growing_the_gateway() {
    let top = format!("workers = 2\n{ADMIN}[limits]\nmax_worker_queue_bytes = 1048576\n");
    let gw = TestGateway::start_with(&top, &two_routes());
    // Connections on both workers: members and a staller on one, the publisher on the other.
    let mut by_worker: HashMap<u64, Vec<_>> = HashMap::new();
    for _ in 0..200 {
        let mut ws = gw.wss("/a").await;
        let worker = (id_of(&mut ws).await >> 36) & 0xff;
        by_worker.entry(worker).or_default().push(ws);
        if by_worker.len() == 2 && by_worker.values().all(|v| v.len() >= 3) {
            break;
        }
    }
    assert_eq!(by_worker.len(), 2, "every connection landed on one worker");
    let mut stalled = by_worker.remove(&0).unwrap();
    let mut publisher = by_worker.remove(&1).unwrap().pop().unwrap();
    let mut staller = stalled.pop().unwrap();
    for member in &mut stalled {
        assert_eq!(ask(member, "join room").await, "joined");
    }
    let rss_before = gw.rss_kib();
    // Worker 0 spends 40 ms of each of the next 250 events busy (10 s), within its CPU budget.
    for _ in 0..250 {
        bounded(staller.feed(Message::text("busy 40")))
            .await
            .unwrap();
    }
    bounded(staller.flush()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile worker 1 publishes 100 MiB to worker 0's members.
    let publish = Message::text(format!("publish room {}", "x".repeat(64 * 1024)));
    for _ in 0..1_600 {
        bounded(publisher.send(publish.clone())).await.unwrap();
        // Skip the probe's notes about other connections closing.
        for _ in 0..1_000 {
            if let Message::Text(reply) = next_message(&mut publisher).await
                && reply.starts_with("published ")
            {
                break;
            }
        }
    }
    let grown = gw.rss_kib().saturating_sub(rss_before);
    let dropped = metric_until(&gw, "wssgate_cap_hits_total{cap=\"delivery_queue\"}", |n| {
        n > 0.0
    })
    .await;
    eprintln!("stalled worker: {dropped} deliveries dropped, RSS grew {grown} KiB");
    assert!(
        grown < 48 * 1024,
        "RSS grew by {grown} KiB while a worker stalled"
    );
}

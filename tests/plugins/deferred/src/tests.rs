//! The scenarios on the mock host (`tests/scenarios.rs` runs the same ones on the gateway), and what only the mock
//! can show directly.

use super::*;
use wssgate_sdk::log::Level;
use wssgate_sdk::testing::{MockHost, Status};

#[test]
fn every_scenario_passes_on_the_mock() {
    let all = scenarios();
    assert!(all.len() >= 6);
    for scenario in &all {
        MockHost::<Deferred>::run_scenario(scenario);
    }
}

#[test]
fn a_deferred_connection_gets_no_message_and_ends_with_on_close_when_it_never_opens() {
    let host = MockHost::<Deferred>::new().with_accept_timeout(Duration::from_millis(100));
    // An ordinary connection, then one that waits.
    let open = host.connect("/d").unwrap();
    let conn = host
        .connect_with(Request {
            query: "wait".to_owned(),
            ..Request::new("/d")
        })
        .deferred();
    assert_eq!(host.status(conn), Some(Status::Waiting));
    assert_eq!(host.states(), 2);
    host.advance(Duration::from_millis(100));
    match host.status(conn) {
        Some(Status::Rejected(r)) => assert_eq!(r.status, 504),
        other => panic!("{other:?}"),
    }
    assert_eq!(host.states(), 1, "its state ended with on-close");
    host.message(open, "live");
    assert_eq!(host.take_sent(open), vec![Message::from("live 1")]);
}

#[test]
fn a_client_that_leaves_while_deferred_ends_like_a_close() {
    let host = MockHost::<Deferred>::new();
    let conn = host
        .connect_with(Request {
            query: "accept=1000".to_owned(),
            ..Request::new("/d")
        })
        .deferred();
    assert_eq!(host.running_timers(), 1);
    host.client_close(conn, 1000, "");
    assert_eq!(host.states(), 0);
    assert_eq!(host.running_timers(), 0, "the timer it owned died with it");
}

#[test]
fn a_restart_rebuilds_state_through_on_connect_and_drops_the_old_timers() {
    let host = MockHost::<Deferred>::new();
    let open = host.connect("/d").unwrap();
    let later = host
        .connect_with(Request {
            query: "accept=1000".to_owned(),
            ..Request::new("/d")
        })
        .deferred();
    host.message(open, "x");
    host.take_sent(open);
    host.restart();
    assert_eq!(
        host.running_timers(),
        0,
        "the old instance's timers died with it"
    );
    // Replayed as restored, the waiting connection was accepted by the fresh instance.
    assert_eq!(host.status(later), Some(Status::Open));
    assert_eq!(host.states(), 2);
    host.message(open, "count");
    assert_eq!(
        host.take_sent(open),
        vec![Message::from("count 0")],
        "the state was rebuilt, not kept"
    );
}

#[test]
fn the_log_facade_reaches_the_gateway_log() {
    let host = MockHost::<Deferred>::new();
    let conn = host.connect("/d").unwrap();
    host.message(conn, "log");
    assert_eq!(host.take_sent(conn), vec![Message::from("logged")]);
    assert!(
        host.logs().contains(&(
            Level::Info,
            "deferred logs through the log facade".to_owned()
        )),
        "{:?}",
        host.logs()
    );
}

#[test]
fn host_calls_from_init_are_answered_and_init_can_refuse() {
    let host = MockHost::<Deferred>::new().with_setting("init", "host-calls");
    assert_eq!(host.init(), Ok(()));
    assert_eq!(host.running_timers(), 1);
    let refusing = MockHost::<Deferred>::new().with_setting("init", "refuse");
    assert_eq!(refusing.init(), Err("init was told to refuse".to_owned()));
}

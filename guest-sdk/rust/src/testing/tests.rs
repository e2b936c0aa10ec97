//! The mock's own rules: caps, refusals, and the gateway behaviour it simulates.

use super::*;
use crate::{Connections, Plugin, Refusal, TimerEvents, log, timers};
use std::collections::BTreeSet;

/// A plugin that does nothing by itself: the tests make its host calls with [`MockHost::call`].
#[derive(Default)]
struct Quiet;
impl Plugin for Quiet {
    type State = ();
}
impl TimerEvents for Quiet {
    fn on_timer(&mut self, _timer: Timer, _connections: &mut Connections<()>) {}
}
impl crate::HttpEvents for Quiet {
    fn on_http_response(
        &mut self,
        request: crate::http::Sent,
        response: Result<crate::http::Response, crate::http::HttpError>,
        _connections: &mut Connections<()>,
    ) {
        if let (Some(conn), Ok(response)) = (request.owner(), response) {
            let _ = conn.send(response.body);
        }
    }
}
crate::export_plugin!(Quiet, timers, http);

/// Makes host calls as a plugin callback would.
fn call<R>(host: &MockHost<Quiet>, f: impl FnOnce() -> R) -> R {
    host.call(f)
}

fn open(host: &MockHost<Quiet>) -> Connection {
    host.connect("/t").unwrap()
}

fn closed(host: &MockHost<Quiet>) -> Connection {
    let conn = open(host);
    host.client_close(conn, 1000, "bye");
    conn
}

#[test]
fn calls_on_a_closed_or_unknown_connection_are_refused_and_change_nothing() {
    let host = MockHost::<Quiet>::new();
    for conn in [closed(&host), Connection::new(999)] {
        assert_eq!(
            call(&host, || conn.join("g")),
            Err(Refusal::UnknownConnection)
        );
        assert_eq!(
            call(&host, || conn.bind_user("ann")),
            Err(Refusal::UnknownConnection)
        );
        assert_eq!(
            call(&host, || conn.session_set("k", "v")),
            Err(Refusal::UnknownConnection)
        );
        assert_eq!(
            call(&host, || timers::after(Duration::from_secs(1), Some(conn))),
            Err(Refusal::UnknownConnection)
        );
        assert_eq!(
            call(&host, || timers::every(Duration::from_secs(1), Some(conn))),
            Err(Refusal::UnknownConnection)
        );
        assert!(host.groups_of(conn).is_empty());
        assert_eq!(host.user_of(conn), None);
        assert_eq!(host.session(conn, "k"), None);
    }
    assert!(host.group_members("g").is_empty());
    assert_eq!(host.running_timers(), 0, "a refused timer is not started");
}

#[test]
fn names_past_max_name_bytes_are_refused() {
    let host = MockHost::<Quiet>::new();
    let conn = open(&host);
    let longest = "n".repeat(256);
    let too_long = "n".repeat(257);
    assert_eq!(call(&host, || conn.join(&longest)), Ok(()));
    assert_eq!(
        call(&host, || conn.join(&too_long)),
        Err(Refusal::NameTooLong)
    );
    assert_eq!(call(&host, || conn.bind_user(&longest)), Ok(()));
    assert_eq!(
        call(&host, || conn.bind_user(&too_long)),
        Err(Refusal::NameTooLong)
    );
    assert_eq!(host.user_of(conn), Some(longest.clone()));
    assert_eq!(call(&host, || conn.session_set(&longest, "v")), Ok(()));
    assert_eq!(
        call(&host, || conn.session_set(&too_long, "v")),
        Err(Refusal::NameTooLong)
    );
    // Only keys are names: a long value is fine.
    assert_eq!(call(&host, || conn.session_set("k", &too_long)), Ok(()));
    assert_eq!(host.groups_of(conn), vec![longest]);
    assert_eq!(host.session(conn, &too_long), None);
}

#[test]
fn max_name_bytes_is_configurable() {
    let host = MockHost::<Quiet>::new().with_max_name_bytes(4);
    let conn = open(&host);
    assert_eq!(call(&host, || conn.join("abcd")), Ok(()));
    assert_eq!(
        call(&host, || conn.join("abcde")),
        Err(Refusal::NameTooLong)
    );
    assert_eq!(
        call(&host, || conn.bind_user("abcde")),
        Err(Refusal::NameTooLong)
    );
    assert_eq!(
        call(&host, || conn.session_set("abcde", "")),
        Err(Refusal::NameTooLong)
    );
}

#[test]
fn one_group_past_max_groups_per_connection_is_refused() {
    let host = MockHost::<Quiet>::new();
    let conn = open(&host);
    let other = open(&host);
    for g in 0..64 {
        assert_eq!(call(&host, || conn.join(&format!("g{g}"))), Ok(()));
    }
    assert_eq!(
        call(&host, || conn.join("one-more")),
        Err(Refusal::TooManyGroups)
    );
    assert_eq!(
        call(&host, || conn.join("g7")),
        Ok(()),
        "re-joining a group is fine"
    );
    assert_eq!(
        call(&host, || other.join("one-more")),
        Ok(()),
        "the cap is per connection"
    );
    call(&host, || conn.leave("g7"));
    assert_eq!(call(&host, || conn.join("one-more")), Ok(()));
    assert_eq!(host.groups_of(conn).len(), 64);
}

#[test]
fn max_groups_per_connection_is_configurable() {
    let host = MockHost::<Quiet>::new().with_max_groups_per_connection(2);
    let conn = open(&host);
    assert_eq!(call(&host, || conn.join("a")), Ok(()));
    assert_eq!(call(&host, || conn.join("b")), Ok(()));
    assert_eq!(call(&host, || conn.join("c")), Err(Refusal::TooManyGroups));
    assert_eq!(call(&host, || conn.join("b")), Ok(()));
    assert_eq!(host.groups_of(conn), vec!["a".to_owned(), "b".to_owned()]);
    assert!(host.group_members("c").is_empty());
}

#[test]
fn one_timer_past_max_timers_is_refused_until_one_finishes_or_is_cancelled() {
    let host = MockHost::<Quiet>::new();
    let conn = open(&host);
    let mut running = Vec::new();
    for _ in 0..1023 {
        running.push(call(&host, || timers::every(Duration::from_secs(60), None)).unwrap());
    }
    let once = call(&host, || {
        timers::after(Duration::from_millis(10), Some(conn))
    })
    .unwrap();
    assert_eq!(
        call(&host, || timers::after(Duration::from_secs(1), None)),
        Err(Refusal::TooManyTimers)
    );
    assert_eq!(
        call(&host, || timers::every(Duration::from_secs(1), Some(conn))),
        Err(Refusal::TooManyTimers)
    );
    // A finished one-shot timer no longer counts...
    host.advance(Duration::from_millis(10));
    assert!(!call(&host, || once.cancel()));
    let again = call(&host, || timers::after(Duration::from_secs(1), None)).unwrap();
    assert_eq!(
        call(&host, || timers::after(Duration::from_secs(1), None)),
        Err(Refusal::TooManyTimers)
    );
    // ...nor does a cancelled one.
    assert!(call(&host, || running[0].cancel()));
    assert!(call(&host, || timers::every(Duration::from_secs(1), None)).is_ok());
    assert_eq!(host.running_timers(), 1024);
    let _ = again;
}

#[test]
fn max_timers_is_configurable_and_timers_of_a_closed_owner_no_longer_count() {
    let host = MockHost::<Quiet>::new().with_max_timers(2);
    let conn = open(&host);
    call(&host, || timers::every(Duration::from_secs(1), Some(conn))).unwrap();
    call(&host, || timers::every(Duration::from_secs(1), None)).unwrap();
    assert_eq!(
        call(&host, || timers::after(Duration::from_secs(1), None)),
        Err(Refusal::TooManyTimers)
    );
    host.client_close(conn, 1000, "bye");
    assert_eq!(host.running_timers(), 1);
    assert!(call(&host, || timers::after(Duration::from_secs(1), None)).is_ok());
}

#[test]
fn a_session_past_its_limit_is_refused_and_keeps_the_old_value() {
    let host = MockHost::<Quiet>::new();
    let conn = open(&host);
    // "k" + value = 64 KiB exactly.
    let fits = "v".repeat(64 * 1024 - 1);
    assert_eq!(call(&host, || conn.session_set("k", &fits)), Ok(()));
    assert_eq!(
        call(&host, || conn.session_set("k2", "x")),
        Err(Refusal::TooLarge)
    );
    assert_eq!(
        call(&host, || conn.session_set("k", &format!("{fits}v"))),
        Err(Refusal::TooLarge)
    );
    assert_eq!(host.session(conn, "k"), Some(fits));
    assert_eq!(host.session(conn, "k2"), None);
    // Replacing a value frees what it held.
    assert_eq!(call(&host, || conn.session_set("k", "small")), Ok(()));
    assert_eq!(call(&host, || conn.session_set("k2", "x")), Ok(()));
}

#[test]
fn max_session_bytes_is_configurable() {
    let host = MockHost::<Quiet>::new().with_max_session_bytes(8);
    let conn = open(&host);
    assert_eq!(call(&host, || conn.session_set("key", "12345")), Ok(()));
    assert_eq!(
        call(&host, || conn.session_set("key", "123456")),
        Err(Refusal::TooLarge)
    );
}

#[test]
fn log_lines_are_never_rate_limited_by_the_mock() {
    let host = MockHost::<Quiet>::new();
    for n in 0..500 {
        assert_eq!(
            call(&host, || log::try_log(log::Level::Info, &format!("{n}"))),
            Ok(())
        );
    }
    call(&host, || log::warn("last"));
    let logs = host.logs();
    assert_eq!(logs.len(), 501);
    assert_eq!(logs[500], (log::Level::Warn, "last".to_owned()));
}

#[test]
fn refusals_say_what_went_wrong() {
    let all = [
        Refusal::UnknownConnection,
        Refusal::NameTooLong,
        Refusal::TooManyGroups,
        Refusal::TooManyTimers,
        Refusal::TooLarge,
        Refusal::RateLimited,
        Refusal::NotDeferred,
    ];
    let texts: BTreeSet<String> = all.iter().map(Refusal::to_string).collect();
    assert_eq!(texts.len(), all.len(), "each refusal reads differently");
    let error: Box<dyn std::error::Error> = Box::new(Refusal::TooManyGroups);
    assert_eq!(error.to_string(), "connection is in too many groups");
}

/// Counts its states alive: created by `on_connect`, dropped by the SDK.
mod counted {
    use crate::{CloseFrame, Connection, Message, Plugin, Request, Settings, Verdict};
    use std::cell::Cell;

    thread_local! {
        pub static ALIVE: Cell<i64> = const { Cell::new(0) };
    }

    /// Its field only makes it more than a unit, which `Default` would not be expected to count.
    pub struct Tracked(#[allow(dead_code)] u8);

    impl Default for Tracked {
        fn default() -> Self {
            ALIVE.with(|a| a.set(a.get() + 1));
            Tracked(0)
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            ALIVE.with(|a| a.set(a.get() - 1));
        }
    }

    #[derive(Default)]
    pub struct Counting;

    impl Plugin for Counting {
        type State = Tracked;

        fn init(&mut self, settings: &Settings) -> Result<(), String> {
            match settings.get("mode") {
                Some("bad") => Err("mode must not be bad".to_owned()),
                _ => Ok(()),
            }
        }

        fn on_connect(&mut self, _conn: Connection, request: &Request) -> Verdict<Tracked> {
            if request.query == "no" {
                Verdict::reject(403, "no")
            } else {
                Verdict::Accept(Tracked::default())
            }
        }

        fn on_message(&mut self, conn: Connection, _state: &mut Tracked, message: Message) {
            match message.as_text() {
                Some(code) if code.starts_with("close ") => {
                    conn.close(code[6..].parse().unwrap_or(1000), &"r".repeat(200))
                }
                Some("start timer") => {
                    let _ = crate::timers::after(std::time::Duration::from_secs(1), None);
                }
                _ => {
                    let _ = conn.send(message);
                }
            }
        }

        fn on_close(&mut self, _conn: Connection, _state: Tracked, _close: CloseFrame) {}
    }

    crate::export_plugin!(Counting);

    pub fn alive() -> i64 {
        ALIVE.with(Cell::get)
    }
}

use counted::{Counting, alive};

#[test]
fn per_connection_state_is_created_passed_and_dropped_also_across_a_restart() {
    let host = MockHost::<Counting>::new();
    let a = host.connect("/c").unwrap();
    let b = host.connect("/c").unwrap();
    assert_eq!(host.connect("/c?no").rejected().status, 403);
    assert_eq!(
        (alive(), host.states()),
        (2, 2),
        "a rejection keeps no state"
    );
    host.restart();
    assert_eq!(
        (alive(), host.states()),
        (2, 2),
        "the old instance's states were dropped and rebuilt by the replay"
    );
    host.client_close(a, 1000, "bye");
    assert_eq!((alive(), host.states()), (1, 1));
    host.message(b, "close 4000");
    assert_eq!(
        (alive(), host.states()),
        (0, 0),
        "a close by the plugin drops it too"
    );
    drop(host);
    assert_eq!(alive(), 0);
}

#[test]
fn close_codes_are_made_sendable_and_reasons_cut_as_the_gateway_does() {
    let host = MockHost::<Counting>::new();
    for (asked, sent) in [
        (1006, 1008),
        (1005, 1008),
        (999, 1008),
        (4000, 4000),
        (1011, 1011),
    ] {
        let conn = host.connect("/c").unwrap();
        host.message(conn, format!("close {asked}"));
        let frame = host.closed(conn).expect("closed");
        assert_eq!(frame.code, sent, "{asked}");
        assert_eq!(frame.reason.len(), 123);
    }
}

#[test]
fn a_full_outbound_queue_refuses_the_send_and_closes_the_slow_client() {
    let host = MockHost::<Counting>::new().with_max_outbound_bytes(10);
    let conn = host.connect("/c").unwrap();
    host.message(conn, "12345678");
    host.message(conn, "123");
    let frame = host.closed(conn).expect("closed as a slow consumer");
    assert_eq!((frame.code, frame.reason.as_str()), (1008, "slow consumer"));
    assert!(host.take_sent(conn).is_empty(), "what waited was dropped");
    assert_eq!(host.states(), 0);
}

#[test]
fn init_refusing_its_settings_is_reported_like_the_gateway_refuses_the_config() {
    let host = MockHost::<Counting>::new().with_setting("mode", "bad");
    assert_eq!(host.init(), Err("mode must not be bad".to_owned()));
    assert_eq!(
        MockHost::<Counting>::new()
            .with_setting("mode", "ok")
            .init(),
        Ok(())
    );
}

#[test]
#[should_panic(expected = "does not export their events")]
fn a_plugin_that_starts_timers_without_exporting_their_events_is_refused() {
    let host = MockHost::<Counting>::new();
    let conn = host.connect("/c").unwrap();
    host.message(conn, "start timer");
}

#[test]
fn accept_and_reject_answer_only_a_waiting_connection() {
    let host = MockHost::<Quiet>::new();
    let conn = open(&host);
    assert_eq!(call(&host, || conn.accept()), Err(Refusal::NotDeferred));
    assert_eq!(
        call(&host, || conn.reject(401, "x")),
        Err(Refusal::NotDeferred)
    );
    assert_eq!(
        call(&host, || Connection::new(999).accept()),
        Err(Refusal::UnknownConnection)
    );
}

#[test]
fn http_requests_are_refused_like_the_gateway_and_die_with_their_owner_and_instance() {
    use crate::http::{Request as Http, RequestRefusal, Response};
    let host = MockHost::<Quiet>::new()
        .with_upstream("backend")
        .with_max_requests_in_flight(2);
    let conn = open(&host);
    let send = |request: Http| call(&host, || request.send());
    assert_eq!(
        send(Http::get("other", "/")),
        Err(RequestRefusal::NotGranted)
    );
    assert_eq!(
        send(Http::get("backend", "x")),
        Err(RequestRefusal::InvalidRequest)
    );
    assert_eq!(
        send(Http::get("backend", "/").owner(Connection::new(99))),
        Err(RequestRefusal::UnknownConnection)
    );
    assert_eq!(
        send(Http::post("backend", "/").body(vec![0; 2 << 20])),
        Err(RequestRefusal::TooLarge)
    );
    let sent = send(Http::get("backend", "/a").owner(conn)).unwrap();
    send(Http::get("backend", "/b")).unwrap();
    assert_eq!(
        send(Http::get("backend", "/c")),
        Err(RequestRefusal::TooManyInFlight)
    );
    assert_eq!(host.http_requests()[0].1.path, "/a");
    host.respond(sent, Response::new(200, "answer"));
    assert_eq!(
        host.take_sent(conn),
        vec![Message::Binary(b"answer".to_vec())]
    );
    // The owner closes: its request is gone; a restart ends the rest.
    send(Http::get("backend", "/d").owner(conn)).unwrap();
    host.client_close(conn, 1000, "bye");
    assert_eq!(host.http_requests().len(), 1);
    host.restart();
    assert!(host.http_requests().is_empty());
}

#[test]
fn http_requests_are_refused_in_init() {
    #[derive(Default)]
    struct EarlyBird(Option<crate::http::RequestRefusal>);
    impl Plugin for EarlyBird {
        type State = ();
        fn init(&mut self, _settings: &Settings) -> Result<(), String> {
            self.0 = crate::http::Request::get("backend", "/").send().err();
            Ok(())
        }
    }
    impl crate::HttpEvents for EarlyBird {
        fn on_http_response(
            &mut self,
            _request: crate::http::Sent,
            _response: Result<crate::http::Response, crate::http::HttpError>,
            _connections: &mut Connections<()>,
        ) {
        }
    }
    crate::export_plugin!(EarlyBird, http);
    let host = MockHost::<EarlyBird>::new().with_upstream("backend");
    host.init().unwrap();
    assert_eq!(host.plugin().0, Some(crate::http::RequestRefusal::NotNow));
}

//! The mock's history and storage rules: offsets and epochs, retention and `complete`, compare-and-set and
//! revisions, time to live, quotas, refusals, and when the events come (or do not).

use super::*;
use crate::history::{self, HistoryPage, Position};
use crate::storage::{self, StoredValue};
use crate::{
    Connections, HistoryEvents, Plugin, StorageError, StorageEvents, StorageRefusal, StorageRequest,
};

/// One event the recorder got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Appended(u64, Result<Position, StorageError>),
    History(u64, Result<HistoryPage, StorageError>),
    Read(u64, Result<Option<StoredValue>, StorageError>),
    Written(u64, Result<u64, StorageError>),
}

/// Records every history and storage event; the tests make its calls with [`MockHost::call`].
#[derive(Default)]
struct Recorder {
    events: Vec<Event>,
}
impl Plugin for Recorder {
    type State = ();
}
impl HistoryEvents for Recorder {
    fn on_appended(
        &mut self,
        request: StorageRequest,
        result: Result<Position, StorageError>,
        _: &mut Connections<()>,
    ) {
        self.events.push(Event::Appended(request.id(), result));
    }
    fn on_history(
        &mut self,
        request: StorageRequest,
        result: Result<HistoryPage, StorageError>,
        _: &mut Connections<()>,
    ) {
        self.events.push(Event::History(request.id(), result));
    }
}
impl StorageEvents for Recorder {
    fn on_read(
        &mut self,
        request: StorageRequest,
        result: Result<Option<StoredValue>, StorageError>,
        _: &mut Connections<()>,
    ) {
        self.events.push(Event::Read(request.id(), result));
    }
    fn on_written(
        &mut self,
        request: StorageRequest,
        result: Result<u64, StorageError>,
        _: &mut Connections<()>,
    ) {
        self.events.push(Event::Written(request.id(), result));
    }
}
crate::export_plugin!(Recorder, storage, history);

fn host(history: HistoryConfig) -> MockHost<Recorder> {
    MockHost::new()
        .with_history(history)
        .with_storage(StorageConfig::default())
}

fn events(host: &MockHost<Recorder>) -> Vec<Event> {
    std::mem::take(&mut host.runtime.borrow_mut().plugin.events)
}

/// Appends `text` to `group` and returns its position (the event must have come).
#[track_caller]
fn append(host: &MockHost<Recorder>, group: &str, text: &str) -> Result<Position, StorageError> {
    let request = host
        .call(|| history::append(group, text, None))
        .expect("taken");
    match events(host).as_slice() {
        [Event::Appended(id, result)] if *id == request.id() => result.clone(),
        other => panic!("expected one on_appended, got {other:?}"),
    }
}

#[track_caller]
fn read(
    host: &MockHost<Recorder>,
    group: &str,
    since: Option<&Position>,
    limit: u32,
) -> HistoryPage {
    host.call(|| history::read(group, since, limit, None))
        .expect("taken");
    match events(host).as_slice() {
        [Event::History(_, Ok(page))] => page.clone(),
        other => panic!("expected one on_history, got {other:?}"),
    }
}

fn offsets(page: &HistoryPage) -> Vec<u64> {
    page.entries.iter().map(|e| e.offset).collect()
}

fn at(offset: u64, epoch: &str) -> Position {
    Position {
        offset,
        epoch: epoch.to_owned(),
    }
}

#[test]
fn offsets_are_consecutive_from_1_per_group_and_events_come_after_the_event_in_order() {
    let host = host(HistoryConfig::default());
    let ids = host.call(|| {
        let ids: Vec<u64> = ["a", "b", "a"]
            .iter()
            .map(|g| history::append(g, "m", None).unwrap().id())
            .collect();
        // Nothing is delivered while the event runs.
        assert!(crate::testing::try_with_mock(|m| m.answers.len()) == Some(3));
        ids
    });
    let got = events(&host);
    let positions: Vec<(u64, u64)> = got
        .iter()
        .map(|e| match e {
            Event::Appended(id, Ok(p)) => (*id, p.offset),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(positions, vec![(ids[0], 1), (ids[1], 1), (ids[2], 2)]);
    let epoch = host.history_epoch("a").unwrap();
    assert_ne!(Some(epoch.clone()), host.history_epoch("b"));
    assert_eq!(append(&host, "a", "m"), Ok(at(3, &epoch)));
    let page = read(&host, "a", None, 10);
    assert_eq!((offsets(&page), page.complete), (vec![1, 2, 3], true));
    assert_eq!(page.entries[0].message, Message::from("m"));
}

#[test]
fn size_retention_makes_pages_incomplete_and_limit_pages_through_what_is_kept() {
    let host = host(HistoryConfig {
        size: 3,
        ..HistoryConfig::default()
    });
    for text in ["1", "2", "3", "4", "5"] {
        append(&host, "g", text).unwrap();
    }
    let epoch = host.history_epoch("g").unwrap();
    let latest = read(&host, "g", None, 100);
    assert_eq!(
        (offsets(&latest), latest.complete, latest.epoch.as_str()),
        (vec![3, 4, 5], true, epoch.as_str())
    );
    // Offset 2 was dropped after 1: the page starts at the oldest kept, and says so.
    let page = read(&host, "g", Some(&at(1, &epoch)), 100);
    assert_eq!((offsets(&page), page.complete), (vec![3, 4, 5], false));
    let page = read(&host, "g", Some(&at(2, &epoch)), 100);
    assert_eq!((offsets(&page), page.complete), (vec![3, 4, 5], true));
    let page = read(&host, "g", Some(&at(3, &epoch)), 1);
    assert_eq!((offsets(&page), page.complete), (vec![4], true));
    let page = read(&host, "g", Some(&at(5, &epoch)), 10);
    assert_eq!((offsets(&page), page.complete), (vec![], true));
    // A position this stream never had, or another epoch's, is not a place to continue from.
    let page = read(&host, "g", Some(&at(9, &epoch)), 10);
    assert_eq!((offsets(&page), page.complete), (vec![], false));
    let page = read(&host, "g", Some(&at(4, "another")), 10);
    assert_eq!((offsets(&page), page.complete), (vec![3, 4, 5], false));
    // A limit of 0 reads one; the latest page without a position is the newest messages.
    assert_eq!(offsets(&read(&host, "g", None, 0)), vec![5]);
    assert_eq!(offsets(&read(&host, "g", None, 2)), vec![4, 5]);
}

#[test]
fn ttl_expires_messages_on_the_mocks_clock_and_an_emptied_group_starts_a_new_epoch() {
    let host = host(HistoryConfig {
        ttl: Duration::from_secs(10),
        ..HistoryConfig::default()
    });
    let first = append(&host, "g", "old").unwrap();
    host.advance(Duration::from_secs(6));
    append(&host, "g", "new").unwrap();
    assert_eq!(host.history("g")[0].appended_at_ms, 0);
    host.advance(Duration::from_secs(4));
    // 10 s after the first: it is gone, the second (6 s old) is kept.
    let page = read(&host, "g", Some(&at(0, &first.epoch)), 10);
    assert_eq!((offsets(&page), page.complete), (vec![2], false));
    assert_eq!(page.entries[0].appended_at_ms, 6_000);
    host.advance(Duration::from_secs(6));
    assert!(host.history("g").is_empty());
    assert_eq!(host.history_epoch("g"), None);
    let gone = read(&host, "g", Some(&at(2, &first.epoch)), 10);
    assert_eq!((gone.epoch.as_str(), gone.complete), ("", false));
    let none = read(&host, "g", None, 10);
    assert_eq!((none.epoch.as_str(), none.complete), ("", true));
    let again = append(&host, "g", "again").unwrap();
    assert_eq!(again.offset, 1);
    assert_ne!(again.epoch, first.epoch);
}

#[test]
fn history_quotas_refuse_a_group_too_many_and_bytes_past_max_bytes_but_size_retention_frees_room() {
    let host = host(HistoryConfig {
        size: 2,
        max_groups: 2,
        max_bytes: 10,
        ..HistoryConfig::default()
    });
    append(&host, "a", "1234").unwrap();
    append(&host, "b", "1234").unwrap();
    assert_eq!(append(&host, "c", "1"), Err(StorageError::QuotaExceeded));
    assert_eq!(append(&host, "b", "123"), Err(StorageError::QuotaExceeded));
    assert_eq!(append(&host, "b", "12").unwrap().offset, 2);
    // 10 of 10 bytes, b is full: its next message drops its oldest (4 bytes), which makes room for 4.
    assert_eq!(
        append(&host, "b", "12345"),
        Err(StorageError::QuotaExceeded)
    );
    assert_eq!(append(&host, "b", "1234").unwrap().offset, 3);
    assert_eq!(host.history("c"), vec![]);
    assert_eq!(host.history("b").len(), 2);
}

#[test]
fn history_calls_are_refused_as_the_gateway_refuses_them() {
    let host = host(HistoryConfig {
        max_message_bytes: 4,
        ..HistoryConfig::default()
    })
    .with_max_storage_requests(2);
    let conn = host.connect("/t").unwrap();
    let long = "g".repeat(257);
    let refused = |f: &dyn Fn() -> Result<StorageRequest, StorageRefusal>| host.call(f).err();
    assert_eq!(
        refused(&|| history::append("", "m", None)),
        Some(StorageRefusal::InvalidName)
    );
    assert_eq!(
        refused(&|| history::read(&long, None, 1, None)),
        Some(StorageRefusal::InvalidName)
    );
    assert_eq!(
        refused(&|| history::append("g", "12345", None)),
        Some(StorageRefusal::TooLarge)
    );
    assert_eq!(
        refused(&|| history::append("g", "m", Some(Connection::new(99)))),
        Some(StorageRefusal::UnknownConnection)
    );
    let third = host.call(|| {
        history::append("g", "m", Some(conn)).unwrap();
        storage::get("k", Some(conn)).unwrap();
        history::read("g", None, 1, Some(conn))
    });
    assert_eq!(third, Err(StorageRefusal::TooManyPending));
    assert_eq!(events(&host).len(), 2, "a refused request gets no event");
    let unconfigured = MockHost::<Recorder>::new();
    assert_eq!(
        unconfigured.call(|| history::append("g", "m", None)).err(),
        Some(StorageRefusal::NotConfigured)
    );
    assert_eq!(
        unconfigured.call(|| storage::get("k", None)).err(),
        Some(StorageRefusal::NotConfigured)
    );
}

#[test]
fn requests_are_refused_in_init() {
    #[derive(Default)]
    struct Early(Vec<Result<StorageRequest, StorageRefusal>>);
    impl Plugin for Early {
        type State = ();
        fn init(&mut self, _settings: &Settings) -> Result<(), String> {
            self.0.push(history::append("g", "m", None));
            self.0.push(storage::set("k", "v", None, None, None));
            Ok(())
        }
    }
    impl HistoryEvents for Early {}
    impl StorageEvents for Early {}
    crate::export_plugin!(Early, history, storage);
    let host = MockHost::<Early>::new()
        .with_history(HistoryConfig::default())
        .with_storage(StorageConfig::default());
    host.init().unwrap();
    assert_eq!(
        host.plugin().0,
        vec![Err(StorageRefusal::NotNow), Err(StorageRefusal::NotNow)]
    );
}

#[test]
fn an_owners_close_and_a_restart_drop_the_events_but_keep_the_writes() {
    let host = host(HistoryConfig::default());
    let conn = host.connect("/t").unwrap();
    host.call(|| {
        history::append("g", "kept", Some(conn)).unwrap();
        storage::set("k", "kept", None, None, Some(conn)).unwrap();
        history::append("g", "unowned", None).unwrap();
        conn.close(1000, "bye");
    });
    let got = events(&host);
    assert!(
        matches!(got.as_slice(), [Event::Appended(_, Ok(p))] if p.offset == 2),
        "{got:?}"
    );
    assert_eq!(host.history("g").len(), 2);
    assert_eq!(host.stored("k").unwrap().value, b"kept");
    // A request made in the callback that replaces the instance dies with the old instance.
    host.call(|| history::append("g", "lost", None).unwrap());
    events(&host);
    host.restart();
    assert!(events(&host).is_empty());
}

#[test]
fn a_failing_store_answers_unavailable_and_changes_nothing() {
    let host = host(HistoryConfig::default());
    append(&host, "g", "one").unwrap();
    host.fail_store(Some("broker away"));
    let unavailable = StorageError::Unavailable("broker away".to_owned());
    assert_eq!(append(&host, "g", "two"), Err(unavailable.clone()));
    host.call(|| storage::set("k", "v", None, None, None).unwrap());
    assert_eq!(events(&host), vec![Event::Written(3, Err(unavailable))]);
    host.fail_store(None);
    assert_eq!(append(&host, "g", "three").unwrap().offset, 2);
    assert_eq!(host.stored("k"), None);
}

#[test]
fn a_reset_history_starts_every_group_again_in_a_new_epoch() {
    let host = host(HistoryConfig::default());
    let before = append(&host, "g", "one").unwrap();
    host.reset_history();
    let after = append(&host, "g", "two").unwrap();
    assert_eq!(after.offset, 1);
    assert_ne!(after.epoch, before.epoch);
    let page = read(&host, "g", Some(&before), 10);
    assert_eq!((offsets(&page), page.complete), (vec![1], false));
}

/// Writes through the plugin and returns the write's answer.
#[track_caller]
fn write(
    host: &MockHost<Recorder>,
    call: impl FnOnce() -> Result<StorageRequest, StorageRefusal>,
) -> Result<u64, StorageError> {
    host.call(call).expect("taken");
    match events(host).as_slice() {
        [Event::Written(_, result)] => result.clone(),
        other => panic!("expected one on_written, got {other:?}"),
    }
}

#[track_caller]
fn get(host: &MockHost<Recorder>, key: &str) -> Option<StoredValue> {
    host.call(|| storage::get(key, None)).expect("taken");
    match events(host).as_slice() {
        [Event::Read(_, Ok(value))] => value.clone(),
        other => panic!("expected one on_read, got {other:?}"),
    }
}

#[test]
fn revisions_grow_with_every_write_of_the_route_and_compare_and_set_checks_them() {
    let host = host(HistoryConfig::default());
    assert_eq!(get(&host, "k"), None);
    let one = write(&host, || storage::set("k", "a", None, Some(0), None)).unwrap();
    assert!(one > 0);
    assert_eq!(
        write(&host, || storage::set("k", "b", None, Some(0), None)),
        Err(StorageError::Conflict(one))
    );
    let other = write(&host, || storage::set("j", "x", None, None, None)).unwrap();
    let two = write(&host, || storage::set("k", "b", None, Some(one), None)).unwrap();
    assert!(one < other && other < two);
    assert_eq!(
        get(&host, "k"),
        Some(StoredValue {
            value: b"b".to_vec(),
            revision: two,
            expires_at_ms: None
        })
    );
    assert_eq!(
        write(&host, || storage::remove("k", Some(one), None)),
        Err(StorageError::Conflict(two))
    );
    let removed = write(&host, || storage::remove("k", Some(two), None)).unwrap();
    assert!(removed > two, "a removal is a write with a revision");
    assert_eq!(get(&host, "k"), None);
    // Removing what does not exist succeeds; compare-and-set sees it as revision 0.
    assert!(write(&host, || storage::remove("k", None, None)).unwrap() > removed);
    assert!(write(&host, || storage::remove("k", Some(0), None)).is_ok());
    assert_eq!(
        write(&host, || storage::remove("j", Some(0), None)),
        Err(StorageError::Conflict(other))
    );
}

#[test]
fn a_value_with_a_ttl_expires_on_the_mocks_clock() {
    let host = host(HistoryConfig::default());
    host.advance(Duration::from_secs(1));
    write(&host, || {
        storage::set("k", "v", Some(Duration::from_secs(5)), None, None)
    })
    .unwrap();
    assert_eq!(get(&host, "k").unwrap().expires_at_ms, Some(6_000));
    host.advance(Duration::from_millis(4_999));
    assert!(get(&host, "k").is_some());
    host.advance(Duration::from_millis(1));
    assert_eq!(get(&host, "k"), None);
    // Expired is absent, for compare-and-set too.
    assert!(write(&host, || storage::set("k", "w", None, Some(0), None)).is_ok());
}

#[test]
fn storage_quotas_and_caps_refuse_what_passes_them() {
    let host = MockHost::<Recorder>::new().with_storage(StorageConfig {
        max_key_bytes: 3,
        max_value_bytes: 4,
        max_keys: 2,
        max_bytes: 10,
    });
    let refused = |f: &dyn Fn() -> Result<StorageRequest, StorageRefusal>| host.call(f).err();
    assert_eq!(
        refused(&|| storage::get("", None)),
        Some(StorageRefusal::InvalidName)
    );
    assert_eq!(
        refused(&|| storage::remove("abcd", None, None)),
        Some(StorageRefusal::InvalidName)
    );
    assert_eq!(
        refused(&|| storage::set("a", "12345", None, None, None)),
        Some(StorageRefusal::TooLarge)
    );
    write(&host, || storage::set("a", "1234", None, None, None)).unwrap();
    write(&host, || {
        storage::set("b", "1", Some(Duration::from_secs(1)), None, None)
    })
    .unwrap();
    assert_eq!(
        write(&host, || storage::set("c", "1", None, None, None)),
        Err(StorageError::QuotaExceeded)
    );
    // Replacing a key does not add one, and its old bytes make room: 5 + 2 of 10 bytes becomes 5 + 5.
    write(&host, || storage::set("b", "1234", None, None, None)).unwrap();
    write(&host, || storage::remove("b", None, None)).unwrap();
    // 5 + 6 bytes: past max_bytes with a key to spare.
    assert_eq!(
        write(&host, || storage::set("bb", "1234", None, None, None)),
        Err(StorageError::QuotaExceeded)
    );
    write(&host, || {
        storage::set("c", "1", Some(Duration::from_secs(1)), None, None)
    })
    .unwrap();
    // An expired key no longer counts.
    host.advance(Duration::from_secs(1));
    write(&host, || storage::set("d", "1", None, None, None)).unwrap();
    assert_eq!(host.stored("a").unwrap().value, b"1234");
}

#[test]
#[should_panic(expected = "does not export `wssgate:plugin/history-events`")]
fn a_plugin_using_history_without_its_events_is_refused() {
    #[derive(Default)]
    struct Forgetful;
    impl Plugin for Forgetful {
        type State = ();
    }
    crate::export_plugin!(Forgetful, storage);
    impl StorageEvents for Forgetful {}
    let host = MockHost::<Forgetful>::new().with_history(HistoryConfig::default());
    let _ = host.call(|| history::append("g", "m", None));
}

#[test]
fn a_value_too_large_is_refused_before_its_key_is_looked_at_as_the_gateway_does() {
    let host = MockHost::<Recorder>::new().with_storage(StorageConfig {
        max_key_bytes: 3,
        max_value_bytes: 4,
        ..StorageConfig::default()
    });
    let refused = host.call(|| storage::set("toolong", "12345", None, None, None).err());
    assert_eq!(refused, Some(StorageRefusal::TooLarge));
}

/// Defers every upgrade and answers it from the key `door`'s value: accepted when it is "open".
#[derive(Default)]
struct Doorman;

impl Plugin for Doorman {
    type State = ();
    fn on_connect(&mut self, conn: Connection, _: &Request) -> crate::Verdict<()> {
        match storage::get("door", Some(conn)) {
            Ok(_) => crate::Verdict::Defer(()),
            Err(_) => crate::Verdict::reject(503, "no storage"),
        }
    }
}

impl StorageEvents for Doorman {
    fn on_read(
        &mut self,
        request: StorageRequest,
        result: Result<Option<StoredValue>, StorageError>,
        _: &mut Connections<()>,
    ) {
        let Some(conn) = request.owner() else { return };
        let open = matches!(&result, Ok(Some(v)) if v.text() == Some("open"));
        let _ = if open {
            conn.accept()
        } else {
            conn.reject(403, "closed")
        };
    }
}

crate::export_plugin!(Doorman, storage);

#[test]
fn the_verdict_takes_effect_before_the_answers_it_caused_so_a_deferred_upgrade_can_be_answered_from_them()
 {
    let host = MockHost::<Doorman>::new().with_storage(StorageConfig::default());
    let Upgrade::Deferred(closed) = host.connect("/door") else {
        panic!("on_connect defers")
    };
    assert!(
        matches!(host.status(closed), Some(Status::Rejected(r)) if r.status == 403),
        "the door is closed: the answer rejects the deferred upgrade"
    );
    host.call(|| storage::set("door", "open", None, None, None).unwrap());
    let Upgrade::Deferred(conn) = host.connect("/door") else {
        panic!("on_connect defers")
    };
    assert_eq!(
        host.status(conn),
        Some(Status::Open),
        "accepted from on_read"
    );
}

#[test]
fn a_page_holds_at_most_4_mib_of_messages_as_in_the_gateway() {
    let host = host(HistoryConfig {
        max_message_bytes: 800_000,
        size: 10,
        ..HistoryConfig::default()
    });
    for i in 0..6u8 {
        host.call(|| history::append("big", vec![i; 700_000], None).unwrap());
    }
    assert_eq!(events(&host).len(), 6, "the appends' events");
    let epoch = host.history_epoch("big").unwrap();
    assert_eq!(
        offsets(&read(&host, "big", Some(&at(0, &epoch)), 10)),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(offsets(&read(&host, "big", None, 10)), [2, 3, 4, 5, 6]);
}

//! What every [`Store`] must do, as checks any store's tests run against it: the contract's semantics of history
//! and storage (wit/plugin.wit, `history` and `storage`), the same for the embedded store and the JetStream one.
//!
//! A store under test is started with [`spaces`] (the routes the checks use, each with the caps its check needs)
//! and handed to [`run_all`]. Each check uses its own routes, groups and keys, so none sees another's data. Answers
//! are waited for with a timeout, and [`ask`] also checks that no answer comes from inside `submit`.

use crate::{
    Answer, Message, Namespace, Page, Position, Request, Store, StoreError, Stored, now_ms,
};
use std::cell::Cell;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use wssgate_config::memory::{HistoryConfig, StorageConfig};

/// The longest a check waits for one answer.
const WAIT: Duration = Duration::from_secs(10);

/// One check, run against a store started with [`spaces`].
type Check = fn(&dyn Store);

/// The checks, by name.
pub(crate) const CHECKS: &[(&str, Check)] = &[
    (
        "offsets are consecutive from 1 in one epoch",
        offsets_consecutive,
    ),
    ("a group keeps its last `size` messages", size_retention),
    (
        "the latest page, and pages since a position",
        latest_and_since,
    ),
    (
        "a position of another epoch reads from the oldest",
        other_epoch,
    ),
    (
        "history expires, and the group starts a new epoch",
        history_expires,
    ),
    ("routes do not see each other's data", namespaces_isolated),
    ("keys: get, set, remove", keys_get_set_remove),
    ("keys: compare-and-set", keys_compare_and_set),
    ("keys: time to live", keys_expire),
    ("keys: max_keys", quota_keys),
    ("keys: max_bytes", quota_key_bytes),
    ("history: max_groups", quota_groups),
    ("history: max_bytes", quota_history_bytes),
    ("text and binary messages round-trip", messages_round_trip),
    ("any name is a name", odd_names),
    ("a page holds at most MAX_PAGE_BYTES", page_bytes),
];

/// Runs every check against `store`, which was started with [`spaces`].
pub(crate) fn run_all(store: &dyn Store) {
    for (name, check) in CHECKS {
        eprintln!("conformance: {name}");
        check(store);
    }
}

/// The routes the checks use.
pub(crate) fn spaces() -> Vec<Arc<Namespace>> {
    let history = |size: u32, ttl_secs: u64, max_groups: u64, max_bytes: u64| HistoryConfig {
        size,
        ttl: Duration::from_secs(ttl_secs),
        max_groups,
        max_bytes,
        ..HistoryConfig::defaults()
    };
    let storage = |max_keys: u64, max_bytes: u64| StorageConfig {
        max_keys,
        max_bytes,
        ..StorageConfig::defaults()
    };
    let day = 86_400;
    let space = |route: &str, history: Option<HistoryConfig>, storage: Option<StorageConfig>| {
        Arc::new(Namespace {
            route: route.into(),
            history,
            storage,
        })
    };
    vec![
        space(
            "/basic",
            Some(history(100, day, 1000, 1 << 20)),
            Some(storage(1000, 1 << 20)),
        ),
        space(
            "/other",
            Some(history(100, day, 1000, 1 << 20)),
            Some(storage(1000, 1 << 20)),
        ),
        space("/small", Some(history(5, day, 1000, 1 << 20)), None),
        space("/brief", Some(history(100, 1, 1000, 1 << 20)), None),
        space("/groups", Some(history(100, day, 2, 1 << 20)), None),
        space("/history-bytes", Some(history(100, day, 1000, 4096)), None),
        space("/keys", None, Some(storage(3, 1 << 20))),
        space("/key-bytes", None, Some(storage(1000, 4096))),
        space(
            "/large",
            Some(HistoryConfig {
                max_message_bytes: 800_000,
                ..history(10, day, 1000, 64 << 20)
            }),
            None,
        ),
    ]
}

fn space(route: &str) -> Arc<Namespace> {
    spaces()
        .into_iter()
        .find(|s| s.route == route)
        .expect("a route of spaces()")
}

thread_local! {
    /// Set while this thread is inside `submit`: an answer given there would see it.
    static SUBMITTING: Cell<bool> = const { Cell::new(false) };
}

/// `request`'s answer, within [`WAIT`]; fails the check if it came from inside `submit`.
pub(crate) fn ask(store: &dyn Store, space: &Arc<Namespace>, request: Request) -> Answer {
    let (tx, rx) = mpsc::channel();
    SUBMITTING.set(true);
    store.submit(
        space,
        request,
        Box::new(move |answer| {
            let _ = tx.send((answer, SUBMITTING.get()));
        }),
    );
    SUBMITTING.set(false);
    let (answer, inside) = rx.recv_timeout(WAIT).expect("an answer within 10 s");
    assert!(!inside, "the store answered inside submit");
    answer
}

fn text(body: &str) -> Message {
    Message {
        binary: false,
        body: body.as_bytes().to_vec(),
    }
}

fn append(
    store: &dyn Store,
    space: &Arc<Namespace>,
    group: &str,
    message: Message,
) -> Result<Position, StoreError> {
    let request = Request::Append {
        group: group.into(),
        message,
    };
    match ask(store, space, request) {
        Answer::Appended(result) => result,
        other => panic!("append answered {other:?}"),
    }
}

fn read(
    store: &dyn Store,
    space: &Arc<Namespace>,
    group: &str,
    since: Option<Position>,
    limit: u32,
) -> Page {
    let request = Request::Read {
        group: group.into(),
        since,
        limit,
    };
    match ask(store, space, request) {
        Answer::History(Ok(page)) => page,
        other => panic!("read answered {other:?}"),
    }
}

fn get(store: &dyn Store, space: &Arc<Namespace>, key: &str) -> Option<Stored> {
    match ask(store, space, Request::Get { key: key.into() }) {
        Answer::Value(Ok(value)) => value,
        other => panic!("get answered {other:?}"),
    }
}

fn set(
    store: &dyn Store,
    space: &Arc<Namespace>,
    key: &str,
    value: &[u8],
    ttl: Option<Duration>,
    if_revision: Option<u64>,
) -> Result<u64, StoreError> {
    let request = Request::Set {
        key: key.into(),
        value: value.to_vec(),
        ttl,
        if_revision,
    };
    match ask(store, space, request) {
        Answer::Written(result) => result,
        other => panic!("set answered {other:?}"),
    }
}

fn remove(
    store: &dyn Store,
    space: &Arc<Namespace>,
    key: &str,
    if_revision: Option<u64>,
) -> Result<u64, StoreError> {
    let request = Request::Remove {
        key: key.into(),
        if_revision,
    };
    match ask(store, space, request) {
        Answer::Written(result) => result,
        other => panic!("remove answered {other:?}"),
    }
}

/// Appends `count` text messages numbered from `from`; their positions.
fn append_many(
    store: &dyn Store,
    space: &Arc<Namespace>,
    group: &str,
    from: usize,
    count: usize,
) -> Vec<Position> {
    (from..from + count)
        .map(|n| append(store, space, group, text(&format!("m{n}"))).expect("append"))
        .collect()
}

fn offsets(page: &Page) -> Vec<u64> {
    page.entries.iter().map(|e| e.offset).collect()
}

/// Polls `done` every 100 ms for up to `within`.
fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    // Bounded: by the deadline.
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn offsets_consecutive(store: &dyn Store) {
    let basic = space("/basic");
    let positions = append_many(store, &basic, "counting", 0, 5);
    let epoch = &positions[0].epoch;
    assert!(!epoch.is_empty());
    for (n, position) in positions.iter().enumerate() {
        assert_eq!(position.offset, n as u64 + 1);
        assert_eq!(
            &position.epoch, epoch,
            "the epoch stays while the group keeps messages"
        );
    }
    let page = read(store, &basic, "counting", None, 10);
    assert_eq!(&page.epoch, epoch);
    assert_eq!(offsets(&page), [1, 2, 3, 4, 5]);
    assert!(page.complete);
    let bodies: Vec<&[u8]> = page.entries.iter().map(|e| &e.message.body[..]).collect();
    assert_eq!(bodies, [b"m0", b"m1", b"m2", b"m3", b"m4"]);
}

fn size_retention(store: &dyn Store) {
    let small = space("/small");
    // size 5: three more than it keeps.
    let positions = append_many(store, &small, "retained", 0, 8);
    let epoch = positions[0].epoch.clone();
    assert_eq!(positions[7].offset, 8);
    let page = read(store, &small, "retained", None, 100);
    assert_eq!(
        offsets(&page),
        [4, 5, 6, 7, 8],
        "the limit is capped at size"
    );
    assert!(page.complete);
    let since = |offset| {
        Some(Position {
            offset,
            epoch: epoch.clone(),
        })
    };
    let page = read(store, &small, "retained", since(1), 100);
    assert_eq!(offsets(&page), [4, 5, 6, 7, 8]);
    assert!(!page.complete, "2 and 3 are gone");
    let page = read(store, &small, "retained", since(3), 100);
    assert_eq!(offsets(&page), [4, 5, 6, 7, 8]);
    assert!(page.complete, "nothing after 3 is missing");
    let page = read(store, &small, "retained", since(5), 2);
    assert_eq!(offsets(&page), [6, 7]);
    assert!(page.complete);
    assert_eq!(page.epoch, epoch);
}

fn latest_and_since(store: &dyn Store) {
    let basic = space("/basic");
    let positions = append_many(store, &basic, "latest", 0, 6);
    let epoch = positions[0].epoch.clone();
    let page = read(store, &basic, "latest", None, 3);
    assert_eq!(offsets(&page), [4, 5, 6]);
    assert!(page.complete);
    let since = |offset| {
        Some(Position {
            offset,
            epoch: epoch.clone(),
        })
    };
    let page = read(store, &basic, "latest", since(0), 2);
    assert_eq!(offsets(&page), [1, 2], "since offset 0: from the first");
    assert!(page.complete);
    let page = read(store, &basic, "latest", since(6), 10);
    assert!(
        page.entries.is_empty() && page.complete,
        "up to date: {page:?}"
    );
    let page = read(store, &basic, "latest", since(9), 10);
    assert!(
        page.entries.is_empty() && !page.complete,
        "beyond the last: {page:?}"
    );
    let page = read(store, &basic, "latest", since(u64::MAX), 10);
    assert!(
        page.entries.is_empty() && !page.complete,
        "far beyond: {page:?}"
    );
    assert_eq!(page.epoch, epoch);
}

fn other_epoch(store: &dyn Store) {
    let basic = space("/basic");
    let positions = append_many(store, &basic, "epochs", 0, 3);
    let stranger = Position {
        offset: 2,
        epoch: "not-this-one".into(),
    };
    let page = read(store, &basic, "epochs", Some(stranger.clone()), 2);
    assert_eq!(offsets(&page), [1, 2], "the oldest kept");
    assert!(!page.complete);
    assert_eq!(page.epoch, positions[0].epoch);
    let page = read(store, &basic, "nothing-here", Some(stranger), 2);
    assert_eq!(
        (page.epoch.as_str(), page.entries.len(), page.complete),
        ("", 0, false)
    );
    let page = read(store, &basic, "nothing-here", None, 2);
    assert_eq!(
        (page.epoch.as_str(), page.entries.len(), page.complete),
        ("", 0, true)
    );
}

fn history_expires(store: &dyn Store) {
    let brief = space("/brief");
    let first = append_many(store, &brief, "fleeting", 0, 2);
    assert_eq!(first[1].offset, 2);
    let gone = eventually(Duration::from_secs(10), || {
        read(store, &brief, "fleeting", None, 10).entries.is_empty()
    });
    assert!(gone, "messages with a 1 s ttl still there after 10 s");
    let page = read(store, &brief, "fleeting", Some(first[1].clone()), 10);
    assert!(!page.complete && page.entries.is_empty());
    let next = append(store, &brief, "fleeting", text("again")).expect("append");
    assert_eq!(next.offset, 1, "a new epoch starts at 1");
    assert_ne!(next.epoch, first[0].epoch);
}

fn namespaces_isolated(store: &dyn Store) {
    let (basic, other) = (space("/basic"), space("/other"));
    append_many(store, &basic, "shared-name", 0, 2);
    assert!(
        read(store, &other, "shared-name", None, 10)
            .entries
            .is_empty()
    );
    assert_eq!(
        append(store, &other, "shared-name", text("x"))
            .unwrap()
            .offset,
        1
    );
    assert_eq!(
        read(store, &basic, "shared-name", None, 10).entries.len(),
        2
    );
    set(store, &basic, "shared-key", b"basic", None, None).unwrap();
    assert_eq!(get(store, &other, "shared-key"), None);
    set(store, &other, "shared-key", b"other", None, None).unwrap();
    assert_eq!(get(store, &basic, "shared-key").unwrap().value, b"basic");
    remove(store, &other, "shared-key", None).unwrap();
    assert_eq!(get(store, &basic, "shared-key").unwrap().value, b"basic");
}

fn keys_get_set_remove(store: &dyn Store) {
    let basic = space("/basic");
    assert_eq!(get(store, &basic, "k"), None);
    let r1 = set(store, &basic, "k", b"one", None, None).unwrap();
    assert!(r1 > 0);
    let stored = get(store, &basic, "k").unwrap();
    assert_eq!(
        (
            stored.value.as_slice(),
            stored.revision,
            stored.expires_at_ms
        ),
        (&b"one"[..], r1, None)
    );
    let r2 = set(store, &basic, "k", b"two", None, None).unwrap();
    assert!(r2 > r1);
    assert_eq!(get(store, &basic, "k").unwrap().revision, r2);
    // Revisions grow across the route's keys.
    let other = set(store, &basic, "k-other", b"", None, None).unwrap();
    assert!(other > r2);
    assert_eq!(get(store, &basic, "k-other").unwrap().value, b"");
    let r3 = remove(store, &basic, "k", None).unwrap();
    assert!(r3 > other);
    assert_eq!(get(store, &basic, "k"), None);
    let again = remove(store, &basic, "k", None).expect("removing an absent key succeeds");
    let never = remove(store, &basic, "never-set", None).expect("removing an absent key succeeds");
    assert!(
        r3 < again && again < never,
        "removing an absent key takes a revision of its own, like every write"
    );
    let r4 = set(store, &basic, "k", b"three", None, None).unwrap();
    assert!(r4 > never);
}

fn keys_compare_and_set(store: &dyn Store) {
    let basic = space("/basic");
    assert_eq!(
        set(store, &basic, "cas", b"x", None, Some(7)),
        Err(StoreError::Conflict(0))
    );
    let r1 = set(store, &basic, "cas", b"a", None, Some(0)).expect("create");
    assert_eq!(
        set(store, &basic, "cas", b"b", None, Some(0)),
        Err(StoreError::Conflict(r1))
    );
    let r2 = set(store, &basic, "cas", b"b", None, Some(r1)).expect("update");
    assert_eq!(
        set(store, &basic, "cas", b"c", None, Some(r1)),
        Err(StoreError::Conflict(r2))
    );
    assert_eq!(
        remove(store, &basic, "cas", Some(r1)),
        Err(StoreError::Conflict(r2))
    );
    assert_eq!(
        get(store, &basic, "cas").unwrap().value,
        b"b",
        "refused writes changed nothing"
    );
    remove(store, &basic, "cas", Some(r2)).expect("remove at the current revision");
    assert_eq!(
        remove(store, &basic, "cas", Some(r2)),
        Err(StoreError::Conflict(0))
    );
    remove(store, &basic, "cas", Some(0)).expect("an absent key is at revision 0");
    set(store, &basic, "cas", b"d", None, Some(0)).expect("create again after the removal");
}

fn keys_expire(store: &dyn Store) {
    let basic = space("/basic");
    let before = now_ms();
    let r1 = set(
        store,
        &basic,
        "ttl",
        b"soon gone",
        Some(Duration::from_secs(1)),
        None,
    )
    .unwrap();
    let stored = get(store, &basic, "ttl").expect("live for a second");
    let at = stored.expires_at_ms.expect("expires_at_ms");
    assert!(
        at >= before + 1000 && at <= now_ms() + 1000,
        "{at} vs {before}"
    );
    assert_eq!(stored.revision, r1);
    assert!(eventually(Duration::from_secs(5), || get(
        store, &basic, "ttl"
    )
    .is_none()));
    assert_eq!(
        set(store, &basic, "ttl", b"x", None, Some(r1)),
        Err(StoreError::Conflict(0)),
        "an expired key is absent"
    );
    let r2 =
        set(store, &basic, "ttl", b"again", None, Some(0)).expect("create over the expired value");
    assert_eq!(get(store, &basic, "ttl").unwrap().expires_at_ms, None);
    assert!(r2 > r1);
}

fn quota_keys(store: &dyn Store) {
    let keys = space("/keys");
    for key in ["a", "b", "c"] {
        set(store, &keys, key, b"v", None, None).unwrap();
    }
    assert_eq!(
        set(store, &keys, "d", b"v", None, None),
        Err(StoreError::QuotaExceeded)
    );
    assert_eq!(get(store, &keys, "d"), None, "nothing written");
    set(store, &keys, "a", b"changed", None, None).expect("a key at the cap can change");
    remove(store, &keys, "b", None).unwrap();
    set(store, &keys, "d", b"v", None, None).expect("a removed key frees its place");
}

fn quota_key_bytes(store: &dyn Store) {
    let key_bytes = space("/key-bytes");
    let value = vec![7u8; 1000];
    // 4096 bytes: three values of 1000 fit whatever a store counts on top; a fifth never does.
    let results: Vec<_> = (0..5)
        .map(|n| set(store, &key_bytes, &format!("k{n}"), &value, None, None))
        .collect();
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    assert_eq!(results[4], Err(StoreError::QuotaExceeded));
    for (n, result) in results.iter().enumerate() {
        if result.is_err() {
            assert_eq!(
                get(store, &key_bytes, &format!("k{n}")),
                None,
                "nothing written"
            );
        }
    }
}

fn quota_groups(store: &dyn Store) {
    let groups = space("/groups");
    append(store, &groups, "g1", text("a")).unwrap();
    append(store, &groups, "g2", text("b")).unwrap();
    assert_eq!(
        append(store, &groups, "g3", text("c")),
        Err(StoreError::QuotaExceeded)
    );
    let page = read(store, &groups, "g3", None, 10);
    assert!(
        page.entries.is_empty() && page.epoch.is_empty(),
        "nothing written"
    );
    assert_eq!(
        append(store, &groups, "g1", text("d")).unwrap().offset,
        2,
        "existing groups go on"
    );
}

fn quota_history_bytes(store: &dyn Store) {
    let history_bytes = space("/history-bytes");
    let message = Message {
        binary: true,
        body: vec![1u8; 1000],
    };
    let results: Vec<_> = (0..5)
        .map(|_| append(store, &history_bytes, "big", message.clone()))
        .collect();
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    assert_eq!(results[4], Err(StoreError::QuotaExceeded));
    let kept = results.iter().filter(|r| r.is_ok()).count() as u64;
    let page = read(store, &history_bytes, "big", None, 100);
    assert_eq!(
        offsets(&page),
        (1..=kept).collect::<Vec<_>>(),
        "nothing written"
    );
}

fn messages_round_trip(store: &dyn Store) {
    let basic = space("/basic");
    let messages = [
        text("héllo ☃"),
        Message {
            binary: true,
            body: vec![0, 255, 1, b'\n', b'\r'],
        },
        Message {
            binary: true,
            body: Vec::new(),
        },
        text(""),
    ];
    let before = now_ms();
    for message in &messages {
        append(store, &basic, "kinds", message.clone()).unwrap();
    }
    let after = now_ms();
    let page = read(store, &basic, "kinds", None, 10);
    let read_back: Vec<&Message> = page.entries.iter().map(|e| &e.message).collect();
    assert_eq!(read_back, messages.iter().collect::<Vec<_>>());
    for entry in &page.entries {
        assert!(
            (before..=after).contains(&entry.appended_at_ms),
            "{entry:?}"
        );
    }
}

fn odd_names(store: &dyn Store) {
    let basic = space("/basic");
    let long = "é".repeat(512);
    let names = [
        "",
        "a.b",
        "a",
        "*",
        ">",
        "a b",
        "\u{0}",
        "x",
        long.as_str(),
        "$KV.x",
    ];
    for (n, name) in names.iter().enumerate() {
        let body = format!("{n}");
        append(store, &basic, name, text(&body)).unwrap();
        set(store, &basic, name, body.as_bytes(), None, None).unwrap();
    }
    for (n, name) in names.iter().enumerate() {
        let body = format!("{n}").into_bytes();
        let page = read(store, &basic, name, None, 10);
        assert_eq!(page.entries.len(), 1, "group {name:?}: {page:?}");
        assert_eq!(page.entries[0].message.body, body, "group {name:?}");
        assert_eq!(
            get(store, &basic, name).unwrap().value,
            body,
            "key {name:?}"
        );
    }
}

fn page_bytes(store: &dyn Store) {
    let large = space("/large");
    // Six messages of 700,000 bytes: five fit in one page of 4 MiB, six do not.
    let mut epoch = String::new();
    for i in 0..6u8 {
        let message = Message {
            binary: true,
            body: vec![i; 700_000],
        };
        epoch = append(store, &large, "big", message).unwrap().epoch;
    }
    let at = |offset| {
        Some(Position {
            offset,
            epoch: epoch.clone(),
        })
    };
    let since = read(store, &large, "big", at(0), 10);
    assert_eq!(
        offsets(&since),
        [1, 2, 3, 4, 5],
        "a page since a position ends early"
    );
    assert!(since.complete);
    let latest = read(store, &large, "big", None, 10);
    assert_eq!(
        offsets(&latest),
        [2, 3, 4, 5, 6],
        "the latest page keeps the newest"
    );
    let rest = read(store, &large, "big", at(5), 10);
    assert_eq!(offsets(&rest), [6]);
}

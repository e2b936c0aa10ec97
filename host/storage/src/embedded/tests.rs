//! The single-node store's own behaviour: what survives a restart, the file's folder and lock, batching under
//! concurrent writers, and the sweep. The semantics both stores share are in `crate::conformance`.

use super::*;
use crate::{Message, Position};
use std::sync::mpsc;
use wssgate_config::memory::{HistoryConfig, StorageConfig};

/// A folder removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("wssgate-storage-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn space(route: &str) -> Arc<Namespace> {
    Arc::new(Namespace {
        route: route.into(),
        history: Some(HistoryConfig::defaults()),
        storage: Some(StorageConfig::defaults()),
    })
}

/// Submits `request` and waits (bounded) for its answer.
fn ask(store: &dyn Store, space: &Arc<Namespace>, request: Request) -> Answer {
    let (tx, rx) = mpsc::channel();
    store.submit(space, request, Box::new(move |a| tx.send(a).unwrap()));
    rx.recv_timeout(Duration::from_secs(10))
        .expect("an answer within 10 s")
}

fn append(store: &dyn Store, space: &Arc<Namespace>, group: &str, text: &str) -> Position {
    let request = Request::Append {
        group: group.into(),
        message: Message {
            binary: false,
            body: text.as_bytes().to_vec(),
        },
    };
    match ask(store, space, request) {
        Answer::Appended(Ok(p)) => p,
        other => panic!("append answered {other:?}"),
    }
}

#[test]
fn history_and_keys_survive_closing_and_opening_the_file_again() {
    let dir = Scratch::new("reopen");
    let chat = space("/chat");
    let (epoch, revision) = {
        let store = Embedded::open(&dir.0).unwrap();
        for i in 1..=3 {
            assert_eq!(append(&store, &chat, "lobby", &format!("m{i}")).offset, i);
        }
        let set = Request::Set {
            key: "topic".into(),
            value: b"tea".to_vec(),
            ttl: None,
            if_revision: None,
        };
        let Answer::Written(Ok(revision)) = ask(&store, &chat, set) else {
            panic!("set failed")
        };
        (append(&store, &chat, "lobby", "m4").epoch, revision)
    };
    let store = Embedded::open(&dir.0).unwrap();
    let next = append(&store, &chat, "lobby", "m5");
    assert_eq!((next.offset, next.epoch.as_str()), (5, epoch.as_str()));
    let read = Request::Read {
        group: "lobby".into(),
        since: Some(Position { offset: 2, epoch }),
        limit: 10,
    };
    let Answer::History(Ok(page)) = ask(&store, &chat, read) else {
        panic!("read failed")
    };
    let texts: Vec<_> = page
        .entries
        .iter()
        .map(|e| String::from_utf8(e.message.body.clone()).unwrap())
        .collect();
    assert_eq!(texts, ["m3", "m4", "m5"]);
    assert!(page.complete);
    let get = Request::Get {
        key: "topic".into(),
    };
    let Answer::Value(Ok(Some(stored))) = ask(&store, &chat, get) else {
        panic!("the key is gone")
    };
    assert_eq!((stored.value, stored.revision), (b"tea".to_vec(), revision));
}

#[test]
fn the_data_dir_and_file_are_private_and_a_second_gateway_on_them_is_refused_naming_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Scratch::new("lock");
    let first = Embedded::open(&dir.0.join("nested")).unwrap();
    let mode = std::fs::metadata(dir.0.join("nested"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let file = std::fs::metadata(dir.0.join("nested").join(FILE_NAME)).unwrap();
    assert_eq!(file.permissions().mode() & 0o777, 0o600);
    let error = match Embedded::open(&dir.0.join("nested")) {
        Ok(_) => panic!("a second store opened the same file"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("wssgate.redb"), "{error}");
    assert!(error.contains("another gateway"), "{error}");
    drop(first);
}

#[test]
fn a_file_that_is_not_a_store_is_refused_naming_it() {
    let dir = Scratch::new("garbage");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join(FILE_NAME), vec![0x5a; 8192]).unwrap();
    let error = match Embedded::open(&dir.0) {
        Ok(_) => panic!("garbage opened as a store"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("wssgate.redb"), "{error}");
}

#[test]
fn writers_on_many_threads_get_consecutive_offsets_and_are_committed_in_batches() {
    let dir = Scratch::new("batch");
    let store = Arc::new(Embedded::open(&dir.0).unwrap());
    let chat = space("/chat");
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (store, chat, tx) = (store.clone(), chat.clone(), tx.clone());
            std::thread::spawn(move || {
                for i in 0..250 {
                    let tx = tx.clone();
                    let request = Request::Append {
                        group: "busy".into(),
                        message: Message {
                            binary: true,
                            body: vec![t, (i % 256) as u8],
                        },
                    };
                    store.submit(&chat, request, Box::new(move |a| tx.send(a).unwrap()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut offsets: Vec<u64> = (0..1000)
        .map(
            |_| match rx.recv_timeout(Duration::from_secs(30)).unwrap() {
                Answer::Appended(Ok(p)) => p.offset,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=1000).collect::<Vec<_>>());
}

#[test]
fn the_sweep_removes_expired_keys_and_frees_their_quota() {
    let dir = Scratch::new("sweep");
    let store = Embedded::open(&dir.0).unwrap();
    let tight = Arc::new(Namespace {
        route: "/tight".into(),
        history: None,
        storage: Some(StorageConfig {
            max_keys: 1,
            ..StorageConfig::defaults()
        }),
    });
    let set = |key: &str, ttl| Request::Set {
        key: key.into(),
        value: b"v".to_vec(),
        ttl,
        if_revision: None,
    };
    assert!(matches!(
        ask(&store, &tight, set("a", Some(Duration::from_millis(100)))),
        Answer::Written(Ok(_))
    ));
    assert_eq!(
        ask(&store, &tight, set("b", None)),
        Answer::Written(Err(StoreError::QuotaExceeded))
    );
    // Within a few sweeps (one a second) the expired key is gone and its place is free.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        match ask(&store, &tight, set("b", None)) {
            Answer::Written(Ok(_)) => break,
            other if Instant::now() > deadline => panic!("still refused: {other:?}"),
            _ => {}
        }
    }
}

#[test]
fn the_embedded_store_passes_the_conformance_checks() {
    let dir = Scratch::new("conformance");
    let store = Embedded::open(&dir.0).unwrap();
    crate::conformance::run_all(&store);
}

//! Group commit in the single-node store, measured: appends per second when many writers append at once (each
//! waiting for its answer before its next append, as a plugin does per client), against a single writer, whose every
//! commit holds one append — one fsync per write. Both run in the same process, on the same file system, one after
//! the other; the ratio is what batching the commits buys.
//!
//! `storebench --writers 64 --seconds 5 [--dir DIR]` prints one JSON object.

use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wssgate_config::memory::HistoryConfig;
use wssgate_storage::{Answer, Embedded, Message, Namespace, Request, Store};

#[derive(Parser)]
struct Args {
    /// Writers appending at once in the second run.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// How long each run lasts.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Where the store's file goes (default: a new folder under the system's temporary folder). It must be on the
    /// disk being measured: a tmpfs makes fsync free.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Appends per second from `writers` writers over `duration`.
fn run(store: &Arc<Embedded>, space: &Arc<Namespace>, writers: usize, duration: Duration) -> f64 {
    let deadline = Instant::now() + duration;
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (store, space) = (store.clone(), space.clone());
            std::thread::spawn(move || {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let (tx, rx) = mpsc::channel();
                    let request = Request::Append {
                        group: format!("writer-{w}"),
                        message: Message {
                            binary: false,
                            body: b"{\"uid\":\"ann\",\"text\":\"a message of a chat room\"}"
                                .to_vec(),
                        },
                    };
                    store.submit(&space, request, Box::new(move |a| drop(tx.send(a))));
                    match rx.recv_timeout(Duration::from_secs(30)) {
                        Ok(Answer::Appended(Ok(_))) => done += 1,
                        other => panic!("an append answered {other:?}"),
                    }
                }
                done
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total as f64 / duration.as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("wssgate-storebench-{}", std::process::id()))
    });
    let store = Arc::new(Embedded::open(&dir)?);
    let space = Arc::new(Namespace {
        route: "/bench".into(),
        history: Some(HistoryConfig::defaults()),
        storage: None,
    });
    let duration = Duration::from_secs(args.seconds);
    let one = run(&store, &space, 1, duration);
    let many = run(&store, &space, args.writers, duration);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{}",
        serde_json::json!({
            "one_writer_appends_per_sec": one.round(),
            "writers": args.writers,
            "many_writers_appends_per_sec": many.round(),
            "ratio": (many / one * 100.0).round() / 100.0,
        })
    );
    Ok(())
}

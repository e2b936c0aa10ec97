//! A test plugin that makes the gateway's behaviour observable from a client:
//! - on-connect rejects with HTTP 403 when the query is `reject`, and otherwise keeps the request as the
//!   connection's state;
//! - text commands: `info` answers with the request it saw, `print` writes to stdout and stderr, `clock` reads the
//!   wall and monotonic clocks, `panic` panics, `spin` loops forever, `hog` allocates without bound, `close` closes
//!   the connection with 4002, `sendloop` sends 64 KiB messages to itself forever, `flood <id> <count> <size>`
//!   sends to another connection, `tell <id> <text>` sends one message to another connection and answers the
//!   result, `size <group>` answers the group's size, `kick <id>` closes another connection with 4003, `block` sleeps (a blocking WASI call the gateway refuses), `join <group>` joins a
//!   group and `publish <group> <text>` publishes to it (excluding the sender), `remember <key> <value>` and
//!   `recall <key>` use the host-side session;
//! - on-close tells every other open connection `closed <id> <code> <reason>`;
//! - faults on demand: the query `panic` panics in on-connect, `trap-on-restore` panics when on-connect is
//!   replayed, `panic-on-close` panics in on-close; `overflow` overflows the stack, `timerpanic <ms>` starts a
//!   timer that panics when it fires;
//! - timers: `timer <ms>` starts one (the connection is told `fired <id>`; a timer this instance never started
//!   is announced to every connection as `stray timer <id>`), `reset` restarts the connection's own hour-long
//!   timer without answering, `mygroups` lists the connection's groups;
//! - what a hostile plugin would try, in [`hostile`]: `reach`, `cancel`, `timers`, `groups`, `longname`, `logs`.

mod hostile;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use wssgate_sdk::timers::{self, Timer};
use wssgate_sdk::{
    CloseFrame, Connection, Connections, Message, Plugin, Request, TimerEvents, Verdict,
};

struct Probe {
    /// Open connections, to tell each about the others' closes.
    open: BTreeSet<Connection>,
    /// A random tag that tells this instance from others (and from its replacements).
    tag: u64,
    /// Timers this instance started with `timer`, and who to tell when each fires.
    timers: BTreeMap<Timer, Connection>,
    /// Timers that panic when they fire.
    panicking_timers: BTreeSet<Timer>,
}

/// What the probe keeps per connection.
#[derive(Default)]
struct Seen {
    /// The request the connection arrived with.
    request: Request,
    /// Its on-close panics.
    panic_on_close: bool,
    /// Its `reset` timer.
    reset_timer: Option<Timer>,
}

impl Default for Probe {
    fn default() -> Self {
        use std::hash::BuildHasher;
        let tag = std::collections::hash_map::RandomState::new().hash_one(0u8);
        Probe {
            open: BTreeSet::new(),
            tag,
            timers: BTreeMap::new(),
            panicking_timers: BTreeSet::new(),
        }
    }
}

impl Plugin for Probe {
    type State = Seen;

    fn on_connect(&mut self, conn: Connection, request: &Request) -> Verdict<Seen> {
        let mut seen = Seen {
            request: request.clone(),
            ..Seen::default()
        };
        match request.query.as_str() {
            "reject" => return Verdict::reject(403, "rejected by plugin"),
            "panic" => panic!("probe was asked to panic in on-connect"),
            "trap-on-restore" if request.restored => panic!("probe panics replaying on-connect"),
            "panic-on-close" => seen.panic_on_close = true,
            _ => {}
        }
        self.open.insert(conn);
        Verdict::Accept(seen)
    }

    fn on_message(&mut self, conn: Connection, seen: &mut Seen, message: Message) {
        let reply = match message.as_text() {
            Some("info") => {
                let r = &seen.request;
                format!(
                    "path={} query={} remote={} subprotocol={} origin={} restored={} instance={} id={}",
                    r.path,
                    r.query,
                    r.remote_address,
                    r.subprotocol.as_deref().unwrap_or("-"),
                    r.header("origin").unwrap_or("-"),
                    r.restored,
                    self.tag,
                    conn.id()
                )
            }
            Some("print") => {
                println!("probe says hello on stdout");
                eprintln!("probe says hello on stderr");
                "printed".to_owned()
            }
            Some("clock") => {
                let since_epoch = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                let start = std::time::Instant::now();
                format!(
                    "clock {} {}",
                    since_epoch.as_secs(),
                    start.elapsed().as_secs()
                )
            }
            Some("panic") => panic!("probe was asked to panic"),
            Some("overflow") => format!("{}", hostile::overflow(0)),
            Some(text) if text.starts_with("timerpanic ") => match after(text, Some(conn)) {
                Ok(timer) => {
                    self.panicking_timers.insert(timer);
                    format!("timer {}", timer.id())
                }
                Err(refusal) => format!("timer refused {refusal:?}"),
            },
            Some(text) if text.starts_with("timer ") => match after(text, None) {
                Ok(timer) => {
                    self.timers.insert(timer, conn);
                    format!("timer {}", timer.id())
                }
                Err(refusal) => format!("timer refused {refusal:?}"),
            },
            Some("reset") => {
                if let Some(old) = seen.reset_timer.take() {
                    old.cancel();
                }
                seen.reset_timer = timers::after(Duration::from_secs(3600), Some(conn)).ok();
                return;
            }
            Some("mygroups") => format!("groups {}", conn.groups().join(",")),
            Some(text) if text.starts_with("reach ") => hostile::reach(conn, text),
            Some(text) if text.starts_with("cancel ") => hostile::cancel_timers(text),
            Some(text) if text.starts_with("timers ") => hostile::many_timers(text),
            Some(text) if text.starts_with("groups ") => hostile::many_groups(conn, text),
            Some(text) if text.starts_with("longname ") => hostile::long_names(conn, text),
            Some(text) if text.starts_with("logs ") => hostile::many_logs(text),
            Some("spin") => loop {
                std::hint::black_box(());
            },
            Some("hog") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Some("block") => {
                // Asks WASI to block the worker, which the gateway refuses with a trap.
                std::thread::sleep(std::time::Duration::from_secs(1));
                "slept".to_owned()
            }
            Some("sendloop") => loop {
                // Ignores every refusal, as a buggy plugin would: only the deadline stops it.
                let _ = conn.send(vec![7u8; 64 * 1024]);
            },
            Some(text) if text.starts_with("busy ") => busy(text),
            Some(text) if text.starts_with("flood ") => flood(text),
            Some(text) if text.starts_with("kick ") => {
                let target = text[5..].parse().map(Connection::new);
                target.map_or("usage: kick <id>".to_owned(), |target| {
                    target.close(4003, "kicked");
                    "kicked".to_owned()
                })
            }
            Some(text) if text.starts_with("tell ") => {
                let (target, body) = text[5..].split_once(' ').unwrap_or((&text[5..], ""));
                target
                    .parse()
                    .map_or("usage: tell <id> <text>".to_owned(), |id| {
                        format!("told {:?}", Connection::new(id).send(body))
                    })
            }
            Some(text) if text.starts_with("size ") => {
                format!("size {}", wssgate_sdk::groups::size(&text[5..]))
            }
            Some(text) if text.starts_with("remember ") => {
                let (key, value) = text[9..].split_once(' ').unwrap_or((&text[9..], ""));
                format!("{:?}", conn.session_set(key, value))
            }
            Some(text) if text.starts_with("recall ") => conn
                .session_get(&text[7..])
                .unwrap_or_else(|| "-".to_owned()),
            Some(text) if text.starts_with("join ") => {
                let _ = conn.join(&text[5..]);
                "joined".to_owned()
            }
            Some(text) if text.starts_with("publish ") => {
                let (group, body) = text[8..].split_once(' ').unwrap_or((&text[8..], ""));
                format!(
                    "published {}",
                    wssgate_sdk::groups::publish(group, body, &[conn])
                )
            }
            Some("close") => {
                conn.close(4002, "closed by plugin");
                return;
            }
            _ => "?".to_owned(),
        };
        let _ = conn.send(reply);
    }

    fn on_close(&mut self, conn: Connection, seen: Seen, close: CloseFrame) {
        if seen.panic_on_close {
            panic!("probe was asked to panic in on-close");
        }
        self.open.remove(&conn);
        let note = format!("closed {} {} {}", conn.id(), close.code, close.reason);
        for other in &self.open {
            let _ = other.send(note.as_str());
        }
    }
}

impl TimerEvents for Probe {
    fn on_timer(&mut self, timer: Timer, _connections: &mut Connections<Seen>) {
        if self.panicking_timers.remove(&timer) {
            panic!("probe's timer {} panics", timer.id());
        }
        match self.timers.remove(&timer) {
            Some(conn) => {
                let _ = conn.send(format!("fired {}", timer.id()));
            }
            None => {
                wssgate_sdk::groups::broadcast(format!("stray timer {}", timer.id()), &[]);
            }
        }
    }
}

/// `flood <id> <count> <size>`: sends `count` binary messages of `size` bytes to connection `id`; answers how many
/// were taken and the error that stopped it.
fn flood(command: &str) -> String {
    let args: Vec<u64> = command
        .split(' ')
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let [id, count, size] = args[..] else {
        return "usage: flood <id> <count> <size>".to_owned();
    };
    let target = Connection::new(id);
    for sent in 0..count {
        if let Err(e) = target.send(vec![1u8; size as usize]) {
            return format!("flood sent={sent} error={e:?}");
        }
    }
    format!("flood sent={count} error=none")
}

/// `timer <ms>` / `timerpanic <ms>`: a one-shot timer after `ms`.
fn after(command: &str, owner: Option<Connection>) -> Result<Timer, wssgate_sdk::Refusal> {
    let ms = command
        .split(' ')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    timers::after(Duration::from_millis(ms), owner)
}

/// `busy <ms>`: keeps the CPU busy until `ms` of wall time have passed, however much of it the OS gives the worker.
fn busy(command: &str) -> String {
    let Ok(ms) = command[5..].parse::<u64>() else {
        return "usage: busy <ms>".to_owned();
    };
    let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    let mut rounds = 0u64;
    while std::time::Instant::now() < until {
        rounds = std::hint::black_box(rounds + 1);
    }
    "busy done".to_owned()
}

wssgate_sdk::export_plugin!(Probe, timers);

//! What a hostile plugin would try: reaching connections and timers that are not its own, and growing what the
//! host keeps for it (groups, names, timers, log lines) without bound. Each command answers with what the host let
//! it do, so a test can check that it was refused.

use wssgate_sdk::timers::{self, Timer};
use wssgate_sdk::{Connection, log};

/// `reach <from> <to>`: tries every host call that names a connection on each id in `from..=to` but `own`, and
/// answers with each call that did *not* behave as for an unknown connection (`reached none` when all did). Then
/// it tries the calls that answer nothing: close, leave, unbind and session-remove.
pub fn reach(own: Connection, command: &str) -> String {
    let Some((from, to)) = range(command) else {
        return "usage: reach <from> <to>".to_owned();
    };
    let mut reached = Vec::new();
    for id in (from..=to).filter(|id| *id != own.id()) {
        let other = Connection::new(id);
        if other.send("hello from another route").is_ok() {
            reached.push(format!("send {id}"));
        }
        if other.info().is_some() {
            reached.push(format!("info {id}"));
        }
        if other.session_get("secret").is_some() {
            reached.push(format!("session-get {id}"));
        }
        if other.session_set("secret", "overwritten").is_ok() {
            reached.push(format!("session-set {id}"));
        }
        if other.join("hijacked").is_ok() {
            reached.push(format!("join {id}"));
        }
        if !other.groups().is_empty() {
            reached.push(format!("groups-of {id}"));
        }
        if other.bind_user("hijacked").is_ok() {
            reached.push(format!("bind-user {id}"));
        }
        if timers::after(std::time::Duration::from_secs(3600), Some(other)).is_ok() {
            reached.push(format!("timer-owner {id}"));
        }
        other.leave("room");
        other.unbind_user();
        other.session_remove("secret");
        other.close(4666, "closed by another route");
    }
    if reached.is_empty() {
        "reached none".to_owned()
    } else {
        format!("reached {}", reached.join(", "))
    }
}

/// `cancel <from> <to>`: tries to cancel every timer id in the range; answers how many it could.
pub fn cancel_timers(command: &str) -> String {
    let Some((from, to)) = range(command) else {
        return "usage: cancel <from> <to>".to_owned();
    };
    let cancelled = (from..=to)
        .filter(|id| Timer::new(*id, None).cancel())
        .count();
    format!("cancelled {cancelled}")
}

/// `timers <n>`: starts up to `n` hour-long timers no connection owns; answers how many started and the refusal
/// that stopped it.
pub fn many_timers(command: &str) -> String {
    let n = count(command);
    for started in 0..n {
        if let Err(refusal) = timers::after(std::time::Duration::from_secs(3600), None) {
            return format!("timers started={started} refused={refusal:?}");
        }
    }
    format!("timers started={n} refused=none")
}

/// `groups <n>`: joins up to `n` distinct groups; answers how many and the refusal that stopped it.
pub fn many_groups(conn: Connection, command: &str) -> String {
    let n = count(command);
    for joined in 0..n {
        if let Err(refusal) = conn.join(&format!("group-{joined}")) {
            return format!("groups joined={joined} refused={refusal:?}");
        }
    }
    format!("groups joined={n} refused=none")
}

/// `longname <bytes>`: joins a group, binds a uid and stores a session key, each `bytes` long.
pub fn long_names(conn: Connection, command: &str) -> String {
    let name = "n".repeat(count(command) as usize);
    format!(
        "join={:?} bind={:?} session={:?}",
        conn.join(&name),
        conn.bind_user(&name),
        conn.session_set(&name, "v")
    )
}

/// `logs <n>`: writes `n` log lines; answers how many the host took and refused.
pub fn many_logs(command: &str) -> String {
    let n = count(command);
    let refused = (0..n)
        .filter(|i| log::try_log(log::Level::Info, &format!("probe log line {i}")).is_err())
        .count();
    format!("logs written={} refused={refused}", n as usize - refused)
}

/// Recurses until the stack overflows (the bound is never reached: wasm's stack is far smaller).
pub fn overflow(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return frame[0];
    }
    overflow(depth + 1) + frame[0]
}

fn range(command: &str) -> Option<(u64, u64)> {
    let mut words = command.split(' ').skip(1).map(|w| w.parse::<u64>());
    match (words.next(), words.next()) {
        (Some(Ok(from)), Some(Ok(to))) if to >= from && to - from <= 10_000 => Some((from, to)),
        _ => None,
    }
}

fn count(command: &str) -> u64 {
    command
        .split(' ')
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

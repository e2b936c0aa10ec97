//! A chat server as a wssgate plugin: rooms, presence, direct messages — GatewayWorker's classic example, with the
//! fan-out done by the host — and, on a route with `[route.history]` and `[route.storage]`, each room's recent
//! messages and its topic, kept by the gateway so that a client that was away can catch up.
//!
//! Every message is a JSON object with a `type`:
//! - `{"type":"login","uid":"alice"}` binds the connection to a user (kept in the host-side session);
//! - `{"type":"join","room":"lobby"}` / `{"type":"leave","room":"lobby"}`: the room's members get a `presence` event;
//!   the `joined` answer carries the room's `"topic"` (a string, or null) when the route has storage;
//! - `{"type":"say","room":"lobby","text":"hi"}` reaches every member of the room once, the sender included; with
//!   history, once the message is durable, and with its place in the room's history (`"offset"`, `"epoch"`);
//! - `{"type":"history","room":"lobby","since":{"offset":41,"epoch":"…"}}` (or without `since`: the latest)
//!   answers a member of the room with `{"type":"history","room","epoch","messages":[{"offset","uid","text"}…],
//!   "complete"}`: at most 100 messages after that position, oldest first; `complete` is false when some were lost
//!   (the room's history was reset, or kept fewer);
//! - `{"type":"topic","room":"lobby","text":"…"}` stores the room's topic; its members get the same object;
//! - `{"type":"dm","to":"bob","text":"hi"}` reaches every connection of user `bob`;
//! - `{"type":"online","uid":"bob"}` answers how many connections user `bob` has (on every gateway node);
//! - `{"type":"whoami"}` answers the logged-in user, read back from the session;
//! - `{"type":"remind","after_ms":500,"text":"tea"}` sends a `reminder` once (at most 8 waiting per connection, of
//!   at most 1024 bytes each); `{"type":"ticks","every_ms":100}` sends `tick` events until `{"type":"stop_ticks"}`.
//!
//! Without `[route.history]` a `say` has no `offset` or `epoch` and `history` answers `history is off`; without
//! `[route.storage]`, `joined` has no `topic` and `topic` answers `topics are off`. Anything malformed, and anything
//! the gateway refuses (a room or user name past its `max_name_bytes`, one room past its
//! `max_groups_per_connection`, one timer past its `max_timers_per_instance`, a message past the history's
//! `max_message_bytes`), is answered with `{"type":"error","reason":...}`, never a trap.

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use wssgate_sdk::history::{self, HistoryPage, Position};
use wssgate_sdk::storage::{self, StoredValue};
use wssgate_sdk::{
    CloseFrame, Connection, Connections, HistoryEvents, Message, Plugin, Refusal, StorageError,
    StorageEvents, StorageRefusal, StorageRequest, Timer, TimerEvents, groups, log, timers, users,
};

/// What a client may send.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Login { uid: String },
    Join { room: String },
    Leave { room: String },
    Say { room: String, text: String },
    History { room: String, since: Option<Since> },
    Topic { room: String, text: String },
    Dm { to: String, text: String },
    Online { uid: String },
    Whoami,
    Remind { after_ms: u64, text: String },
    Ticks { every_ms: u64 },
    StopTicks,
}

/// A position in a room's history, as a client names it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    offset: u64,
    epoch: String,
}

/// The most messages one `history` answer carries; a client asks again from the last one for more.
const HISTORY_PAGE: u32 = 100;

/// Reminders one connection may have waiting, and the longest text of one: the plugin holds them in its memory until
/// they fire, so without a bound one client could fill the instance's memory cap (and take every other member's
/// reminders and ticks down with it when the instance traps).
const MAX_REMINDERS: usize = 8;
const MAX_REMINDER_BYTES: usize = 1024;

/// What the plugin keeps per connection; the SDK drops it when the connection closes, and the gateway cancels the
/// timers and requests it names.
#[derive(Default)]
pub struct Member {
    /// Reminders waiting to be sent, by timer.
    reminders: HashMap<Timer, String>,
    /// The running tick timer and how many ticks it sent.
    ticks: Option<(Timer, u64)>,
    /// Joins waiting for the room's topic: the room and its member count at the join.
    joins: HashMap<StorageRequest, (String, u32)>,
    /// History reads waiting for their page, with their room.
    reads: HashMap<StorageRequest, String>,
}

/// A `say` waiting for its append to be durable.
struct Said {
    room: String,
    uid: String,
    text: String,
}

/// A `topic` waiting for its write to be durable.
struct TopicSet {
    room: String,
    text: String,
    by: Connection,
}

/// Route-wide state: the says and topics waiting for the store. Rooms, users and sessions are the gateway's. The
/// requests have no owner, so that members get a message even when its sender leaves first; each gets exactly one
/// event (or dies with the instance, and the maps with it), and the gateway bounds how many wait, so the maps stay
/// bounded.
#[derive(Default)]
pub struct Chat {
    says: HashMap<StorageRequest, Said>,
    topics: HashMap<StorageRequest, TopicSet>,
}

/// The group name of a room (groups are the host's; rooms are this plugin's word for them).
fn group(room: &str) -> String {
    format!("room:{room}")
}

fn send(conn: Connection, value: Value) {
    // A failed send means the client is gone or too slow; the host is closing it.
    let _ = conn.send(value.to_string());
}

fn error(conn: Connection, reason: &str) {
    send(conn, json!({"type": "error", "reason": reason}));
}

/// The storage key of a room's topic.
fn topic_key(room: &str) -> String {
    format!("topic:{room}")
}

/// A `say` as members get it: with its place in the room's history when it has one.
fn said(room: &str, uid: &str, text: &str, at: Option<&Position>) -> Value {
    let mut said = json!({"type": "say", "room": room, "from": uid, "text": text});
    if let Some(at) = at {
        said["offset"] = json!(at.offset);
        said["epoch"] = json!(at.epoch);
    }
    said
}

/// The `joined` answer; `topic` is `None` on a route without storage (the field is absent, as before storage).
fn joined(room: &str, members: u32, topic: Option<Option<&str>>) -> Value {
    let mut joined = json!({"type": "joined", "room": room, "members": members});
    if let Some(topic) = topic {
        joined["topic"] = json!(topic);
    }
    joined
}

/// Answers a history or storage request the gateway refused.
fn store_refused(conn: Connection, refusal: StorageRefusal) {
    let reason = match refusal {
        StorageRefusal::TooLarge => "too long".to_owned(),
        StorageRefusal::TooManyPending => "too busy, try again".to_owned(),
        other => other.to_string(),
    };
    error(conn, &reason)
}

/// Answers a call the gateway refused, in the protocol's words where it has them.
fn refused(conn: Connection, refusal: Refusal) {
    let reason = match refusal {
        Refusal::TooManyGroups => "too many rooms".to_owned(),
        Refusal::TooManyTimers => "too many timers".to_owned(),
        other => other.to_string(),
    };
    error(conn, &reason)
}

impl Chat {
    fn handle(&mut self, conn: Connection, member: &mut Member, command: Command) {
        let uid = conn.session_get("uid");
        match command {
            Command::Login { uid } if uid.is_empty() || uid.len() > 64 => {
                error(conn, "uid must be 1 to 64 bytes")
            }
            Command::Login { uid } => {
                if let Err(refusal) = conn.bind_user(&uid) {
                    return match refusal {
                        Refusal::NameTooLong => error(conn, "uid is too long"),
                        other => refused(conn, other),
                    };
                }
                if conn.session_set("uid", &uid).is_err() {
                    return error(conn, "session unavailable");
                }
                send(
                    conn,
                    json!({"type": "login", "uid": uid, "connection": conn.id().to_string()}),
                );
            }
            _ if uid.is_none() => error(conn, "log in first"),
            Command::Join { room } if room.is_empty() || room.len() > 64 => {
                error(conn, "room must be 1 to 64 bytes")
            }
            Command::Join { room } => {
                if let Err(refusal) = conn.join(&group(&room)) {
                    return match refusal {
                        Refusal::NameTooLong => error(conn, "room name is too long"),
                        other => refused(conn, other),
                    };
                }
                let event = json!({"type": "presence", "room": room, "uid": uid, "event": "join"});
                groups::publish(&group(&room), event.to_string(), &[conn]);
                let members = groups::size(&group(&room));
                // The answer waits for the room's topic, where the route keeps topics.
                match storage::get(&topic_key(&room), Some(conn)) {
                    Ok(read) => {
                        member.joins.insert(read, (room, members));
                    }
                    Err(StorageRefusal::NotConfigured) => send(conn, joined(&room, members, None)),
                    Err(refusal) => {
                        log::warn(&format!("reading the topic of {room}: {refusal}"));
                        send(conn, joined(&room, members, Some(None)));
                    }
                }
            }
            Command::Leave { room } => {
                if !conn.groups().contains(&group(&room)) {
                    return error(conn, "not in that room");
                }
                conn.leave(&group(&room));
                let event = json!({"type": "presence", "room": room, "uid": uid, "event": "leave"});
                groups::publish(&group(&room), event.to_string(), &[]);
                send(conn, json!({"type": "left", "room": room}));
            }
            Command::Say { room, text } => {
                if !conn.groups().contains(&group(&room)) {
                    return error(conn, "join the room first");
                }
                let uid = uid.unwrap_or_default();
                // Kept in the room's history first: members get it from on_appended, with its position.
                let entry = json!({"uid": uid, "text": text}).to_string();
                match history::append(&group(&room), &entry, None) {
                    Ok(append) => {
                        self.says.insert(append, Said { room, uid, text });
                    }
                    Err(StorageRefusal::NotConfigured) => {
                        let said = said(&room, &uid, &text, None);
                        groups::publish(&group(&room), said.to_string(), &[]);
                    }
                    Err(refusal) => store_refused(conn, refusal),
                }
            }
            Command::History { room, since } => {
                if !conn.groups().contains(&group(&room)) {
                    return error(conn, "join the room first");
                }
                let since = since.map(|s| Position {
                    offset: s.offset,
                    epoch: s.epoch,
                });
                match history::read(&group(&room), since.as_ref(), HISTORY_PAGE, Some(conn)) {
                    Ok(read) => {
                        member.reads.insert(read, room);
                    }
                    Err(StorageRefusal::NotConfigured) => error(conn, "history is off"),
                    Err(refusal) => store_refused(conn, refusal),
                }
            }
            Command::Topic { room, text } => {
                if !conn.groups().contains(&group(&room)) {
                    return error(conn, "join the room first");
                }
                match storage::set(&topic_key(&room), &text, None, None, None) {
                    Ok(write) => {
                        let set = TopicSet {
                            room,
                            text,
                            by: conn,
                        };
                        self.topics.insert(write, set);
                    }
                    Err(StorageRefusal::NotConfigured) => error(conn, "topics are off"),
                    Err(refusal) => store_refused(conn, refusal),
                }
            }
            Command::Dm { to, text } => {
                // Whether the user is online anywhere in the cluster: `users::send` counts this node only.
                if !users::is_online(&to) {
                    return error(conn, "that user is not online");
                }
                let dm = json!({"type": "dm", "from": uid, "text": text});
                users::send(&to, dm.to_string());
            }
            Command::Online { uid: other } => {
                let connections = users::connections(&other).len();
                send(
                    conn,
                    json!({"type": "online", "uid": other, "connections": connections}),
                );
            }
            Command::Whoami => send(conn, json!({"type": "whoami", "uid": uid})),
            Command::Remind { text, .. } if text.len() > MAX_REMINDER_BYTES => {
                error(conn, "a reminder's text is at most 1024 bytes")
            }
            Command::Remind { .. } if member.reminders.len() >= MAX_REMINDERS => {
                error(conn, "at most 8 reminders may wait")
            }
            Command::Remind { after_ms, text } => {
                match timers::after(Duration::from_millis(after_ms), Some(conn)) {
                    Ok(timer) => {
                        member.reminders.insert(timer, text);
                    }
                    Err(refusal) => refused(conn, refusal),
                }
            }
            Command::Ticks { every_ms } if every_ms < 10 => {
                error(conn, "every_ms must be at least 10")
            }
            Command::Ticks { every_ms } => {
                let timer = match timers::every(Duration::from_millis(every_ms), Some(conn)) {
                    Ok(timer) => timer,
                    Err(refusal) => return refused(conn, refusal),
                };
                if let Some((old, _)) = member.ticks.replace((timer, 0)) {
                    old.cancel();
                }
            }
            Command::StopTicks => {
                if let Some((timer, _)) = member.ticks.take() {
                    timer.cancel();
                }
                send(conn, json!({"type": "ticks_stopped"}));
            }
        }
    }
}

impl Plugin for Chat {
    type State = Member;

    fn on_message(&mut self, conn: Connection, member: &mut Member, message: Message) {
        let Some(text) = message.as_text() else {
            return error(conn, "messages are JSON text");
        };
        match serde_json::from_str::<Command>(text) {
            Ok(command) => self.handle(conn, member, command),
            Err(e) => error(conn, &format!("bad message: {e}")),
        }
    }

    fn on_close(&mut self, conn: Connection, _member: Member, _close: CloseFrame) {
        let uid = conn.session_get("uid");
        for room_group in conn.groups() {
            let room = room_group.strip_prefix("room:").unwrap_or(&room_group);
            let event = json!({"type": "presence", "room": room, "uid": uid, "event": "leave"});
            groups::publish(&room_group, event.to_string(), &[conn]);
        }
    }
}

impl TimerEvents for Chat {
    fn on_timer(&mut self, timer: Timer, members: &mut Connections<Member>) {
        let Some(conn) = timer.owner() else { return };
        let Some(member) = members.get_mut(conn) else {
            return;
        };
        if let Some(text) = member.reminders.remove(&timer) {
            send(conn, json!({"type": "reminder", "text": text}));
        } else if let Some((ticking, count)) = &mut member.ticks
            && *ticking == timer
        {
            *count += 1;
            send(conn, json!({"type": "tick", "n": count}));
        }
    }
}

impl HistoryEvents for Chat {
    fn on_appended(
        &mut self,
        request: StorageRequest,
        result: Result<Position, StorageError>,
        _members: &mut Connections<Member>,
    ) {
        let Some(Said { room, uid, text }) = self.says.remove(&request) else {
            return;
        };
        // A message the store could not keep still reaches the members who are here, without a position.
        let at = result
            .inspect_err(|e| log::warn(&format!("keeping a message of {room}: {e}")))
            .ok();
        let said = said(&room, &uid, &text, at.as_ref());
        groups::publish(&group(&room), said.to_string(), &[]);
    }

    fn on_history(
        &mut self,
        request: StorageRequest,
        result: Result<HistoryPage, StorageError>,
        members: &mut Connections<Member>,
    ) {
        let Some(conn) = request.owner() else { return };
        let Some(room) = members.get_mut(conn).and_then(|m| m.reads.remove(&request)) else {
            return;
        };
        let page = match result {
            Ok(page) => page,
            Err(e) => {
                log::warn(&format!("reading the history of {room}: {e}"));
                return error(conn, "history is unavailable");
            }
        };
        // Every entry is one this plugin appended: `{"uid":…,"text":…}`.
        let messages: Vec<Value> = page
            .entries
            .iter()
            .filter_map(|entry| {
                let kept: Value = serde_json::from_str(entry.message.as_text()?).ok()?;
                Some(json!({"offset": entry.offset, "uid": kept["uid"], "text": kept["text"]}))
            })
            .collect();
        send(
            conn,
            json!({"type": "history", "room": room, "epoch": page.epoch, "messages": messages,
                   "complete": page.complete}),
        );
    }
}

impl StorageEvents for Chat {
    fn on_read(
        &mut self,
        request: StorageRequest,
        result: Result<Option<StoredValue>, StorageError>,
        members: &mut Connections<Member>,
    ) {
        let Some(conn) = request.owner() else { return };
        let Some((room, count)) = members.get_mut(conn).and_then(|m| m.joins.remove(&request))
        else {
            return;
        };
        let topic = result
            .inspect_err(|e| log::warn(&format!("reading the topic of {room}: {e}")))
            .ok()
            .flatten();
        let topic = topic.as_ref().and_then(StoredValue::text);
        send(conn, joined(&room, count, Some(topic)));
    }

    fn on_written(
        &mut self,
        request: StorageRequest,
        result: Result<u64, StorageError>,
        _members: &mut Connections<Member>,
    ) {
        let Some(TopicSet { room, text, by }) = self.topics.remove(&request) else {
            return;
        };
        match result {
            Ok(_) => {
                let topic = json!({"type": "topic", "room": room, "text": text});
                groups::publish(&group(&room), topic.to_string(), &[]);
            }
            Err(e) => {
                log::warn(&format!("keeping the topic of {room}: {e}"));
                error(by, "the topic was not kept");
            }
        }
    }
}

wssgate_sdk::export_plugin!(Chat, timers, history, storage);

#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod tests;

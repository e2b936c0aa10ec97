//! A chat server as a wssgate plugin: rooms, presence, direct messages — GatewayWorker's classic example, with the
//! fan-out done by the host.
//!
//! Every message is a JSON object with a `type`:
//! - `{"type":"login","uid":"alice"}` binds the connection to a user (kept in the host-side session);
//! - `{"type":"join","room":"lobby"}` / `{"type":"leave","room":"lobby"}`: the room's members get a `presence` event;
//! - `{"type":"say","room":"lobby","text":"hi"}` reaches every member of the room once, the sender included;
//! - `{"type":"dm","to":"bob","text":"hi"}` reaches every connection of user `bob`;
//! - `{"type":"online","uid":"bob"}` answers how many connections user `bob` has (on every gateway node);
//! - `{"type":"whoami"}` answers the logged-in user, read back from the session;
//! - `{"type":"remind","after_ms":500,"text":"tea"}` sends a `reminder` once; `{"type":"ticks","every_ms":100}`
//!   sends `tick` events until `{"type":"stop_ticks"}`.
//!
//! Anything malformed, and anything the gateway refuses (a room or user name past its `max_name_bytes`, one room
//! past its `max_groups_per_connection`, one timer past its `max_timers_per_instance`), is answered with
//! `{"type":"error","reason":...}`, never a trap.

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use wssgate_sdk::{
    CloseFrame, Connection, Connections, Message, Plugin, Refusal, Timer, TimerEvents, groups,
    timers, users,
};

/// What a client may send.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Login { uid: String },
    Join { room: String },
    Leave { room: String },
    Say { room: String, text: String },
    Dm { to: String, text: String },
    Online { uid: String },
    Whoami,
    Remind { after_ms: u64, text: String },
    Ticks { every_ms: u64 },
    StopTicks,
}

/// What the plugin keeps per connection; the SDK drops it when the connection closes, and the gateway cancels the
/// timers it names.
#[derive(Default)]
pub struct Member {
    /// Reminders waiting to be sent, by timer.
    reminders: HashMap<Timer, String>,
    /// The running tick timer and how many ticks it sent.
    ticks: Option<(Timer, u64)>,
}

/// Route-wide state: none — rooms, users and sessions are the gateway's.
#[derive(Default)]
pub struct Chat;

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
                send(
                    conn,
                    json!({"type": "joined", "room": room, "members": members}),
                );
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
                let said = json!({"type": "say", "room": room, "from": uid, "text": text});
                groups::publish(&group(&room), said.to_string(), &[]);
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
            let room = room_group.trim_start_matches("room:");
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

wssgate_sdk::export_plugin!(Chat, timers);

#[cfg(test)]
mod tests;

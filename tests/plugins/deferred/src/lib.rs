//! A test plugin for the 1.0 contract's connection life: deferred accept, per-connection state, and the close
//! rules. Its scenarios ([`scenarios`]) run against the SDK's mock host (this crate's unit tests) and against the
//! real gateway (`tests/scenarios.rs`), so the two cannot drift apart.
//!
//! The upgrade's query decides its answer:
//! - `accept=MS`: defers, then after MS sends `welcome` and accepts (a timer the connection owns);
//! - `reject=MS&status=S`: defers, then after MS rejects with status S;
//! - `wait`: defers and never answers (the route's accept timeout answers 504);
//! - `deny`: rejects at once with 401;
//! - `close`: closes the connection from on-connect and accepts it (the close wins: 403);
//! - `accept-now`: calls `accept` from on-connect (refused: nothing is deferred yet), accepts, and answers `note`
//!   with what `accept` returned (`accepted`, or `refused: ` and the refusal's WIT name);
//! - `deny-on-restore`: accepts, but rejects (403) when on-connect is replayed into a replacement instance;
//! - anything else: accepts at once.
//!
//! With the setting `init = "host-calls"`, `init` makes every kind of host call before any connection exists (they
//! must be refused or answered, never fail), and with `init = "refuse"` it refuses the settings.
//!
//! Messages: `count` answers how many messages the connection sent before (its own state); `live` answers how many
//! connections the instance holds state for (counted from on-connect to on-close); `log` writes a line through the
//! `log` facade; `panic` panics (the instance is replaced); `close CODE` closes the connection with CODE; anything else is echoed.

use std::time::Duration;
use wssgate_sdk::{
    CloseFrame, Connection, Connections, Message, Plugin, Request, Settings, Timer, TimerEvents,
    Verdict, groups, timers, users,
};

#[derive(Default)]
pub struct Deferred {
    /// Connections with state: accepted or waiting for their answer.
    live: usize,
}

/// What the plugin keeps per connection.
#[derive(Default)]
pub struct Client {
    /// Messages received so far.
    messages: u64,
    /// The answer to give when the connection's timer fires (while deferred).
    answer: Option<Answer>,
    /// What on-connect noted, for the `note` message.
    note: String,
}

enum Answer {
    Accept,
    Reject(u16),
}

/// The value of `key` in a `k=v&k=v` query.
fn param<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// A refusal as the contract names it, which is what every language's port of this plugin answers.
fn wit_name(refusal: wssgate_sdk::Refusal) -> &'static str {
    use wssgate_sdk::Refusal::*;
    match refusal {
        UnknownConnection => "unknown-connection",
        NameTooLong => "name-too-long",
        TooManyGroups => "too-many-groups",
        TooManyTimers => "too-many-timers",
        TooLarge => "too-large",
        RateLimited => "rate-limited",
        NotDeferred => "not-deferred",
        _ => "other",
    }
}

fn millis(value: &str) -> Duration {
    Duration::from_millis(value.parse().unwrap_or(0))
}

/// Every kind of host call, made from `init`: a connection that does not exist yet, an empty route, a timer.
fn host_calls_from_init() -> Result<(), String> {
    let nobody = Connection::new(u64::MAX);
    let _ = nobody.send("hello");
    nobody.close(1000, "bye");
    let _ = nobody.accept();
    let _ = nobody.reject(401, "no");
    let _ = nobody.join("g");
    nobody.leave("g");
    let _ = nobody.groups();
    let _ = nobody.bind_user("u");
    nobody.unbind_user();
    let _ = nobody.session_set("k", "v");
    let _ = nobody.session_get("k");
    nobody.session_remove("k");
    let _ = nobody.info();
    groups::publish("g", "x", &[]);
    let _ = groups::size("g");
    groups::broadcast("x", &[]);
    users::send("u", "x");
    let _ = users::is_online("u");
    let _ = users::connections("u");
    let _ = wssgate_sdk::settings::all();
    wssgate_sdk::log::info("init made every host call");
    log::info!("and logged through the log facade");
    let timer = timers::every(Duration::from_secs(3600), None).map_err(|r| r.to_string())?;
    timer.cancel();
    timers::after(Duration::from_secs(3600), None).map_err(|r| r.to_string())?;
    Ok(())
}

impl Plugin for Deferred {
    type State = Client;

    fn init(&mut self, settings: &Settings) -> Result<(), String> {
        match settings.get("init") {
            Some("host-calls") => host_calls_from_init(),
            Some("refuse") => Err("init was told to refuse".to_owned()),
            _ => Ok(()),
        }
    }

    fn on_connect(&mut self, conn: Connection, request: &Request) -> Verdict<Client> {
        let query = request.query.as_str();
        if query == "deny-on-restore" && request.restored {
            return Verdict::reject(403, "denied on restore");
        }
        let (delay, answer) = if let Some(ms) = param(query, "accept") {
            (millis(ms), Answer::Accept)
        } else if let Some(ms) = param(query, "reject") {
            let status = param(query, "status").and_then(|s| s.parse().ok());
            (millis(ms), Answer::Reject(status.unwrap_or(403)))
        } else if query == "wait" {
            self.live += 1;
            return Verdict::Defer(Client::default());
        } else if query == "deny" {
            return Verdict::reject(401, "no token");
        } else if query == "close" {
            conn.close(4000, "changed its mind");
            self.live += 1;
            return Verdict::Accept(Client::default());
        } else if query == "accept-now" {
            self.live += 1;
            return Verdict::Accept(Client {
                note: match conn.accept() {
                    Ok(()) => "accepted".to_owned(),
                    Err(refusal) => format!("refused: {}", wit_name(refusal)),
                },
                ..Client::default()
            });
        } else {
            self.live += 1;
            return Verdict::Accept(Client::default());
        };
        if request.restored {
            // Replayed into a fresh instance: an open connection stays open.
            self.live += 1;
            return Verdict::Accept(Client::default());
        }
        match timers::after(delay, Some(conn)) {
            Ok(_) => {
                self.live += 1;
                Verdict::Defer(Client {
                    answer: Some(answer),
                    ..Client::default()
                })
            }
            Err(refusal) => Verdict::reject(503, refusal.to_string()),
        }
    }

    fn on_message(&mut self, conn: Connection, client: &mut Client, message: Message) {
        let reply = match message.as_text() {
            Some("count") => format!("count {}", client.messages),
            Some("live") => format!("live {}", self.live),
            Some("note") => client.note.clone(),
            Some("panic") => panic!("deferred was asked to panic"),
            Some("log") => {
                log::info!("deferred logs through the log facade");
                "logged".to_owned()
            }
            Some(text) if text.starts_with("close ") => {
                conn.close(text[6..].parse().unwrap_or(1000), "closed by plugin");
                return;
            }
            _ => {
                client.messages += 1;
                let _ = conn.send(message);
                return;
            }
        };
        client.messages += 1;
        let _ = conn.send(reply);
    }

    fn on_close(&mut self, _conn: Connection, _client: Client, _close: CloseFrame) {
        self.live -= 1;
    }
}

impl TimerEvents for Deferred {
    fn on_timer(&mut self, timer: Timer, clients: &mut Connections<Client>) {
        let Some(conn) = timer.owner() else { return };
        let Some(client) = clients.get_mut(conn) else {
            return;
        };
        match client.answer.take() {
            Some(Answer::Accept) => {
                // Queued while the upgrade waits: the client reads it right after its 101.
                let _ = conn.send("welcome");
                let _ = conn.accept();
            }
            Some(Answer::Reject(status)) => {
                let _ = conn.reject(status, "rejected later");
            }
            None => {}
        }
    }
}

wssgate_sdk::export_plugin!(Deferred, timers);

/// The scenarios this plugin must pass, on the mock and on the gateway alike: `tests/scenarios/deferred.json`, which
/// the TypeScript and Python ports of this plugin pass too.
#[cfg(not(target_arch = "wasm32"))]
pub fn scenarios() -> Vec<wssgate_sdk::testing::Scenario> {
    scenarios::parse(include_str!("../../../scenarios/deferred.json"))
}

#[cfg(not(target_arch = "wasm32"))]
mod scenarios;

#[cfg(test)]
mod tests;

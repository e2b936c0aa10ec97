//! A test plugin that drives its route's history and storage from a client, one text command per message, and
//! answers each with one line (so a test sees exactly what the contract gives a plugin):
//! - `append <group> <text>` → `appended <offset> <epoch>`;
//! - `read <group> <limit> [<offset> <epoch>]` → `page <epoch or -> <complete> <offset>:<text>,…`;
//! - `get <key>` → `value <revision> <text>` or `none`;
//! - `set <key> <value> [ttl=<ms>] [if=<revision>]` and `remove <key> [if=<revision>]` → `written <revision>`;
//! - `burst <n> <key>`: `n` gets at once, answering only the refusals, as `refused <n> <refusal>` (the cap on waiting
//!   requests); `reads <n> <group>` the same with history reads (their own cap);
//! - a request the gateway refuses answers `refused <refusal>`; one that fails, `error <error>`.
//!
//! Every request is owned by the connection that asked, and its answer goes back to it.

use std::time::Duration;
use wssgate_sdk::history::{self, HistoryPage, Position};
use wssgate_sdk::storage::{self, StoredValue};
use wssgate_sdk::{
    Connection, Connections, HistoryEvents, Message, Plugin, StorageError, StorageEvents,
    StorageRefusal, StorageRequest,
};

#[derive(Default)]
struct Keeper;

fn answer(conn: Connection, text: String) {
    let _ = conn.send(text);
}

/// Parses `name=<u64>` options.
fn option(words: &[&str], name: &str) -> Option<u64> {
    words
        .iter()
        .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

fn refusal(conn: Connection, refused: StorageRefusal) {
    answer(conn, format!("refused {refused:?}"));
}

impl Plugin for Keeper {
    type State = ();

    fn on_message(&mut self, conn: Connection, _: &mut (), message: Message) {
        let Some(text) = message.as_text() else {
            return;
        };
        let words: Vec<&str> = text.split(' ').collect();
        let owner = Some(conn);
        let asked = match words.as_slice() {
            ["append", group, rest @ ..] => history::append(group, rest.join(" "), owner),
            ["read", group, limit, since @ ..] => {
                let limit = limit.parse().unwrap_or(1);
                let since = match since {
                    [offset, epoch] => Some(Position {
                        offset: offset.parse().unwrap_or(0),
                        epoch: (*epoch).to_owned(),
                    }),
                    _ => None,
                };
                history::read(group, since.as_ref(), limit, owner)
            }
            ["get", key] => storage::get(key, owner),
            ["set", key, value, options @ ..] => {
                let ttl = option(options, "ttl").map(Duration::from_millis);
                storage::set(key, value, ttl, option(options, "if"), owner)
            }
            ["remove", key, options @ ..] => storage::remove(key, option(options, "if"), owner),
            [kind @ ("burst" | "reads"), n, name] => {
                let n: usize = n.parse().unwrap_or(0);
                let refused: Vec<StorageRefusal> = (0..n)
                    .filter_map(|_| match *kind {
                        "burst" => storage::get(name, owner).err(),
                        _ => history::read(name, None, 1, owner).err(),
                    })
                    .collect();
                if let Some(first) = refused.first() {
                    answer(conn, format!("refused {} {first:?}", refused.len()));
                }
                return;
            }
            _ => {
                answer(conn, format!("unknown command {text:?}"));
                return;
            }
        };
        if let Err(refused) = asked {
            refusal(conn, refused);
        }
    }
}

fn failed(request: StorageRequest, error: StorageError) {
    if let Some(conn) = request.owner() {
        answer(conn, format!("error {error:?}"));
    }
}

impl HistoryEvents for Keeper {
    fn on_appended(
        &mut self,
        request: StorageRequest,
        result: Result<Position, StorageError>,
        _: &mut Connections<()>,
    ) {
        match (result, request.owner()) {
            (Ok(p), Some(conn)) => answer(conn, format!("appended {} {}", p.offset, p.epoch)),
            (Err(e), _) => failed(request, e),
            _ => {}
        }
    }

    fn on_history(
        &mut self,
        request: StorageRequest,
        result: Result<HistoryPage, StorageError>,
        _: &mut Connections<()>,
    ) {
        match (result, request.owner()) {
            (Ok(page), Some(conn)) => {
                let entries: Vec<String> = page
                    .entries
                    .iter()
                    .map(|e| {
                        let text = e.message.as_text().unwrap_or("(bytes)");
                        format!("{}:{text}", e.offset)
                    })
                    .collect();
                let epoch = if page.epoch.is_empty() {
                    "-"
                } else {
                    &page.epoch
                };
                let line = format!("page {epoch} {} {}", page.complete, entries.join(","));
                answer(conn, line.trim_end().to_owned());
            }
            (Err(e), _) => failed(request, e),
            _ => {}
        }
    }
}

impl StorageEvents for Keeper {
    fn on_read(
        &mut self,
        request: StorageRequest,
        result: Result<Option<StoredValue>, StorageError>,
        _: &mut Connections<()>,
    ) {
        match (result, request.owner()) {
            (Ok(Some(v)), Some(conn)) => {
                let text = v.text().unwrap_or("(bytes)");
                answer(conn, format!("value {} {text}", v.revision));
            }
            (Ok(None), Some(conn)) => answer(conn, "none".to_owned()),
            (Err(e), _) => failed(request, e),
            _ => {}
        }
    }

    fn on_written(
        &mut self,
        request: StorageRequest,
        result: Result<u64, StorageError>,
        _: &mut Connections<()>,
    ) {
        match (result, request.owner()) {
            (Ok(revision), Some(conn)) => answer(conn, format!("written {revision}")),
            (Err(e), _) => failed(request, e),
            _ => {}
        }
    }
}

wssgate_sdk::export_plugin!(Keeper, history, storage);

//! A plugin as someone would have built it the day contract 1.2 was released: straight from that WIT (the frozen
//! copy in `tests/contract/1.2.0`), without the SDK, importing `history` and `storage` and exporting their events
//! beside the connection events. `note TEXT` appends TEXT to group `notes` and stores it under key `last`; the sender
//! gets `appended OFFSET` and `written REVISION`; `last` answers `last TEXT`; `notes` answers the group's latest
//! messages as `notes OFFSET:TEXT,…`.

wit_bindgen::generate!({
    path: "../../contract/1.2.0",
    inline: "package frozen:plugin;
             world keeper {
                 include wssgate:plugin/plugin@1.2.0;
                 import wssgate:plugin/history@1.2.0;
                 import wssgate:plugin/storage@1.2.0;
                 export wssgate:plugin/history-events@1.2.0;
                 export wssgate:plugin/storage-events@1.2.0;
             }",
    world: "frozen:plugin/keeper",
    generate_all,
});

use exports::wssgate::plugin::connection_events::Guest as ConnectionEvents;
use exports::wssgate::plugin::history_events::Guest as HistoryEvents;
use exports::wssgate::plugin::storage_events::Guest as StorageEvents;
use wssgate::plugin::history::{self, HistoryPage, Position};
use wssgate::plugin::host;
use wssgate::plugin::storage::{self, StoredValue};
use wssgate::plugin::storage_types::StorageError;
use wssgate::plugin::types::{Message, RequestInfo, Verdict};

struct Frozen;

fn tell(connection: Option<u64>, text: String) {
    if let Some(connection) = connection {
        let _ = host::send(connection, &Message::Text(text));
    }
}

impl ConnectionEvents for Frozen {
    fn on_connect(_connection: u64, _request: RequestInfo) -> Verdict {
        Verdict::Accept
    }

    fn on_message(connection: u64, message: Message) {
        let Message::Text(text) = message else { return };
        let owner = Some(connection);
        let refused = if let Some(note) = text.strip_prefix("note ") {
            history::append("notes", &Message::Text(note.to_owned()), owner)
                .and_then(|_| storage::set("last", note.as_bytes(), None, None, owner))
                .err()
        } else if text == "last" {
            storage::get("last", owner).err()
        } else if text == "notes" {
            history::read("notes", None, 10, owner).err()
        } else {
            None
        };
        if let Some(refusal) = refused {
            tell(owner, format!("refused {refusal:?}"));
        }
    }

    fn on_close(_connection: u64, _code: u16, _reason: String) {}
}

impl HistoryEvents for Frozen {
    fn on_appended(_request: u64, owner: Option<u64>, answer: Result<Position, StorageError>) {
        let text = match answer {
            Ok(position) => format!("appended {}", position.offset),
            Err(error) => format!("error {error:?}"),
        };
        tell(owner, text);
    }

    fn on_history(_request: u64, owner: Option<u64>, answer: Result<HistoryPage, StorageError>) {
        let text = match answer {
            Ok(page) => {
                let entries: Vec<String> = page
                    .entries
                    .iter()
                    .map(|e| match &e.message {
                        Message::Text(t) => format!("{}:{t}", e.offset),
                        Message::Binary(_) => format!("{}:(bytes)", e.offset),
                    })
                    .collect();
                format!("notes {}", entries.join(","))
            }
            Err(error) => format!("error {error:?}"),
        };
        tell(owner, text);
    }
}

impl StorageEvents for Frozen {
    fn on_read(
        _request: u64,
        owner: Option<u64>,
        answer: Result<Option<StoredValue>, StorageError>,
    ) {
        let text = match answer {
            Ok(Some(value)) => format!("last {}", String::from_utf8_lossy(&value.value)),
            Ok(None) => "last none".to_owned(),
            Err(error) => format!("error {error:?}"),
        };
        tell(owner, text);
    }

    fn on_written(_request: u64, owner: Option<u64>, answer: Result<u64, StorageError>) {
        let text = match answer {
            Ok(revision) => format!("written {revision}"),
            Err(error) => format!("error {error:?}"),
        };
        tell(owner, text);
    }
}

export!(Frozen);

//! A test plugin that makes the gateway's behaviour observable from a client:
//! - on-connect rejects when the query is `reject`, and otherwise remembers the connection;
//! - text commands: `info` answers with the request it saw, `print` writes to stdout and stderr, `clock` reads the
//!   wall and monotonic clocks, `panic` panics, `spin` loops forever, `hog` allocates without bound, `close` closes
//!   the connection with 4002;
//! - on-close tells every other open connection `closed <id> <code> <reason>`.

use std::collections::BTreeMap;
use wssgate_sdk::{CloseFrame, Connection, Message, Plugin, Request};

#[derive(Default)]
struct Probe {
    /// Open connections and the request each arrived with.
    open: BTreeMap<Connection, Request>,
}

impl Plugin for Probe {
    fn on_connect(&mut self, conn: Connection, request: &Request) -> Result<(), CloseFrame> {
        if request.query == "reject" {
            return Err(CloseFrame::new(4001, "rejected by plugin"));
        }
        self.open.insert(conn, request.clone());
        Ok(())
    }

    fn on_message(&mut self, conn: Connection, message: Message) {
        let reply = match message.as_text() {
            Some("info") => {
                let r = &self.open[&conn];
                format!(
                    "path={} query={} remote={} subprotocol={} origin={} id={}",
                    r.path,
                    r.query,
                    r.remote_address,
                    r.subprotocol.as_deref().unwrap_or("-"),
                    r.header("origin").unwrap_or("-"),
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
            Some("close") => {
                conn.close(4002, "closed by plugin");
                return;
            }
            _ => "?".to_owned(),
        };
        let _ = conn.send(reply);
    }

    fn on_close(&mut self, conn: Connection, close: CloseFrame) {
        self.open.remove(&conn);
        let note = format!("closed {} {} {}", conn.id(), close.code, close.reason);
        for other in self.open.keys() {
            let _ = other.send(note.as_str());
        }
    }
}

wssgate_sdk::export_plugin!(Probe);

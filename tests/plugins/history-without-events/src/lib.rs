//! Appends to a group's history on every connection but is exported without `, history`: its component imports
//! `history` and does not export `history-events`, which `wssgate check` must refuse, naming the missing export.

use wssgate_sdk::{Connection, Plugin, Request, Verdict, history};

#[derive(Default)]
struct Forgetful;

impl Plugin for Forgetful {
    type State = ();

    fn on_connect(&mut self, conn: Connection, _request: &Request) -> Verdict<()> {
        let _ = history::append("arrivals", "hello", Some(conn));
        Verdict::Accept(())
    }
}

wssgate_sdk::export_plugin!(Forgetful);

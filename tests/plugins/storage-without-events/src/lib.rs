//! Reads a key on every connection but is exported without `, storage`: its component imports `storage` and does not
//! export `storage-events`, which `wssgate check` must refuse, naming the missing export.

use wssgate_sdk::{Connection, Plugin, Request, Verdict, storage};

#[derive(Default)]
struct Forgetful;

impl Plugin for Forgetful {
    type State = ();

    fn on_connect(&mut self, conn: Connection, _request: &Request) -> Verdict<()> {
        let _ = storage::get("greeting", Some(conn));
        Verdict::Accept(())
    }
}

wssgate_sdk::export_plugin!(Forgetful);

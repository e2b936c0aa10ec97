//! Sends an HTTP request on every connection but is exported without `, http`: its component imports `http` and
//! does not export `http-events`, which `wssgate check` must refuse, naming the missing export.

use wssgate_sdk::{Connection, Plugin, Request, Verdict, http};

#[derive(Default)]
struct Forgetful;

impl Plugin for Forgetful {
    type State = ();

    fn on_connect(&mut self, conn: Connection, _request: &Request) -> Verdict<()> {
        let _ = http::Request::get("backend", "/").owner(conn).send();
        Verdict::Accept(())
    }
}

wssgate_sdk::export_plugin!(Forgetful);

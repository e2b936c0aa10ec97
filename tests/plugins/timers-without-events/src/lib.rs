//! Starts a timer on every connection but is exported without `, timers`: its component imports the timers and
//! does not export their events, which `wssgate check` must refuse, naming the missing export.

use std::time::Duration;
use wssgate_sdk::{Connection, Plugin, Request, Verdict, timers};

#[derive(Default)]
struct Forgetful;

impl Plugin for Forgetful {
    type State = ();

    fn on_connect(&mut self, conn: Connection, _request: &Request) -> Verdict<()> {
        let _ = timers::after(Duration::from_secs(1), Some(conn));
        Verdict::Accept(())
    }
}

wssgate_sdk::export_plugin!(Forgetful);

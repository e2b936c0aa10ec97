//! A test plugin that imports an interface no gateway provides (`example:elsewhere/thing`): `wssgate check` must
//! refuse it, naming the import.

use wssgate_sdk::{Connection, Message, Plugin};

wit_bindgen::generate!({
    inline: "package example:elsewhere@1.0.0;
             interface thing {
                 poke: func();
             }
             world needs-thing {
                 import thing;
             }",
    world: "needs-thing",
});

#[derive(Default)]
struct ImportsUnknown;

impl Plugin for ImportsUnknown {
    type State = ();

    fn on_message(&mut self, conn: Connection, _state: &mut (), _message: Message) {
        example::elsewhere::thing::poke();
        let _ = conn.send("poked");
    }
}

wssgate_sdk::export_plugin!(ImportsUnknown);

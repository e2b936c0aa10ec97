//! A plugin as contract 0.3 had them: callbacks exported by the world itself, the host imported as
//! `wssgate:plugin/host@0.3.0` (only the part of 0.3 this plugin uses is written out).

wit_bindgen::generate!({
    inline: "package wssgate:plugin@0.3.0;
             interface host {
                 send: func(connection: u64, text: string);
             }
             world plugin {
                 import host;
                 export on-message: func(connection: u64, text: string);
             }",
    world: "plugin",
});

struct Old;

impl Guest for Old {
    fn on_message(connection: u64, text: String) {
        wssgate::plugin::host::send(connection, &text);
    }
}

export!(Old);

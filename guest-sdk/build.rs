//! Encodes the component type of the optional `timer-events` export for `export_plugin!(…, timers)`.
//!
//! wit-bindgen describes a world's exports in a custom section that every plugin linking the SDK would carry, and
//! a component must then export all of them. The optional interfaces are therefore described separately: this
//! script encodes a world that exports only `timer-events`, and the export macro puts that section into the plugin
//! only when the plugin exports timer events — so a plugin exports exactly the events it handles.

use std::path::PathBuf;

fn main() {
    let wit = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    let mut resolve = wit_parser::Resolve::default();
    resolve.push_dir(&wit).expect("parsing wit/");
    let glue = resolve
        .push_str(
            "wssgate-sdk-glue.wit",
            "package wssgate-sdk:glue;\nworld timer-events { export wssgate:plugin/timer-events@1.0.0; }\n",
        )
        .expect("the timer-events glue world");
    let world = resolve
        .select_world(&[glue], Some("timer-events"))
        .expect("selecting the glue world");
    let section =
        wit_component::metadata::encode(&resolve, world, wit_component::StringEncoding::UTF8, None)
            .expect("encoding the timer-events component type");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("timer_events.bin"), &section).unwrap();
    std::fs::write(
        out.join("timer_events.rs"),
        format!(
            "/// The component type of a world exporting only `timer-events`.\npub const TIMER_EVENTS_TYPE: [u8; {}] = *include_bytes!(concat!(env!(\"OUT_DIR\"), \"/timer_events.bin\"));\n",
            section.len()
        ),
    )
    .unwrap();
}

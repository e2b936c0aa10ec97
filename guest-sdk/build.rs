//! Encodes the component types of the optional event exports (`timer-events`, `http-events`) for
//! `export_plugin!(…, timers)` and `export_plugin!(…, http)`.
//!
//! wit-bindgen describes a world's exports in a custom section that every plugin linking the SDK would carry, and
//! a component must then export all of them. The optional interfaces are therefore described separately: this
//! script encodes one world per optional export, and the export macro puts a world's section into the plugin only
//! when the plugin exports those events — so a plugin exports exactly the events it handles.

use std::fmt::Write as _;
use std::path::PathBuf;

/// The optional exports: the glue world's name, the interface it exports, the Rust constant holding its section.
const OPTIONAL: [(&str, &str, &str); 2] = [
    (
        "timer-events",
        "wssgate:plugin/timer-events@1.1.0",
        "TIMER_EVENTS_TYPE",
    ),
    (
        "http-events",
        "wssgate:plugin/http-events@1.1.0",
        "HTTP_EVENTS_TYPE",
    ),
];

fn main() {
    let wit = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut constants = String::new();
    for (world_name, interface, constant) in OPTIONAL {
        let mut resolve = wit_parser::Resolve::default();
        resolve.push_dir(&wit).expect("parsing wit/");
        let glue = resolve
            .push_str(
                "wssgate-sdk-glue.wit",
                &format!(
                    "package wssgate-sdk:glue;\nworld {world_name} {{ export {interface}; }}\n"
                ),
            )
            .expect("the glue world");
        let world = resolve
            .select_world(&[glue], Some(world_name))
            .expect("selecting the glue world");
        let section = wit_component::metadata::encode(
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
            None,
        )
        .expect("encoding the glue world's component type");
        let file = format!("{world_name}.bin");
        std::fs::write(out.join(&file), &section).unwrap();
        let _ = writeln!(
            constants,
            "/// The component type of a world exporting only `{interface}`.\npub const {constant}: [u8; {}] = *include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}\"));",
            section.len()
        );
    }
    std::fs::write(out.join("optional_exports.rs"), constants).unwrap();
}

//! Host-side bindings generated from `wit/plugin.wit`, the one contract shared with the guest SDK.
//!
//! They are generated from `plugin-full`, the world of everything a 1.x plugin may import and export. Only
//! `connection-events` is required of a plugin: the other exports are looked up one interface at a time when a
//! plugin loads (see [`super::exports`]), so a plugin that leaves one out still loads.
//!
//! Exports take borrowed parameters so that a message goes from the socket's buffer into the plugin's memory with
//! no intermediate copy.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "plugin-full",
    ownership: Borrowing { duplicate_if_necessary: true },
});

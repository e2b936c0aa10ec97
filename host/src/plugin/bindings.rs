//! Host-side bindings generated from `wit/plugin.wit`, the one contract shared with the guest SDK.
//!
//! Exports take borrowed parameters so that a message goes from the socket's buffer into the plugin's memory with
//! no intermediate copy.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    ownership: Borrowing { duplicate_if_necessary: true },
});

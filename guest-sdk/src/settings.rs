//! The route's `[route.settings]` table from the gateway config, as string key/values.
//!
//! ```toml
//! [[route]]
//! path = "/wss"
//! plugin = "echo_ok.wasm"
//! [route.settings]
//! reply = "ok"
//! ```

use crate::host;

/// The value of `key`, if the route sets it.
pub fn get(key: &str) -> Option<String> {
    host::setting(key)
}

/// Every setting, sorted by key.
pub fn all() -> Vec<(String, String)> {
    host::settings()
}

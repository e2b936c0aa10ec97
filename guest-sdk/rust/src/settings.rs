//! The route's `[route.settings]` table from the gateway config, as string key/values.
//!
//! ```toml
//! [[route]]
//! path = "/wss"
//! plugin = "echo_ok.wasm"
//! [route.settings]
//! reply = "ok"
//! ```
//!
//! [`crate::Plugin::init`] receives them as [`Settings`] when the instance starts, and may refuse them; any event
//! can also read them with [`get`] and [`all`].

use crate::host;
use std::collections::BTreeMap;

/// The route's settings, as `init` receives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    pub fn new(settings: impl IntoIterator<Item = (String, String)>) -> Self {
        Settings(settings.into_iter().collect())
    }

    /// The value of `key`, if the route sets it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Every setting, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The value of `key`, if the route sets it.
pub fn get(key: &str) -> Option<String> {
    host::with_host(|h| h.setting(key))
}

/// Every setting, sorted by key.
pub fn all() -> Vec<(String, String)> {
    host::with_host(|h| h.settings())
}

//! The config loader: `wssgate check` on any text must answer, never panic.

use std::path::Path;
use wssgate_config::Config;

/// `data` as a config file's text (bytes that are not UTF-8 as the replacement character).
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = Config::parse(Path::new("/etc/wssgate/fuzz.toml"), &text) {
        let _ = config.warnings();
        let _ = config.limits.problems();
        for listener in &config.listeners {
            let _ = listener.client_address_note();
        }
    }
}

//! The only place that calls the host. In a wasm guest that is the generated import bindings; in a native build
//! (unit tests) it is the [`crate::testing::MockHost`] of the current thread.

use crate::connection::SendError;
use crate::log::Level;
use crate::message::Message;

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::__export::bindings::wssgate::plugin::host;
    use crate::__export::bindings::wssgate::plugin::types::{
        LogLevel, Message as RawMessage, SendError as RawError,
    };

    pub fn send(connection: u64, message: Message) -> Result<(), SendError> {
        let raw = match message {
            Message::Text(text) => RawMessage::Text(text),
            Message::Binary(bytes) => RawMessage::Binary(bytes),
        };
        host::send(connection, &raw).map_err(|e| match e {
            RawError::Closed => SendError::Closed,
            RawError::QueueFull => SendError::QueueFull,
        })
    }

    pub fn close(connection: u64, code: u16, reason: &str) {
        host::close(connection, code, reason)
    }

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        host::log(level, message)
    }

    pub fn setting(key: &str) -> Option<String> {
        host::setting(key)
    }

    pub fn settings() -> Vec<(String, String)> {
        host::settings()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use crate::testing::with_mock;

    pub fn send(connection: u64, message: Message) -> Result<(), SendError> {
        with_mock(|mock| mock.send(connection, message))
    }

    pub fn close(connection: u64, code: u16, reason: &str) {
        with_mock(|mock| mock.close(connection, code, reason))
    }

    pub fn log(level: Level, message: &str) {
        with_mock(|mock| mock.log(level, message))
    }

    pub fn setting(key: &str) -> Option<String> {
        with_mock(|mock| mock.settings.get(key).cloned())
    }

    pub fn settings() -> Vec<(String, String)> {
        with_mock(|mock| {
            mock.settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
}

pub(crate) use imp::*;

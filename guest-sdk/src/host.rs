//! The only place that calls the host. In a wasm guest that is the generated import bindings; in a native build
//! (unit tests) it is the [`crate::testing::MockHost`] of the current thread.

use crate::Refusal;
use crate::connection::SendError;
use crate::log::Level;
use crate::message::{ConnectionInfo, Payload};

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::__export::bindings::wssgate::plugin::host;
    use crate::__export::bindings::wssgate::plugin::types::{
        LogLevel, MessageParam as RawMessage, Refusal as RawRefusal, SendError as RawError,
    };

    fn raw(message: Payload<'_>) -> RawMessage<'_> {
        match message {
            Payload::Text(text) => RawMessage::Text(text),
            Payload::Binary(bytes) => RawMessage::Binary(bytes),
        }
    }

    pub fn send(connection: u64, message: Payload<'_>) -> Result<(), SendError> {
        host::send(connection, raw(message)).map_err(|e| match e {
            RawError::Closed => SendError::Closed,
            RawError::QueueFull => SendError::QueueFull,
        })
    }

    /// The SDK's name for a refusal; the one place that knows the raw enum.
    fn refusal(raw: RawRefusal) -> Refusal {
        match raw {
            RawRefusal::UnknownConnection => Refusal::UnknownConnection,
            RawRefusal::NameTooLong => Refusal::NameTooLong,
            RawRefusal::TooManyGroups => Refusal::TooManyGroups,
            RawRefusal::TooManyTimers => Refusal::TooManyTimers,
            RawRefusal::TooLarge => Refusal::TooLarge,
            RawRefusal::RateLimited => Refusal::RateLimited,
        }
    }

    pub fn close(connection: u64, code: u16, reason: &str) {
        host::close(connection, code, reason)
    }

    pub fn log(level: Level, message: &str) -> Result<(), Refusal> {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        host::log(level, message).map_err(refusal)
    }

    pub fn setting(key: &str) -> Option<String> {
        host::setting(key)
    }

    pub fn settings() -> Vec<(String, String)> {
        host::settings()
    }

    pub fn join_group(connection: u64, group: &str) -> Result<(), Refusal> {
        host::join_group(connection, group).map_err(refusal)
    }

    pub fn leave_group(connection: u64, group: &str) {
        host::leave_group(connection, group)
    }

    pub fn publish(group: &str, message: Payload<'_>, exclude: &[u64]) -> u32 {
        host::publish(group, raw(message), exclude)
    }

    pub fn group_size(group: &str) -> u32 {
        host::group_size(group)
    }

    pub fn groups_of(connection: u64) -> Vec<String> {
        host::groups_of(connection)
    }

    pub fn bind_user(connection: u64, uid: &str) -> Result<(), Refusal> {
        host::bind_user(connection, uid).map_err(refusal)
    }

    pub fn unbind_user(connection: u64) {
        host::unbind_user(connection)
    }

    pub fn send_to_user(uid: &str, message: Payload<'_>) -> u32 {
        host::send_to_user(uid, raw(message))
    }

    pub fn is_user_online(uid: &str) -> bool {
        host::is_user_online(uid)
    }

    pub fn connections_of_user(uid: &str) -> Vec<u64> {
        host::connections_of_user(uid)
    }

    pub fn broadcast(message: Payload<'_>, exclude: &[u64]) -> u32 {
        host::broadcast(raw(message), exclude)
    }

    pub fn session_set(connection: u64, key: &str, value: &str) -> Result<(), Refusal> {
        host::session_set(connection, key, value).map_err(refusal)
    }

    pub fn session_get(connection: u64, key: &str) -> Option<String> {
        host::session_get(connection, key)
    }

    pub fn session_remove(connection: u64, key: &str) {
        host::session_remove(connection, key)
    }

    pub fn set_timer(delay_ms: u64, repeat: bool, owner: Option<u64>) -> Result<u64, Refusal> {
        host::set_timer(delay_ms, repeat, owner).map_err(refusal)
    }

    pub fn cancel_timer(timer: u64) -> bool {
        host::cancel_timer(timer)
    }

    pub fn connection_info(connection: u64) -> Option<ConnectionInfo> {
        host::connection_info(connection).map(|d| ConnectionInfo {
            path: d.path,
            query: d.query,
            headers: d.headers,
            remote_address: d.remote_address,
            subprotocol: d.subprotocol,
            connected_at_ms: d.connected_at_ms,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use crate::testing::with_mock;

    pub fn send(connection: u64, message: Payload<'_>) -> Result<(), SendError> {
        with_mock(|mock| mock.send(connection, message.to_message()))
    }

    pub fn close(connection: u64, code: u16, reason: &str) {
        with_mock(|mock| mock.close(connection, code, reason))
    }

    pub fn log(level: Level, message: &str) -> Result<(), Refusal> {
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

    pub fn join_group(connection: u64, group: &str) -> Result<(), Refusal> {
        with_mock(|mock| mock.join_group(connection, group))
    }

    pub fn leave_group(connection: u64, group: &str) {
        with_mock(|mock| mock.leave_group(connection, group))
    }

    pub fn publish(group: &str, message: Payload<'_>, exclude: &[u64]) -> u32 {
        with_mock(|mock| mock.publish(group, message.to_message(), exclude))
    }

    pub fn group_size(group: &str) -> u32 {
        with_mock(|mock| mock.group_members(group).len() as u32)
    }

    pub fn groups_of(connection: u64) -> Vec<String> {
        with_mock(|mock| mock.groups_of(connection))
    }

    pub fn bind_user(connection: u64, uid: &str) -> Result<(), Refusal> {
        with_mock(|mock| mock.bind_user(connection, uid))
    }

    pub fn unbind_user(connection: u64) {
        with_mock(|mock| mock.unbind_user(connection))
    }

    pub fn send_to_user(uid: &str, message: Payload<'_>) -> u32 {
        with_mock(|mock| mock.send_to_user(uid, message.to_message()))
    }

    pub fn is_user_online(uid: &str) -> bool {
        with_mock(|mock| !mock.connections_of_user(uid).is_empty())
    }

    pub fn connections_of_user(uid: &str) -> Vec<u64> {
        with_mock(|mock| mock.connections_of_user(uid))
    }

    pub fn broadcast(message: Payload<'_>, exclude: &[u64]) -> u32 {
        with_mock(|mock| mock.broadcast(message.to_message(), exclude))
    }

    pub fn session_set(connection: u64, key: &str, value: &str) -> Result<(), Refusal> {
        with_mock(|mock| mock.session_set(connection, key, value))
    }

    pub fn session_get(connection: u64, key: &str) -> Option<String> {
        with_mock(|mock| mock.session_get(connection, key))
    }

    pub fn session_remove(connection: u64, key: &str) {
        with_mock(|mock| mock.session_remove(connection, key))
    }

    pub fn set_timer(delay_ms: u64, repeat: bool, owner: Option<u64>) -> Result<u64, Refusal> {
        with_mock(|mock| mock.set_timer(delay_ms, repeat, owner))
    }

    pub fn cancel_timer(timer: u64) -> bool {
        with_mock(|mock| mock.cancel_timer(timer))
    }

    pub fn connection_info(connection: u64) -> Option<ConnectionInfo> {
        with_mock(|mock| mock.connection_info(connection))
    }
}

pub(crate) use imp::*;

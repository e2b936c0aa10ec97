//! The only place that calls the host. [`HostCalls`] is the gateway's imports (`host`, `timers`, `http`, `history`,
//! `storage`) as one Rust trait, and it has exactly two implementations: the generated wasm imports ([`WasmHost`], in a wasm guest) and the
//! mock gateway of native unit tests ([`crate::testing`]). Every SDK call goes through [`with_host`], so the
//! signatures the mock offers cannot drift from the ones the gateway offers.

use crate::connection::SendError;
use crate::history::Position;
use crate::http::RequestRefusal;
use crate::log::Level;
use crate::message::{ConnectionInfo, Payload};
use crate::{Refusal, StorageRefusal};

/// Everything a plugin can ask of the gateway (`wit/plugin.wit`, interfaces `host`, `timers`, `http`, `history` and
/// `storage`).
pub(crate) trait HostCalls {
    fn send(&mut self, connection: u64, message: Payload<'_>) -> Result<(), SendError>;
    fn close(&mut self, connection: u64, code: u16, reason: &str);
    fn accept(&mut self, connection: u64) -> Result<(), Refusal>;
    fn reject(&mut self, connection: u64, status: u16, body: &str) -> Result<(), Refusal>;
    fn log(&mut self, level: Level, message: &str) -> Result<(), Refusal>;
    fn setting(&mut self, key: &str) -> Option<String>;
    fn settings(&mut self) -> Vec<(String, String)>;
    fn join_group(&mut self, connection: u64, group: &str) -> Result<(), Refusal>;
    fn leave_group(&mut self, connection: u64, group: &str);
    fn publish(&mut self, group: &str, message: Payload<'_>, exclude: &[u64]) -> u32;
    fn group_size(&mut self, group: &str) -> u32;
    fn groups_of(&mut self, connection: u64) -> Vec<String>;
    fn bind_user(&mut self, connection: u64, uid: &str) -> Result<(), Refusal>;
    fn unbind_user(&mut self, connection: u64);
    fn send_to_user(&mut self, uid: &str, message: Payload<'_>) -> u32;
    fn is_user_online(&mut self, uid: &str) -> bool;
    fn connections_of_user(&mut self, uid: &str) -> Vec<u64>;
    fn broadcast(&mut self, message: Payload<'_>, exclude: &[u64]) -> u32;
    fn session_set(&mut self, connection: u64, key: &str, value: &str) -> Result<(), Refusal>;
    fn session_get(&mut self, connection: u64, key: &str) -> Option<String>;
    fn session_remove(&mut self, connection: u64, key: &str);
    fn connection_info(&mut self, connection: u64) -> Option<ConnectionInfo>;
    fn set_timer(
        &mut self,
        delay_ms: u64,
        repeat: bool,
        owner: Option<u64>,
    ) -> Result<u64, Refusal>;
    fn cancel_timer(&mut self, timer: u64) -> bool;
    fn send_request(&mut self, request: &crate::http::Request) -> Result<u64, RequestRefusal>;
    fn cancel_request(&mut self, request: u64) -> bool;
    fn history_append(
        &mut self,
        group: &str,
        message: Payload<'_>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal>;
    fn history_read(
        &mut self,
        group: &str,
        since: Option<&Position>,
        limit: u32,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal>;
    fn storage_get(&mut self, key: &str, owner: Option<u64>) -> Result<u64, StorageRefusal>;
    fn storage_set(
        &mut self,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        if_revision: Option<u64>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal>;
    fn storage_remove(
        &mut self,
        key: &str,
        if_revision: Option<u64>,
        owner: Option<u64>,
    ) -> Result<u64, StorageRefusal>;
}

/// Runs `f` against the host this code runs under: the gateway in a wasm guest.
#[cfg(target_arch = "wasm32")]
pub(crate) fn with_host<R>(f: impl FnOnce(&mut dyn HostCalls) -> R) -> R {
    f(&mut WasmHost)
}

/// Runs `f` against the host this code runs under: the [`crate::testing::MockHost`] driving the current callback in
/// a native build.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn with_host<R>(f: impl FnOnce(&mut dyn HostCalls) -> R) -> R {
    crate::testing::with_mock(|mock| f(mock))
}

/// Like [`with_host`], but `None` instead of a panic where there is no host to call (a native build outside a mock
/// callback): for the `log` bridge, which any code may reach.
#[cfg(target_arch = "wasm32")]
pub(crate) fn try_with_host<R>(f: impl FnOnce(&mut dyn HostCalls) -> R) -> Option<R> {
    Some(f(&mut WasmHost))
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn try_with_host<R>(f: impl FnOnce(&mut dyn HostCalls) -> R) -> Option<R> {
    crate::testing::try_with_mock(|mock| f(mock))
}

/// The gateway, through the imports generated from `wit/plugin.wit`.
#[cfg(target_arch = "wasm32")]
pub(crate) struct WasmHost;

#[cfg(target_arch = "wasm32")]
mod wasm {
    use super::*;
    use crate::__export::bindings::wssgate::plugin::storage_types::StorageRefusal as RawStorageRefusal;
    use crate::__export::bindings::wssgate::plugin::types::{
        LogLevel, MessageParam as RawMessage, Refusal as RawRefusal, SendError as RawError,
    };
    use crate::__export::bindings::wssgate::plugin::{history, host, http, storage, timers};

    fn raw(message: Payload<'_>) -> RawMessage<'_> {
        match message {
            Payload::Text(text) => RawMessage::Text(text),
            Payload::Binary(bytes) => RawMessage::Binary(bytes),
        }
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
            RawRefusal::NotDeferred => Refusal::NotDeferred,
        }
    }

    /// The SDK's name for a history or storage refusal.
    fn storage_refusal(raw: RawStorageRefusal) -> StorageRefusal {
        match raw {
            RawStorageRefusal::NotConfigured => StorageRefusal::NotConfigured,
            RawStorageRefusal::InvalidName => StorageRefusal::InvalidName,
            RawStorageRefusal::TooLarge => StorageRefusal::TooLarge,
            RawStorageRefusal::TooManyPending => StorageRefusal::TooManyPending,
            RawStorageRefusal::UnknownConnection => StorageRefusal::UnknownConnection,
            RawStorageRefusal::NotNow => StorageRefusal::NotNow,
        }
    }

    impl HostCalls for WasmHost {
        fn send(&mut self, connection: u64, message: Payload<'_>) -> Result<(), SendError> {
            host::send(connection, raw(message)).map_err(|e| match e {
                RawError::Closed => SendError::Closed,
                RawError::QueueFull => SendError::QueueFull,
            })
        }

        fn close(&mut self, connection: u64, code: u16, reason: &str) {
            host::close(connection, code, reason)
        }

        fn accept(&mut self, connection: u64) -> Result<(), Refusal> {
            host::accept(connection).map_err(refusal)
        }

        fn reject(&mut self, connection: u64, status: u16, body: &str) -> Result<(), Refusal> {
            host::reject(connection, status, body).map_err(refusal)
        }

        fn log(&mut self, level: Level, message: &str) -> Result<(), Refusal> {
            let level = match level {
                Level::Trace => LogLevel::Trace,
                Level::Debug => LogLevel::Debug,
                Level::Info => LogLevel::Info,
                Level::Warn => LogLevel::Warn,
                Level::Error => LogLevel::Error,
            };
            host::log(level, message).map_err(refusal)
        }

        fn setting(&mut self, key: &str) -> Option<String> {
            host::setting(key)
        }

        fn settings(&mut self) -> Vec<(String, String)> {
            host::settings()
        }

        fn join_group(&mut self, connection: u64, group: &str) -> Result<(), Refusal> {
            host::join_group(connection, group).map_err(refusal)
        }

        fn leave_group(&mut self, connection: u64, group: &str) {
            host::leave_group(connection, group)
        }

        fn publish(&mut self, group: &str, message: Payload<'_>, exclude: &[u64]) -> u32 {
            host::publish(group, raw(message), exclude)
        }

        fn group_size(&mut self, group: &str) -> u32 {
            host::group_size(group)
        }

        fn groups_of(&mut self, connection: u64) -> Vec<String> {
            host::groups_of(connection)
        }

        fn bind_user(&mut self, connection: u64, uid: &str) -> Result<(), Refusal> {
            host::bind_user(connection, uid).map_err(refusal)
        }

        fn unbind_user(&mut self, connection: u64) {
            host::unbind_user(connection)
        }

        fn send_to_user(&mut self, uid: &str, message: Payload<'_>) -> u32 {
            host::send_to_user(uid, raw(message))
        }

        fn is_user_online(&mut self, uid: &str) -> bool {
            host::is_user_online(uid)
        }

        fn connections_of_user(&mut self, uid: &str) -> Vec<u64> {
            host::connections_of_user(uid)
        }

        fn broadcast(&mut self, message: Payload<'_>, exclude: &[u64]) -> u32 {
            host::broadcast(raw(message), exclude)
        }

        fn session_set(&mut self, connection: u64, key: &str, value: &str) -> Result<(), Refusal> {
            host::session_set(connection, key, value).map_err(refusal)
        }

        fn session_get(&mut self, connection: u64, key: &str) -> Option<String> {
            host::session_get(connection, key)
        }

        fn session_remove(&mut self, connection: u64, key: &str) {
            host::session_remove(connection, key)
        }

        fn connection_info(&mut self, connection: u64) -> Option<ConnectionInfo> {
            host::connection_info(connection).map(|d| ConnectionInfo {
                path: d.path,
                query: d.query,
                headers: d.headers,
                remote_address: d.remote_address,
                subprotocol: d.subprotocol,
                connected_at_ms: d.connected_at_ms,
            })
        }

        fn set_timer(
            &mut self,
            delay_ms: u64,
            repeat: bool,
            owner: Option<u64>,
        ) -> Result<u64, Refusal> {
            timers::set_timer(delay_ms, repeat, owner).map_err(refusal)
        }

        fn cancel_timer(&mut self, timer: u64) -> bool {
            timers::cancel_timer(timer)
        }

        fn send_request(&mut self, request: &crate::http::Request) -> Result<u64, RequestRefusal> {
            let headers: Vec<(&str, &str)> = request
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let raw = http::HttpRequest {
                upstream: &request.upstream,
                method: &request.method,
                path: &request.path,
                headers: &headers,
                body: &request.body,
                timeout_ms: request
                    .timeout
                    .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
                owner: request.owner.map(crate::Connection::id),
            };
            http::send_request(raw).map_err(|refusal| match refusal {
                http::RequestRefusal::NotGranted => RequestRefusal::NotGranted,
                http::RequestRefusal::TooManyInFlight => RequestRefusal::TooManyInFlight,
                http::RequestRefusal::TooLarge => RequestRefusal::TooLarge,
                http::RequestRefusal::InvalidRequest => RequestRefusal::InvalidRequest,
                http::RequestRefusal::UnknownConnection => RequestRefusal::UnknownConnection,
                http::RequestRefusal::NotNow => RequestRefusal::NotNow,
            })
        }

        fn cancel_request(&mut self, request: u64) -> bool {
            http::cancel_request(request)
        }

        fn history_append(
            &mut self,
            group: &str,
            message: Payload<'_>,
            owner: Option<u64>,
        ) -> Result<u64, StorageRefusal> {
            history::append(group, raw(message), owner).map_err(storage_refusal)
        }

        fn history_read(
            &mut self,
            group: &str,
            since: Option<&Position>,
            limit: u32,
            owner: Option<u64>,
        ) -> Result<u64, StorageRefusal> {
            let since = since.map(|p| history::PositionParam {
                offset: p.offset,
                epoch: &p.epoch,
            });
            history::read(group, since, limit, owner).map_err(storage_refusal)
        }

        fn storage_get(&mut self, key: &str, owner: Option<u64>) -> Result<u64, StorageRefusal> {
            storage::get(key, owner).map_err(storage_refusal)
        }

        fn storage_set(
            &mut self,
            key: &str,
            value: &[u8],
            ttl_ms: Option<u64>,
            if_revision: Option<u64>,
            owner: Option<u64>,
        ) -> Result<u64, StorageRefusal> {
            storage::set(key, value, ttl_ms, if_revision, owner).map_err(storage_refusal)
        }

        fn storage_remove(
            &mut self,
            key: &str,
            if_revision: Option<u64>,
            owner: Option<u64>,
        ) -> Result<u64, StorageRefusal> {
            storage::remove(key, if_revision, owner).map_err(storage_refusal)
        }
    }
}

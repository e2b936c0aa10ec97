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
    use crate::reply;

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
            if reply::hold(connection, message) {
                return Ok(());
            }
            host::send(connection, raw(message)).map_err(|e| match e {
                RawError::Closed => SendError::Closed,
                RawError::QueueFull => SendError::QueueFull,
            })
        }

        fn close(&mut self, connection: u64, code: u16, reason: &str) {
            reply::release();
            host::close(connection, code, reason)
        }

        fn accept(&mut self, connection: u64) -> Result<(), Refusal> {
            reply::release();
            host::accept(connection).map_err(refusal)
        }

        fn reject(&mut self, connection: u64, status: u16, body: &str) -> Result<(), Refusal> {
            reply::release();
            host::reject(connection, status, body).map_err(refusal)
        }

        fn log(&mut self, level: Level, message: &str) -> Result<(), Refusal> {
            reply::release();
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
            reply::release();
            host::setting(key)
        }

        fn settings(&mut self) -> Vec<(String, String)> {
            reply::release();
            host::settings()
        }

        fn join_group(&mut self, connection: u64, group: &str) -> Result<(), Refusal> {
            reply::release();
            host::join_group(connection, group).map_err(refusal)
        }

        fn leave_group(&mut self, connection: u64, group: &str) {
            reply::release();
            host::leave_group(connection, group)
        }

        fn publish(&mut self, group: &str, message: Payload<'_>, exclude: &[u64]) -> u32 {
            reply::release();
            host::publish(group, raw(message), exclude)
        }

        fn group_size(&mut self, group: &str) -> u32 {
            reply::release();
            host::group_size(group)
        }

        fn groups_of(&mut self, connection: u64) -> Vec<String> {
            reply::release();
            host::groups_of(connection)
        }

        fn bind_user(&mut self, connection: u64, uid: &str) -> Result<(), Refusal> {
            reply::release();
            host::bind_user(connection, uid).map_err(refusal)
        }

        fn unbind_user(&mut self, connection: u64) {
            reply::release();
            host::unbind_user(connection)
        }

        fn send_to_user(&mut self, uid: &str, message: Payload<'_>) -> u32 {
            reply::release();
            host::send_to_user(uid, raw(message))
        }

        fn is_user_online(&mut self, uid: &str) -> bool {
            reply::release();
            host::is_user_online(uid)
        }

        fn connections_of_user(&mut self, uid: &str) -> Vec<u64> {
            reply::release();
            host::connections_of_user(uid)
        }

        fn broadcast(&mut self, message: Payload<'_>, exclude: &[u64]) -> u32 {
            reply::release();
            host::broadcast(raw(message), exclude)
        }

        fn session_set(&mut self, connection: u64, key: &str, value: &str) -> Result<(), Refusal> {
            reply::release();
            host::session_set(connection, key, value).map_err(refusal)
        }

        fn session_get(&mut self, connection: u64, key: &str) -> Option<String> {
            reply::release();
            host::session_get(connection, key)
        }

        fn session_remove(&mut self, connection: u64, key: &str) {
            reply::release();
            host::session_remove(connection, key)
        }

        fn connection_info(&mut self, connection: u64) -> Option<ConnectionInfo> {
            reply::release();
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
            reply::release();
            timers::set_timer(delay_ms, repeat, owner).map_err(refusal)
        }

        fn cancel_timer(&mut self, timer: u64) -> bool {
            reply::release();
            timers::cancel_timer(timer)
        }

        fn send_request(&mut self, request: &crate::http::Request) -> Result<u64, RequestRefusal> {
            reply::release();
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
            reply::release();
            http::cancel_request(request)
        }

        fn history_append(
            &mut self,
            group: &str,
            message: Payload<'_>,
            owner: Option<u64>,
        ) -> Result<u64, StorageRefusal> {
            reply::release();
            history::append(group, raw(message), owner).map_err(storage_refusal)
        }

        fn history_read(
            &mut self,
            group: &str,
            since: Option<&Position>,
            limit: u32,
            owner: Option<u64>,
        ) -> Result<u64, StorageRefusal> {
            reply::release();
            let since = since.map(|p| history::PositionParam {
                offset: p.offset,
                epoch: &p.epoch,
            });
            history::read(group, since, limit, owner).map_err(storage_refusal)
        }

        fn storage_get(&mut self, key: &str, owner: Option<u64>) -> Result<u64, StorageRefusal> {
            reply::release();
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
            reply::release();
            storage::set(key, value, ttl_ms, if_revision, owner).map_err(storage_refusal)
        }

        fn storage_remove(
            &mut self,
            key: &str,
            if_revision: Option<u64>,
            owner: Option<u64>,
        ) -> Result<u64, StorageRefusal> {
            reply::release();
            storage::remove(key, if_revision, owner).map_err(storage_refusal)
        }
    }
}

//! One plugin instance as the SDK runs it: the plugin value and its connections' state, and the rules that tie the
//! state to the events — the same code under the gateway (`export_plugin!`'s glue) and under
//! [`crate::testing::MockHost`], so what a unit test shows is what the gateway does.

use crate::history::{HistoryPage, Position};
use crate::http::{HttpError, Response, Sent};
use crate::settings::Settings;
use crate::storage::StoredValue;
use crate::{
    CloseFrame, Connection, Connections, Message, Plugin, Request, StorageError, StorageRequest,
    Timer, Verdict,
};

/// What a component exports beyond the required connection events. Implemented by [`crate::export_plugin!`] for the
/// type it exports, never by hand: the gateway and the mock host both drive only exported plugins.
pub trait Exported: Plugin + Default {
    /// Whether the plugin exports `timer-events` (it was exported with `export_plugin!(…, timers)`).
    const TIMER_EVENTS: bool;

    /// Delivers a timer event through [`crate::TimerEvents::on_timer`], when the plugin exports timer events.
    #[doc(hidden)]
    fn deliver_timer(&mut self, timer: Timer, connections: &mut Connections<Self::State>);

    /// Whether the plugin exports `http-events` (it was exported with `export_plugin!(…, http)`).
    const HTTP_EVENTS: bool;

    /// Delivers a response through [`crate::HttpEvents::on_http_response`], when the plugin exports HTTP events.
    #[doc(hidden)]
    fn deliver_response(
        &mut self,
        request: Sent,
        response: Result<Response, HttpError>,
        connections: &mut Connections<Self::State>,
    );

    // The 1.2 exports have defaults (a plugin without them), so that adding them changed nothing for the code
    // `export_plugin!` generated before; the macro overrides them for a plugin that exports them.

    /// Whether the plugin exports `history-events` (it was exported with `export_plugin!(…, history)`).
    const HISTORY_EVENTS: bool = false;

    /// Delivers an append's answer through [`crate::HistoryEvents::on_appended`], when the plugin exports history
    /// events.
    #[doc(hidden)]
    fn deliver_appended(
        &mut self,
        request: StorageRequest,
        result: Result<Position, StorageError>,
        connections: &mut Connections<Self::State>,
    ) {
        let _ = (request, result, connections);
    }

    /// Delivers a read's answer through [`crate::HistoryEvents::on_history`], when the plugin exports history
    /// events.
    #[doc(hidden)]
    fn deliver_history(
        &mut self,
        request: StorageRequest,
        result: Result<HistoryPage, StorageError>,
        connections: &mut Connections<Self::State>,
    ) {
        let _ = (request, result, connections);
    }

    /// Whether the plugin exports `storage-events` (it was exported with `export_plugin!(…, storage)`).
    const STORAGE_EVENTS: bool = false;

    /// Delivers a get's answer through [`crate::StorageEvents::on_read`], when the plugin exports storage events.
    #[doc(hidden)]
    fn deliver_read(
        &mut self,
        request: StorageRequest,
        result: Result<Option<StoredValue>, StorageError>,
        connections: &mut Connections<Self::State>,
    ) {
        let _ = (request, result, connections);
    }

    /// Delivers a write's answer through [`crate::StorageEvents::on_written`], when the plugin exports storage
    /// events.
    #[doc(hidden)]
    fn deliver_written(
        &mut self,
        request: StorageRequest,
        result: Result<u64, StorageError>,
        connections: &mut Connections<Self::State>,
    ) {
        let _ = (request, result, connections);
    }
}

/// How `on_connect` answered, without the state (which the runtime keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Reject { status: u16, body: String },
    Defer,
}

/// The plugin value and the state of each of its connections.
pub struct Runtime<P: Plugin> {
    pub plugin: P,
    pub connections: Connections<P::State>,
}

impl<P: Exported> Runtime<P> {
    pub fn new(plugin: P) -> Self {
        Runtime {
            plugin,
            connections: Connections::default(),
        }
    }

    pub fn init(&mut self, settings: &Settings) -> Result<(), String> {
        self.plugin.init(settings)
    }

    /// Runs `on_connect`; keeps the state it returns unless it rejected.
    pub fn connect(&mut self, connection: u64, request: &Request) -> Answer {
        match self.plugin.on_connect(Connection::new(connection), request) {
            Verdict::Accept(state) => {
                self.connections.insert(connection, state);
                Answer::Accept
            }
            Verdict::Defer(state) => {
                self.connections.insert(connection, state);
                Answer::Defer
            }
            Verdict::Reject(r) => Answer::Reject {
                status: r.status,
                body: r.body,
            },
        }
    }

    /// Runs `on_message` with the connection's state; a connection without state (the host never sends one) is
    /// ignored.
    pub fn message(&mut self, connection: u64, message: Message) {
        if let Some(state) = self.connections.get_mut_by_id(connection) {
            self.plugin
                .on_message(Connection::new(connection), state, message);
        }
    }

    /// Runs `on_close` with the connection's state, which is dropped when it returns.
    pub fn close(&mut self, connection: u64, close: CloseFrame) {
        if let Some(state) = self.connections.remove(connection) {
            self.plugin
                .on_close(Connection::new(connection), state, close);
        }
    }

    pub fn timer(&mut self, timer: Timer) {
        self.plugin.deliver_timer(timer, &mut self.connections);
    }

    pub fn response(&mut self, request: Sent, response: Result<Response, HttpError>) {
        self.plugin
            .deliver_response(request, response, &mut self.connections);
    }

    pub fn appended(&mut self, request: StorageRequest, result: Result<Position, StorageError>) {
        self.plugin
            .deliver_appended(request, result, &mut self.connections);
    }

    pub fn history(&mut self, request: StorageRequest, result: Result<HistoryPage, StorageError>) {
        self.plugin
            .deliver_history(request, result, &mut self.connections);
    }

    pub fn read(
        &mut self,
        request: StorageRequest,
        result: Result<Option<StoredValue>, StorageError>,
    ) {
        self.plugin
            .deliver_read(request, result, &mut self.connections);
    }

    pub fn written(&mut self, request: StorageRequest, result: Result<u64, StorageError>) {
        self.plugin
            .deliver_written(request, result, &mut self.connections);
    }
}

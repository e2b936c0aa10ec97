//! The fast path for the commonest plugin, one that answers the sender (`reply-events`, contract 1.3).
//!
//! The gateway calls `reply-events.on-message` instead of `connection-events.on-message` and queues what it returns
//! for the sender as if the event's last call were a `send`: the answer travels back as the event's result, without
//! the cost of a host call. A plugin never sees this. When the event's *first* host call is a send to its sender of
//! at most [`HOLD_MAX`] bytes, and the queue's `room` (which the gateway passes in) shows that the send would be
//! queued, the message is held here instead and becomes the event's return value; any other host call first sends
//! what is held, through the host, so the order of everything the plugin does is kept. Because the held send is the
//! first call and nothing else has touched the queue since the event began, `room` makes its success certain: the
//! plugin's `Ok(())` is the truth, not a guess. A panic sends what is held before the instance traps (the SDK's panic
//! hook), as a plain send would have queued it; a trap that is not a panic (the CPU deadline, fuel, memory) loses it,
//! which the WIT states. Under a gateway before 1.3 nothing is ever held.
//!
//! Plugins reach the host only through [`crate::host::HostCalls`], which releases first; the raw bindings under
//! `__export` are not part of the API, and calling them would bypass this.

use crate::__export::RawMessage;
use crate::__export::bindings::wssgate::plugin::host;
use crate::__export::bindings::wssgate::plugin::types::MessageParam;
use crate::message::Payload;
use std::cell::RefCell;

/// The largest message held: holding copies it inside the plugin (the host copies it out either way), so a large
/// answer near the memory cap goes out as a plain send rather than exist twice.
const HOLD_MAX: u64 = 64 * 1024;

enum State {
    /// No `reply-events.on-message` is running, or its first call was not one that could be held.
    Off,
    /// An on-message from `sender` runs and has made no host call yet; the sender's queue takes a message of at
    /// most `room` bytes (`None`: none at all).
    Open { sender: u64, room: Option<u64> },
    /// The event's first call was a send to its sender, held to be returned.
    Held { sender: u64, message: RawMessage },
}

thread_local! {
    /// A wasm guest is single-threaded, and the gateway runs one event of an instance at a time.
    static STATE: RefCell<State> = const { RefCell::new(State::Off) };
}

/// An on-message from `sender` starts, its queue taking `room`.
pub(crate) fn open(sender: u64, room: Option<u64>) {
    STATE.set(State::Open { sender, room });
}

/// The event ends: what is held becomes its return value.
pub(crate) fn finish() -> Option<RawMessage> {
    match STATE.replace(State::Off) {
        State::Held { message, .. } => Some(message),
        _ => None,
    }
}

/// A send of `message` to `connection`: true when it is held (the event's first call, to the sender, small, with
/// room for it); false when the caller must make it through the host, after what was held (sent here first).
pub(crate) fn hold(connection: u64, message: Payload<'_>) -> bool {
    match STATE.replace(State::Off) {
        State::Open {
            sender,
            room: Some(room),
        } if sender == connection && size(message) <= room.min(HOLD_MAX) => {
            STATE.set(State::Held {
                sender,
                message: owned(message),
            });
            true
        }
        State::Held { sender, message } => {
            send(sender, message);
            false
        }
        _ => false,
    }
}

/// Another host call is about to be made: what is held goes first, and nothing later in the event is held.
pub(crate) fn release() {
    if let State::Held { sender, message } = STATE.replace(State::Off) {
        send(sender, message);
    }
}

/// Sends a held message through the host. It cannot fail: it was the event's first call, `room` took it, and
/// nothing has been queued since (a debug build checks).
fn send(sender: u64, held: RawMessage) {
    let message = match &held {
        RawMessage::Text(text) => MessageParam::Text(text),
        RawMessage::Binary(bytes) => MessageParam::Binary(bytes),
    };
    let sent = host::send(sender, message);
    debug_assert!(sent.is_ok(), "a held send failed: {sent:?}");
}

/// Makes a panic send what is held before the instance traps, as a plain send would already have queued it; then
/// the hook that was there runs (the panic's message to stderr, which the gateway logs).
pub(crate) fn release_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        release();
        previous(info);
    }));
}

fn size(message: Payload<'_>) -> u64 {
    match message {
        Payload::Text(text) => text.len() as u64,
        Payload::Binary(bytes) => bytes.len() as u64,
    }
}

/// The message as the gateway takes it back: a copy into the plugin's own memory (a plain send copies nothing
/// there), which the gateway reads and the canonical ABI then frees.
fn owned(message: Payload<'_>) -> RawMessage {
    match message {
        Payload::Text(text) => RawMessage::Text(text.to_owned()),
        Payload::Binary(bytes) => RawMessage::Binary(bytes.to_owned()),
    }
}

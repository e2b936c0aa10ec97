//! The fast path for the commonest plugin, one that answers the sender (`reply-events`, contract 1.3).
//!
//! The gateway calls `reply-events.on-message` instead of `connection-events.on-message` and queues what it returns
//! for the sender as if the event's last call were a `send`: one crossing between the gateway and the plugin instead
//! of two. A plugin never sees this. When the event's *first* host call is a send to its sender, and the queue's
//! `room` (which the gateway passes in) shows that the send would be queued, the message is held here instead and
//! becomes the event's return value; any other host call first sends what is held, through the host, so the order
//! of everything the plugin does is kept. Because the held send is the first call and nothing else has touched the
//! queue since the event began, `room` makes its success certain: the plugin's `Ok(())` is the truth, not a guess.
//! Under a gateway before 1.3 nothing is ever held.

use crate::__export::RawMessage;
use crate::__export::bindings::wssgate::plugin::host;
use crate::__export::bindings::wssgate::plugin::types::MessageParam;
use crate::message::Payload;
use std::cell::RefCell;

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
pub(crate) fn close() -> Option<RawMessage> {
    match STATE.replace(State::Off) {
        State::Held { message, .. } => Some(message),
        _ => None,
    }
}

/// A send of `message` to `connection`: true when it is held (the event's first call, to the sender, with room for
/// it); false when the caller must make it through the host, after what was held (sent here first).
pub(crate) fn hold(connection: u64, message: Payload<'_>) -> bool {
    match STATE.replace(State::Off) {
        State::Open {
            sender,
            room: Some(room),
        } if sender == connection && size(message) <= room => {
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
/// nothing has been queued since.
fn send(sender: u64, held: RawMessage) {
    let message = match &held {
        RawMessage::Text(text) => MessageParam::Text(text),
        RawMessage::Binary(bytes) => MessageParam::Binary(bytes),
    };
    let _ = host::send(sender, message);
}

fn size(message: Payload<'_>) -> u64 {
    match message {
        Payload::Text(text) => text.len() as u64,
        Payload::Binary(bytes) => bytes.len() as u64,
    }
}

/// The message as the gateway takes it back: the one copy the fast path makes (into the plugin's own memory, which
/// the gateway reads and the canonical ABI then frees).
fn owned(message: Payload<'_>) -> RawMessage {
    match message {
        Payload::Text(text) => RawMessage::Text(text.to_owned()),
        Payload::Binary(bytes) => RawMessage::Binary(bytes.to_owned()),
    }
}

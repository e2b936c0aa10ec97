//! How [`crate::Plugin::on_connect`] answers an upgrade request: the WebSocket is not open yet, and the client waits
//! for this answer.

/// The answer to an upgrade. `Accept` and `Defer` carry the connection's state (see [`crate::Plugin::State`]),
/// which the SDK keeps from then on and hands to every later event of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<S> {
    /// Open the WebSocket (the client gets 101).
    Accept(S),
    /// Refuse with an HTTP error: the client sees the status and the body, and no WebSocket. `on_close` does not
    /// follow, and no state is kept.
    Reject(Rejection),
    /// Answer later with [`crate::Connection::accept`] or [`crate::Connection::reject`], from a timer or another
    /// event. The client waits meanwhile, and gets 504 when the route's `accept_timeout_ms` (10 s by default) passes
    /// first. No message arrives before the accept; `on_close` follows whatever the outcome (code 1006 with the
    /// reason "rejected", "accept timed out", "client left", "plugin error" or "server shutting down" when the
    /// WebSocket never opened).
    Defer(S),
}

impl<S> Verdict<S> {
    /// A rejection with `status` (400 to 599; the gateway answers anything else with 500) and a short text body.
    pub fn reject(status: u16, body: impl Into<String>) -> Self {
        Verdict::Reject(Rejection {
            status,
            body: body.into(),
        })
    }
}

/// An HTTP answer refusing an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 400 to 599: 401 or 403 for a failed login, 429 for too many attempts, 503 when a backend is down.
    pub status: u16,
    /// A short text body; the gateway sends at most 1 KiB of it.
    pub body: String,
}

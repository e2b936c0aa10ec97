//! The plugin's answer to an upgrade request, asked before the gateway writes its 101: `on-connect` accepts,
//! rejects with an HTTP status, or defers, and then the handshake waits — bounded by the route's
//! `accept_timeout_ms` — for `accept` or `reject` from a later event (a timer, a backend's response).
//!
//! A connection is registered (it has an id, an outbound queue, a place in the hub) from the moment its plugin is
//! asked, so a deferred connection can own timers, join groups and be sent messages that reach the client once it
//! is accepted. [`Registration`] is the drop guard that takes all of that down however the connection ends.

use crate::context::WorkerContext;
use crate::upgrade::{self, Answer};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::sleep;
use wssgate_hub::ConnectionDetails;
use wssgate_hub::outbound::{Outbox, SHUTTING_DOWN, UpgradeAnswer};
use wssgate_hub::registry::ConnectionId;
use wssgate_runtime::plugin::{PluginInstance, Trapped, Verdict};

/// The most a client may send while its upgrade waits for the plugin's answer (a conforming client sends nothing
/// before the 101); the bytes are kept for the WebSocket once it opens.
const MAX_EARLY_BYTES: usize = 64 * 1024;

/// A connection known to the worker (registry, hub) and to nobody else; dropping it forgets the connection
/// everywhere and ends the timers and requests it owns.
pub struct Registration {
    pub id: ConnectionId,
    pub outbox: Rc<Outbox>,
    worker: Rc<WorkerContext>,
}

impl Registration {
    /// Registers a connection of `route` served by plugin instance `instance` (its `uid`).
    pub(crate) fn open(
        worker: &Rc<WorkerContext>,
        (route, instance): (&str, u64),
        max_outbound_bytes: usize,
        details: Arc<ConnectionDetails>,
    ) -> Self {
        let outbox = Rc::new(Outbox::new(max_outbound_bytes));
        let id = worker
            .local
            .connections
            .open(outbox.clone(), route.into(), instance);
        worker.hub.register(id, details);
        // Shutdown reaches connections through the registry; one that registers while it is under way closes now.
        if *worker.shutdown.borrow() {
            outbox.request_close(wssgate_hub::outbound::close_frame(1001, SHUTTING_DOWN));
        }
        Registration {
            id,
            outbox,
            worker: worker.clone(),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let local = &self.worker.local;
        local.connections.remove(self.id);
        local.timers.cancel_owned_by(self.id);
        local.requests.cancel_owned_by(self.id);
        local.storage.cancel_owned_by(self.id);
        self.worker.hub.close(self.id);
    }
}

/// What to do with the upgrade after asking the plugin.
pub(crate) enum Decision {
    /// Write the 101 and open the WebSocket.
    Open,
    /// Answer with this instead, or with nothing when the client has left.
    Refuse(Option<Answer<'static>>),
}

/// Where the connection's plugin and metrics are.
pub(crate) struct Asked<'a> {
    pub instance: &'a Rc<RefCell<PluginInstance>>,
    pub worker: &'a Rc<WorkerContext>,
    /// The route's slot in the metrics.
    pub slot: usize,
    pub accept_timeout: Duration,
}

/// Asks the plugin's `on-connect` how to answer, and waits for its answer if it defers. `early` collects what the
/// client sends meanwhile.
pub(crate) async fn ask<S: AsyncRead + Unpin>(
    stream: &mut S,
    early: &mut Vec<u8>,
    registration: &Registration,
    details: &Arc<ConnectionDetails>,
    asked: Asked<'_>,
) -> Decision {
    let verdict = asked
        .instance
        .borrow_mut()
        .on_connect(registration.id, details);
    match verdict {
        // A close asked for while on-connect ran (the plugin's own `close`, shutdown) refuses the upgrade like one
        // asked for while it was deferred.
        Ok(Verdict::Accept) => match registration.outbox.take_close() {
            None => Decision::Open,
            Some(frame) => {
                let (decision, why) = refused_by_close(frame.code.into());
                never_opened(&asked, registration, why);
                decision
            }
        },
        // A rejected connection never opened for the plugin, so it gets no on-close.
        Ok(Verdict::Reject(r)) => Decision::Refuse(Some(upgrade::rejection(r.status, &r.body))),
        Err(Trapped) => Decision::Refuse(Some(upgrade::rejection(500, "plugin error\n"))),
        Ok(Verdict::Defer) => {
            let (worker, slot) = (asked.worker.index, asked.slot);
            asked.worker.metrics.deferred(worker, slot);
            registration.outbox.defer();
            let waited = wait(stream, early, &registration.outbox, asked.accept_timeout).await;
            let timed_out = matches!(waited, Waited::TimedOut);
            asked.worker.metrics.deferred_ended(worker, slot, timed_out);
            let (decision, why) = match waited {
                Waited::Answer(UpgradeAnswer::Accept) => {
                    asked.instance.borrow_mut().opened(registration.id);
                    return Decision::Open;
                }
                Waited::Answer(UpgradeAnswer::Reject { status, body }) => (
                    Decision::Refuse(Some(upgrade::rejection(status, &body))),
                    "rejected",
                ),
                Waited::Closed(code) => refused_by_close(code),
                Waited::TimedOut => (
                    Decision::Refuse(Some(upgrade::rejection(
                        504,
                        "the server did not answer the upgrade in time\n",
                    ))),
                    "accept timed out",
                ),
                Waited::TooEager => (
                    Decision::Refuse(Some(upgrade::rejection(
                        400,
                        "too much data sent before the upgrade's answer\n",
                    ))),
                    "client left",
                ),
                Waited::ClientLeft => (Decision::Refuse(None), "client left"),
            };
            never_opened(&asked, registration, why);
            decision
        }
    }
}

/// Ends a connection the plugin accepted or deferred but whose WebSocket never opened: the plugin kept state for
/// it, which ends as for any close (code 1006 and `why`). A trap in on-close is logged by the instance; the
/// connection is gone either way.
fn never_opened(asked: &Asked<'_>, registration: &Registration, why: &str) {
    registration.outbox.shut();
    let _ = asked
        .instance
        .borrow_mut()
        .on_close(registration.id, 1006, why);
}

/// The HTTP answer for a close asked for before the upgrade was answered, with the reason its on-close gets: the
/// gateway's shutdown (1001) is a 503, a trap (1011) a 500, and the plugin's own `close` a 403.
fn refused_by_close(code: u16) -> (Decision, &'static str) {
    match code {
        1001 => (
            Decision::Refuse(Some(upgrade::unavailable("server shutting down\n"))),
            SHUTTING_DOWN,
        ),
        1011 => (
            Decision::Refuse(Some(upgrade::rejection(500, "plugin error\n"))),
            "plugin error",
        ),
        _ => (
            Decision::Refuse(Some(upgrade::rejection(403, "rejected\n"))),
            "rejected",
        ),
    }
}

/// How waiting for a deferred upgrade's answer ended.
enum Waited {
    Answer(UpgradeAnswer),
    /// A close was asked for instead (the plugin's `close`, a trap, shutdown), with this code.
    Closed(u16),
    TimedOut,
    ClientLeft,
    /// The client sent more than [`MAX_EARLY_BYTES`] before its answer.
    TooEager,
}

async fn wait<S: AsyncRead + Unpin>(
    stream: &mut S,
    early: &mut Vec<u8>,
    outbox: &Outbox,
    timeout: Duration,
) -> Waited {
    let deadline = sleep(timeout);
    tokio::pin!(deadline);
    // Bounded: every turn either ends the wait or consumes a wake-up or some of the client's bytes, which are
    // capped.
    loop {
        if let Some(answer) = outbox.take_answer() {
            return Waited::Answer(answer);
        }
        if let Some(frame) = outbox.take_close() {
            return Waited::Closed(frame.code.into());
        }
        if early.len() >= MAX_EARLY_BYTES {
            return Waited::TooEager;
        }
        early.reserve(1024);
        // Read no further than the cap: `read_buf` fills whatever capacity the vector has, which grows by doubling.
        let mut limited = (&mut *stream).take((MAX_EARLY_BYTES - early.len()) as u64);
        tokio::select! {
            biased;
            _ = outbox.woken() => {}
            _ = &mut deadline => return Waited::TimedOut,
            read = limited.read_buf(early) => match read {
                Ok(0) | Err(_) => return Waited::ClientLeft,
                Ok(_) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_client_that_sends_too_much_before_its_answer_is_held_to_the_cap() {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        // A deferred upgrade's plugin has not answered yet; the client pours 256 KiB in meanwhile, starting with a
        // read that ends just short of the cap, when the buffer has to grow for the next one.
        let outbox = Outbox::new(1 << 20);
        outbox.defer();
        let mut early = Vec::new();
        let client_side = async {
            client.write_all(&[7u8; 65_000]).await.unwrap();
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            client.write_all(&vec![7u8; 200 * 1024]).await.unwrap();
        };
        let server_side = wait(&mut server, &mut early, &outbox, Duration::from_secs(10));
        let ((), waited) = tokio::join!(client_side, server_side);
        assert!(matches!(waited, Waited::TooEager));
        assert_eq!(early.len(), MAX_EARLY_BYTES);
    }
}

//! The outbound requests running on this worker: each a task that runs the request and sends its answer back to
//! the instance that made it as a [`DueEvent::Response`].
//!
//! A request is owned work (see [`crate::owned`]): cancelled, without an event, by the plugin, when the connection
//! that owns it closes, and when its instance incarnation is replaced after a trap; cancelling aborts the task,
//! which drops the HTTP exchange and gives back its in-flight place. A request no connection owns is instead
//! *detached* when a reload retires its instance or the instance ends: no event follows, but the exchange runs to
//! its end (bounded by its timeout and still counted in flight), so a notice such as the webhook's `/disconnect`
//! still reaches the backend. A retired instance's requests without an owner are sent detached from the start.
//! Otherwise exactly one response event follows: the worker takes each answer through [`delivered`], which hands it
//! on only while the request is still live.

use super::client::{InFlight, OutboundRequest, UpstreamClient};
use crate::owned::{DueEvent, Incarnation, InstanceAddress, Owned, OwnedTasks};
use std::cell::RefCell;
use std::sync::Arc;
use wssgate_hub::registry::ConnectionId;

/// Names one request: the worker's index in the top 16 bits, a per-worker counter below.
pub(crate) type RequestId = u64;

/// One worker's running requests.
pub struct Requests {
    /// The worker's index: the top bits of its request ids.
    worker: usize,
    table: RefCell<Table>,
}

#[derive(Default)]
struct Table {
    /// Each running request, with its upstream's client (to count a cancellation against it).
    running: OwnedTasks<Arc<UpstreamClient>>,
    last: u64,
}

impl Requests {
    /// Worker `worker`'s requests.
    pub fn new(worker: usize) -> Self {
        Requests {
            worker,
            table: RefCell::default(),
        }
    }

    /// Starts `request` on this worker for `incarnation` of the instance at `address`, owned by `owner` (which the
    /// caller has checked); `place` is its place under the upstream's in-flight cap. A `detached` request runs
    /// without an event to follow. Must run inside the worker's task set.
    pub fn start(
        &self,
        address: &InstanceAddress,
        incarnation: Incarnation,
        owner: Option<ConnectionId>,
        client: &Arc<UpstreamClient>,
        (request, place): (OutboundRequest, InFlight),
        detached: bool,
    ) -> RequestId {
        let id = {
            let mut table = self.table.borrow_mut();
            table.last += 1;
            ((self.worker as u64) << 48) | table.last
        };
        let (address, runner) = (address.clone(), client.clone());
        let task = tokio::task::spawn_local(async move {
            let result = runner.execute(request).await;
            let answer = DueEvent::Response {
                request: id,
                result,
                place,
            };
            address.send(incarnation, owner, answer);
        });
        if detached {
            return id;
        }
        self.table.borrow_mut().running.insert(
            id,
            Owned {
                task: task.abort_handle(),
                incarnation,
                owner,
                kind: client.clone(),
            },
        );
        id
    }

    /// The worker took request `id`'s answer: true when it is to be delivered (the request is then forgotten),
    /// false when the request was cancelled meanwhile.
    pub fn delivered(&self, id: RequestId) -> bool {
        self.table.borrow_mut().running.remove(id).is_some()
    }

    /// Cancels the requests `select` picks: their tasks are aborted and no event follows.
    fn cancel_where(
        &self,
        select: impl FnOnce(&OwnedTasks<Arc<UpstreamClient>>) -> Vec<RequestId>,
    ) -> usize {
        let ended: Vec<_> = {
            let mut table = self.table.borrow_mut();
            let ids = select(&table.running);
            ids.into_iter()
                .filter_map(|id| table.running.remove(id))
                .collect()
        };
        for owned in &ended {
            owned.task.abort();
            owned.kind.cancelled();
        }
        ended.len()
    }

    /// Cancels request `id` if `incarnation` made it; false when it was answered already or is not that
    /// incarnation's.
    pub fn cancel(&self, id: RequestId, incarnation: Incarnation) -> bool {
        self.cancel_where(|t| {
            let theirs = t.get(id).is_some_and(|e| e.incarnation == incarnation);
            if theirs { vec![id] } else { Vec::new() }
        }) == 1
    }

    /// Cancels the requests a closing connection owns.
    pub fn cancel_owned_by(&self, conn: ConnectionId) {
        self.cancel_where(|t| t.owned_by(conn));
    }

    /// Cancels every request of an incarnation that is gone.
    pub(crate) fn cancel_incarnation(&self, incarnation: Incarnation) {
        self.cancel_where(|t| t.of_incarnation(incarnation, false));
    }

    /// Detaches the requests `select` picks: their exchanges run on, and no event follows.
    fn detach_where(
        &self,
        select: impl FnOnce(&OwnedTasks<Arc<UpstreamClient>>) -> Vec<RequestId>,
    ) {
        let mut table = self.table.borrow_mut();
        for id in select(&table.running) {
            table.running.remove(id);
        }
    }

    /// Detaches the requests no connection owns of an incarnation a reload retired.
    pub(crate) fn detach_unowned(&self, incarnation: Incarnation) {
        self.detach_where(|t| t.of_incarnation(incarnation, true));
    }

    /// Detaches every request of an instance that ended (its connections are gone, so none has an owner left).
    pub(crate) fn detach_incarnation(&self, incarnation: Incarnation) {
        self.detach_where(|t| t.of_incarnation(incarnation, false));
    }
}

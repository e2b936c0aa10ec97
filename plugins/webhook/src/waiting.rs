//! What waits for the backend: each connection's messages queued behind its `/message` call in flight, and the
//! bounds on them — per connection (`max_queued_messages`, `max_queued_bytes`) and over the instance
//! (`max_queued_bytes_total`).
//!
//! The instance holds every queue, rather than each connection's state, so that making room is immediate: when a
//! message that must wait would pass the instance's bound, the queues of the client addresses holding the most —
//! more than the sender's address would — are dropped at once and their connections closed, heaviest first, so one
//! client (one address, however many connections it opens) that fills the route's share loses its own connections
//! rather than whoever sends next. Dropping at once matters: a connection's close can take its handshake's 5 s, and
//! a client that ignored it while refilling from new connections would otherwise hold memory no bound counts.
//! Grouping by address is what a hostile client cannot spread out of cheaply; clients behind one NAT share a group,
//! which only decides whom to close when the route is full.

use std::collections::{BTreeMap, VecDeque};
use wssgate_sdk::Message;

/// Why a message could not wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// The connection's own bounds.
    Connection,
    /// The instance's bound, and closing heavier clients' connections would not make room.
    Route,
}

/// Messages and their bytes: what a connection has waiting, or had when its queue was dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    pub messages: usize,
    pub bytes: usize,
}

/// One connection's queue.
struct Queue {
    messages: VecDeque<Message>,
    bytes: usize,
    /// The client address it counts under.
    address: String,
}

pub struct Waiting {
    max_messages: usize,
    max_bytes: usize,
    max_bytes_total: usize,
    /// Bytes waiting over every queue.
    bytes: usize,
    /// The queues of connections with anything waiting.
    queues: BTreeMap<u64, Queue>,
    /// Bytes waiting per client address, for each address with any.
    addresses: BTreeMap<String, usize>,
    /// Connections whose queues were dropped to make room, until they close: what they dropped (for their close to
    /// report); nothing more of theirs waits.
    shed: BTreeMap<u64, Amount>,
}

impl Waiting {
    pub fn new(max_messages: usize, max_bytes: usize, max_bytes_total: usize) -> Self {
        Waiting {
            max_messages,
            max_bytes,
            max_bytes_total,
            bytes: 0,
            queues: BTreeMap::new(),
            addresses: BTreeMap::new(),
            shed: BTreeMap::new(),
        }
    }

    /// Bytes waiting over every queue.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// What `conn` has waiting.
    pub fn held(&self, conn: u64) -> Amount {
        self.queues
            .get(&conn)
            .map_or_else(Amount::default, |q| Amount {
                messages: q.messages.len(),
                bytes: q.bytes,
            })
    }

    /// Whether `conn`'s queue was dropped to make room (it is closing).
    pub fn is_shed(&self, conn: u64) -> bool {
        self.shed.contains_key(&conn)
    }

    /// Queues `message` behind `conn`'s call in flight, `conn` being a client at `address`. Answers the connections
    /// whose queues were dropped to make room (to be closed), or why the message cannot wait (then nothing changed).
    pub fn push(
        &mut self,
        conn: u64,
        address: &str,
        message: Message,
    ) -> Result<Vec<(u64, Amount)>, Full> {
        let size = message.as_bytes().len();
        let own = self.held(conn);
        if own.messages >= self.max_messages || own.bytes + size > self.max_bytes {
            return Err(Full::Connection);
        }
        let over = (self.bytes + size).saturating_sub(self.max_bytes_total);
        let shed = if over > 0 {
            self.to_shed(conn, address, size, over).ok_or(Full::Route)?
        } else {
            Vec::new()
        };
        let shed = shed
            .into_iter()
            .map(|victim| {
                let dropped = self.remove(victim);
                self.shed.insert(victim, dropped);
                (victim, dropped)
            })
            .collect();
        let queue = self.queues.entry(conn).or_insert_with(|| Queue {
            messages: VecDeque::new(),
            bytes: 0,
            address: address.to_owned(),
        });
        queue.messages.push_back(message);
        queue.bytes += size;
        *self.addresses.entry(queue.address.clone()).or_default() += size;
        self.bytes += size;
        Ok(shed)
    }

    /// The connections to drop so that `over` bytes are freed for `size` more from `conn` at `address`: those of
    /// the addresses holding more than `address` would, heaviest address and, within it, heaviest connection
    /// first; None when even all of them would not free enough.
    fn to_shed(&self, conn: u64, address: &str, size: usize, over: usize) -> Option<Vec<u64>> {
        let mine = self.addresses.get(address).copied().unwrap_or(0) + size;
        let mut heavier: Vec<(usize, usize, u64)> = self
            .queues
            .iter()
            .filter(|(id, q)| **id != conn && q.address != address)
            .filter_map(|(id, q)| {
                let of_address = self.addresses.get(&q.address).copied().unwrap_or(0);
                (of_address > mine).then_some((of_address, q.bytes, *id))
            })
            .collect();
        // Heaviest address first (ties between addresses by their connections), then its heaviest connection.
        heavier.sort_unstable_by(|a, b| b.cmp(a));
        let mut freed = 0;
        let mut chosen = Vec::new();
        for (_, bytes, id) in heavier {
            if freed >= over {
                break;
            }
            freed += bytes;
            chosen.push(id);
        }
        (freed >= over).then_some(chosen)
    }

    /// Takes `conn`'s next waiting message.
    pub fn pop(&mut self, conn: u64) -> Option<Message> {
        let queue = self.queues.get_mut(&conn)?;
        let message = queue.messages.pop_front()?;
        let size = message.as_bytes().len();
        queue.bytes -= size;
        let address = queue.address.clone();
        if queue.messages.is_empty() {
            self.queues.remove(&conn);
        }
        self.uncount(&address, size);
        Some(message)
    }

    /// Forgets `conn` (it closed, or is being shed): what it had waiting, or had dropped when it was shed.
    pub fn remove(&mut self, conn: u64) -> Amount {
        if let Some(dropped) = self.shed.remove(&conn) {
            return dropped;
        }
        let Some(queue) = self.queues.remove(&conn) else {
            return Amount::default();
        };
        self.uncount(&queue.address, queue.bytes);
        Amount {
            messages: queue.messages.len(),
            bytes: queue.bytes,
        }
    }

    fn uncount(&mut self, address: &str, size: usize) {
        self.bytes -= size;
        if let Some(held) = self.addresses.get_mut(address) {
            *held -= size;
            if *held == 0 {
                self.addresses.remove(address);
            }
        }
    }
}

/// The client address a connection counts under: its IP, without the port.
pub fn client_address(remote_address: &str) -> &str {
    remote_address
        .rsplit_once(':')
        .map_or(remote_address, |(ip, _)| ip)
}

#[cfg(test)]
mod tests;

//! Who may open a WebSocket: the caps on connections open at once, in total and per client address, shared by all
//! workers. Checked once per upgrade, never per message.

use crate::limits::Limits;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The gateway-wide connection counts.
pub struct Admission {
    /// Caps, replaced on reload.
    max_total: AtomicUsize,
    /// 0 = no per-address cap.
    max_per_ip: AtomicUsize,
    total: AtomicUsize,
    /// Open connections per client address; only kept when a per-address cap is set.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
pub struct Ticket {
    admission: Arc<Admission>,
    /// The address counted against the per-address cap, if one is set.
    ip: Option<IpAddr>,
}

/// Why a connection was turned away.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    TooManyConnections,
    TooManyFromAddress,
}

impl Admission {
    pub fn new(limits: &Limits) -> Arc<Self> {
        Arc::new(Admission {
            max_total: AtomicUsize::new(limits.max_connections),
            max_per_ip: AtomicUsize::new(limits.max_connections_per_ip),
            total: AtomicUsize::new(0),
            per_ip: Mutex::default(),
        })
    }

    /// Takes the caps of reloaded limits; connections already admitted stay.
    pub fn set_limits(&self, limits: &Limits) {
        self.max_total
            .store(limits.max_connections, Ordering::Relaxed);
        self.max_per_ip
            .store(limits.max_connections_per_ip, Ordering::Relaxed);
    }

    /// Takes a place for a connection from `ip`, or says why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.max_total.load(Ordering::Relaxed) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::TooManyConnections);
        }
        let mut ticket = Ticket {
            admission: self.clone(),
            ip: None,
        };
        let max_per_ip = self.max_per_ip.load(Ordering::Relaxed);
        if max_per_ip > 0 {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= max_per_ip {
                return Err(Refusal::TooManyFromAddress);
            }
            *count += 1;
            ticket.ip = Some(ip);
        }
        Ok(ticket)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut per_ip = self
                .admission
                .per_ip
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_address_and_frees_on_drop() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Limits::default()
        };
        let admission = Admission::new(&limits);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).err(), Some(Refusal::TooManyFromAddress));
        let _third = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).err(), Some(Refusal::TooManyConnections));
        drop(first);
        assert!(admission.admit(a).is_ok());
    }
}

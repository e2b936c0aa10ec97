//! Who may open a WebSocket: the caps on connections open at once, in total, per client address and per client
//! address on one route, on handshakes in progress per address, and the throttle on addresses whose clients keep
//! making plugins trap. Shared by all workers; checked once per connection, never per message.
//!
//! "Address" means an IPv4 address, or an IPv6 network of `ipv6_prefix_len` bits (a /64 by default): whoever holds
//! one IPv6 address usually holds its whole /64, so keying on the address would give them 2^64 allowances.

use crate::sync::lock;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wssgate_config::limits::Limits;

/// Trap records kept before expired ones are swept (the sweep then runs when the table has doubled again), so
/// clients from many addresses cannot grow the table without bound.
const TRAP_RECORDS_SWEEP_AT: usize = 4096;

/// One address's recent plugin traps.
struct TrapRecord {
    /// When the current counting window began.
    window_start: Instant,
    traps: u32,
    /// New upgrades from the address are refused until then.
    throttled_until: Option<Instant>,
}

impl TrapRecord {
    fn expired(&self, now: Instant, window: Duration) -> bool {
        self.throttled_until.is_none_or(|until| now >= until)
            && now.duration_since(self.window_start) >= window
    }
}

/// The trap throttle's caps and records.
#[derive(Default)]
struct TrapThrottle {
    records: HashMap<IpAddr, TrapRecord>,
    /// The table size at which expired records are next swept.
    sweep_at: usize,
}

/// The gateway-wide connection counts.
pub struct Admission {
    /// Caps, replaced on reload.
    max_total: AtomicUsize,
    /// 0 = no per-address cap.
    max_per_ip: AtomicUsize,
    total: AtomicUsize,
    /// Open connections per client address; only kept when a per-address cap is set.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Open connections per route and client address, for routes with a cap of their own (`[[route]]
    /// max_connections_per_ip`); an entry lives while the address has connections there.
    per_route_ip: Mutex<HashMap<(String, IpAddr), usize>>,
    /// 0 = no handshake cap.
    max_handshakes_per_ip: AtomicUsize,
    /// Handshakes (TLS and upgrade request) in progress per peer address.
    handshakes: Mutex<HashMap<IpAddr, usize>>,
    /// 0 = no trap throttle.
    max_traps_per_ip: AtomicU32,
    trap_window_ms: AtomicU64,
    trap_cooloff_ms: AtomicU64,
    traps: Mutex<TrapThrottle>,
    /// The length of the IPv6 prefix every per-address cap counts by.
    ipv6_prefix_len: AtomicU8,
}

/// A handshake in progress; dropping it frees its place.
pub struct HandshakeTicket {
    admission: Arc<Admission>,
    /// The address group counted (see [`Admission::group`]).
    ip: IpAddr,
}

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        let mut handshakes = lock(&self.admission.handshakes);
        if let Some(count) = handshakes.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                handshakes.remove(&self.ip);
            }
        }
    }
}

/// One admitted connection; dropping it frees its place.
pub struct Ticket {
    admission: Arc<Admission>,
    /// The address group counted against the per-address cap, if one is set.
    ip: Option<IpAddr>,
    /// The route and address counted against the route's own per-address cap, if it has one.
    route_ip: Option<(String, IpAddr)>,
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
            per_route_ip: Mutex::default(),
            max_handshakes_per_ip: AtomicUsize::new(limits.max_handshakes_per_ip),
            handshakes: Mutex::default(),
            max_traps_per_ip: AtomicU32::new(limits.max_traps_per_ip),
            trap_window_ms: AtomicU64::new(limits.trap_window_ms),
            trap_cooloff_ms: AtomicU64::new(limits.trap_cooloff_ms),
            traps: Mutex::default(),
            ipv6_prefix_len: AtomicU8::new(limits.ipv6_prefix_len),
        })
    }

    /// What the per-address caps count `ip` as: an IPv4 address (also one written as IPv4-mapped IPv6) as itself,
    /// an IPv6 address as its network of `ipv6_prefix_len` bits.
    pub fn group(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let bits = u32::from(self.ipv6_prefix_len.load(Ordering::Relaxed).min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }

    /// Takes the caps of reloaded limits; connections already admitted stay.
    pub fn set_limits(&self, limits: &Limits) {
        self.max_total
            .store(limits.max_connections, Ordering::Relaxed);
        self.max_per_ip
            .store(limits.max_connections_per_ip, Ordering::Relaxed);
        self.max_handshakes_per_ip
            .store(limits.max_handshakes_per_ip, Ordering::Relaxed);
        self.max_traps_per_ip
            .store(limits.max_traps_per_ip, Ordering::Relaxed);
        self.trap_window_ms
            .store(limits.trap_window_ms, Ordering::Relaxed);
        self.trap_cooloff_ms
            .store(limits.trap_cooloff_ms, Ordering::Relaxed);
        // Places taken before keep the group they counted, and give back exactly that.
        self.ipv6_prefix_len
            .store(limits.ipv6_prefix_len, Ordering::Relaxed);
    }

    /// Takes a place for a handshake from `peer`, or `None` when the address has `max_handshakes_per_ip` in
    /// progress already.
    pub fn begin_handshake(self: &Arc<Self>, peer: IpAddr) -> Option<HandshakeTicket> {
        let peer = self.group(peer);
        let max = self.max_handshakes_per_ip.load(Ordering::Relaxed);
        let mut handshakes = lock(&self.handshakes);
        let count = handshakes.entry(peer).or_insert(0);
        if max > 0 && *count >= max {
            if *count == 0 {
                handshakes.remove(&peer);
            }
            return None;
        }
        *count += 1;
        Some(HandshakeTicket {
            admission: self.clone(),
            ip: peer,
        })
    }

    /// Counts a plugin trap caused by a client at `ip`; true when this trap starts the address's throttle.
    pub fn record_trap(&self, ip: IpAddr) -> bool {
        let max = self.max_traps_per_ip.load(Ordering::Relaxed);
        if max == 0 {
            return false;
        }
        let window = Duration::from_millis(self.trap_window_ms.load(Ordering::Relaxed));
        let cooloff = Duration::from_millis(self.trap_cooloff_ms.load(Ordering::Relaxed));
        let ip = self.group(ip);
        let now = Instant::now();
        let mut throttle = lock(&self.traps);
        if throttle.records.len() >= throttle.sweep_at.max(TRAP_RECORDS_SWEEP_AT) {
            throttle.records.retain(|_, r| !r.expired(now, window));
            throttle.sweep_at = throttle.records.len() * 2;
        }
        let record = throttle.records.entry(ip).or_insert(TrapRecord {
            window_start: now,
            traps: 0,
            throttled_until: None,
        });
        if now.duration_since(record.window_start) >= window {
            record.window_start = now;
            record.traps = 0;
        }
        record.traps += 1;
        let throttled = record.throttled_until.is_some_and(|until| now < until);
        if record.traps >= max && !throttled {
            record.throttled_until = Some(now + cooloff);
            return true;
        }
        false
    }

    /// How many addresses (or IPv6 networks) are throttled for traps now.
    pub fn throttled_now(&self) -> usize {
        let now = Instant::now();
        lock(&self.traps)
            .records
            .values()
            .filter(|r| r.throttled_until.is_some_and(|until| now < until))
            .count()
    }

    /// Whether new upgrades from `ip` are refused because its clients kept making plugins trap.
    pub fn is_throttled(&self, ip: IpAddr) -> bool {
        let ip = self.group(ip);
        let now = Instant::now();
        lock(&self.traps)
            .records
            .get(&ip)
            .and_then(|r| r.throttled_until)
            .is_some_and(|until| now < until)
    }

    /// Takes a place for a connection from `ip` to the route at `path`, whose own per-address cap is `route_cap`
    /// (0: none), or says why there is none.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        (path, route_cap): (&str, usize),
    ) -> Result<Ticket, Refusal> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.max_total.load(Ordering::Relaxed) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::TooManyConnections);
        }
        // Dropped on a refusal below, giving back what was taken so far.
        let mut ticket = Ticket {
            admission: self.clone(),
            ip: None,
            route_ip: None,
        };
        // Both per-address caps count an IPv6 client by its network.
        let ip = self.group(ip);
        let max_per_ip = self.max_per_ip.load(Ordering::Relaxed);
        if max_per_ip > 0 {
            let mut per_ip = lock(&self.per_ip);
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= max_per_ip {
                return Err(Refusal::TooManyFromAddress);
            }
            *count += 1;
            ticket.ip = Some(ip);
        }
        if route_cap > 0 {
            let mut per_route_ip = lock(&self.per_route_ip);
            let key = (path.to_owned(), ip);
            let count = per_route_ip.get(&key).copied().unwrap_or(0);
            if count >= route_cap {
                return Err(Refusal::TooManyFromAddress);
            }
            per_route_ip.insert(key.clone(), count + 1);
            ticket.route_ip = Some(key);
        }
        Ok(ticket)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut per_ip = lock(&self.admission.per_ip);
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
        if let Some(key) = self.route_ip.take() {
            let mut per_route_ip = lock(&self.admission.per_route_ip);
            if let Some(count) = per_route_ip.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    per_route_ip.remove(&key);
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
        let first = admission.admit(a, ("/r", 0)).unwrap();
        let _second = admission.admit(a, ("/r", 0)).unwrap();
        assert_eq!(
            admission.admit(a, ("/r", 0)).err(),
            Some(Refusal::TooManyFromAddress)
        );
        let _third = admission.admit(b, ("/r", 0)).unwrap();
        assert_eq!(
            admission.admit(b, ("/r", 0)).err(),
            Some(Refusal::TooManyConnections)
        );
        drop(first);
        assert!(admission.admit(a, ("/r", 0)).is_ok());
    }

    #[test]
    fn a_route_caps_each_address_on_its_own_and_frees_on_drop() {
        let admission = Admission::new(&Limits::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = admission.admit(a, ("/hook", 2)).unwrap();
        let _second = admission.admit(a, ("/hook", 2)).unwrap();
        assert_eq!(
            admission.admit(a, ("/hook", 2)).err(),
            Some(Refusal::TooManyFromAddress)
        );
        assert!(admission.admit(b, ("/hook", 2)).is_ok(), "another address");
        assert!(admission.admit(a, ("/other", 2)).is_ok(), "another route");
        assert!(
            admission.admit(a, ("/open", 0)).is_ok(),
            "a route without a cap"
        );
        drop(first);
        let _third = admission.admit(a, ("/hook", 2)).unwrap();
        assert_eq!(
            admission.total.load(Ordering::Relaxed),
            2,
            "the two on /hook"
        );
    }

    #[test]
    fn handshakes_in_progress_are_capped_per_address() {
        let limits = Limits {
            max_handshakes_per_ip: 2,
            ..Limits::default()
        };
        let admission = Admission::new(&limits);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = admission.begin_handshake(a).unwrap();
        let _second = admission.begin_handshake(a).unwrap();
        assert!(admission.begin_handshake(a).is_none());
        assert!(admission.begin_handshake(b).is_some());
        drop(first);
        assert!(admission.begin_handshake(a).is_some());
    }

    #[test]
    fn every_per_address_cap_counts_an_ipv6_network_as_one_address() {
        let limits = Limits {
            max_connections_per_ip: 1,
            max_handshakes_per_ip: 1,
            max_traps_per_ip: 1,
            ..Limits::default()
        };
        let admission = Admission::new(&limits);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (a, same_64, other_64) = (
            ip("2001:db8:0:1::1"),
            ip("2001:db8:0:1:ffff:ffff:ffff:ffff"),
            ip("2001:db8:0:2::1"),
        );
        assert_eq!(admission.group(same_64), ip("2001:db8:0:1::"));
        assert_eq!(admission.group(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));

        let open = admission.admit(a, ("/r", 0)).unwrap();
        assert_eq!(
            admission.admit(same_64, ("/r", 0)).err(),
            Some(Refusal::TooManyFromAddress)
        );
        assert!(admission.admit(other_64, ("/r", 0)).is_ok());
        // A route's own per-address cap counts the network too.
        let unlimited = Admission::new(&Limits {
            max_connections_per_ip: 0,
            ..limits.clone()
        });
        let _on_route = unlimited.admit(a, ("/r", 1)).unwrap();
        assert_eq!(
            unlimited.admit(same_64, ("/r", 1)).err(),
            Some(Refusal::TooManyFromAddress)
        );
        assert!(unlimited.admit(other_64, ("/r", 1)).is_ok());

        let _shaking = admission.begin_handshake(a).unwrap();
        assert!(admission.begin_handshake(same_64).is_none());
        assert!(admission.begin_handshake(other_64).is_some());

        assert!(admission.record_trap(same_64));
        assert!(admission.is_throttled(a));
        assert!(!admission.is_throttled(other_64));

        // A /128 counts each address; the places taken under /64 are given back to the group they counted.
        admission.set_limits(&Limits {
            ipv6_prefix_len: 128,
            ..limits
        });
        assert!(admission.admit(same_64, ("/r", 0)).is_ok());
        drop(open);
        assert!(
            lock(&admission.per_ip)
                .keys()
                .all(|k| *k != ip("2001:db8:0:1::"))
        );
    }

    #[test]
    fn an_address_that_keeps_trapping_is_throttled_alone_for_the_cooloff() {
        let limits = Limits {
            max_traps_per_ip: 3,
            trap_window_ms: 60_000,
            trap_cooloff_ms: 100,
            ..Limits::default()
        };
        let admission = Admission::new(&limits);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!admission.record_trap(a));
        assert!(!admission.record_trap(b));
        assert!(!admission.record_trap(a));
        assert!(
            admission.record_trap(a),
            "the third trap starts the throttle"
        );
        assert!(admission.is_throttled(a));
        assert!(!admission.is_throttled(b));
        std::thread::sleep(Duration::from_millis(150));
        assert!(!admission.is_throttled(a), "the cool-off ended");
    }
}

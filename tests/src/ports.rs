//! Loopback ports for servers the tests and the benchmarks start: one that is free for a server started later on a
//! port it must be told, and a bounded wait until a server listens.
//!
//! Only the standard library here: the benchmark harness (`bench/`) compiles this same file into its own library
//! (`wssgate_bench::ports`), so that its binaries share it without depending on this test crate.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The lowest port of the kernel's ephemeral range, where it puts port-0 binds (`ip_local_port_range`).
fn lowest_ephemeral() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768)
}

/// A port that is free now, for a server a test starts later on a port it must know first (pebble, a broker that
/// comes back, nginx), or for an address nothing may listen on. It is drawn below the kernel's ephemeral range,
/// where the port-0 binds of every other test and server never land, so only another draw of this function could
/// take it before the server binds it. (A port from a port-0 bind lies in that range, where any other port-0 bind —
/// a gateway's listener, a client's source port — may take it before the server comes.)
pub fn free_port() -> u16 {
    use std::hash::BuildHasher;
    let (low, high) = (10_000u16, lowest_ephemeral().max(10_001));
    // Bounded: 1,000 draws.
    for attempt in 0..1000u32 {
        let draw = std::collections::hash_map::RandomState::new().hash_one(attempt);
        let port = low + (draw % u64::from(high - low)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {high}");
}

/// Connects to `address` once something listens there, trying every 50 ms (each try bounded to 200 ms) for at most
/// `limit`; `None` if nothing did by then.
pub fn connect_within(address: SocketAddr, limit: Duration) -> Option<TcpStream> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            return Some(stream);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether something listens on `address` within `limit` (see [`connect_within`]).
pub fn listens_within(address: SocketAddr, limit: Duration) -> bool {
    connect_within(address, limit).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_lie_below_the_ephemeral_range_and_can_be_bound() {
        let high = lowest_ephemeral().max(10_001);
        for _ in 0..20 {
            let port = free_port();
            assert!(
                (10_000..high).contains(&port),
                "{port} is not in 10000..{high}"
            );
            TcpListener::bind(("127.0.0.1", port)).expect("binding a free port");
        }
    }

    #[test]
    fn a_listener_is_found_and_a_closed_port_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        assert!(listens_within(address, Duration::from_secs(5)));
        drop(listener);
        let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let started = Instant::now();
        assert!(connect_within(closed, Duration::from_millis(300)).is_none());
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "gave up after {took:?}"
        );
    }
}

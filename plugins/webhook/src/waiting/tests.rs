//! The queues' bounds and whom the instance's bound closes.

use super::*;

fn text(size: usize) -> Message {
    Message::Text("x".repeat(size))
}

/// The sum of what each connection holds is the total, and the total within its bound.
#[track_caller]
fn consistent(waiting: &Waiting) {
    let sum: usize = waiting.queues.values().map(|q| q.bytes).sum();
    let by_address: usize = waiting.addresses.values().sum();
    assert_eq!((sum, by_address), (waiting.bytes, waiting.bytes));
    assert!(waiting.bytes <= waiting.max_bytes_total);
}

#[test]
fn a_connection_past_its_own_bounds_is_refused_and_nothing_changes() {
    let mut waiting = Waiting::new(2, 8, 100);
    assert_eq!(waiting.push(1, "10.0.0.1", text(5)), Ok(vec![]));
    assert_eq!(waiting.push(1, "10.0.0.1", text(4)), Err(Full::Connection));
    assert_eq!(waiting.push(1, "10.0.0.1", text(3)), Ok(vec![]));
    assert_eq!(waiting.push(1, "10.0.0.1", text(0)), Err(Full::Connection));
    assert_eq!(
        waiting.held(1),
        Amount {
            messages: 2,
            bytes: 8
        }
    );
    consistent(&waiting);
    assert_eq!(waiting.pop(1), Some(text(5)));
    assert_eq!(waiting.pop(1), Some(text(3)));
    assert_eq!(waiting.pop(1), None);
    assert_eq!(waiting.bytes(), 0);
    assert!(waiting.queues.is_empty() && waiting.addresses.is_empty());
}

#[test]
fn the_route_bound_drops_the_heaviest_address_first_and_at_once() {
    let mut waiting = Waiting::new(100, 50, 100);
    // One address spreads 80 bytes over four connections; another holds 15 on one.
    for conn in 1..=4 {
        waiting.push(conn, "10.0.0.9", text(20)).unwrap();
    }
    waiting.push(5, "10.0.0.5", text(15)).unwrap();
    // 10 more from a third address make 105: the spreading address's heaviest connection (all 20: the highest id)
    // is dropped, not the one holding 15 alone, and not the sender.
    let shed = waiting.push(6, "10.0.0.6", text(10)).unwrap();
    assert_eq!(
        shed,
        vec![(
            4,
            Amount {
                messages: 1,
                bytes: 20
            }
        )]
    );
    assert!(waiting.is_shed(4) && !waiting.is_shed(5));
    assert_eq!(
        waiting.held(4),
        Amount::default(),
        "its queue is gone at once"
    );
    assert_eq!(waiting.bytes(), 60 + 15 + 10);
    consistent(&waiting);
    // Its close reports what it dropped, once.
    assert_eq!(
        waiting.remove(4),
        Amount {
            messages: 1,
            bytes: 20
        }
    );
    assert_eq!(waiting.remove(4), Amount::default());
    assert!(!waiting.is_shed(4));
}

#[test]
fn the_sender_is_refused_when_it_would_hold_the_most_or_no_room_can_be_made() {
    let mut waiting = Waiting::new(100, 60, 100);
    waiting.push(1, "10.0.0.1", text(40)).unwrap();
    waiting.push(2, "10.0.0.2", text(40)).unwrap();
    // 10.0.0.3 holds 15 and would hold 25: both others hold more, one of them is enough.
    waiting.push(3, "10.0.0.3", text(15)).unwrap();
    assert_eq!(waiting.push(3, "10.0.0.3", text(10)).unwrap().len(), 1);
    consistent(&waiting);
    // 65 wait now: 40 and 10.0.0.3's 25. 50 more from another connection of 10.0.0.3 would make its address hold
    // 75, more than anyone: refused, nobody dropped.
    let before = (waiting.bytes(), waiting.shed.len());
    assert_eq!(waiting.push(7, "10.0.0.3", text(50)), Err(Full::Route));
    assert_eq!((waiting.bytes(), waiting.shed.len()), before);
    // 45 from a new address would make 110, but it would hold more than the 40 left: nobody may be dropped.
    assert_eq!(waiting.push(8, "10.0.0.8", text(45)), Err(Full::Route));
    assert_eq!((waiting.bytes(), waiting.shed.len()), before);
    consistent(&waiting);
}

#[test]
fn addresses_are_ips_without_ports() {
    assert_eq!(client_address("10.1.2.3:4000"), "10.1.2.3");
    assert_eq!(client_address("[::1]:4000"), "[::1]");
    assert_eq!(client_address("unknown"), "unknown");
}

//! The cluster's wire format, as any NATS client on the prefix can send it: publications and their reassembly from
//! chunks, presence announcements and snapshots, and the envelope with its replay window.

use std::collections::HashSet;
use std::sync::Arc;
use wssgate_cluster::fuzzing::{self as wire, Key, Opened, Reassembly, ReassemblyBudget, Replay};

/// The budget the reassemblies share here: room for two chunks of 1 KiB and their overheads, so it fills.
const BUDGET: usize = 3000;

/// Messages (see [`crate::messages`]) to two subscriptions' reassemblies sharing one budget: the lead byte's bit 7
/// picks the subscription, its low two bits the sender. What they hold never passes the budget, and all of it is
/// given back when they end; a publication that comes together reads back as it was written, and crosses again in
/// chunks intact.
pub fn cluster_publication(data: &[u8]) {
    let budget = Arc::new(ReassemblyBudget::with_limit(BUDGET));
    let mut subscriptions = [
        Reassembly::new(budget.clone()),
        Reassembly::new(budget.clone()),
    ];
    for (lead, body) in crate::messages(data) {
        let reassembly = &mut subscriptions[usize::from(lead >> 7)];
        let completed = reassembly.take(u32::from(lead & 3), body);
        assert!(
            budget.held() <= BUDGET,
            "reassembly holds {} bytes",
            budget.held()
        );
        if let Some(publication) = completed {
            round_trip(&publication);
            rechunk(&publication);
        }
    }
    for reassembly in &mut subscriptions {
        reassembly.expire();
    }
    drop(subscriptions);
    assert_eq!(budget.held(), 0, "the ended reassemblies still hold bytes");
    assert_eq!(
        budget.senders(),
        0,
        "the ended reassemblies still count senders"
    );
}

/// A publication that decodes encodes to bytes that decode to the same.
fn round_trip(bytes: &[u8]) {
    let Some(publication) = wire::decode(bytes) else {
        return;
    };
    let encode = |p: &wssgate_hub::peers::Publication| {
        wire::encode(&p.route, &p.audience, &p.exclude, &p.message)
    };
    let Some(again) = encode(&publication) else {
        return;
    };
    let decoded = wire::decode(&again).expect("what encode wrote decodes");
    assert_eq!(
        encode(&decoded),
        Some(again),
        "decoding lost part of a publication"
    );
}

/// `publication` cut into chunks as a sender cuts it comes together as it was.
fn rechunk(publication: &[u8]) {
    let mut reassembly = Reassembly::new(Arc::new(ReassemblyBudget::default()));
    let mut whole = None;
    for (head, data) in wire::frames(publication, 1200, 7) {
        assert!(
            whole.is_none(),
            "a publication came together before its last chunk"
        );
        whole = reassembly.take(1, &[head.as_slice(), data].concat());
    }
    assert_eq!(
        whole.as_deref(),
        Some(publication),
        "a publication's chunks did not come together"
    );
}

/// This node's tag and name; announcements are heard from the tags in [`SENDERS`].
const OWN_TAG: u32 = 7;
const OWN_NAME: &str = "self";
const SENDERS: [u32; 4] = [1, 2, 3, OWN_TAG];

/// Announcements (see [`crate::messages`]) sealed by the sender the lead byte's low two bits pick, into a view
/// capped at 8 entries, 2 KiB per node and 2 nodes: the view holds only nodes it heard from (never this one), each
/// within the caps and with its bytes counted right.
pub fn cluster_presence(data: &[u8]) {
    let view = wire::view(8, 2048, 2);
    let mut heard = HashSet::new();
    for (lead, body) in crate::messages(data) {
        let sender = SENDERS[usize::from(lead & 3)];
        let _ = view.apply(sender, body, OWN_TAG, OWN_NAME);
        heard.insert(sender);
        let held = wire::held(&view);
        assert!(
            held.len() <= 2,
            "{} nodes in a view capped at 2",
            held.len()
        );
        for node in held {
            assert!(
                heard.contains(&node.tag) && node.tag != OWN_TAG,
                "state for node {} unheard",
                node.tag
            );
            let parts =
                std::iter::once((node.entries, node.counted, node.actual)).chain(node.staging);
            for (entries, counted, actual) in parts {
                assert!(
                    entries <= 8 && counted <= 2048,
                    "a part past its caps: {node:?}"
                );
                assert_eq!(counted, actual, "a part's bytes miscounted: {node:?}");
            }
        }
    }
}

/// `data[0]` is the length of the subject, then the subject and a sealed message, opened with the cluster's key:
/// only a message sealed with it opens. Then the rest, as 12-byte records (tag, sequence number, time offset),
/// goes through a subscription's replay window: what it admits is fresh and numbered above its sender's last.
pub fn cluster_envelope(data: &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let (subject, payload) = rest.split_at(usize::from(len).min(rest.len()));
    let subject = String::from_utf8_lossy(subject);
    let key = Key::new(Some("fuzz-secret"));
    if let Some(opened) = key.open(&subject, payload) {
        assert!(
            payload.len() >= opened.body.len() + 53,
            "an envelope shorter than its header and MAC"
        );
        assert!(
            Key::new(Some("another secret"))
                .open(&subject, payload)
                .is_none(),
            "opened with a wrong key"
        );
    }
    let now = 1_800_000_000_000u64;
    let window = wire::WINDOW.as_millis() as u64;
    let floor = now - window;
    let mut replay = Replay::new(floor);
    let mut last = std::collections::HashMap::new();
    for record in payload.chunks_exact(12) {
        let tag = u32::from(record[0] % 8);
        let seq = u64::from(u32::from_be_bytes(
            record[1..5].try_into().expect("4 bytes"),
        ));
        let offset = i64::from(i32::from_be_bytes(
            record[5..9].try_into().expect("4 bytes"),
        ));
        let time = now.saturating_add_signed(offset * 16);
        let message = Opened {
            tag,
            seq,
            time,
            body: &record[9..],
        };
        if replay.admit(&message, now).is_ok() {
            assert!(
                time >= floor && time.abs_diff(now) <= window,
                "admitted a stale message at {time}"
            );
            if let Some(&previous) = last.get(&tag) {
                assert!(seq > previous, "admitted {seq} after {previous} from {tag}");
            }
            last.insert(tag, seq);
        }
    }
}

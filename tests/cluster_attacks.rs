//! What a client of the NATS server that is not a node can do to a cluster: a plain NATS client (async-nats, as
//! any program on the broker's network could use) listens to what the nodes send and publishes its own. It replays
//! a captured publication (to the same node, to a node that subscribed again since, to the node that sent it);
//! forges publications, a close and presence without the secret; publishes a correctly sealed publication on the
//! subject of another audience than its payload names; and floods made-up chunks. The nodes act on none of it,
//! count each in `wssgate_cluster_rejected_total`, and keep serving their members. Against a real `nats-server`.

use futures_util::StreamExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use wssgate_tests::admin::{admin_get, metric_until, sample};
use wssgate_tests::cluster::wire::{self, PRESENCE};
use wssgate_tests::cluster::*;
use wssgate_tests::nats::Nats;
use wssgate_tests::*;

/// A change on one node shows on the others within 100 ms plus transit; with room for a loaded machine.
const PRESENCE_WAIT: Duration = Duration::from_secs(2);

fn rejected(reason: &str) -> String {
    format!("wssgate_cluster_rejected_total{{reason=\"{reason}\"}}")
}

/// A plain NATS client on `broker`, hearing everything under the default prefix.
async fn spy(broker: &Nats) -> (async_nats::Client, async_nats::Subscriber) {
    let client = bounded(async_nats::connect(broker.url()))
        .await
        .expect("the spy connects");
    let heard = bounded(client.subscribe("wssgate.>")).await.unwrap();
    bounded(client.flush()).await.unwrap();
    (client, heard)
}

/// The next message the spy hears on `subject` from the node tagged `tag`, skipping the others (presence flows all
/// the time; bounded by [`WAIT`]).
async fn captured(heard: &mut async_nats::Subscriber, subject: &str, tag: u32) -> Vec<u8> {
    bounded(async {
        loop {
            let message = heard.next().await.expect("the spy's subscription ended");
            if message.subject.as_str() == subject && wire::read(&message.payload).tag == tag {
                return message.payload.to_vec();
            }
        }
    })
    .await
}

/// Publishes each payload on its subject and waits until the broker has them.
async fn publish(spy: &async_nats::Client, messages: Vec<(String, Vec<u8>)>) {
    for (subject, payload) in messages {
        bounded(spy.publish(subject, payload.into())).await.unwrap();
    }
    bounded(spy.flush()).await.unwrap();
}

/// The node tag of a probe connection: the top 20 bits of its id.
async fn tag_of<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
) -> (u64, u32) {
    let id = id_of(ws).await;
    (id, (id >> 44) as u32)
}

/// Whether `subject` is among node `name`'s subscriptions, until it `is` (bounded: 5 s).
async fn subscribed(broker: &Nats, name: &str, subject: &str, is: bool) {
    within!(
        Duration::from_secs(5),
        format!("{name} subscribed to {subject}: {is}"),
        {
            subscriptions_of(broker, name)
                .await
                .iter()
                .any(|s| s == subject)
                == is
        }
    );
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_replayed_publication_is_not_delivered_again_not_after_a_resubscription_nor_back_to_its_sender()
 {
    let broker = Nats::start();
    let gws = sealed_nodes(&broker, &["a", "b"], Some(SECRET)).await;
    let (a, b) = (&gws[0], &gws[1]);
    let (spy, mut heard) = spy(&broker).await;
    let room = wire::group_subject("/probe", "room");
    let mut member = a.wss("/probe").await;
    let mut member_b = b.wss("/probe").await;
    for ws in [&mut member, &mut member_b] {
        assert_eq!(reply(ws, "join room", "joined").await, "joined");
    }
    within!(PRESENCE_WAIT, "both nodes counting both members", {
        group_size(&mut member, "room").await == 2 && group_size(&mut member_b, "room").await == 2
    });
    let mut publisher_a = a.wss("/probe").await;
    let mut publisher_b = b.wss("/probe").await;
    let (_, tag_a) = tag_of(&mut publisher_a).await;
    let (_, tag_b) = tag_of(&mut publisher_b).await;

    // Node b publishes; the spy captures it on its way to node a.
    assert_eq!(
        reply(&mut publisher_b, "publish room m1", "published").await,
        "published 1"
    );
    assert_eq!(next_message(&mut member).await, Message::text("m1"));
    assert_eq!(next_message(&mut member_b).await, Message::text("m1"));
    let from_b = captured(&mut heard, &room, tag_b).await;
    // Node a publishes; captured too.
    assert_eq!(
        reply(&mut publisher_a, "publish room m2", "published").await,
        "published 1"
    );
    assert_eq!(next_message(&mut member).await, Message::text("m2"));
    assert_eq!(next_message(&mut member_b).await, Message::text("m2"));
    let from_a = captured(&mut heard, &room, tag_a).await;

    // Both replayed as they were, twice: node a takes b's again no more than b takes a's, and neither takes its
    // own back (the broker never echoes a node's own: one that comes is a replay).
    let replays = vec![
        (room.clone(), from_b.clone()),
        (room.clone(), from_b.clone()),
        (room.clone(), from_a.clone()),
        (room.clone(), from_a),
    ];
    publish(&spy, replays).await;
    assert_eq!(
        reply(&mut publisher_b, "publish room marker", "published").await,
        "published 1"
    );
    assert_eq!(next_message(&mut member).await, Message::text("marker"));
    assert_eq!(next_message(&mut member_b).await, Message::text("marker"));
    for gw in [a, b] {
        metric_until(gw, &rejected("replay"), |n| n >= 4.0).await;
    }

    // Node a's last member of the room leaves; a unsubscribes, then a new member makes it subscribe again. The
    // replay of b's first publication is older than the new subscription: not for the newcomer.
    drop(member);
    subscribed(&broker, "a", &room, false).await;
    let mut newcomer = a.wss("/probe").await;
    assert_eq!(reply(&mut newcomer, "join room", "joined").await, "joined");
    subscribed(&broker, "a", &room, true).await;
    within!(PRESENCE_WAIT, "node b counting the newcomer", {
        group_size(&mut member_b, "room").await == 2
    });
    publish(&spy, vec![(room.clone(), from_b)]).await;
    assert_eq!(
        reply(&mut publisher_b, "publish room after", "published").await,
        "published 1"
    );
    assert_eq!(next_message(&mut newcomer).await, Message::text("after"));
    metric_until(a, &rejected("stale"), |n| n >= 1.0).await;
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn publications_a_close_and_presence_forged_without_the_secret_are_ignored() {
    let broker = Nats::start();
    let gws = sealed_nodes(&broker, &["a", "b"], Some(SECRET)).await;
    let (a, b) = (&gws[0], &gws[1]);
    let (spy, _heard) = spy(&broker).await;
    let room = wire::group_subject("/probe", "room");
    let mut member = a.wss("/probe").await;
    let mut member_b = b.wss("/probe").await;
    for ws in [&mut member, &mut member_b] {
        assert_eq!(reply(ws, "join room", "joined").await, "joined");
    }
    within!(PRESENCE_WAIT, "node a counting both members", {
        group_size(&mut member, "room").await == 2
    });
    let (id_a, tag_a) = tag_of(&mut member).await;
    let (_, tag_b) = tag_of(&mut member_b).await;

    // Everything an intruder would send as node b: sealed with a wrong secret, with none (as a node without a
    // secret seals), or not sealed at all (cluster format 1).
    let seq = u64::MAX / 2;
    let forgeries = [
        (
            room.clone(),
            wire::text_to_group("/probe", "room", "forged"),
        ),
        (
            wire::node_subject(tag_a),
            wire::close("/probe", id_a, 4000, "forged"),
        ),
        // Node b leaving, renamed, and with 1,000 members in the room.
        (PRESENCE.to_owned(), wire::announcement(tag_b, "b", 0, &[1])),
        (
            PRESENCE.to_owned(),
            wire::announcement(tag_b, "mallory", 0, &[0]),
        ),
        (
            PRESENCE.to_owned(),
            wire::announcement(tag_b, "b", seq, &wire::group_change("/probe", "room", 1000)),
        ),
    ];
    let mut messages = Vec::new();
    for secret in ["not-the-cluster-secret-0123", ""] {
        for (subject, body) in &forgeries {
            messages.push((
                subject.clone(),
                wire::seal(secret, subject, tag_b, seq, body),
            ));
        }
    }
    for (subject, body) in &forgeries {
        messages.push((subject.clone(), body.clone()));
    }
    let sent = messages.len() as f64;
    publish(&spy, messages).await;

    // Node a's member was neither sent to nor closed: the next thing it gets is what node b publishes after the
    // forgeries reached the broker.
    let mut publisher = b.wss("/probe").await;
    assert_eq!(
        reply(&mut publisher, "publish room marker", "published").await,
        "published 1"
    );
    assert_eq!(next_message(&mut member).await, Message::text("marker"));
    assert_eq!(next_message(&mut member_b).await, Message::text("marker"));
    // Node a still counts node b and its member, under its name.
    for _ in 0..10 {
        assert_eq!(group_size(&mut member, "room").await, 2);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sample(&admin_get(a, "/metrics").await.1, "wssgate_cluster_nodes"),
        1.0
    );
    assert!(!a.log().contains("mallory"), "{}", a.log());
    metric_until(a, &rejected("unauthenticated"), |n| n >= sent).await;
    assert_eq!(
        sample(&admin_get(a, "/metrics").await.1, &rejected("replay")),
        0.0
    );
    // Said in the log, once a minute at most, however many came.
    let said = a.log().matches("failed authentication").count();
    assert_eq!(said, 1, "{}", a.log());
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_sealed_publication_naming_another_audience_than_its_subject_is_dropped() {
    let broker = Nats::start();
    let gws = sealed_nodes(&broker, &["a", "b"], Some(SECRET)).await;
    let (a, b) = (&gws[0], &gws[1]);
    let (spy, _heard) = spy(&broker).await;
    let mut in_room = a.wss("/probe").await;
    let mut in_other = a.wss("/probe").await;
    assert_eq!(reply(&mut in_room, "join room", "joined").await, "joined");
    assert_eq!(reply(&mut in_other, "join other", "joined").await, "joined");
    let mut member_b = b.wss("/probe").await;
    let (_, tag_b) = tag_of(&mut member_b).await;
    let room = wire::group_subject("/probe", "room");
    subscribed(&broker, "a", &room, true).await;
    subscribed(&broker, "a", &wire::group_subject("/probe", "other"), true).await;

    // Sealed with the cluster's secret (a node's, or its secret's holder's) under a tag no node has: the subject
    // is the room's (which NATS permissions could allow), the payload names the other group, or another route.
    let fake = 0xabcde ^ tag_b;
    let mismatched = [
        (
            room.clone(),
            wire::text_to_group("/probe", "other", "to the other group"),
        ),
        (
            room.clone(),
            wire::text_to_group("/chat", "room", "to another route"),
        ),
        // An announcement sealed by one node speaking for another: node b leaving.
        (PRESENCE.to_owned(), wire::announcement(tag_b, "b", 0, &[1])),
    ];
    let messages = mismatched
        .iter()
        .enumerate()
        .map(|(i, (subject, body))| {
            let sealed = wire::seal(SECRET, subject, fake, i as u64 + 1, body);
            (subject.clone(), sealed)
        })
        .collect();
    within!(PRESENCE_WAIT, "node b counting a's members", {
        group_size(&mut member_b, "room").await == 1
            && group_size(&mut member_b, "other").await == 1
    });
    publish(&spy, messages).await;

    // Neither group's member got anything: the next message each gets is the one node b publishes now.
    assert_eq!(
        reply(&mut member_b, "publish room r", "published").await,
        "published 0"
    );
    assert_eq!(
        reply(&mut member_b, "publish other o", "published").await,
        "published 0"
    );
    assert_eq!(next_message(&mut in_room).await, Message::text("r"));
    assert_eq!(next_message(&mut in_other).await, Message::text("o"));
    assert_eq!(
        sample(&admin_get(a, "/metrics").await.1, "wssgate_cluster_nodes"),
        1.0
    );
    metric_until(a, &rejected("mismatch"), |n| n >= 3.0).await;
}

#[tokio::test]
#[ignore = "needs nats-server (./test.sh installs it)"]
async fn a_flood_of_chunks_from_made_up_senders_holds_nothing_and_a_large_publication_still_crosses()
 {
    let broker = Nats::start();
    let gws = sealed_nodes(&broker, &["a", "b"], Some(SECRET)).await;
    let (a, b) = (&gws[0], &gws[1]);
    let (spy, _heard) = spy(&broker).await;
    let mut member = a.wss("/probe").await;
    assert_eq!(reply(&mut member, "join big", "joined").await, "joined");
    let big = wire::group_subject("/probe", "big");
    subscribed(&broker, "a", &big, true).await;

    // 160 first chunks of half a MiB, each from another made-up sender: 80 MiB, past the 64 MiB a node holds of
    // partial publications. Sent in rounds with a pause between (the broker cuts off a subscriber that falls
    // 64 MiB behind as a slow consumer).
    let data = vec![b'x'; 512 << 10];
    for round in 0..10u32 {
        let messages = (0..16u32)
            .map(|i| {
                let sender = 0x8_0000 + round * 16 + i;
                let body = wire::chunk(1, 0, 4, &data);
                let secret = if i % 2 == 0 {
                    "not-the-cluster-secret-0123"
                } else {
                    ""
                };
                (big.clone(), wire::seal(secret, &big, sender, 1, &body))
            })
            .collect();
        publish(&spy, messages).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // A message as large as the gateway accepts, chunked across the broker: delivered whole.
    let mut publisher = b.wss("/probe").await;
    within!(PRESENCE_WAIT, "node b counting the member", {
        group_size(&mut publisher, "big").await == 1
    });
    let command = "publish big ";
    let body = "y".repeat((1 << 20) - command.len());
    assert_eq!(
        reply(&mut publisher, &format!("{command}{body}"), "published").await,
        "published 0"
    );
    match next_message(&mut member).await {
        Message::Text(text) => assert!(text.as_str() == body, "{} bytes arrived", text.len()),
        other => panic!("expected the large message, got {other:?}"),
    }
    metric_until(a, &rejected("unauthenticated"), |n| n >= 160.0).await;
    let metrics = admin_get(a, "/metrics").await.1;
    assert_eq!(sample(&metrics, "wssgate_cluster_slow_consumer_total"), 0.0);
    assert_eq!(
        sample(&metrics, "wssgate_cluster_reassembly_lost_total"),
        0.0
    );
    assert_eq!(sample(&metrics, "wssgate_cluster_reassembly_bytes"), 0.0);
}

use super::*;
use crate::codec::Deflater;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

const LIMITS: Limits = Limits {
    max_frame_bytes: 64 * 1024,
    max_message_bytes: 256 * 1024,
};

/// A client frame: `first` is FIN, RSV1 and the opcode; masked with a fixed key.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;

fn compressed(text: &[u8]) -> Vec<u8> {
    Deflater::new(1, 15, false).deflate(text)
}

/// Sends `bytes` as the client and reads what tungstenite makes of them through the reader, until the stream
/// fails or ends; returns the messages and the refusal.
async fn read_all(bytes: Vec<u8>, inflater: InflaterSource) -> (Vec<Message>, Option<Failure>) {
    let (got, failure, _) = read_all_ending(bytes, inflater).await;
    (got, failure)
}

/// [`read_all`], also saying whether the stream ended with a failed read (rather than its end).
async fn read_all_ending(
    bytes: Vec<u8>,
    inflater: InflaterSource,
) -> (Vec<Message>, Option<Failure>, bool) {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let report: Rc<Report> = Rc::default();
    let reader = Inflating::new(server, inflater, LIMITS, report.clone());
    let config = WebSocketConfig::default()
        .max_frame_size(Some(LIMITS.max_frame_bytes))
        .max_message_size(Some(LIMITS.max_message_bytes));
    let mut ws = WebSocketStream::from_raw_socket(reader, Role::Server, Some(config)).await;
    client.write_all(&bytes).await.unwrap();
    // The client stops sending but keeps reading (tungstenite answers pings).
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    let mut errored = false;
    // Bounded: the client's bytes are finite and the stream ends after them.
    while let Some(next) = ws.next().await {
        match next {
            Ok(message) => got.push(message),
            Err(e) => {
                eprintln!("read ended: {e}");
                errored = true;
                break;
            }
        }
    }
    (got, report.failure.get(), errored)
}

fn shared() -> InflaterSource {
    InflaterSource::Shared(Rc::new(RefCell::new(Inflater::new(15, false))))
}

fn text(t: &str) -> Message {
    Message::text(t)
}

#[tokio::test]
async fn compressed_and_plain_messages_arrive_as_plain_messages() {
    let mut bytes = frame(FIN | RSV1 | 1, &compressed(b"hello compressed"));
    bytes.extend(frame(FIN | 1, b"hello plain"));
    bytes.extend(frame(FIN | RSV1 | 2, &compressed(&[7u8; 1000])));
    // An empty compressed message.
    bytes.extend(frame(FIN | RSV1 | 1, &compressed(b"")));
    let (got, failure) = read_all(bytes, shared()).await;
    assert_eq!(failure, None);
    assert_eq!(
        got,
        vec![
            text("hello compressed"),
            text("hello plain"),
            Message::binary(vec![7u8; 1000]),
            text("")
        ]
    );
}

#[tokio::test]
async fn a_fragmented_compressed_message_with_a_ping_between_its_fragments() {
    let wire = compressed("fragments ".repeat(50).as_bytes());
    let (a, rest) = wire.split_at(wire.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    let mut bytes = frame(RSV1 | 1, a);
    bytes.extend(frame(FIN | 0x9, b"ping"));
    bytes.extend(frame(0, b));
    bytes.extend(frame(FIN, c));
    // A plain fragmented message after it.
    bytes.extend(frame(1, b"plain "));
    bytes.extend(frame(FIN, b"fragments"));
    let (got, failure) = read_all(bytes, shared()).await;
    assert_eq!(failure, None);
    assert_eq!(
        got,
        vec![
            Message::Ping("ping".into()),
            text(&"fragments ".repeat(50)),
            text("plain fragments")
        ]
    );
}

#[tokio::test]
async fn a_message_larger_than_a_frame_is_handed_on_in_frames() {
    let big = vec![b'x'; 200 * 1024];
    let (got, failure) = read_all(frame(FIN | RSV1 | 2, &compressed(&big)), shared()).await;
    assert_eq!(failure, None);
    assert_eq!(got, vec![Message::binary(big)]);
}

#[tokio::test]
async fn the_clients_context_is_kept_with_an_own_inflater() {
    let mut deflater = Deflater::new(1, 15, true);
    let mut bytes = Vec::new();
    for _ in 0..3 {
        bytes.extend(frame(
            FIN | RSV1 | 1,
            &deflater.deflate(b"same words, same words"),
        ));
    }
    let own = InflaterSource::Own {
        inflater: None,
        window_bits: 15,
    };
    let (got, failure) = read_all(bytes, own).await;
    assert_eq!(failure, None);
    assert_eq!(got, vec![text("same words, same words"); 3]);
}

async fn refused(bytes: Vec<u8>) -> (Vec<Message>, Failure) {
    let (got, failure, errored) = read_all_ending(bytes, shared()).await;
    assert!(errored, "the refusal reached tungstenite as a failed read");
    (got, failure.expect("the reader refused the input"))
}

#[tokio::test]
async fn rsv1_on_a_continuation_or_control_frame_is_a_protocol_error() {
    let mut bytes = frame(1, b"plain ");
    bytes.extend(frame(FIN | RSV1, &compressed(b"more")));
    assert_eq!(refused(bytes).await.1.code, 1002);
    let (got, failure) = refused(frame(FIN | RSV1 | 0x9, b"")).await;
    assert_eq!((got.len(), failure.code), (0, 1002));
    // A message before the bad frame still arrives.
    let mut bytes = frame(FIN | RSV1 | 1, &compressed(b"first"));
    bytes.extend(frame(FIN | RSV1 | 0xA, b""));
    let (got, failure) = refused(bytes).await;
    assert_eq!((got, failure.code), (vec![text("first")], 1002));
}

#[tokio::test]
async fn a_new_message_inside_a_compressed_one_is_a_protocol_error() {
    let mut bytes = frame(RSV1 | 1, &compressed(b"half"));
    bytes.extend(frame(FIN | 1, b"another"));
    assert_eq!(refused(bytes).await.1.code, 1002);
    let mut bytes = frame(1, b"half");
    bytes.extend(frame(FIN | RSV1 | 1, &compressed(b"another")));
    assert_eq!(refused(bytes).await.1.code, 1002);
}

#[tokio::test]
async fn bombs_and_oversized_frames_are_refused_with_1009() {
    // 1 KiB on the wire, far more inflated: refused while inflating.
    let bomb = Deflater::new(9, 15, false).deflate(&vec![0u8; 1 << 20]);
    assert!(bomb.len() <= 1100, "{}", bomb.len());
    let (got, failure) = refused(frame(FIN | RSV1 | 2, &bomb)).await;
    assert_eq!((got.len(), failure.code), (0, 1009));
    // The same bomb cut into small fragments: the cap covers the whole message.
    let mut bytes = frame(RSV1 | 2, &bomb[..100]);
    for chunk in bomb[100..bomb.len() - 100].chunks(100) {
        bytes.extend(frame(0, chunk));
    }
    bytes.extend(frame(FIN, &bomb[bomb.len() - 100..]));
    assert_eq!(refused(bytes).await.1.code, 1009);
    // A compressed frame longer than a frame may be, refused from its header.
    let mut header = vec![FIN | RSV1 | 2, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(refused(header).await.1.code, 1009);
}

#[tokio::test]
async fn garbage_and_unmasked_frames_are_refused() {
    assert_eq!(
        refused(frame(FIN | RSV1 | 1, &[0xff; 50])).await.1.code,
        1002
    );
    let mut unmasked = vec![FIN | RSV1 | 1, 5];
    unmasked.extend_from_slice(b"hello");
    assert_eq!(refused(unmasked).await.1.code, 1002);
}

#[tokio::test]
async fn input_split_into_single_bytes_is_read_the_same() {
    let mut bytes = frame(FIN | RSV1 | 1, &compressed(b"one byte at a time"));
    bytes.extend(frame(FIN | 1, b"and plain"));
    let (mut client, server) = tokio::io::duplex(16);
    let report: Rc<Report> = Rc::default();
    let reader = Inflating::new(server, shared(), LIMITS, report.clone());
    let mut ws = WebSocketStream::from_raw_socket(reader, Role::Server, None).await;
    let writer = async move {
        for b in bytes {
            client.write_all(&[b]).await.unwrap();
            tokio::task::yield_now().await;
        }
    };
    let reader = async {
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(ws.next().await.unwrap().unwrap());
        }
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    assert_eq!(got, vec![text("one byte at a time"), text("and plain")]);
    let wire = compressed(b"one byte at a time").len() as u64;
    assert_eq!(report.take_counts(), (1, wire, 18));
    assert_eq!(report.take_counts(), (0, 0, 0));
}

#[tokio::test]
async fn bytes_read_with_the_upgrade_request_are_read_first() {
    let early = frame(FIN | RSV1 | 1, &compressed(b"early"));
    let (mut client, server) = tokio::io::duplex(1024);
    let reader = Inflating::new(server, shared(), LIMITS, Rc::default()).with_unread(early);
    let mut ws = WebSocketStream::from_raw_socket(reader, Role::Server, None).await;
    client
        .write_all(&frame(FIN | RSV1 | 1, &compressed(b"later")))
        .await
        .unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), text("early"));
    assert_eq!(ws.next().await.unwrap().unwrap(), text("later"));
}

#[tokio::test]
async fn many_small_bombs_at_hand_are_inflated_one_at_a_time() {
    // Each message inflates to exactly the limit, so none is refused; 100 of them are 110 KiB on the wire and would
    // be 25 MiB inflated at once if the reader worked through everything at hand before handing anything over.
    let bomb = Deflater::new(9, 15, false).deflate(&vec![0u8; LIMITS.max_message_bytes]);
    let early: Vec<u8> = (0..100)
        .flat_map(|_| frame(FIN | RSV1 | 2, &bomb))
        .collect();
    let (_client, server) = tokio::io::duplex(1024);
    let mut reader = Inflating::new(server, shared(), LIMITS, Rc::default()).with_unread(early);
    let mut chunk = [0u8; 4096];
    let mut handed = 0;
    // Bounded: 100 messages of 256 KiB, 4 KiB per read.
    while handed < 100 * LIMITS.max_message_bytes {
        let n = reader.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        handed += n;
        let held = reader.ready.len() - reader.ready_at;
        assert!(
            held <= READY_ENOUGH + LIMITS.max_message_bytes + 1024,
            "{held} bytes inflated and waiting"
        );
    }
}

#[tokio::test]
async fn a_refusal_does_not_speak_for_an_earlier_frame_that_tungstenite_refuses() {
    // Invalid UTF-8 in a plain text frame, then a ping with RSV1 set, in one read: tungstenite fails on the text
    // frame first (1007), and the reader's refusal of the ping, never reached, must not replace that.
    let mut bytes = frame(FIN | 1, &[0x66, 0xff]);
    bytes.extend(frame(FIN | RSV1 | 0x9, b""));
    let (got, failure, errored) = read_all_ending(bytes, shared()).await;
    assert!(got.is_empty() && errored);
    assert_eq!(failure, None);
}

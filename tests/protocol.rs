//! Frames a well-behaved client would never send get the close code RFC 6455 prescribes — sent by the gateway,
//! since tungstenite reports these as errors and sends nothing itself.

use tokio::io::AsyncWriteExt;
use wssgate_tests::*;

/// A masked client frame (mask key zero, so the payload is sent as is).
fn masked_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![first_byte, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

#[tokio::test]
async fn invalid_utf8_in_a_text_message_closes_with_1007() {
    let gw = TestGateway::start(&standard_routes());
    let mut tcp = raw_websocket(gw.ws, "/echo").await;
    bounded(tcp.write_all(&masked_frame(0x81, &[0xff, 0xfe, 0xfd])))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut tcp).await, 1007);
}

#[tokio::test]
async fn an_unmasked_client_frame_closes_with_1002() {
    let gw = TestGateway::start(&standard_routes());
    let mut tcp = raw_websocket(gw.ws, "/echo").await;
    bounded(tcp.write_all(&[0x81, 0x02, b'h', b'i']))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut tcp).await, 1002);
}

#[tokio::test]
async fn a_frame_over_one_mebibyte_closes_with_1009() {
    let gw = TestGateway::start(&standard_routes());
    let mut tcp = raw_websocket(gw.ws, "/echo").await;
    // A binary frame header announcing 2 MiB; the gateway must refuse it without waiting for the payload.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(2u64 << 20).to_be_bytes());
    header.extend_from_slice(&[0, 0, 0, 0]);
    bounded(tcp.write_all(&header)).await.unwrap();
    assert_eq!(raw_close_code(&mut tcp).await, 1009);
}

#[tokio::test]
async fn a_request_head_over_16_kib_gets_431() {
    let gw = TestGateway::start(&standard_routes());
    let request = format!(
        "GET /wss HTTP/1.1\r\nHost: localhost\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = raw_exchange(gw.tls_stream().await, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
}

/// Sends `frames` in one write after a valid text message `hello`; the echo of `hello` must arrive before the close
/// with `code`: the gateway writes what the plugin answered before failing the connection.
async fn answered_then_closed(frames: &[u8], code: u16) {
    let gw = TestGateway::start(&standard_routes());
    let mut tcp = raw_websocket(gw.ws, "/echo").await;
    let mut bytes = masked_frame(0x81, b"hello");
    bytes.extend_from_slice(frames);
    bounded(tcp.write_all(&bytes)).await.unwrap();
    let (before, close) = raw_frames_until_close(&mut tcp).await;
    assert_eq!(
        before,
        vec![(0x1, b"hello".to_vec())],
        "frames before the close"
    );
    assert_eq!(close, code);
}

#[tokio::test]
async fn a_reply_is_written_before_the_close_for_a_reserved_bit_in_the_same_segment() {
    answered_then_closed(&masked_frame(0xC1, b"rsv1"), 1002).await;
}

#[tokio::test]
async fn a_reply_is_written_before_the_close_for_a_reserved_opcode() {
    answered_then_closed(&masked_frame(0x83, b"op3"), 1002).await;
}

#[tokio::test]
async fn a_reply_is_written_before_the_close_for_a_bad_frame_inside_a_fragmented_message() {
    // The start of a fragmented text message, then a data frame where only a continuation may come.
    let mut frames = masked_frame(0x01, b"frag");
    frames.extend_from_slice(&masked_frame(0x82, b"bad"));
    answered_then_closed(&frames, 1002).await;
}

#[tokio::test]
async fn a_reply_is_written_before_the_close_for_invalid_utf8() {
    answered_then_closed(&masked_frame(0x81, &[0xff, 0xfe]), 1007).await;
}

use super::*;

fn json(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"user\":\"u{}\",\"text\":\"hello number {i}\"}}", i % 7))
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}

#[test]
fn messages_round_trip_with_and_without_context() {
    for (takeover, window) in [(false, 15), (true, 15), (true, 9), (false, 10)] {
        let mut deflater = Deflater::new(1, window, takeover);
        let mut inflater = Inflater::new(window, takeover);
        for n in [0, 1, 10, 1000, 20_000] {
            let message = json(n);
            let mut wire = deflater.deflate(&message);
            assert!(!wire.ends_with(&TAIL));
            if n >= 10 {
                assert!(
                    wire.len() * 3 < message.len(),
                    "{n}: {} of {}",
                    wire.len(),
                    message.len()
                );
            }
            assert_eq!(
                inflater.inflate(&mut wire, 1 << 20).unwrap(),
                message,
                "{n} {takeover}"
            );
        }
    }
}

#[test]
fn context_takeover_compresses_a_repeated_message_to_almost_nothing() {
    let message = json(20);
    let (mut with, mut without) = (Deflater::new(1, 15, true), Deflater::new(1, 15, false));
    with.deflate(&message);
    without.deflate(&message);
    let (again_with, again_without) = (
        with.deflate(&message).len(),
        without.deflate(&message).len(),
    );
    assert!(
        again_with * 2 < again_without,
        "{again_with} vs {again_without}"
    );
}

#[test]
fn a_bomb_is_refused_while_inflating_and_a_message_at_the_cap_passes() {
    let zeros = vec![0u8; 16 << 20];
    let mut bomb = Deflater::new(9, 15, false).deflate(&zeros);
    assert!(bomb.len() < 32 * 1024, "{}", bomb.len());
    let mut inflater = Inflater::new(15, false);
    assert_eq!(
        inflater.inflate(&mut bomb.clone(), 1 << 20),
        Err(InflateError::TooBig)
    );
    // The inflater works on afterwards, and a message of exactly the cap is fine.
    let mut exact = Deflater::new(1, 15, false).deflate(&zeros[..1 << 20]);
    assert_eq!(
        inflater.inflate(&mut exact, 1 << 20).unwrap().len(),
        1 << 20
    );
    assert_eq!(
        inflater.inflate(&mut bomb, 16 << 20).unwrap().len(),
        16 << 20
    );
}

#[test]
fn garbage_is_corrupt_and_a_final_block_ends_a_message() {
    let mut inflater = Inflater::new(15, true);
    assert_eq!(
        inflater.inflate(&mut vec![0xff; 100], 1 << 20),
        Err(InflateError::Corrupt)
    );
    // A message ending with BFINAL (what a client without a sync flush sends), then a normal one.
    let mut whole = Compress::new_with_window_bits(Compression::new(6), false, 15);
    let mut out = Vec::with_capacity(1000);
    whole
        .compress_vec(b"hello hello hello", &mut out, FlushCompress::Finish)
        .unwrap();
    assert_eq!(
        inflater.inflate(&mut out, 100).unwrap(),
        b"hello hello hello"
    );
    let mut next = Deflater::new(1, 15, true).deflate(b"next");
    assert_eq!(inflater.inflate(&mut next, 100).unwrap(), b"next");
}

//! AFL++ harness of the `deflate_offer` target (see wssgate-fuzz).

fn main() {
    afl::fuzz!(|data: &[u8]| wssgate_fuzz::deflate_offer(data));
}

//! AFL++ harness of the `deflate_inflate` target (see wssgate-fuzz).

fn main() {
    afl::fuzz!(|data: &[u8]| wssgate_fuzz::deflate_inflate(data));
}

//! AFL++ harness of the `proxy` target (see wssgate-fuzz).

fn main() {
    afl::fuzz!(|data: &[u8]| wssgate_fuzz::proxy(data));
}

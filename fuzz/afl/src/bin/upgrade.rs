//! AFL++ harness of the `upgrade` target (see wssgate-fuzz).

fn main() {
    afl::fuzz!(|data: &[u8]| wssgate_fuzz::upgrade(data));
}

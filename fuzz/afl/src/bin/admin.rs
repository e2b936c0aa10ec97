//! AFL++ harness of the `admin` target (see wssgate-fuzz).

fn main() {
    afl::fuzz!(|data: &[u8]| wssgate_fuzz::admin(data));
}

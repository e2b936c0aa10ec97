//! AFL++ harness of the `webhook` target (see wssgate-fuzz).

fn main() {
    afl::fuzz!(|data: &[u8]| wssgate_fuzz::webhook(data));
}

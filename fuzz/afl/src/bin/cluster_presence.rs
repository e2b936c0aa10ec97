//! AFL++ harness of the `cluster_presence` target (see wssgate-fuzz).

fn main() {
    afl::fuzz!(|data: &[u8]| wssgate_fuzz::cluster_presence(data));
}

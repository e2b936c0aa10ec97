//! AFL++ harness of the `cluster_publication` target (see wssgate-fuzz).

fn main() {
    afl::fuzz!(|data: &[u8]| wssgate_fuzz::cluster_publication(data));
}

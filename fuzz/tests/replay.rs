//! Replays every seed (`corpus/`) and every input a fuzzer ever found to crash or hang a target (`regressions/`)
//! through the targets, so the normal test suite keeps what fuzzing found fixed; no fuzzer needed.

use std::path::Path;
use std::time::{Duration, Instant};

/// The longest one input may take: a hang the fuzzer found must stay gone (debug builds are slow; this is generous).
const MAX_PER_INPUT: Duration = Duration::from_secs(10);

fn replay(folder: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        let dir = entry.expect("a folder entry").path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 name");
        let target = wssgate_fuzz::TARGETS
            .iter()
            .find(|(t, _)| *t == name)
            .unwrap_or_else(|| panic!("{folder}/{name} names no target"))
            .1;
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("a target's folder")
            .map(|e| e.expect("a file").path())
            .collect();
        files.sort();
        for file in files {
            let input = std::fs::read(&file).expect("an input");
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(|| target(&input));
            assert!(outcome.is_ok(), "{} fails its target", file.display());
            assert!(
                started.elapsed() < MAX_PER_INPUT,
                "{} took {:?}",
                file.display(),
                started.elapsed()
            );
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn every_seed_passes_its_target() {
    let replayed = replay("corpus");
    assert!(
        replayed >= wssgate_fuzz::TARGETS.len(),
        "only {replayed} seeds"
    );
}

#[test]
fn every_crash_the_fuzzer_found_stays_fixed() {
    replay("regressions");
}

#[test]
fn every_target_has_seeds_and_a_harness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (target, _) in wssgate_fuzz::TARGETS {
        let seeds = std::fs::read_dir(root.join("corpus").join(target)).map_or(0, |d| d.count());
        assert!(seeds > 0, "no seeds for {target}");
        let harness = root.join("afl/src/bin").join(format!("{target}.rs"));
        assert!(harness.is_file(), "no harness {}", harness.display());
    }
}

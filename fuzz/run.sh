#!/usr/bin/env bash
# Fuzzes every target (or those named) for SECONDS each with AFL++, two at a time at most:
#
#   fuzz/run.sh SECONDS [TARGET...]        # e.g. fuzz/run.sh 60; JOBS=2 fuzz/run.sh 600 upgrade admin
#
# Builds the harnesses in fuzz/afl with `cargo afl build --release` (installing cargo-afl from crates.io and building
# its AFL++ first when they are missing), starts each target from its seeds (fuzz/corpus/<target>) and, when it ran
# before on this machine, the queue its last run found (in $OUT/<target>), prints per target the executions, the
# coverage (edges found, and the share of AFL's map they fill) and the crashes and hangs, copies every new crash or
# hang into fuzz/regressions/<target>/ (named by its hash: replayed by `cargo test -p wssgate-fuzz` from then on) and
# appends the run to fuzz/runs.tsv, the record across sessions. Exits 1 when any target crashed or hung.
set -euo pipefail

seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
jobs=${JOBS:-1}
if (( jobs > 2 )); then
    echo "JOBS=$jobs: at most 2 fuzzers at once on this machine" >&2
    jobs=2
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/afl}
out=${OUT:-$CARGO_TARGET_DIR/out}

all=$(sed -n 's/^    ("\([a-z_]*\)", .*/\1/p' "$here/src/lib.rs")
targets=${*:-$all}

if ! cargo afl --version >/dev/null 2>&1; then
    cargo install cargo-afl --locked
fi
# cargo-afl builds its AFL++ (afl-fuzz and the runtime) once, from the sources it ships; a C compiler and make do.
if ! ls "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/*/*/afl/bin/afl-fuzz >/dev/null 2>&1; then
    cargo afl config --build
fi
(cd "$here/afl" && cargo afl build --release --locked)

# No UI (status lines instead), no CPU binding (the machine is shared), and a core_pattern that pipes to a handler
# is fine.
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1

# Each run starts afresh (so its numbers are its own) from the seeds and the queue the target's last run here left.
fuzz_one() {
    local target=$1 seeds="$out/$target.seeds"
    rm -rf "$seeds" && mkdir -p "$seeds"
    cp "$here/corpus/$target"/* "$seeds/"
    if [[ -d $out/$target/default/queue ]]; then
        find "$out/$target/default/queue" -maxdepth 1 -type f -name 'id:*' -exec cp {} "$seeds/" \;
    fi
    rm -rf "$out/$target"
    cargo afl fuzz -V "$seconds" -t 2000 -i "$seeds" -o "$out/$target" \
        -- "$CARGO_TARGET_DIR/release/$target" >"$out/$target.log" 2>&1 || true
}

running=0
for target in $targets; do
    fuzz_one "$target" &
    running=$((running + 1))
    if (( running >= jobs )); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait

stat() { sed -n "s/^$2 *: *//p" "$1" | head -1; }
status=0
printf '%-20s %8s %12s %8s %9s %7s %6s\n' target seconds executions edges map crashes hangs
for target in $targets; do
    stats="$out/$target/default/fuzzer_stats"
    if [[ ! -f $stats ]]; then
        echo "$target: did not run; see $out/$target.log" >&2
        status=1
        continue
    fi
    found=0
    for kind in crashes hangs; do
        for input in "$out/$target/default/$kind"/id:*; do
            [[ -f $input ]] || continue
            mkdir -p "$here/regressions/$target"
            name=$(sha1sum "$input" | cut -c1-16)
            if [[ ! -f $here/regressions/$target/$name ]]; then
                cp "$input" "$here/regressions/$target/$name"
                echo "$target: new ${kind%es} input kept as fuzz/regressions/$target/$name"
            fi
            found=$((found + 1))
        done
    done
    (( found == 0 )) || status=1
    execs=$(stat "$stats" execs_done)
    edges=$(stat "$stats" edges_found)
    map=$(stat "$stats" bitmap_cvg)
    crashes=$(stat "$stats" saved_crashes)
    hangs=$(stat "$stats" saved_hangs)
    printf '%-20s %8s %12s %8s %9s %7s %6s\n' "$target" "$seconds" "$execs" "$edges" "$map" "$crashes" "$hangs"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$target" "$seconds" "$execs" "$edges" \
        "$map" "$crashes" "$hangs" >>"$here/runs.tsv"
done
echo
echo "so far, from fuzz/runs.tsv:"
printf '%-20s %8s %12s %10s %8s\n' target seconds executions 'max edges' crashes
awk -F'\t' 'NR > 1 { s[$2] += $3; e[$2] += $4; if ($5 > m[$2]) m[$2] = $5; c[$2] += $7 + $8 }
    END { for (t in s) printf "%-20s %8d %12d %10d %8d\n", t, s[t], e[t], m[t], c[t] }' "$here/runs.tsv" | sort
exit $status

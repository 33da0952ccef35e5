#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted input (issue 16), each for a bounded
# time, with cargo-fuzz (libFuzzer) on the nightly toolchain:
#   audio_decode   reference clip decoding (WAV, MP3, FLAC, OGG; any hint)
#   api_json       API v3 synthesize/batch and /v1 speech bodies + validation
#   multipart      the extract_voice/preprocess form reader
#   text_frontend  normalisation, sentence splitting, Piper sentences, XTTS
#                  number expansion and cleaning, GPT-SoVITS cuts and g2p
#   manifest       the model package manifest parser (+ round trip)
#
# Needs: rustup with a nightly toolchain (`rustup toolchain install nightly`),
# cargo-fuzz (installed from crates.io by this script when missing), a C
# compiler. The first build compiles the dependencies again with coverage
# instrumentation (about 15-25 minutes on 2 cores); later runs only rebuild
# what changed. Takes about targets x seconds after the build.
#
# The committed seed corpus (fuzz/corpus/<target>/) is read, never written:
# new inputs go to target/fuzz-corpus/<target>/ (build: fuzz/target/, or
# FUZZ_TARGET_DIR). A crash fails the script and
# leaves the input under fuzz/artifacts/<target>/ (reproduce it with
# `cargo +nightly fuzz run <target> <file>`).
#
#   scripts/fuzz.sh [--seconds N] [--jobs N] [TARGET...]
#       --seconds N  time per target (default 60)
#       --jobs N     parallel fuzzing processes per target (default 1)
#       TARGET       only these targets (default: all five)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
jobs=1
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        -h | --help) sed -n '2,28p' "$0"; exit 0 ;;
        -*) echo "usage: $0 [--seconds N] [--jobs N] [TARGET...]" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
all=(audio_decode api_json multipart text_frontend manifest)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version > /dev/null 2>&1; then
    echo "==> installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

# Its own target folder: another toolchain and instrumentation, and a long
# first build that must not hold the lock of the workspace's target folder.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-fuzz/target}"

# No sanitizer: the code under test is safe Rust and a panic (debug
# assertions on) is what we look for; the build is faster and so are the runs.
echo "==> building the fuzz targets"
if [ ${#targets[@]} -eq ${#all[@]} ]; then
    cargo +nightly fuzz build --sanitizer none --fuzz-dir fuzz
else
    for t in "${targets[@]}"; do cargo +nightly fuzz build --sanitizer none --fuzz-dir fuzz "$t"; done
fi

failed=()
for t in "${targets[@]}"; do
    work="target/fuzz-corpus/$t"
    log="target/fuzz-$t.log"
    mkdir -p "$work" "fuzz/artifacts/$t"
    echo "==> fuzzing $t for ${seconds}s (seeds: fuzz/corpus/$t)"
    rc=0
    parallel=()
    # With -jobs libFuzzer writes fuzz-N.log files into the current folder.
    [ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
    cargo +nightly fuzz run --sanitizer none --fuzz-dir fuzz "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" "${parallel[@]}" -max_len=65536 \
        -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 > "$log" 2>&1 || rc=$?
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)|Done [0-9]+ runs' "$log" || true
    if [ "$rc" -ne 0 ] || grep -qE 'panicked at|ERROR: libFuzzer|deadly signal' "$log"; then
        grep -E -A3 'panicked at|ERROR: libFuzzer|deadly signal|Test unit written' "$log" | head -n 20 || true
        echo "!! $t: crash (exit $rc; see $log and fuzz/artifacts/$t/)"
        failed+=("$t")
    else
        echo "ok $t"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${targets[*]} (${seconds}s each)"

#!/usr/bin/env bash
# Runs every fuzz target (libFuzzer with AddressSanitizer) for SECONDS each,
# default 30, starting from the committed corpus in Tests/FuzzCorpus/<target>.
# Inputs that find new paths are kept in .build/fuzz/corpus (not committed).
# A crash fails the run and leaves its input in .build/fuzz/crashes: add it to
# Tests/FuzzCorpus/<target>/ as crash-<what>, where the replay test keeps it.
# Usage: scripts/fuzz.sh [SECONDS]   Environment: FUZZ_TARGETS (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
targets=${FUZZ_TARGETS:-http poll publish notification presence token chat realplexor}

./scripts/install-dependencies.sh
# libFuzzer's runtime without its main: SwiftPM names an executable's entry
# point itself, so plexor-fuzz's main calls LLVMFuzzerRunDriver instead.
runtime=$(ls "$(dirname "$(readlink -f "$(command -v swiftc)")")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)
[ -f "$runtime" ] || { echo "fuzz.sh: libFuzzer's runtime is not in this Swift toolchain" >&2; exit 1; }
mkdir -p .build/fuzz/crashes
if ! swift build -c release --scratch-path .build/fuzz --product plexor-fuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
    -Xswiftc -DFUZZING -Xlinker --whole-archive -Xlinker "$runtime" -Xlinker --no-whole-archive -Xlinker -lstdc++ \
    > .build/fuzz/build.log 2>&1; then
    grep -E "error" .build/fuzz/build.log >&2 || tail -20 .build/fuzz/build.log >&2
    echo "fuzz.sh: the fuzz build failed" >&2
    exit 1
fi
binary=.build/fuzz/release/plexor-fuzz
for target in $targets; do
    corpus=.build/fuzz/corpus/$target
    mkdir -p "$corpus"
    echo "== fuzzing $target for ${seconds}s"
    # No Swift backtracer: libFuzzer reports the crash and saves its input.
    if ! SWIFT_BACKTRACE=enable=no PLEXOR_FUZZ_TARGET=$target timeout -s KILL $((seconds + 120)) "$binary" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
        -artifact_prefix=".build/fuzz/crashes/$target-" -print_final_stats=1 \
        "$corpus" "Tests/FuzzCorpus/$target" 2> ".build/fuzz/$target.log"; then
        tail -40 ".build/fuzz/$target.log" >&2
        echo "fuzz.sh: $target crashed; the input is in .build/fuzz/crashes/" >&2
        exit 1
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" ".build/fuzz/$target.log" | sed "s/^/$target: /"
done
echo "fuzz.sh: no crash in $(echo $targets | wc -w) targets, ${seconds}s each"

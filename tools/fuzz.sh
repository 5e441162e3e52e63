#!/usr/bin/env bash
# Fuzz the blob loader and the kernels behind it (csrc/tests/fuzz_load.c) with libFuzzer under
# AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   tools/fuzz.sh SECONDS [extra libFuzzer flags]
#
# Seeds: every valid blob under tests/data/c and tests/data/c/int (all cells and formats). The working corpus and any
# crash files go to csrc/build/fuzz/. Exits non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: tools/fuzz.sh SECONDS [libFuzzer flags]}
shift
if ! command -v clang >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq clang >/dev/null
fi
out=csrc/build/fuzz
mkdir -p "$out/corpus" "$out/seeds"
cp tests/data/c/*.rne tests/data/c/int/*.rne "$out/seeds/"
src=$(ls csrc/*.c)
clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Icsrc $src csrc/tests/fuzz_load.c -lm -o "$out/fuzz_load"
echo "fuzzing for ${seconds}s; seeds: $(ls "$out/seeds" | wc -l) blobs"
# -rss_limit_mb: the harness skips models over 64 MiB of buffers; -timeout: no input may hang.
"$out/fuzz_load" "$out/corpus" "$out/seeds" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/" "$@" \
  2>&1 | tee "$out/last-run.log" | grep -E "INITED|DONE|stat::|ERROR|SUMMARY|==[0-9]+==" || true
status=${PIPESTATUS[0]}
echo "fuzz exit status $status; log: $out/last-run.log"
exit "$status"

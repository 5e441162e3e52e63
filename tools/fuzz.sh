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
  if ! (apt-get update -qq && apt-get install -y -qq clang libclang-rt-dev >/dev/null); then
    echo "fuzz.sh: clang is missing and could not be installed (Debian: clang libclang-rt-dev)" >&2
    exit 1
  fi
fi
out=csrc/build/fuzz
mkdir -p "$out/corpus" "$out/seeds"
cp tests/data/c/*.rne tests/data/c/int/*.rne "$out/seeds/"
src=$(ls csrc/*.c)
if ! clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Icsrc $src csrc/tests/fuzz_load.c -lm -o "$out/fuzz_load"; then
  echo "fuzz.sh: the fuzzer did not build (a link error naming libclang_rt: Debian's libclang-rt-dev)" >&2
  exit 1
fi
echo "fuzzing for ${seconds}s; seeds: $(ls "$out/seeds" | wc -l) blobs"
# -rss_limit_mb: the harness skips models over 64 MiB of buffers; -timeout: no input may hang.
# The fuzzer's own exit status decides: a crash, leak, timeout or out-of-memory exits non-zero.
# (Not `... | grep ... || true`: under pipefail `true` would then run on a failure and
# PIPESTATUS would be its 0.) grep finding no line (1) is not a failure; tee failing is.
set +e
"$out/fuzz_load" "$out/corpus" "$out/seeds" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/" "$@" \
  2>&1 | tee "$out/last-run.log" | grep -E "INITED|DONE|stat::|ERROR|SUMMARY|==[0-9]+=="
codes=("${PIPESTATUS[@]}")
set -e
status=${codes[0]}
if [ "$status" -eq 0 ] && [ "${codes[1]}" -ne 0 ]; then
  echo "fuzz.sh: could not write $out/last-run.log (tee exit ${codes[1]})"
  status=${codes[1]}
fi
echo "fuzz exit status $status; log: $out/last-run.log"
exit "$status"

#!/usr/bin/env bash
# Fuzz the Python side (tests/fuzz_python.py: the metadata reader, Model.from_bytes, the ONNX
# converter) with atheris, every target in turn, for SECONDS in total (an equal share each).
#
#   tools/fuzz_python.sh SECONDS [extra libFuzzer flags]
#
# Seeds: the blobs of tests/data/c (their metadata for `meta`) and tests/data/fixtures/*.onnx.
# Corpora, crash files and logs go to build/fuzz_python/TARGET/ ($FUZZ_OUT/TARGET/). Exits
# non-zero when any target reports a finding (an uncaught exception, a crash, a hang past
# -timeout, memory past -rss_limit_mb). $FUZZ_TARGETS picks targets (default: all four).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: tools/fuzz_python.sh SECONDS [libFuzzer flags]}
shift
read -r -a targets <<<"${FUZZ_TARGETS:-meta blob convert onnx}"
share=$(( seconds / ${#targets[@]} ))
(( share >= 1 )) || share=1
python=${PYTHON:-python3}
status=0
for t in "${targets[@]}"; do
  out=${FUZZ_OUT:-build/fuzz_python}/$t
  mkdir -p "$out/corpus" "$out/seeds"
  "$python" tests/fuzz_python.py "$t" --seeds "$out/seeds" >"$out/seeds.log" 2>&1 ||
    { cat "$out/seeds.log"; status=1; continue; }
  dict=()
  [[ -f "$out/seeds.dict" ]] && dict=(-dict="$out/seeds.dict")
  echo "== $t: ${share}s, $(ls "$out/seeds" | wc -l) seeds, corpus $(ls "$out/corpus" | wc -l)"
  "$python" tests/fuzz_python.py "$t" "$out/corpus" "$out/seeds" -max_total_time="$share" \
    -timeout=20 -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$out/" "${dict[@]}" "$@" >"$out/last-run.log" 2>&1
  rc=$?
  grep -E "INITED|DONE|stat::number_of_executed_units|stat::peak_rss|Uncaught|ERROR|SUMMARY" \
    "$out/last-run.log"
  echo "== $t: exit status $rc; log $out/last-run.log"
  (( rc == 0 )) || status=$rc
done
exit "$status"

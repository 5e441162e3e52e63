#!/usr/bin/env bash
# tools/pi/insn_count.sh - instructions per rne_step on an emulated Cortex-A72 (Raspberry Pi 4), NEON
# and scalar, for the benchmark models: the repeatable proxy for Pi speed in docs/raspberry-pi.md.
#
#   tools/pi/insn_count.sh            LSTM and GRU, 40 inputs, hidden 32..512, f32 / int16 / int8
#   HIDDEN=32,128 tools/pi/insn_count.sh          fewer sizes
#
# 1. Installs what it lacks with apt-get (as root or with sudo): qemu-user (the dynamic
#    qemu-aarch64, which can load plugins), gcc-aarch64-linux-gnu, libc6-dev-arm64-cross; builds
#    the counting plugin (tools/pi/qemu_plugin.sh: tools/cortexm/insn_count.c, counting every
#    executed guest instruction inline).
# 2. Writes the models with tools/cortexm/make_bench_models.py (tools/bench's LSTM/GRU at
#    PyTorch's weight scale, converted by rnnedge.convert; the integer formats calibrated on a fixed
#    sequence): needs a python3 that imports rnnedge with its compiled extension (the installed
#    package, or the source tree built in place) and onnx.
# 3. Builds librnnedge.a three times with the csrc Makefile for -mcpu=cortex-a72 (what
#    `pip install` picks on a Pi 4: -mcpu=native, -O3): "neon", the NEON variant of vec.h;
#    "scalar", the scalar reference (-DRNE_NO_SIMD), which gcc -O3 still auto-vectorizes in
#    places; "novec", the scalar reference with -fno-tree-vectorize (no vector arithmetic at all,
#    checked). Links tools/pi/insn_step.c statically with each.
# 4. Runs each model N = 0 and N = STEPS steps under qemu-aarch64 -cpu CPU with the plugin;
#    (count(N) - count(0)) / N is one step's instructions. Loading, the CRC and process start are
#    in both counts and cancel. Every build must give the NEON build's first output (integer
#    formats: equal; f32: within 1e-5).
# Instructions are not cycles: a NEON instruction does 4 multiply-adds, a load may miss the cache,
# and the A72 issues up to 3 instructions a cycle. The counts are exact and the same on any
# machine, however loaded, so they compare builds and variants; time on a board is another table.
#
# Results: $OUT/results.tsv, and $OUT/table.md (the table for docs/raspberry-pi.md), printed.
# Environment: OUT (build/pi/insn), HIDDEN (32,64,128,256,512), QUANT (f32,int16,int8), STEPS (100),
# CPU (cortex-a72), OPT (-O3), PYTHON (python3), QEMU_TIMEOUT (seconds per run, 300).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$(realpath -m "${OUT:-build/pi/insn}")
HIDDEN=${HIDDEN:-32,64,128,256,512}
QUANT=${QUANT:-f32,int16,int8}
STEPS=${STEPS:-100}
CPU=${CPU:-cortex-a72}
OPT=${OPT:--O3}
PY=${PYTHON:-python3}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-300}
CC=aarch64-linux-gnu-gcc
T0=$(date +%s)

install_tools() {
  local pkgs=()
  command -v qemu-aarch64 >/dev/null 2>&1 || pkgs+=(qemu-user)
  command -v $CC >/dev/null 2>&1 || pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  [ ${#pkgs[@]} -eq 0 ] && return 0
  echo "== installing ${pkgs[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

echo "== toolchain"
install_tools
$CC --version | head -1
qemu-aarch64 --version | head -1
mkdir -p "$OUT"
tools/pi/qemu_plugin.sh "$OUT/qemu-plugin"
PLUGIN=$OUT/qemu-plugin/insn_count.so

echo "== models (hidden $HIDDEN; $QUANT)"
$PY tools/cortexm/make_bench_models.py "$OUT/models" --hidden "$HIDDEN" --quant "$QUANT" >/dev/null

VARIANTS="neon scalar novec"
echo "== library for -mcpu=$CPU $OPT: $VARIANTS"
for variant in $VARIANTS; do
  case $variant in
    neon) flags="-mcpu=$CPU" ;;
    scalar) flags="-mcpu=$CPU -DRNE_NO_SIMD" ;;
    novec) flags="-mcpu=$CPU -DRNE_NO_SIMD -fno-tree-vectorize" ;;
  esac
  build=pi-insn-$variant
  rm -rf "csrc/build/$build"              # make does not see changed flags: build afresh
  make -s -j1 -C csrc CC=$CC OPT="$OPT" ARCH_FLAGS="$flags" BUILD=$build "build/$build/librnnedge.a"
  # shellcheck disable=SC2086
  $CC -std=c99 -ffp-contract=off -Wall -Wextra -Werror $OPT $flags -Icsrc tools/pi/insn_step.c \
    "csrc/build/$build/librnnedge.a" -static -lm -o "$OUT/insn_step-$variant"
  # rne__f32_simd() returns the variant's name: the only one of them in the binary
  compiled=$(strings "$OUT/insn_step-$variant" | grep -x -E 'neon-aarch64|scalar' | head -1 || true)
  want=$([ "$variant" = neon ] && echo neon-aarch64 || echo scalar)
  if [ "$compiled" != "$want" ]; then
    echo "insn_count.sh: the $variant build holds variant '${compiled:-none}', not $want" >&2
    exit 1
  fi
  vector_ops=$(aarch64-linux-gnu-objdump -d "csrc/build/$build/librnnedge.a" \
    | grep -c -E $'\tf(add|sub|mul|mla|div)\tv[0-9]+\\.[248][sd]' || true)
  if [ "$variant" = novec ] && [ "$vector_ops" -ne 0 ]; then
    echo "insn_count.sh: the novec build has $vector_ops vector float instructions" >&2
    exit 1
  fi
  echo "   $variant: $flags -> $compiled, $vector_ops vector float instructions in the library"
done

# The program runs from $OUT with an empty environment and relative paths: the stack's contents
# (environment, arguments) move its buffers, and the alignment of a buffer changes a step's count
# by a few instructions (memcpy's paths); so the counts repeat exactly wherever the tree is.
QEMU=$(command -v qemu-aarch64)
TIMEOUT=$(command -v timeout)
count() {  # variant model steps: the instructions executed, and the program's line in $OUT/last.txt
  local variant=$1 model=$2 n=$3
  rm -f "$OUT/count.txt"
  (cd "$OUT" && env -i "$TIMEOUT" "$QEMU_TIMEOUT" "$QEMU" -cpu "$CPU" -plugin "$PLUGIN,outfile=count.txt" \
     "./insn_step-$variant" "models/$model.rne" "$n" > last.txt)
  cat "$OUT/count.txt"
}

echo "== counting: $STEPS steps minus 0 steps, under qemu-aarch64 -cpu $CPU"
printf 'model\tvariant\tinsns_0\tinsns_n\tsteps\tinsns_per_step\ty0\n' > "$OUT/results.tsv"
failed=0
for model in $(tail -n +2 "$OUT/models/models.tsv" | cut -f1); do
  y0s=()
  for variant in $VARIANTS; do
    n0=$(count $variant "$model" 0)
    n1=$(count $variant "$model" "$STEPS")
    y0=$(sed -n 's/.* y0 //p' "$OUT/last.txt")
    y0s+=("$y0")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$model" $variant "$n0" "$n1" "$STEPS" \
      "$(( (n1 - n0 + STEPS / 2) / STEPS ))" "$y0" >> "$OUT/results.tsv"
  done
  for y0 in "${y0s[@]:1}"; do
    if ! awk -v a="${y0s[0]}" -v b="$y0" -v m="$model" 'BEGIN {
           d = a - b; if (d < 0) d = -d; s = b < 0 ? -b : b
           exit !(m ~ /-f32$/ ? d <= 1e-5 + 1e-5 * s : a == b) }'; then
      echo "FAIL $model: the NEON build's y0 ${y0s[0]}, another build's $y0"
      failed=1
    fi
  done
  printf '   %-16s' "$model"
  for variant in $VARIANTS; do
    printf ' %s %10s' $variant \
      "$(awk -F'\t' -v m="$model" -v v=$variant '$1 == m && $2 == v {print $6}' "$OUT/results.tsv")"
  done
  echo
done

$PY tools/pi/insn_table.py "$OUT/results.tsv" "$OUT/models/models.tsv" \
  --cpu "$CPU" --flags "$OPT -mcpu=$CPU" --steps "$STEPS" > "$OUT/table.md"
echo "== table ($OUT/table.md)"
cat "$OUT/table.md"
echo "insn_count.sh: $(( $(date +%s) - T0 )) s"
exit $failed

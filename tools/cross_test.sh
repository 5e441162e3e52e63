#!/usr/bin/env bash
# tools/cross_test.sh - build the C library and its C tests for every SIMD variant of csrc/vec.h:
# the Raspberry Pi class of ARM cores statically, run under qemu user mode with the emulated CPU
# pinned, and the x86-64 variants natively (skipped where this CPU lacks the instructions).
#
#   tools/cross_test.sh [TARGET...]     default: every target below; exits non-zero if any fails
#
#   target       compiler                 flags                               run with             variant
#   a72          aarch64-linux-gnu-gcc    -mcpu=cortex-a72 (Pi 4)             qemu -cpu cortex-a72 neon-aarch64
#   a76          aarch64-linux-gnu-gcc    -mcpu=cortex-a76 (Pi 5, armv8.2)    qemu -cpu cortex-a76 neon-aarch64
#   a72-scalar   aarch64-linux-gnu-gcc    -mcpu=cortex-a72 -DRNE_NO_SIMD      qemu -cpu cortex-a72 scalar
#   a7           arm-linux-gnueabihf-gcc  -mcpu=cortex-a7 -mfpu=neon-vfpv4    qemu -cpu cortex-a7  neon-armv7+fma
#                                         (Pi 2/3 on a 32-bit OS)
#   a8           arm-linux-gnueabihf-gcc  -mcpu=cortex-a8 -mfpu=neon          qemu -cpu cortex-a8  neon-armv7
#                                         (NEON without fused multiply-add)
#   x86-avx512   cc                       -mavx512f -mfma                     natively             avx512+fma
#   x86-avx2     cc                       -mavx2 -mfma                        natively             avx2+fma
#   x86-scalar   cc                       -DRNE_NO_SIMD                       natively             scalar
#
# Each target runs csrc's test_vec (its SIMD variant against the scalar reference) and test_rnnedge
# (every model of tests/data/c against onnxruntime's outputs, step = run, batch = single streams,
# the corruption tests). Installs what the ARM targets lack with apt-get (Debian/Ubuntu, as root or
# with sudo): gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf (and their libc6-dev),
# qemu-user-static. Static linking means qemu needs no sysroot and no binfmt_misc. Builds run one
# at a time (make -j1).
#
# Environment: QEMU_TIMEOUT (seconds per test program, default 300); CSRC (the C sources, default
# csrc; objects go to $CSRC/build/cross-<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS="a72 a76 a72-scalar a7 a8 x86-avx512 x86-avx2 x86-scalar"
TARGETS="${*:-$ALL_TARGETS}"
QEMU_TIMEOUT="${QEMU_TIMEOUT:-300}"
CSRC="${CSRC:-csrc}"
DATA="$PWD/tests/data/c"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }

# 32-bit programs need 64-bit file offsets and inode numbers, or readdir() fails with EOVERFLOW on
# a 64-bit host's file system (the test programs list tests/data/c)
LFS="-D_FILE_OFFSET_BITS=64"

# target -> "compiler|flags|qemu|cpu" (x86: no qemu, and the /proc/cpuinfo flags the CPU needs)
spec() {
  case "$1" in
    a72)        echo "aarch64-linux-gnu-gcc|-mcpu=cortex-a72|qemu-aarch64-static|cortex-a72" ;;
    a76)        echo "aarch64-linux-gnu-gcc|-mcpu=cortex-a76|qemu-aarch64-static|cortex-a76" ;;
    a72-scalar) echo "aarch64-linux-gnu-gcc|-mcpu=cortex-a72 -DRNE_NO_SIMD|qemu-aarch64-static|cortex-a72" ;;
    a7)         echo "arm-linux-gnueabihf-gcc|-mcpu=cortex-a7 -mfpu=neon-vfpv4 -mfloat-abi=hard $LFS|qemu-arm-static|cortex-a7" ;;
    a8)         echo "arm-linux-gnueabihf-gcc|-mcpu=cortex-a8 -mfpu=neon -mfloat-abi=hard $LFS|qemu-arm-static|cortex-a8" ;;
    x86-avx512) echo "cc|-mavx512f -mfma||avx512f fma" ;;
    x86-avx2)   echo "cc|-mavx2 -mfma||avx2 fma" ;;
    x86-scalar) echo "cc|-DRNE_NO_SIMD||" ;;
    *) echo "cross_test.sh: unknown target '$1' (targets: $ALL_TARGETS)" >&2; exit 2 ;;
  esac
}

install_tools() {
  local need=() pkgs=()
  for t in $TARGETS; do
    IFS='|' read -r cc _ qemu _ <<<"$(spec "$t")"
    [ -z "$qemu" ] && continue
    command -v "$cc" >/dev/null 2>&1 || need+=("$cc")
    command -v "$qemu" >/dev/null 2>&1 || need+=("$qemu")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  for tool in $(printf '%s\n' "${need[@]}" | sort -u); do
    case "$tool" in
      aarch64-linux-gnu-gcc) pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
      arm-linux-gnueabihf-gcc) pkgs+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
      qemu-*-static) pkgs+=(qemu-user-static) ;;
    esac
  done
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "== installing $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')"
  $sudo apt-get update -qq
  # shellcheck disable=SC2046
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    $(printf '%s\n' "${pkgs[@]}" | sort -u) >/dev/null
}

install_tools

failed=()
summary=()
for t in $TARGETS; do
  IFS='|' read -r cc flags qemu cpu <<<"$(spec "$t")"
  run=()
  if [ -n "$qemu" ]; then
    run=("$qemu" -cpu "$cpu")
  elif [ "$(uname -m)" != x86_64 ]; then
    summary+=("$(printf '%-10s skipped: not an x86-64 machine' "$t")"); continue
  else
    missing=$(for f in $cpu; do grep -qw "$f" /proc/cpuinfo || echo "$f"; done)
    if [ -n "$missing" ]; then
      summary+=("$(printf '%-10s skipped: this CPU lacks %s' "$t" "$(echo $missing)")"); continue
    fi
  fi
  echo "== $t: $cc $flags${qemu:+, $qemu -cpu $cpu}"
  start=$(now_ms)
  rm -rf "$CSRC/build/cross-$t"           # make does not see changed flags: build afresh
  make -s -j1 -C "$CSRC" CC="$cc" ARCH_FLAGS="$flags" LDFLAGS=-static BUILD="cross-$t" \
    "build/cross-$t/test_vec" "build/cross-$t/test_rnnedge"
  built=$(now_ms)
  ok=1
  vec_out=$(timeout "$QEMU_TIMEOUT" ${run[@]+"${run[@]}"} "$CSRC/build/cross-$t/test_vec" 2>&1) || ok=0
  all_out=$(timeout "$QEMU_TIMEOUT" ${run[@]+"${run[@]}"} "$CSRC/build/cross-$t/test_rnnedge" "$DATA" 2>&1) \
    || ok=0
  ran=$(now_ms)
  printf '%s\n' "$vec_out" "$all_out" | grep -E '^(FAIL|note)' || true
  variant=$(printf '%s\n' "$vec_out" | sed -n 's/^note variant: //p')
  line=$(printf '%-10s %-15s test_vec: %s; test_rnnedge: %s; build %s s, run %s s' "$t" \
    "${variant:-?}" "$(printf '%s\n' "$vec_out" | tail -n 1)" "$(printf '%s\n' "$all_out" | tail -n 1)" \
    "$(secs $((built - start)))" "$(secs $((ran - built)))")
  summary+=("$line")
  [ "$ok" -eq 1 ] || failed+=("$t")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all targets passed"

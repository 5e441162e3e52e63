#!/usr/bin/env bash
# tools/cross_test.sh - build the C library and its C tests for every SIMD variant of csrc/vec.h:
# the Raspberry Pi class of ARM cores statically, run under qemu user mode with the emulated CPU
# pinned, and the x86-64 variants natively (skipped where this CPU lacks the instructions).
#
#   tools/cross_test.sh [TARGET...]     default: every target below; exits non-zero if any fails
#
#   target       compiler                 flags                               run with             variant (float / integer)
#   a72          aarch64-linux-gnu-gcc    -mcpu=cortex-a72 (Pi 4)             qemu -cpu cortex-a72 neon-aarch64 / neon-aarch64
#   a76          aarch64-linux-gnu-gcc    -mcpu=cortex-a76 (Pi 5, armv8.2)    qemu -cpu cortex-a76 neon-aarch64 / neon-aarch64
#   a72-scalar   aarch64-linux-gnu-gcc    -mcpu=cortex-a72 -DRNE_NO_SIMD      qemu -cpu cortex-a72 scalar / scalar
#   a7           arm-linux-gnueabihf-gcc  -mcpu=cortex-a7 -mfpu=neon-vfpv4    qemu -cpu cortex-a7  neon-armv7+fma / neon-armv7
#                                         (Pi 2/3 on a 32-bit OS)
#   a8           arm-linux-gnueabihf-gcc  -mcpu=cortex-a8 -mfpu=neon          qemu -cpu cortex-a8  neon-armv7 / neon-armv7
#                                         (NEON without fused multiply-add)
#   armv6        arm-none-eabi-gcc        -march=armv6+fp -mfpu=vfp -marm     qemu -cpu arm1176    scalar / arm-dsp
#                                         (Pi 1 / Zero; newlib as the libc, see below)
#   x86-avx512   cc                       -mavx512f -mfma                     natively             avx512+fma / avx2+avx512f
#   x86-avx512vnni cc  -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma     natively             avx512+fma / avx512bw+vnni
#   x86-avx2     cc                       -mavx2 -mfma                        natively             avx2+fma / avx2
#   x86-scalar   cc                       -DRNE_NO_SIMD                       natively             scalar / scalar
#
# The variant is what the library compiled in, as test_vec and test_qvec print it ("note variant:",
# "note qvec variant:", from vec.c's and qvec.c's own #if chains); a target whose build picked
# another one (a flag or macro that no longer selects the SIMD code, so the scalar fallback got
# built) fails, even if its tests pass.
#
# Each target runs csrc's test_vec (its SIMD variant against the scalar reference), test_rnnedge
# (every float model of tests/data/c within tolerance of onnxruntime's outputs, step = run, batch =
# single streams, the corruption tests), test_int (every integer model of tests/data/c/int bit
# for bit equal to the numpy reference, long streams by CRC), test_qvec, and test_ops (the graph
# ops on tests/data/ops, their load checks, their SIMD variant against the scalar reference), and
# test_conv (the conv kernels on tests/data/conv: f32 within bound of a float64 convolution,
# integer bit for bit equal to fixedpoint.conv_q, chunked = one chunk; their load checks).
# Installs what the ARM targets lack
# with apt-get (Debian/Ubuntu, as root or with sudo): gcc-aarch64-linux-gnu,
# gcc-arm-linux-gnueabihf (and their libc6-dev), gcc-arm-none-eabi and libnewlib-arm-none-eabi,
# qemu-user-static. Static linking means qemu needs no sysroot and no binfmt_misc. Builds run one
# at a time (make -j1).
#
# ARMv6: Debian's armhf glibc and libgcc are ARMv7 Thumb-2 code, which an ARM1176 cannot run (a
# static armhf "hello" dies with SIGILL under -cpu arm1176: checked here as a control, so a qemu
# that stopped telling the two apart would fail the target). The bare-metal toolchain's newlib and
# libgcc come built for ARMv5TE with VFP and the hard-float ABI (multilib arm/v5te/hard), which an
# ARMv6 core runs; tools/pi/armv6/linux_rt.c makes them a Linux libc (EABI system calls, start,
# opendir/readdir), so the same three test programs run unchanged, reading tests/data/c. int32_t
# is made `int` as on Linux (newlib's bare-metal default is `long`), so printf formats check alike.
#
# Environment: QEMU_TIMEOUT (seconds per test program, default 300); CSRC (the C sources, default
# csrc; objects go to $CSRC/build/cross-<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS="a72 a76 a72-scalar a7 a8 armv6 x86-avx512 x86-avx512vnni x86-avx2 x86-scalar"
TARGETS="${*:-$ALL_TARGETS}"
QEMU_TIMEOUT="${QEMU_TIMEOUT:-300}"
CSRC="${CSRC:-csrc}"
DATA="$PWD/tests/data/c"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }
last() { printf '%s\n' "$1" | tail -n 1; }

# 32-bit programs need 64-bit file offsets and inode numbers, or readdir() fails with EOVERFLOW on
# a 64-bit host's file system (the test programs list tests/data/c)
LFS="-D_FILE_OFFSET_BITS=64"

# ARMv6 with newlib as a Linux libc (see above): the types as on Linux, POSIX clocks declared
ARMV6_RT="$PWD/tools/pi/armv6"
NEWLIB_LINUX="-U__INT32_TYPE__ -D__INT32_TYPE__=int -U__UINT32_TYPE__ -D__UINT32_TYPE__=unsigned"
NEWLIB_LINUX+=" -U__INT_LEAST32_TYPE__ -D__INT_LEAST32_TYPE__=int"
NEWLIB_LINUX+=" -U__UINT_LEAST32_TYPE__ -D__UINT_LEAST32_TYPE__=unsigned"
NEWLIB_LINUX+=" -D_POSIX_TIMERS=1 -D_POSIX_MONOTONIC_CLOCK=200112L -I$ARMV6_RT"
ARMV6_FLAGS="-march=armv6+fp -mfpu=vfp -mfloat-abi=hard -marm"

# target -> "compiler|flags|qemu|cpu|float variant|integer variant" (x86: no qemu, and the
# /proc/cpuinfo flags the CPU needs)
spec() {
  case "$1" in
    a72)        echo "aarch64-linux-gnu-gcc|-mcpu=cortex-a72|qemu-aarch64-static|cortex-a72|neon-aarch64|neon-aarch64" ;;
    a76)        echo "aarch64-linux-gnu-gcc|-mcpu=cortex-a76|qemu-aarch64-static|cortex-a76|neon-aarch64|neon-aarch64" ;;
    a72-scalar) echo "aarch64-linux-gnu-gcc|-mcpu=cortex-a72 -DRNE_NO_SIMD|qemu-aarch64-static|cortex-a72|scalar|scalar" ;;
    a7)         echo "arm-linux-gnueabihf-gcc|-mcpu=cortex-a7 -mfpu=neon-vfpv4 -mfloat-abi=hard $LFS|qemu-arm-static|cortex-a7|neon-armv7+fma|neon-armv7" ;;
    a8)         echo "arm-linux-gnueabihf-gcc|-mcpu=cortex-a8 -mfpu=neon -mfloat-abi=hard $LFS|qemu-arm-static|cortex-a8|neon-armv7|neon-armv7" ;;
    armv6)      echo "arm-none-eabi-gcc|$ARMV6_FLAGS $NEWLIB_LINUX|qemu-arm-static|arm1176|scalar|arm-dsp" ;;
    x86-avx512) echo "cc|-mavx512f -mfma||avx512f fma|avx512+fma|avx2+avx512f" ;;
    x86-avx512vnni) echo "cc|-mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma||avx512f avx512bw avx512vl avx512_vnni fma|avx512+fma|avx512bw+vnni" ;;
    x86-avx2)   echo "cc|-mavx2 -mfma||avx2 fma|avx2+fma|avx2" ;;
    x86-scalar) echo "cc|-DRNE_NO_SIMD|||scalar|scalar" ;;
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
    if [ "$t" = armv6 ]; then
      # shellcheck disable=SC2086
      [ -f "$(arm-none-eabi-gcc $ARMV6_FLAGS -print-file-name=libc.a 2>/dev/null || echo none)" ] \
        || need+=(newlib)
      command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || need+=(arm-linux-gnueabihf-gcc)
    fi
  done
  [ ${#need[@]} -eq 0 ] && return 0
  for tool in $(printf '%s\n' "${need[@]}" | sort -u); do
    case "$tool" in
      aarch64-linux-gnu-gcc) pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
      arm-linux-gnueabihf-gcc) pkgs+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
      arm-none-eabi-gcc) pkgs+=(gcc-arm-none-eabi libnewlib-arm-none-eabi) ;;
      newlib) pkgs+=(libnewlib-arm-none-eabi) ;;
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
  IFS='|' read -r cc flags qemu cpu want_f32 want_q <<<"$(spec "$t")"
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
  echo "== $t: $cc ${flags/ $NEWLIB_LINUX/ (+ newlib as a Linux libc)}${qemu:+, $qemu -cpu $cpu}"
  start=$(now_ms)
  out="$CSRC/build/cross-$t"
  rm -rf "$out"                           # make does not see changed flags: build afresh
  ldflags=-static
  ok=1
  control=""
  if [ "$t" = armv6 ]; then
    mkdir -p "$out"
    # shellcheck disable=SC2086
    $cc -std=c99 -O2 -Wall -Wextra -Werror -Wconversion -Wpedantic $flags \
      -c "$ARMV6_RT/linux_rt.c" -o "$out/linux_rt.o"
    ldflags="-static -nostartfiles $PWD/$out/linux_rt.o"
    ldflags+=" -Wl,--wrap=printf,--wrap=vprintf,--wrap=fprintf,--wrap=snprintf"
    # the control: glibc's ARMv7 code must not run on the emulated ARM1176
    printf 'int main(void) { return 0; }\n' > "$out/control.c"
    arm-linux-gnueabihf-gcc -static -O2 "$out/control.c" -o "$out/control-armv7"
    rc=$( { timeout "$QEMU_TIMEOUT" "${run[@]}" "$out/control-armv7" >/dev/null 2>&1; echo $?; } 2>/dev/null)
    if [ "$rc" -eq 132 ]; then                      # 128 + SIGILL
      control="; control: ARMv7 code refused (SIGILL)"
    else
      echo "FAIL armv6: a static armhf (ARMv7) program under -cpu $cpu exited $rc, not SIGILL"
      ok=0
    fi
  fi
  make -s -j1 -C "$CSRC" CC="$cc" ARCH_FLAGS="$flags" LDFLAGS="$ldflags" BUILD="cross-$t" \
    "build/cross-$t/test_vec" "build/cross-$t/test_rnnedge" "build/cross-$t/test_int" \
    "build/cross-$t/test_qvec" "build/cross-$t/test_ops" "build/cross-$t/test_conv"
  built=$(now_ms)
  vec_out=$(timeout "$QEMU_TIMEOUT" ${run[@]+"${run[@]}"} "$out/test_vec" 2>&1) || ok=0
  all_out=$(timeout "$QEMU_TIMEOUT" ${run[@]+"${run[@]}"} "$out/test_rnnedge" "$DATA" 2>&1) || ok=0
  int_out=$(timeout "$QEMU_TIMEOUT" ${run[@]+"${run[@]}"} "$out/test_int" "$DATA/int" 2>&1) || ok=0
  qvec_out=$(timeout "$QEMU_TIMEOUT" ${run[@]+"${run[@]}"} "$out/test_qvec" 2>&1) || ok=0
  ops_out=$(timeout "$QEMU_TIMEOUT" ${run[@]+"${run[@]}"} "$out/test_ops" "$PWD/tests/data/ops" 2>&1) || ok=0
  conv_out=$(timeout "$QEMU_TIMEOUT" ${run[@]+"${run[@]}"} "$out/test_conv" "$PWD/tests/data/conv" 2>&1) || ok=0
  ran=$(now_ms)
  printf '%s\n' "$vec_out" "$all_out" "$int_out" "$qvec_out" "$ops_out" "$conv_out" | grep -E '^(FAIL|note)' || true
  variant=$(printf '%s\n' "$vec_out" | sed -n 's/^note variant: //p')
  qvariant=$(printf '%s\n' "$qvec_out" | sed -n 's/^note qvec variant: //p')
  if [ "$variant" != "$want_f32" ] || [ "$qvariant" != "$want_q" ]; then
    echo "FAIL $t: compiled variant ${variant:-none} / ${qvariant:-none}, expected $want_f32 / $want_q"
    ok=0
  fi
  line=$(printf '%-10s %-25s test_vec: %s; test_rnnedge: %s; test_int: %s; test_qvec: %s; test_ops: %s; test_conv: %s%s; build %s s, run %s s' \
    "$t" "${variant:-?}/${qvariant:-?}" "$(last "$vec_out")" "$(last "$all_out")" "$(last "$int_out")" "$(last "$qvec_out")" "$(last "$ops_out")" "$(last "$conv_out")" "$control" \
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

#!/usr/bin/env bash
# tools/pi/pytest_aarch64.sh - the Python package built for aarch64 and its pytest suite run on an
# emulated Cortex-A72 (a Raspberry Pi 4 on a 64-bit OS), without a chroot and without binfmt_misc.
#
#   tools/pi/pytest_aarch64.sh                every test
#   tools/pi/pytest_aarch64.sh --subset       the Pi subset (below)
#   tools/pi/pytest_aarch64.sh -- ARGS...     pytest with these arguments instead (e.g. -k lstm)
#
# The Pi subset proves the Python API on the Pi's architecture: tests/test_runtime.py (load, run,
# stream, batch, errors; float models against onnxruntime), test_integer_runtime.py (int16/int8
# through the C library bit for bit with the numpy reference), test_format.py and
# test_format_int.py (the blob writer and reader, every corruption), test_cli.py (the rnnedge
# command, including `python -m rnnedge` in a child process), test_build_flags.py (_build.py's
# flag choice); the generators of the C kernels' vectors regenerating byte for byte on Arm's numpy
# (test_ops_oracle.py, test_conv_oracle.py, test_c_vectors.py: where x86 and Arm numpy differ,
# e.g. min(+0, -0) and the sign of inf - inf, they do not); graphs, convs and ops in the C
# library (test_graph_runtime.py, test_conv_runtime.py, test_ops_runtime.py); the install checks
# (test_install.py). CI runs this subset, JOBS workers at once (pytest-xdist): the whole suite
# emulated would take several times as long. It leaves out the converter, quantizer, reference, fixture, benchmark and demo
# tests, which are Python and numpy above the same C calls.
#
# How (../shared/design/targets.md, "the unpacked-Debian-python method"):
# 1. apt: mmdebstrap, arch-test, qemu-user-static, gcc-aarch64-linux-gnu (as root or with sudo).
# 2. Debian's arm64 python3.11 unpacked, not installed (mmdebstrap --variant=extract: nothing runs
#    emulated) into $OUT/arm64-root, with a Raspberry Pi 4's /proc/cpuinfo beside it: qemu 7.2
#    passes the host's x86 /proc/cpuinfo through, and onnxruntime's CPU detection (cpuinfo) then
#    finds no ARM core and crashes at import (SIGSEGV). qemu -L (QEMU_LD_PREFIX) looks up every
#    absolute path under the root first, so the guest reads the root's /proc/cpuinfo; empty
#    dist-packages directories there keep the host's Debian Python packages out of sys.path.
# 3. aarch64 wheels of numpy, cffi, pytest, hypothesis, onnx, onnxruntime, setuptools, tqdm from PyPI
#    (pip install --target --platform ... --only-binary=:all:), at the versions this machine's
#    python3 has (pip list), into $OUT/site.
# 4. A copy of the source tree in $OUT/src (the source tree keeps its own x86 extension), whose
#    extension the emulated python builds with setuptools: CC=aarch64-linux-gnu-gcc, an x86 cross
#    compiler the emulated process execs natively. _build.py chooses the flags, as `pip install .`
#    would; the script prints them and checks that the NEON variant is in the module.
# 5. pytest under qemu-aarch64-static -cpu cortex-a72. $OUT/bin/python3 starts the emulated python
#    (qemu -0 makes it sys.executable), so tests that start `sys.executable -m rnnedge` in a child
#    process get the emulated python again.
# Tests that compile a C program with the host's cc and run it (test_export_c's program,
# test_bench's C step bench) would prove nothing about aarch64, and an aarch64 program cannot be
# exec'd without binfmt_misc: the test run's PATH is $OUT/bin alone, which has no cc, gcc or
# clang, so they skip as on a machine without a compiler. cross_test.sh runs the C library's own
# tests on aarch64.
#
# Environment: OUT (build/pi/aarch64); CPU (cortex-a72); PYTHON (python3, whose pip list pins the
# wheels); PYTEST_TIMEOUT (seconds for the whole run, 1800); JOBS (pytest-xdist workers, each an
# emulated python: nproc; qemu user mode runs one guest thread per host thread, so two workers on two
# cores take about half the time of one).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$(realpath -m "${OUT:-build/pi/aarch64}")
[ "$OUT" != / ] || { echo "pytest_aarch64.sh: OUT must not be /" >&2; exit 2; }
CPU=${CPU:-cortex-a72}
PY=${PYTHON:-python3}
PYTEST_TIMEOUT=${PYTEST_TIMEOUT:-1800}
JOBS=${JOBS:-$(nproc)}
PI_SUBSET=(tests/test_runtime.py tests/test_integer_runtime.py tests/test_format.py
           tests/test_format_int.py tests/test_cli.py tests/test_build_flags.py
           tests/test_ops_oracle.py tests/test_conv_oracle.py tests/test_c_vectors.py
           tests/test_graph_runtime.py tests/test_conv_runtime.py tests/test_ops_runtime.py
           tests/test_install.py)
# of those, left out under emulation: the CLI's signal and FIFO handling, each of which starts the
# emulated python as a child process and waits on it (57 to 63 s each in a run on a loaded machine,
# 2026-12-07; under 32 s each in a CI run of that day): POSIX behaviour of Python's own, the same on
# any Linux, tested on the host
PI_DESELECT=(--deselect tests/test_cli.py::test_a_fifo_is_refused_without_blocking
             --deselect tests/test_cli.py::test_bench_refuses_a_fifo_without_blocking
             --deselect tests/test_cli.py::test_a_terminated_convert_leaves_no_temporary_file
             --deselect tests/test_cli.py::test_an_ignored_sighup_stays_ignored_while_a_command_runs)
WHEELS=(numpy cffi pytest pytest-xdist execnet hypothesis onnx onnxruntime setuptools tqdm)
DEBS=python3.11,libpython3.11-dev,libstdc++6

mode=full
pytest_args=()
case "${1:-}" in
  "") ;;
  --subset) mode=subset ;;
  --) shift; mode=args; pytest_args=("$@") ;;
  *) echo "usage: tools/pi/pytest_aarch64.sh [--subset | -- PYTEST_ARGS...]" >&2; exit 2 ;;
esac

now() { date +%s; }
T0=$(now)
step() { echo "== $* ($(( $(now) - T0 )) s)"; }

install_tools() {
  local pkgs=()
  command -v mmdebstrap >/dev/null 2>&1 || pkgs+=(mmdebstrap)
  command -v arch-test >/dev/null 2>&1 || pkgs+=(arch-test)
  command -v qemu-aarch64-static >/dev/null 2>&1 || pkgs+=(qemu-user-static)
  command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
  [ ${#pkgs[@]} -eq 0 ] && return 0
  echo "   installing ${pkgs[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

step "toolchain"
install_tools
mkdir -p "$OUT"
DIR=$OUT/arm64-root

# ---- 2. Debian's arm64 python, unpacked -----------------------------------------------------------
. /etc/os-release
if [ "$(cat "$DIR.stamp" 2>/dev/null)" != "$VERSION_CODENAME $DEBS" ]; then
  step "unpacking Debian $VERSION_CODENAME's arm64 $DEBS"
  rm -rf "$DIR" "$DIR.stamp"
  mmdebstrap --quiet --variant=extract --arch=arm64 --include="$DEBS" \
    "$VERSION_CODENAME" "$DIR" > "$OUT/mmdebstrap.log" 2>&1 \
    || { tail -20 "$OUT/mmdebstrap.log"; echo "pytest_aarch64.sh: mmdebstrap failed" >&2; exit 1; }
  echo "$VERSION_CODENAME $DEBS" > "$DIR.stamp"
fi
mkdir -p "$DIR/proc" "$DIR/usr/lib/python3/dist-packages" "$DIR/usr/local/lib/python3.11/dist-packages"
{
  for ((i = 0; i < $(nproc); i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
    printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n'
    printf 'CPU revision\t: 3\n\n'
  done
  printf 'Hardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n'
} > "$DIR/proc/cpuinfo"

# The test run's whole PATH: the emulated python (sys.executable is this script, so child processes
# are emulated too) and the aarch64 compiler under the name Debian's arm64 python has in its
# sysconfig (which _build.py asks); no cc, gcc or clang (see above).
BIN=$OUT/bin
case "$BIN" in /?*/bin) ;; *) echo "pytest_aarch64.sh: refusing to replace '$BIN'" >&2; exit 1 ;; esac
rm -rf "$BIN"
mkdir -p "$BIN"
cat > "$BIN/python3" <<END_OF_WRAPPER
#!/bin/sh
# python3.11 for aarch64 from $DIR under qemu user mode (tools/pi/pytest_aarch64.sh)
export QEMU_LD_PREFIX='$DIR' QEMU_CPU='$CPU'
exec '$(command -v qemu-aarch64-static)' -0 "\$0" '$DIR/usr/bin/python3.11' "\$@"
END_OF_WRAPPER
chmod +x "$BIN/python3"
ln -s "$(command -v aarch64-linux-gnu-gcc)" "$BIN/aarch64-linux-gnu-gcc"

# ---- 3. the aarch64 wheels at this machine's versions --------------------------------------------
{ "$PY" -m pip list --format=freeze 2>/dev/null | grep -v '^-e ' || true
  echo "# wheels: ${WHEELS[*]}"; } > "$OUT/constraints.txt"  # a new wheel in the list reinstalls too
if ! cmp -s "$OUT/constraints.txt" "$OUT/site.stamp" || [ ! -d "$OUT/site" ]; then
  step "aarch64 wheels: ${WHEELS[*]}"
  plats=(--platform manylinux2014_aarch64)
  for v in $(seq 17 36); do plats+=(--platform "manylinux_2_${v}_aarch64"); done  # bookworm: glibc 2.36
  rm -rf "$OUT/site" "$OUT/site.stamp"
  "$PY" -m pip install -q --disable-pip-version-check --target "$OUT/site" --only-binary=:all: \
    --python-version 3.11 --implementation cp "${plats[@]}" -c "$OUT/constraints.txt" "${WHEELS[@]}" \
    2> >(grep -v -e 'is ignored: it is neither a file nor a directory' -e "Running pip as the 'root' user" >&2)
  cp "$OUT/constraints.txt" "$OUT/site.stamp"
fi
(cd "$OUT/site" && ls -d ./*.dist-info | sed 's|^\./||; s|\.dist-info$||' | tr '\n' ' '; echo) \
  > "$OUT/wheels.txt"
echo "   $(cat "$OUT/wheels.txt")"

# ---- 4. the extension, built for aarch64 by the emulated python's setuptools ---------------------
step "building rnnedge for aarch64 in $OUT/src"
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
# the source tree's files (tracked, or new and not ignored): no build output, venv or caches
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
    | tar -C "$ROOT" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$OUT/src" -xf -
else
  tar -C "$ROOT" -cf - --exclude=./build --exclude=./csrc/build --exclude='*.so' --exclude='*.o' \
    --exclude='__pycache__' --exclude='./.*' . | tar -C "$OUT/src" -xf -
fi
export PYTHONPATH="$OUT/src:$OUT/site"
(
  cd "$OUT/src"
  CC=aarch64-linux-gnu-gcc LDSHARED="aarch64-linux-gnu-gcc -shared" \
    CFLAGS="-I$DIR/usr/include/python3.11 -I$DIR/usr/include" \
    "$BIN/python3" setup.py build_ext --inplace > "$OUT/build.log" 2>&1
) || { tail -30 "$OUT/build.log"; echo "pytest_aarch64.sh: the aarch64 build failed" >&2; exit 1; }
so=$(ls "$OUT"/src/rnnedge/_rnnedge*.so)
flags=$(grep -E 'aarch64-linux-gnu-gcc .* -c csrc/vec\.c' "$OUT/build.log" | sed 's/.* -o [^ ]* //' || true)
variant=$(strings "$so" | grep -x -E 'neon-aarch64|scalar' | head -1 || true)
echo "   $(basename "$so"): $(aarch64-linux-gnu-readelf -h "$so" | sed -n 's/^ *Machine: *//p')"
echo "   _build.py's flags for vec.c: ${flags:-?}; SIMD variant compiled in: ${variant:-none}"
if [ "$variant" != neon-aarch64 ]; then
  echo "pytest_aarch64.sh: the aarch64 extension does not hold the NEON variant" >&2
  exit 1
fi

# ---- 5. pytest, emulated ---------------------------------------------------------------------------
case $mode in
  subset) pytest_args=("${PI_SUBSET[@]}" "${PI_DESELECT[@]}") ;;
  full) pytest_args=() ;;
esac
step "pytest on qemu-aarch64-static -cpu $CPU: ${pytest_args[*]:-every test}"
t=$(now)
rc=0
(
  cd "$OUT/src"
  PATH="$BIN" "$(command -v timeout)" "$PYTEST_TIMEOUT" "$BIN/python3" -m pytest -q -p no:cacheprovider \
    -rs --durations=10 -n "$JOBS" "${pytest_args[@]}"
) || rc=$?
echo "pytest_aarch64.sh: pytest exit $rc after $(( $(now) - t )) s; $(( $(now) - T0 )) s in all"
exit $rc

#!/usr/bin/env bash
# The C tests under AddressSanitizer + UndefinedBehaviorSanitizer (gcc and clang) and under
# valgrind, then the cffi extension built with both sanitizers and the pytest suite run on it
# (the thread stress test first, with more calls).
# Any report fails the run (-fno-sanitize-recover, --error-exitcode).
#
#   tools/sanitize.sh            (needs the test dependencies: run inside the CI venv)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
command -v valgrind >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }

echo "== C tests under ASan+UBSan"
for cc in gcc clang; do
  command -v "$cc" >/dev/null 2>&1 || continue
  make -s -C csrc CC="$cc" asan | tail -n 1
done

echo "== C tests under valgrind (an AVX2 build: valgrind does not emulate AVX-512)"
make -s -C csrc CC=gcc ARCH_FLAGS="-mavx2 -mfma" BUILD=valgrind all >/dev/null
for run in "test_rnnedge tests/data/c" "test_int tests/data/c/int" "test_vec" "test_qvec" \
           "test_ops tests/data/ops"; do
  set -- $run
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=all \
    "csrc/build/valgrind/$1" "${@:2}" | tail -n 1
done

echo "== pytest on an extension built with ASan+UBSan"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z | xargs -0 cp --parents -t "$work"
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
(cd "$work" && RNNEDGE_CFLAGS="-std=c99 -O1 -g $san" LDFLAGS="$san" \
  python setup.py -q build_ext --inplace >/dev/null 2>&1)
preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
# CPython keeps its arenas to the end: leak reports would be noise, the other checks stay on.
# A report goes to $work/sanitizer.log.PID (pytest's output capture would swallow it when it
# aborts the process) and is printed when the run fails.
sanitized() {
  (cd "$work" && LD_PRELOAD="$preload" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$work/sanitizer.log" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/sanitizer.log" \
    PYTHONPATH="$work" "$@") || { cat "$work"/sanitizer.log.* >&2 2>/dev/null; exit 1; }
}
# Threads hammering one stream and streams stepped in parallel (tests/test_concurrency.py), with
# more calls than the default run: a pooled output freed or reused under a C call is a
# heap-use-after-free report here. Bounded: a fixed number of calls, and a hang is killed.
echo "== threads on one stream, on the sanitized extension"
sanitized env RNNEDGE_STRESS_STEPS=20000 timeout 900 \
  python -m pytest -q -p no:cacheprovider tests/test_concurrency.py
# The rest of the suite in $(nproc) pytest-xdist workers (each its own sanitized python).
echo "== pytest on the sanitized extension"
sanitized python -m pytest -q -p no:cacheprovider -n "$(nproc)" tests --ignore=tests/test_bench.py \
  --ignore=tests/test_demo.py --ignore=tests/test_concurrency.py

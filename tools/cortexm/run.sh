#!/usr/bin/env bash
# tools/cortexm/run.sh - the C library on Cortex-M0, M3, M4F, M7 and M33 under qemu-system-arm.
#
#   tools/cortexm/run.sh [CORE...]      CORE: m0 m3 m4f m7 m33 (default: all); exits non-zero if
#                                       any build, check, test or example fails
#
#   core  flags (arm-none-eabi-gcc)                                       qemu -M      vectors
#   m0    -mcpu=cortex-m0 -mthumb -mfloat-abi=soft                        microbit     a subset*
#   m3    -mcpu=cortex-m3 -mthumb -mfloat-abi=soft                        mps2-an385   all
#   m4f   -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard      mps2-an386   all
#   m7    -mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard         mps2-an500   all
#   m33   -mcpu=cortex-m33 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard     mps2-an505   all
#   * the micro:bit has 256 KiB of flash and 16 KiB of RAM: the smallest cases that fit.
#
# For each core:
#  1. csrc/*.c compile freestanding (-ffreestanding $OPT, the csrc Makefile's warnings as errors)
#     into librnnedge.a; `arm-none-eabi-nm -u` must show, outside the library's own symbols,
#     only libgcc's helpers (__aeabi_*, __gnu_thumb1_case_*), memcpy/memset/memcmp/memmove and
#     the float path's libm functions (expf expm1f log1pf logf sqrtf fabsf erff powf); the integer step
#     path's objects (csrc/*_int.c and csrc/q*.c: qvec.c, qtables.c) no float helper and
#     no libm; no object may hold static mutable data (.data/.bss).
#  2. tools/cortexm/test_mcu.c runs tests/data/c's vectors (embedded by tools/make_mcu_vectors.py:
#     float models within the host's tolerance, integer models bit for bit, long integer streams
#     by CRC) under qemu with semihosting; it must print "N passed, 0 failed" and exit 0.
#  3. examples/firmware (the bundled activity LSTM exported by `rnnedge export-c`, f32 and int8)
#     builds and runs; its printed outputs must match the Python API's Stream.step.
#  4. Size probes: tools/cortexm/bench_mcu.c linked with the whole library, and "LSTM only" for
#     the f32 and int8 LSTMs: the library built with the configuration `rnnedge export-c
#     --no-fault-names` names for the model (the -DRNE_NO_* flags of docs/c-api.md "Build
#     configuration"); flash/RAM of the library part from the map; each program runs one step.
#  5. Instructions per rne_step (BENCH != none): a qemu TCG plugin (tools/cortexm/insn_count.c,
#     built against the qemu source's plugin header, fetched with apt-get source) counts the
#     instructions of N = 0 and N = BENCH_STEPS steps; the difference / BENCH_STEPS.
# Results: $OUT/summary.md (tables for docs/embedded.md), logs under $OUT/<core>/.
#
# Installs what it lacks with apt-get (as root): gcc-arm-none-eabi, libnewlib-arm-none-eabi (libm
# and memcpy & co.), qemu-system-arm. Needs python3 with the rnnedge package importable (the
# installed one, or the source tree with its compiled extension) and numpy, onnx.
# Environment: OUT (build/cortexm); OPT (-Os -fbuiltin: the library, tests, sizes and counts;
# -fbuiltin lets gcc expand memcpy & co. inline again after -ffreestanding); TEST2_OPT (-O2: the
# test again with the library built so, plain -ffreestanding; empty: not); QEMU_TIMEOUT (seconds
# per qemu run, 120); BENCH (full: hidden 32..512, about a minute; quick: 32 and 128; none: no
# counts; with full or quick a counting plugin that cannot be built fails the run);
# BENCH_STEPS (10); BENCH_QUANT (the benchmark models' formats, f32,int8; e.g. int8,int16);
# KEEP_ELF (non-empty: keep the benchmark programs, else only their maps and
# logs stay); MAX_NODES (8: -DRNE_MAX_NODES for every build), MAX_VALUES (16: -DRNE_MAX_VALUES);
# PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CM=tools/cortexm
OUT=$(realpath -m "${OUT:-build/cortexm}")
OPT=${OPT:--Os -fbuiltin}
TEST2_OPT=${TEST2_OPT--O2}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-120}
BENCH=${BENCH:-full}
BENCH_STEPS=${BENCH_STEPS:-10}
BENCH_QUANT=${BENCH_QUANT:-f32,int8}
PY=${PYTHON:-python3}
ALL_CORES="m0 m3 m4f m7 m33"
CORES="${*:-$ALL_CORES}"
M0_ARENA=9216            # test_mcu.c's arena on the micro:bit (16 KiB of RAM)
M0_VECTOR_FLASH=150000   # bytes of embedded vectors on the micro:bit (256 KiB of flash)
BIG_ARENA=1048576

# core -> "cpu name|flags|qemu machine|memory map"
spec() {
  case "$1" in
    m0)  echo "cortex-m0|-mcpu=cortex-m0 -mthumb -mfloat-abi=soft|microbit|mem-microbit.ld" ;;
    m3)  echo "cortex-m3|-mcpu=cortex-m3 -mthumb -mfloat-abi=soft|mps2-an385|mem-mps2.ld" ;;
    m4f) echo "cortex-m4f|-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard|mps2-an386|mem-mps2.ld" ;;
    m7)  echo "cortex-m7|-mcpu=cortex-m7 -mthumb -mfpu=fpv5-d16 -mfloat-abi=hard|mps2-an500|mem-an500.ld" ;;
    m33) echo "cortex-m33|-mcpu=cortex-m33 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard|mps2-an505|mem-an505.ld" ;;
    *) echo "run.sh: unknown core '$1' (cores: $ALL_CORES)" >&2; exit 2 ;;
  esac
}
for c in $CORES; do spec "$c" >/dev/null; done

# rne_model holds a copy of each node and value (rnnedge.h): firmware sets its capacity, here 8
# nodes and 16 values
# (every vector and benchmark model has at most 5), for the library and every program alike
MAX_NODES=${MAX_NODES:-8}
MAX_VALUES=${MAX_VALUES:-16}
STD="-std=c99 -ffp-contract=off -DRNE_MAX_NODES=$MAX_NODES -DRNE_MAX_VALUES=$MAX_VALUES"
WARN="-Wall -Wextra -Werror -Wdouble-promotion -Wshadow -Wconversion -Wpedantic"
FREE="-ffreestanding -ffunction-sections -fdata-sections"
CC=arm-none-eabi-gcc
FAILED=()
now() { date +%s; }
T0=$(now)

fail() { echo "FAIL $*"; FAILED+=("$*"); }

install_tools() {
  local pkgs=()
  command -v $CC >/dev/null 2>&1 || pkgs+=(gcc-arm-none-eabi)
  [ -f "$($CC -print-file-name=libm.a 2>/dev/null || echo none)" ] || pkgs+=(libnewlib-arm-none-eabi)
  command -v qemu-system-arm >/dev/null 2>&1 || pkgs+=(qemu-system-arm)
  [ ${#pkgs[@]} -eq 0 ] && return 0
  echo "== installing ${pkgs[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

# The plugin header from the qemu source package (apt-get source with a private list of deb-src
# entries, so that the machine's apt configuration stays as it is), then the plugin itself.
build_plugin() {
  local dir=$OUT/qemu-plugin hdr
  hdr=$dir/qemu-plugin.h
  mkdir -p "$dir"
  if [ ! -f "$hdr" ]; then
    local src=$dir/src key=/usr/share/keyrings/debian-archive-keyring.gpg
    rm -rf "$src"; mkdir -p "$src/lists/partial" "$src/parts"
    . /etc/os-release
    {
      echo "deb-src [signed-by=$key] http://deb.debian.org/debian ${VERSION_CODENAME} main"
      echo "deb-src [signed-by=$key] http://deb.debian.org/debian ${VERSION_CODENAME}-updates main"
      echo "deb-src [signed-by=$key] http://deb.debian.org/debian-security ${VERSION_CODENAME}-security main"
    } > "$src/sources.list"
    local o=(-o "Dir::Etc::SourceList=$src/sources.list" -o "Dir::Etc::SourceParts=$src/parts"
             -o "Dir::State::Lists=$src/lists")
    ( cd "$src" && apt-get "${o[@]}" update -qq && apt-get "${o[@]}" source --download-only -qq qemu ) \
      >"$dir/fetch.log" 2>&1 || { echo "cannot fetch the qemu source (see $dir/fetch.log)"; return 1; }
    tar -xJf "$src"/qemu_*.orig.tar.xz -C "$src" --wildcards '*/include/qemu/qemu-plugin.h' \
      && cp "$src"/qemu-*/include/qemu/qemu-plugin.h "$hdr" && rm -rf "$src" \
      || { echo "no include/qemu/qemu-plugin.h in the qemu source"; return 1; }
  fi
  gcc -std=c11 -O2 -Wall -Wextra -Werror -Wpedantic -fPIC -shared -I"$dir" $CM/insn_count.c -o "$dir/insn_count.so"
}

qemu_run() {   # machine elf log [extra qemu args...]; the guest's exit status
  local machine=$1 elf=$2 log=$3; shift 3
  timeout "$QEMU_TIMEOUT" qemu-system-arm -M "$machine" -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native"${SEMI_ARGS:-}" "$@" -kernel "$elf" >"$log" 2>&1
}

echo "== toolchain"
install_tools
$CC --version | head -1
qemu-system-arm --version | head -1
mkdir -p "$OUT"
PLUGIN=""
if [ "$BENCH" != none ]; then
  # no silent "no counts": without the plugin the run fails (BENCH=none runs without counts)
  if build_plugin; then PLUGIN=$OUT/qemu-plugin/insn_count.so; else
    fail "the instruction-count plugin (BENCH=$BENCH) did not build: no instruction counts (BENCH=none to run without them)"
  fi
fi

echo "== vectors and models"
$PY tools/make_mcu_vectors.py -o "$OUT/vectors-all.c" --arena $BIG_ARENA
$PY tools/make_mcu_vectors.py -o "$OUT/vectors-m0.c" --arena $M0_ARENA --flash $M0_VECTOR_FLASH 2>"$OUT/vectors-m0.txt"
head -1 "$OUT/vectors-m0.txt"
case "$BENCH" in
  full) HIDDEN=32,64,128,256,512 ;;
  quick) HIDDEN=32,128 ;;
  *) HIDDEN=32 ;;          # the size probes still need the H = 32 LSTMs
esac
$PY $CM/make_bench_models.py "$OUT/models" --hidden $HIDDEN --quant "$BENCH_QUANT" >/dev/null
$PY examples/firmware/make_firmware_data.py "$OUT/firmware"

# ---- one core ---------------------------------------------------------------------------------
check_symbols() {  # core dir: undefined symbols and static data of the library objects
  local core=$1 lib=$2 ext
  arm-none-eabi-nm -u "$lib"/*.o | awk 'NF == 2 {print $2}' | sort -u > "$lib/undefined.txt"
  arm-none-eabi-nm --defined-only "$lib"/*.o | awk 'NF == 3 {print $3}' | sort -u > "$lib/defined.txt"
  ext=$(comm -23 "$lib/undefined.txt" "$lib/defined.txt")
  echo "$ext" > "$lib/external.txt"
  echo "   needs from outside: $(echo $ext)"
  if echo "$ext" | grep -v -E '^(__aeabi_[a-z0-9]+|__gnu_thumb1_case_[a-z0-9]+|mem(cpy|set|cmp|move)|(expf|expm1f|log1pf|logf|sqrtf|fabsf|erff|powf))$' | grep -q .; then
    fail "$core: library objects need symbols outside libgcc, mem*, and the float path's libm"
  fi
  local qobjs=() f
  for f in "$lib"/*_int.o "$lib"/q*.o; do   # the integer step path (not the loader's blob_q.c)
    [ -f "$f" ] && qobjs+=("$f")
  done
  if [ ${#qobjs[@]} -gt 0 ]; then
    local qext
    qext=$(arm-none-eabi-nm -u "${qobjs[@]}" | awk 'NF == 2 {print $2}' | sort -u | comm -23 - "$lib/defined.txt")
    echo "   integer step path needs: $(echo $qext)"
    if echo "$qext" | grep -E '^(__aeabi_([fd][a-z0-9]+|[iu]l?2[fd]|[fd]2[a-z0-9]+)|expf|expm1f|log1pf|logf|sqrtf|fabsf|erff|powf)$' | grep -q .; then
      fail "$core: the integer step path calls a float helper or libm"
    fi
  fi
  if arm-none-eabi-nm --defined-only "$lib"/*.o | awk 'NF == 3 && $2 ~ /^[bBdDcCgGsS]$/' | grep -q .; then
    fail "$core: static mutable data in the library: $(arm-none-eabi-nm --defined-only -A "$lib"/*.o | awk '$2 ~ /^[bBdDcCgGsS]$/' | head -3)"
  fi
}

link() {  # flags ld out objects... : link a program with the library and newlib's libm/libc
  local flags=$1 ld=$2 out=$3; shift 3
  $CC $flags -nostdlib -L$CM -T"$ld" -Wl,--gc-sections -Wl,-Map="$out.map" "$@" \
    -Wl,--start-group -lm -lc_nano -lgcc -Wl,--end-group -o "$out"
}

build_lib() {  # core flags opt dir: csrc/*.c -> dir/lib/*.o and dir/librnnedge.a
  local core=$1 flags=$2 opt=$3 dir=$4 f
  mkdir -p "$dir/lib"
  for f in csrc/*.c; do
    $CC $STD $WARN $FREE $opt $flags -c "$f" -o "$dir/lib/$(basename "${f%.c}").o" \
      || { fail "$core: $f does not build with $opt"; return 1; }
  done
  rm -f "$dir/librnnedge.a"
  arm-none-eabi-ar rcs "$dir/librnnedge.a" "$dir"/lib/*.o
}

run_test() {  # core name flags machine ld opt libdir: test_mcu on this core's vectors
  local core=$1 name=$2 flags=$3 machine=$4 ld=$5 opt=$6 dir=$7 arena vectors
  if [ "$core" = m0 ]; then arena=$M0_ARENA; vectors=$OUT/vectors-m0.c; else arena=$BIG_ARENA; vectors=$OUT/vectors-all.c; fi
  $CC $STD $WARN $FREE $opt $flags -DMCU_CORE="\"$name\"" -DMCU_ARENA=$arena -Icsrc -I$CM \
    -c $CM/test_mcu.c -o "$dir/test_mcu.o"
  $CC $STD $FREE $opt $flags -I$CM -c "$vectors" -o "$dir/vectors.o"
  if ! link "$flags" "$ld" "$dir/test.elf" "${RT[@]}" "$dir/test_mcu.o" "$dir/vectors.o" "$dir/librnnedge.a"; then
    fail "$core: test_mcu ($opt) does not link"
    return
  fi
  local t rc=0 summary
  t=$(now)
  qemu_run "$machine" "$dir/test.elf" "$dir/test.log" || rc=$?
  grep -E '^(FAIL|FAULT)' "$dir/test.log" | head -20 || true
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$dir/test.log" | tail -1 || true)
  echo "   test ($opt): ${summary:-no summary} (exit $rc, $(( $(now) - t )) s; log $dir/test.log)"
  [ "$rc" -eq 0 ] && [ -n "$summary" ] && [ "${summary#* passed, }" = "0 failed" ] || fail "$core: test_mcu ($opt)"
  echo "$core test ${opt// /_} ${summary:-no summary}" >> "$OUT/results.txt"
}

run_core() {
  local core=$1 name flags machine ld dir f
  IFS='|' read -r name flags machine ld <<<"$(spec "$core")"
  dir=$OUT/$core
  rm -rf "$dir"; mkdir -p "$dir"
  echo "== $core: $name ($flags) on qemu -M $machine"
  build_lib "$core" "$flags" "$OPT" "$dir" || return 0
  arm-none-eabi-size -t "$dir"/lib/*.o > "$dir/objects-size.txt"
  check_symbols "$core" "$dir/lib"

  # the runtime pieces of every program on this core
  RT=()
  for f in startup semihost; do
    $CC $STD $WARN $FREE $OPT $flags -I$CM -c $CM/$f.c -o "$dir/$f.o"
    RT+=("$dir/$f.o")
  done

  # 2. the test vectors, with the library built with $OPT and again with $TEST2_OPT
  run_test "$core" "$name" "$flags" "$machine" "$ld" "$OPT" "$dir"
  if [ -n "$TEST2_OPT" ] && build_lib "$core" "$flags" "$TEST2_OPT" "$dir/opt2"; then
    run_test "$core" "$name" "$flags" "$machine" "$ld" "$TEST2_OPT" "$dir/opt2"
  fi

  # 3. the firmware example, f32 and int8
  local q
  for q in f32 int8; do
    local fw=$dir/firmware-$q
    mkdir -p "$fw"
    if $CC $STD $WARN $OPT $flags -Icsrc -I$CM -I"$OUT/firmware/$q" -Iexamples/firmware \
         -c examples/firmware/main.c -o "$fw/main.o" &&
       $CC $STD $WARN $FREE $OPT $flags -I$CM -c examples/firmware/qemu_retarget.c -o "$fw/retarget.o" &&
       link "$flags" "$ld" "$fw/firmware.elf" "${RT[@]}" "$fw/main.o" "$fw/retarget.o" "$dir/librnnedge.a"; then
      local rc=0
      qemu_run "$machine" "$fw/firmware.elf" "$fw/run.log" || rc=$?
      # an integer model's program computes no float: on a core without an FPU (M0, M3) float
      # arithmetic would be calls to the soft-float helpers, and main.o calls none
      local soft
      soft=$(arm-none-eabi-nm -u "$fw/main.o" | awk '{print $2}' | { grep -E '^__aeabi_(c?[fd]|u?[il]2[fd])' || true; } | tr '\n' ' ')
      if [ "$q" = int8 ] && [ -n "$soft" ]; then
        fail "$core: firmware example ($q) calls soft-float helpers: $soft"
      fi
      if [ "$rc" -eq 0 ] && $PY examples/firmware/check_output.py "$OUT/firmware/$q" "$fw/run.log"; then
        echo "   firmware example ($q): ok ($(grep -c '^step' "$fw/run.log") outputs match the Python API$([ "$q" = int8 ] && echo ', no float in main.o'))"
      else
        sed 's/^/     /' "$fw/run.log" | tail -5
        fail "$core: firmware example ($q)"
      fi
    else
      fail "$core: firmware example ($q) does not build"
    fi
  done

  # 4 and 5. size probes and instruction counts on the benchmark models (the micro:bit's arena:
  # 10 KiB, which its largest benchmark model, lstm-128-int8, fits with its 1.3 KiB rne_model)
  $CC $STD $WARN $FREE $OPT $flags -DMCU_ARENA=$([ "$core" = m0 ] && echo 10240 || echo 65536) \
    -Icsrc -I$CM -c $CM/bench_mcu.c -o "$dir/bench_mcu.o"
  local model blob variant lib cfg key
  for model in $(tail -n +2 "$OUT/models/models.tsv" | cut -f1); do
    blob=$OUT/models/$model.rne
    printf '\t.section .rodata.model,"a"\n\t.balign 64\n\t.global bench_blob\nbench_blob:\n\t.incbin "%s"\nbench_blob_end:\n\t.section .rodata\n\t.balign 4\n\t.global bench_blob_size\nbench_blob_size:\n\t.word bench_blob_end - bench_blob\n' \
      "$blob" > "$dir/$model.S"
    $CC $flags -c "$dir/$model.S" -o "$dir/$model.blob.o"
    for variant in all lstm-only; do
      lib=$dir/librnnedge.a
      if [ "$variant" = lstm-only ]; then
        case "$model" in
          lstm-*-f32|lstm-*-int8) ;;
          *) continue ;;
        esac
        # the library for this model alone: the flags export-c writes into its header (run from
        # $dir: from the checkout root, `python -m rnnedge` would find the checkout's rnnedge/,
        # which has no compiled module unless built in place, instead of the installed package)
        (cd "$dir" && $PY -m rnnedge export-c "$blob" -o "$dir/$model.h" --no-fault-names >/dev/null)
        cfg=$(sed -n 's/^#define [A-Z0-9_]*_RNE_CFLAGS "\(.*\)".*/\1/p' "$dir/$model.h")
        [ -n "$cfg" ] || { fail "$core: export-c names no configuration for $model"; continue; }
        key=only-$(printf '%s' "$cfg" | md5sum | cut -c1-8)      # one build per configuration
        if [ ! -f "$dir/$key/librnnedge.a" ]; then
          build_lib "$core" "$flags $cfg" "$OPT" "$dir/$key" || continue
          echo "   $model: library built with $cfg"
        fi
        lib=$dir/$key/librnnedge.a
      fi
      local elf=$dir/bench-$model-$variant.elf
      if ! link "$flags" "$ld" "$elf" "${RT[@]}" "$dir/bench_mcu.o" "$dir/$model.blob.o" \
             "$lib" 2>"$elf.ldlog"; then
        if grep -q "overflowed\|will not fit" "$elf.ldlog"; then
          echo "$core $model $variant nofit flash" >> "$OUT/results.txt"
          continue
        fi
        cat "$elf.ldlog"; fail "$core: bench $model $variant does not link"; continue
      fi
      local sizes steps_insns="-" rc=0
      sizes=$($PY $CM/mapsize.py "$elf.map")
      # one step must run (the LSTM-only programs prove the LSTM path is complete)
      SEMI_ARGS=",arg=bench,arg=1" qemu_run "$machine" "$elf" "$elf.log" || rc=$?
      if [ "$rc" -ne 0 ] && grep -q "^bench: nofit" "$elf.log"; then
        echo "$core $model $variant nofit ram" >> "$OUT/results.txt"
        continue
      elif [ "$rc" -ne 0 ]; then
        sed 's/^/     /' "$elf.log" | tail -3; fail "$core: bench $model $variant"; continue
      fi
      if [ -n "$PLUGIN" ] && [ "$variant" = all ]; then
        local n0 n1
        SEMI_ARGS=",arg=bench,arg=0" qemu_run "$machine" "$elf" "$elf.log0" \
          -plugin "$PLUGIN,outfile=$elf.count0" || rc=$?
        SEMI_ARGS=",arg=bench,arg=$BENCH_STEPS" qemu_run "$machine" "$elf" "$elf.logn" \
          -plugin "$PLUGIN,outfile=$elf.countn" || rc=$?
        if [ "$rc" -eq 0 ] && [ -s "$elf.count0" ] && [ -s "$elf.countn" ]; then
          n0=$(cat "$elf.count0"); n1=$(cat "$elf.countn")
          steps_insns=$(( (n1 - n0) / BENCH_STEPS ))
        else
          fail "$core: instruction count of $model"
        fi
      fi
      echo "$core $model $variant $sizes insns_per_step=$steps_insns $(head -1 "$elf.log")" >> "$OUT/results.txt"
      [ -n "${KEEP_ELF:-}" ] || rm -f "$elf"      # megabytes each with a big model; the map stays
    done
    rm -f "$dir/$model.blob.o"
  done
  echo "   size probes and instruction counts: $(grep -c "^$core .* all " "$OUT/results.txt" || true) models ($(( $(now) - T0 )) s so far)"
}

rm -f "$OUT/results.txt"
for core in $CORES; do
  run_core "$core"
done

echo "== summary"
$PY $CM/summarize.py "$OUT/results.txt" "$OUT/models/models.tsv" "$OPT" > "$OUT/summary.md"
cat "$OUT/summary.md"
echo "run.sh: $(( $(now) - T0 )) s"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "run.sh: ${#FAILED[@]} failure(s):"
  printf '  %s\n' "${FAILED[@]}"
  exit 1
fi
echo "run.sh: every core passed"

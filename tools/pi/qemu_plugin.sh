#!/usr/bin/env bash
# tools/pi/qemu_plugin.sh - build the instruction-counting qemu TCG plugin (tools/cortexm/insn_count.c)
# for the qemu installed here.
#
#   tools/pi/qemu_plugin.sh DIR      writes DIR/insn_count.so (and keeps DIR/qemu-plugin.h)
#
# The plugin API header, include/qemu/qemu-plugin.h, is not packaged: it comes from the qemu source
# package of the same Debian release (apt-get source --download-only, with a private list of
# deb-src entries, so the machine's apt configuration stays as it is; no root needed). qemu refuses
# a plugin built against another plugin API version, so a mismatch shows at the first run. The
# header is fetched once per DIR. Load the plugin into the dynamic qemu-aarch64 / qemu-arm (package
# qemu-user) or qemu-system-*: the -static user-mode emulators cannot load plugins.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 1 ] || { echo "usage: tools/pi/qemu_plugin.sh DIR" >&2; exit 2; }
dir=$(realpath -m "$1")
hdr=$dir/qemu-plugin.h
mkdir -p "$dir"
if [ ! -f "$hdr" ]; then
  src=$dir/src
  key=/usr/share/keyrings/debian-archive-keyring.gpg
  rm -rf "$src"
  mkdir -p "$src/lists/partial" "$src/parts"
  . /etc/os-release
  {
    echo "deb-src [signed-by=$key] http://deb.debian.org/debian ${VERSION_CODENAME} main"
    echo "deb-src [signed-by=$key] http://deb.debian.org/debian ${VERSION_CODENAME}-updates main"
    echo "deb-src [signed-by=$key] http://deb.debian.org/debian-security ${VERSION_CODENAME}-security main"
  } > "$src/sources.list"
  o=(-o "Dir::Etc::SourceList=$src/sources.list" -o "Dir::Etc::SourceParts=$src/parts"
     -o "Dir::State::Lists=$src/lists")
  if ! ( cd "$src" && apt-get "${o[@]}" update -qq && apt-get "${o[@]}" source --download-only -qq qemu ) \
       > "$dir/fetch.log" 2>&1; then
    echo "qemu_plugin.sh: cannot fetch the qemu source package (see $dir/fetch.log)" >&2
    exit 1
  fi
  if ! tar -xJf "$src"/qemu_*.orig.tar.xz -C "$src" --wildcards '*/include/qemu/qemu-plugin.h'; then
    echo "qemu_plugin.sh: no include/qemu/qemu-plugin.h in $(ls "$src"/qemu_*.orig.tar.xz)" >&2
    exit 1
  fi
  cp "$src"/qemu-*/include/qemu/qemu-plugin.h "$hdr"
  ls "$src"/qemu_*.dsc | sed 's/.*qemu_\(.*\)\.dsc/\1/' > "$dir/qemu-source-version"
  rm -rf "$src"
fi
gcc -std=c11 -O2 -Wall -Wextra -Werror -Wpedantic -fPIC -shared -I"$dir" tools/cortexm/insn_count.c \
  -o "$dir/insn_count.so"

#!/bin/sh
# Runs the qcow2 fuzzer's seed corpus and every regression image through
# it once (a crash, hang or sanitizer report fails the test).
set -eu
srcdir=${top_srcdir:-$(dirname "$0")/../..}
fuzz=${top_builddir:-.}/tests/fuzz/fuzz-qcow2
[ -x "$fuzz" ] || { echo "replay.sh: $fuzz missing" >&2; exit 99; }
set -- "$srcdir"/tests/fuzz/corpus/*.qcow2
for f in "$srcdir"/tests/fuzz/regressions/*.qcow2; do
    [ -e "$f" ] && set -- "$@" "$f"
done
exec timeout 300 "$fuzz" --replay "$@"

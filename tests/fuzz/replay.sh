#!/bin/sh
# Runs each fuzzer's seed corpus and every regression input through it
# once (a crash, hang or sanitizer report fails the test): the qcow2
# fuzzer's images, the NBD server fuzzer's client streams.
set -eu
srcdir=${top_srcdir:-$(dirname "$0")/../..}
build=${top_builddir:-.}
for fuzz in fuzz-qcow2 fuzz-nbd-server; do
    [ -x "$build/tests/fuzz/$fuzz" ] ||
        { echo "replay.sh: $build/tests/fuzz/$fuzz missing" >&2; exit 99; }
done
set -- "$srcdir"/tests/fuzz/corpus/*.qcow2
for f in "$srcdir"/tests/fuzz/regressions/*.qcow2; do
    [ -e "$f" ] && set -- "$@" "$f"
done
timeout 300 "$build/tests/fuzz/fuzz-qcow2" --replay "$@"
set -- "$srcdir"/tests/fuzz/nbd-corpus/*.nbd
for f in "$srcdir"/tests/fuzz/regressions/*.nbd; do
    [ -e "$f" ] && set -- "$@" "$f"
done
exec timeout 120 "$build/tests/fuzz/fuzz-nbd-server" --replay "$@"

#!/bin/sh
# Event loop benchmark: coroutines waiting for IORING_OP_NOP at queue depth
# 32 against a plain liburing loop doing the same NOPs (same ring set-up),
# alternating runs; then cross-thread hops between two iothreads.  Prints
# medians, the ratio and the target of issue 3.
#
# usage: tests/bench/aio.sh [ROUNDS [NOPS [HOPS]]]   (from the build tree)
# Exit status: 0 target met, 1 target missed, 2 the benchmark failed.
set -eu
. "$(dirname "$0")/lib.sh"

rounds=${1:-7}
nops=${2:-2000000}
hops=${3:-300000}
bench=tests/bench/bench-aio
[ -x "$bench" ] || bench=$(dirname "$0")/bench-aio
[ -x "$bench" ] || { echo "aio.sh: bench-aio missing: run make first" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The NOP runs are single-threaded: pin them to one CPU, both alike, so that
# the scheduler moving them between CPUs does not add to the noise.
pin=
command -v taskset >/dev/null 2>&1 && pin="taskset -c $(($(nproc) - 1))"

i=1
while [ "$i" -le "$rounds" ]; do
    $pin "$bench" nop "$nops" coblk >>"$out/nop" || exit 2
    $pin "$bench" nop "$nops" plain >>"$out/nop" || exit 2
    "$bench" hops "$hops" >>"$out/hops" || exit 2
    i=$((i + 1))
done


coblk=$(median "$out/nop" nop_coblk)
plain=$(median "$out/nop" nop_plain)
ratio=$(awk -v c="$coblk" -v p="$plain" 'BEGIN { printf "%.2f", c / p }')
echo "event loop benchmark: $rounds alternating rounds, medians"
echo "NOP at QD32, coroutines:        $coblk ns/NOP"
echo "NOP at QD32, plain liburing:    $plain ns/NOP"
echo "coroutine machinery overhead:   $(awk -v c="$coblk" -v p="$plain" 'BEGIN { printf "%.1f", c - p }') ns/NOP (ratio $ratio)"
echo "cross-thread hops per second:   $(median "$out/hops" hops_per_sec)"
target "NOP ratio coblk / plain" "$ratio" "<=" 1.3
exit $status

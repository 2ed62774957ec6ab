#!/bin/sh
# coblk-bench against its peers (issue 5), one machine, alternating runs:
# 4k random reads, QD32, O_DIRECT, on a 1 GiB sparse file (the software
# path: no device I/O), default options (full latency statistics):
#   coblk-bench  vs  fio's io_uring engine with the same command line,
#                    a plain liburing loop (tests/bench/bench-queue plain),
#                    qemu-img bench (QEMU's coroutine block layer);
# and the null engine against fio's null engine.
#
# usage: tests/bench/compare-fio.sh [ROUNDS [SECONDS]]   (from the build tree)
# Exit status: 0 targets met, 1 a target missed, 2 the benchmark failed.
set -eu
. "$(dirname "$0")/lib.sh"

rounds=${1:-3}
seconds=${2:-5}
bench=tools/coblk-bench
floor=tests/bench/bench-queue
for p in "$bench" "$floor"; do
    [ -x "$p" ] || { echo "compare-fio.sh: $p missing: run make first" >&2; exit 2; }
done
command -v fio >/dev/null 2>&1 || { echo "compare-fio.sh: fio is not installed" >&2; exit 2; }
out=$(mktemp -d)
image=/var/tmp/coblk-compare.$$.img
trap 'rm -rf "$out" "$image"' EXIT
truncate -s 1G "$image"

job="--name=rr --filename=$image --rw=randread --bs=4k --iodepth=32 --direct=1 --time_based --runtime=$seconds"
json_iops() { grep -m1 '"iops"' | sed 's/.*: \([0-9.]*\).*/\1/'; }
have_qemu=false
command -v qemu-img >/dev/null 2>&1 && have_qemu=true

i=1
while [ "$i" -le "$rounds" ]; do
    # shellcheck disable=SC2086
    echo "coblk $("$bench" $job --output-format=json | json_iops)" >>"$out/r" || exit 2
    # shellcheck disable=SC2086
    echo "fio $(fio $job --ioengine=io_uring --output-format=json | json_iops)" >>"$out/r" || exit 2
    echo "plain $("$floor" plain "$image" $((seconds * 2000000)) | awk '/^iops/ { print $2 }')" >>"$out/r" || exit 2
    if $have_qemu; then
        count=$((seconds * 400000))
        took=$(qemu-img bench -f raw -t none -i io_uring -d 32 -s 4k -c "$count" "$image" |
               sed -n 's/.*completed in \([0-9.]*\) seconds.*/\1/p')
        echo "qemu $(awk -v c="$count" -v t="$took" 'BEGIN { printf "%.0f", c / t }')" >>"$out/r"
    fi
    echo "coblk_null $("$bench" --name=n --ioengine=null --size=1G --rw=randread --bs=4k --iodepth=32 --time_based --runtime="$seconds" --output-format=json | json_iops)" >>"$out/r"
    echo "fio_null $(fio --name=n --ioengine=null --size=1G --rw=randread --bs=4k --iodepth=32 --time_based --runtime="$seconds" --output-format=json | json_iops)" >>"$out/r"
    i=$((i + 1))
done

ratio() { awk -v a="$(median "$out/r" "$1")" -v b="$(median "$out/r" "$2")" 'BEGIN { printf "%.2f", a / b }'; }

echo "4k randread QD32 O_DIRECT, 1 GiB sparse file, $rounds alternating rounds of ${seconds}s, median IOPS"
for who in coblk fio plain qemu coblk_null fio_null; do
    grep -q "^$who " "$out/r" && printf '%-11s %12.0f\n' "$who" "$(median "$out/r" "$who")"
done
target "coblk-bench / fio io_uring" "$(ratio coblk fio)" ">=" 1.8
target "coblk-bench / plain liburing loop" "$(ratio coblk plain)" ">=" 0.7
if $have_qemu; then
    target "coblk-bench / qemu-img bench" "$(ratio coblk qemu)" ">=" 2.5
else
    echo "qemu-img not installed: no comparison with QEMU's block layer"
fi
target "coblk-bench null / fio null" "$(ratio coblk_null fio_null)" ">=" 2.5
exit $status

#!/bin/sh
# coblk-bench against its peers (issue 5), one machine, alternating runs:
# 4k random reads, QD32, O_DIRECT, on a 1 GiB sparse file (the software
# path: no device I/O), twice:
#   defaults (full latency statistics, fio's one completion per reap):
#     coblk-bench  vs  fio's io_uring engine with the same command line,
#                      a plain liburing loop (tests/bench/bench-queue plain),
#                      qemu-img bench (QEMU's coroutine block layer);
#   fio's best options on both sides ($best below: registered buffers and
#   files, no random map, no latency statistics, batches of 32):
#     coblk-bench  vs  fio's io_uring engine;
# and the null engine against fio's null engine, with defaults and with
# the best options that apply to it.
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
for c in fio python3; do
    command -v "$c" >/dev/null 2>&1 || { echo "compare-fio.sh: $c is not installed" >&2; exit 2; }
done
out=$(mktemp -d)
image=/var/tmp/coblk-compare.$$.img
trap 'rm -rf "$out" "$image"' EXIT
truncate -s 1G "$image"

job="--name=rr --filename=$image --rw=randread --bs=4k --iodepth=32 --direct=1 --time_based --runtime=$seconds"
null_job="--name=n --ioengine=null --size=1G --rw=randread --bs=4k --iodepth=32 --time_based --runtime=$seconds"
# fio's own best for this job; registered buffers and files are io_uring
# engine options, which fio refuses with its null engine.
best_generic="--norandommap --gtod_reduce=1 --iodepth_batch_submit=32 --iodepth_batch_complete_max=32"
best="--fixedbufs --registerfiles $best_generic"
have_qemu=false
command -v qemu-img >/dev/null 2>&1 && have_qemu=true

# record NAME COMMAND...: runs a fio-like command with JSON output and
# records its read IOPS as "NAME IOPS"; exits 2 if it fails.  Its stderr
# is kept (coblk-bench says once per run what it ignores) and shown once.
record() {
    name=$1
    shift
    if ! "$@" --output-format=json >"$out/json" 2>>"$out/stderr"; then
        echo "compare-fio.sh: $name failed:" >&2
        cat "$out/stderr" >&2
        exit 2
    fi
    iops=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"])' "$out/json") ||
        exit 2
    echo "$name $iops" >>"$out/r"
}

i=1
while [ "$i" -le "$rounds" ]; do
    # shellcheck disable=SC2086
    record coblk "$bench" $job
    # shellcheck disable=SC2086
    record fio fio $job --ioengine=io_uring
    # shellcheck disable=SC2086
    record coblk_best "$bench" $job $best
    # shellcheck disable=SC2086
    record fio_best fio $job --ioengine=io_uring $best
    "$floor" plain "$image" $((seconds * 2000000)) >"$out/plain" || exit 2
    awk '/^iops/ { print "plain", $2 }' "$out/plain" >>"$out/r"
    if $have_qemu; then
        count=$((seconds * 400000))
        qemu-img bench -f raw -t none -i io_uring -d 32 -s 4k -c "$count" \
            "$image" >"$out/qemu" || exit 2
        took=$(sed -n 's/.*completed in \([0-9.]*\) seconds.*/\1/p' "$out/qemu")
        echo "qemu $(awk -v c="$count" -v t="$took" 'BEGIN { printf "%.0f", c / t }')" >>"$out/r"
    fi
    # shellcheck disable=SC2086
    record coblk_null "$bench" $null_job
    # shellcheck disable=SC2086
    record fio_null fio $null_job
    # shellcheck disable=SC2086
    record coblk_null_best "$bench" $null_job $best_generic
    # shellcheck disable=SC2086
    record fio_null_best fio $null_job $best_generic
    i=$((i + 1))
done

ratio() { awk -v a="$(median "$out/r" "$1")" -v b="$(median "$out/r" "$2")" 'BEGIN { printf "%.2f", a / b }'; }

sort -u "$out/stderr"
echo "4k randread QD32 O_DIRECT, 1 GiB sparse file, $rounds alternating rounds of ${seconds}s, median IOPS"
echo "best options: $best"
for who in coblk fio plain qemu coblk_best fio_best coblk_null fio_null \
           coblk_null_best fio_null_best; do
    grep -q "^$who " "$out/r" && printf '%-16s %12.0f\n' "$who" "$(median "$out/r" "$who")"
done
echo "defaults on both sides:"
target "coblk-bench / fio io_uring" "$(ratio coblk fio)" ">=" 1.8
target "coblk-bench / plain liburing loop" "$(ratio coblk plain)" ">=" 0.85
if $have_qemu; then
    target "coblk-bench / qemu-img bench" "$(ratio coblk qemu)" ">=" 2.5
else
    echo "qemu-img not installed: no comparison with QEMU's block layer"
fi
target "coblk-bench null / fio null" "$(ratio coblk_null fio_null)" ">=" 2.5
echo "fio's best options on both sides:"
target "coblk-bench / fio io_uring" "$(ratio coblk_best fio_best)" ">=" 1.1
echo "ratio:         coblk-bench / plain liburing loop = $(ratio coblk_best plain)"
echo "ratio:         coblk-bench null / fio null = $(ratio coblk_null_best fio_null_best)"
exit $status

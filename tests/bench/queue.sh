#!/bin/sh
# Queue API benchmark (issue 4): 4 KiB random reads at queue depth 32 on one
# thread, alternating runs, medians and ratios.
#   null: coblk's null driver against fio's null ioengine (same depth);
#   file: coblk on a 1 GiB sparse file with O_DIRECT against a plain
#         liburing loop doing the same reads (the floor).
#
# usage: tests/bench/queue.sh [ROUNDS [REQUESTS]]   (from the build tree)
# Exit status: 0 target met, 1 target missed, 2 the benchmark failed.
set -eu
. "$(dirname "$0")/lib.sh"

rounds=${1:-5}
requests=${2:-5000000}
bench=tests/bench/bench-queue
[ -x "$bench" ] || bench=$(dirname "$0")/bench-queue
[ -x "$bench" ] || { echo "queue.sh: bench-queue missing: run make first" >&2; exit 2; }
out=$(mktemp -d)
image=/var/tmp/coblk-queue-bench.$$.img
trap 'rm -rf "$out" "$image"' EXIT
truncate -s 1G "$image"

pin=
command -v taskset >/dev/null 2>&1 && pin="taskset -c $(($(nproc) - 1))"
have_fio=false
command -v fio >/dev/null 2>&1 && have_fio=true

# fio's terse output: field 8 is read IOPS.
fio_null_iops() {
    $pin fio --name=null --ioengine=null --size=1G --bs=4k --rw=randread \
        --iodepth=32 --time_based --runtime=2 --minimal |
        awk -F';' '{ print "iops", $8 }'
}

i=1
while [ "$i" -le "$rounds" ]; do
    $pin "$bench" coblk null:size=1G "$requests" | sed 's/^/null_/' \
        >>"$out/coblk" || exit 2
    if $have_fio; then
        fio_null_iops | sed 's/^/null_/' >>"$out/fio" || exit 2
    fi
    $pin "$bench" coblk "file:$image" $((requests / 5)) | sed 's/^/file_/' \
        >>"$out/coblk" || exit 2
    $pin "$bench" plain "$image" $((requests / 5)) | sed 's/^/file_/' \
        >>"$out/plain" || exit 2
    i=$((i + 1))
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
coblk_null=$(median "$out/coblk" null_iops)
coblk_file=$(median "$out/coblk" file_iops)
plain_file=$(median "$out/plain" file_iops)
echo "queue benchmark: 4k random reads, QD32, $rounds alternating rounds, medians"
echo "null, coblk:           $coblk_null IOPS ($(median "$out/coblk" null_ns_per_req) ns/request)"
echo "file O_DIRECT, coblk:  $coblk_file IOPS ($(median "$out/coblk" file_ns_per_req) ns/request)"
echo "file O_DIRECT, plain:  $plain_file IOPS ($(median "$out/plain" file_ns_per_req) ns/request)"
echo "coblk / plain liburing (file): $(ratio "$coblk_file" "$plain_file")"
if ! $have_fio; then
    echo "fio not installed: no comparison with its null engine"
    exit 0
fi
fio_null=$(median "$out/fio" null_iops)
r=$(ratio "$coblk_null" "$fio_null")
echo "null, fio:             $fio_null IOPS"
target "coblk / fio null" "$r" ">=" 2.5
exit $status

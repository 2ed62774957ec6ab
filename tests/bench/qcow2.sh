#!/bin/sh
# qcow2 benchmark (the block graph issue), one machine, alternating runs,
# medians and ratios, all with O_DIRECT at queue depth 32:
#   reads:  4k random reads of a fully allocated 1 GiB qcow2 (64 KiB
#           clusters, preallocation=metadata: a sparse file, so the
#           software path) through coblk's queue API, against
#           `qemu-img bench -f qcow2` with the same depth, size and count;
#   raw:    the same reads of a 1 GiB raw image (raw:file:), against which
#           qcow2 is measured;
#   writes: 4k writes 64 KiB apart into a fresh 1 GiB qcow2, so that every
#           write allocates a cluster, against `qemu-img bench -w -S 64k`.
#
# usage: tests/bench/qcow2.sh [ROUNDS [READS [WRITES]]]   (from the build tree)
# Exit status: 0 targets met, 1 a target missed, 2 the benchmark failed.
set -eu
. "$(dirname "$0")/lib.sh"

rounds=${1:-3}
reads=${2:-2000000}
writes=${3:-16384}
bench=tests/bench/bench-queue
[ -x "$bench" ] || { echo "qcow2.sh: $bench missing: run make first" >&2; exit 2; }
command -v qemu-img >/dev/null 2>&1 ||
    { echo "qcow2.sh: qemu-img is not installed" >&2; exit 2; }
out=$(mktemp -d)
dir=$(mktemp -d /var/tmp/coblk-qcow2-bench.XXXXXX)
trap 'rm -rf "$out" "$dir"' EXIT
qemu-img create -q -f qcow2 -o preallocation=metadata "$dir/full.qcow2" 1G
truncate -s 1G "$dir/raw.img"

pin=
command -v taskset >/dev/null 2>&1 && pin="taskset -c $(($(nproc) - 1))"

# qemu-img bench prints "Run completed in X seconds."
qemu_iops() {  # count, qemu-img bench arguments...
    count=$1
    shift
    $pin qemu-img bench -q -c "$count" -d 32 -s 4k -t none -i io_uring "$@" 2>&1 |
        awk -v n="$count" '/Run completed in/ { printf "iops %.0f\n", n / $4 }'
}

fresh() {
    rm -f "$dir/new.qcow2"
    qemu-img create -q -f qcow2 "$dir/new.qcow2" 1G
}

i=1
while [ "$i" -le "$rounds" ]; do
    $pin "$bench" coblk "qcow2:$dir/full.qcow2" "$reads" |
        sed 's/^/read_/' >>"$out/coblk" || exit 2
    qemu_iops "$reads" -f qcow2 "$dir/full.qcow2" |
        sed 's/^/read_/' >>"$out/qemu" || exit 2
    $pin "$bench" coblk "raw:file:$dir/raw.img" "$reads" |
        sed 's/^/raw_/' >>"$out/coblk" || exit 2
    fresh
    $pin "$bench" coblk-write "qcow2:$dir/new.qcow2" "$writes" 65536 |
        sed 's/^/write_/' >>"$out/coblk" || exit 2
    fresh
    qemu_iops "$writes" -w -S 64k -f qcow2 "$dir/new.qcow2" |
        sed 's/^/write_/' >>"$out/qemu" || exit 2
    i=$((i + 1))
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
coblk_read=$(median "$out/coblk" read_iops)
qemu_read=$(median "$out/qemu" read_iops)
coblk_raw=$(median "$out/coblk" raw_iops)
coblk_write=$(median "$out/coblk" write_iops)
qemu_write=$(median "$out/qemu" write_iops)
echo "qcow2 benchmark: QD32, O_DIRECT, $rounds alternating rounds, median IOPS"
echo "4k random reads, allocated qcow2:  coblk $coblk_read, qemu-img bench $qemu_read"
echo "4k random reads, raw image:        coblk $coblk_raw"
echo "4k allocating writes, fresh qcow2: coblk $coblk_write, qemu-img bench $qemu_write"
target "qcow2 reads, coblk / qemu-img bench" "$(ratio "$coblk_read" "$qemu_read")" ">=" 2
target "allocating writes, coblk / qemu-img bench" \
    "$(ratio "$coblk_write" "$qemu_write")" ">=" 1.5
target "coblk reads, qcow2 / raw" "$(ratio "$coblk_read" "$coblk_raw")" ">=" 0.8
exit $status

#!/bin/sh
# coblk-img against qemu-img on one machine, alternating runs, medians of
# wall-clock seconds and their ratios (coblk-img / qemu-img):
#   convert qcow2 -> raw and raw -> qcow2 of a 1 GiB image holding data
#           (shared libraries: compressible), zeroes written as data,
#           random data, zero clusters and unallocated space;
#   convert -C (copy offload) qcow2 -> raw, no target: for the record;
#   convert -c into qcow2, zlib and zstd;
#   compare of the image with its raw copy;
#   bench: reads (-t none, a sparse file: the software path) and writes
#           (through the page cache) of qcow2 and raw, qemu-img bench's
#           options on both sides, IOPS;
#   info and map of a 256 TiB sparse image, under a 1 GiB address-space
#           limit (seconds, not ratios: qemu-img is not limited).
#
# usage: tests/bench/img.sh [ROUNDS]   (from the build tree)
# Exit status: 0 targets met, 1 a target missed, 2 the benchmark failed.
set -eu
. "$(dirname "$0")/lib.sh"

rounds=${1:-3}
img=tools/coblk-img
[ -x "$img" ] || { echo "img.sh: $img missing: run make first" >&2; exit 2; }
# A shared build's tools/coblk-img is libtool's wrapper script, which forks
# sed and ls at each start (tens of milliseconds): run the program itself.
if [ -x tools/.libs/coblk-img ]; then
    LD_LIBRARY_PATH=$(pwd)/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
    img=tools/.libs/coblk-img
fi
command -v qemu-img >/dev/null 2>&1 ||
    { echo "img.sh: qemu-img is not installed" >&2; exit 2; }
out=$(mktemp -d)
dir=$(mktemp -d /var/tmp/coblk-img-bench.XXXXXX)
img=$(pwd)/$img
trap 'rm -rf "$out" "$dir"' EXIT
cd "$dir"

# The source: 256 MiB of libraries, 128 MiB of zeroes written out,
# 128 MiB of random bytes, 100 MiB of zero clusters, the rest unallocated.
find /usr/lib /usr/bin -type f -size +100k 2>/dev/null | head -2000 |
    xargs cat 2>/dev/null | head -c 256M >libs.bin || true
truncate -s 1G mix.raw
dd if=libs.bin of=mix.raw conv=notrunc bs=1M status=none
dd if=/dev/zero of=mix.raw bs=1M seek=256 count=128 conv=notrunc status=none
head -c 128M /dev/urandom |
    dd of=mix.raw bs=1M seek=512 conv=notrunc status=none
rm libs.bin
qemu-img convert -O qcow2 mix.raw mix.qcow2
qemu-io -c 'write -z 700M 100M' mix.qcow2 >/dev/null
qemu-img convert -O raw mix.qcow2 mix.raw
qemu-img create -q -f qcow2 -o preallocation=metadata full.qcow2 1G
truncate -s 1G sparse.raw
qemu-img create -q -f qcow2 huge.qcow2 256T
qemu-io -c 'write -P 1 0 64k' -c 'write -P 2 100T 64k' \
    -c 'write -P 3 200T 1M' huge.qcow2 >/dev/null

# timed NAME COMMAND...: appends "NAME SECONDS" to $log.
timed() {
    name=$1
    shift
    # The last run's dirty pages are written back before, not during, this
    # one: on a virtual disk they cost each converter what the one before
    # left behind.
    sync
    start=$(date +%s.%N)
    "$@" >/dev/null || { echo "img.sh: $* failed" >&2; exit 2; }
    end=$(date +%s.%N)
    echo "$name $(echo "$end - $start" | bc)" >>"$log"
}

# iops NAME TOOL COUNT ARGS...: appends "NAME IOPS" to $log, from the
# "Run completed in X seconds." line both tools print.
iops() {
    name=$1 tool=$2 count=$3
    shift 3
    "$tool" bench -c "$count" "$@" |
        awk -v n="$count" -v m="$name" \
            '/^Run completed in/ { printf "%s %.0f\n", m, n / $4 }' >>"$log"
}

# one TOOL LOG: one round of every measurement with TOOL.
one() {
    tool=$1 log=$2
    rm -f o.*
    timed to_raw "$tool" convert -O raw mix.qcow2 o.raw
    timed offload "$tool" convert -C -O raw mix.qcow2 o.offload
    timed to_qcow2 "$tool" convert -O qcow2 mix.raw o.qcow2
    timed zlib "$tool" convert -c -O qcow2 mix.qcow2 o.zlib
    timed zstd "$tool" convert -c -O qcow2 -o compression_type=zstd \
        mix.qcow2 o.zstd
    timed compare "$tool" compare mix.qcow2 mix.raw
    iops read_qcow2 "$tool" 1000000 -d 64 -t none -f qcow2 full.qcow2
    iops read_raw "$tool" 1000000 -d 64 -t none -f raw sparse.raw
    rm -f w.qcow2 w.raw
    qemu-img create -q -f qcow2 w.qcow2 1G
    truncate -s 1G w.raw
    iops write_qcow2 "$tool" 100000 -d 64 -w -f qcow2 w.qcow2
    iops write_raw "$tool" 100000 -d 64 -w -f raw w.raw
}

i=1
while [ "$i" -le "$rounds" ]; do
    one qemu-img "$out/qemu"
    one "$img" "$out/coblk"
    # What coblk-img wrote reads as its source and is clean.
    for f in o.raw o.offload o.qcow2 o.zlib o.zstd; do
        qemu-img compare -q mix.raw "$f" ||
            { echo "img.sh: $f differs from its source" >&2; exit 2; }
    done
    qemu-img check -q o.zlib || { echo "img.sh: o.zlib unclean" >&2; exit 2; }
    i=$((i + 1))
done
log=$out/huge
(ulimit -v 1048576; timed info "$img" info huge.qcow2;
 timed map "$img" map --output=json huge.qcow2)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "coblk-img benchmark: $rounds alternating rounds, median seconds," \
     "$(nproc) CPUs"
for m in to_raw offload to_qcow2 zlib zstd compare; do
    c=$(median "$out/coblk" $m)
    q=$(median "$out/qemu" $m)
    printf '%-9s coblk-img %6.2f  qemu-img %6.2f  ratio %s\n' "$m" "$c" "$q" \
        "$(ratio "$c" "$q")"
    eval "ratio_$m=$(ratio "$c" "$q")"
done
for m in read_qcow2 read_raw write_qcow2 write_raw; do
    c=$(median "$out/coblk" $m)
    q=$(median "$out/qemu" $m)
    printf '%-12s coblk-img %8s IOPS  qemu-img %8s IOPS  ratio %s\n' "$m" \
        "$c" "$q" "$(ratio "$c" "$q")"
    eval "ratio_$m=$(ratio "$c" "$q")"
done
info=$(median "$out/huge" info)
map=$(median "$out/huge" map)
echo "256 TiB sparse qcow2 under ulimit -v 1 GiB: info ${info}s, map ${map}s"
target "convert qcow2 -> raw, coblk-img / qemu-img" "$ratio_to_raw" "<=" 0.7
target "convert raw -> qcow2, coblk-img / qemu-img" "$ratio_to_qcow2" "<=" 0.7
target "convert -c zlib, coblk-img / qemu-img" "$ratio_zlib" "<=" 0.5
target "convert -c zstd, coblk-img / qemu-img" "$ratio_zstd" "<=" 0.5
for m in read_qcow2 read_raw write_qcow2 write_raw; do
    eval "r=\$ratio_$m"
    target "bench $m, coblk-img / qemu-img IOPS" "$r" ">=" 2
done
target "info of 256 TiB, seconds" "$info" "<=" 1
target "map of 256 TiB, seconds" "$map" "<=" 1
exit $status

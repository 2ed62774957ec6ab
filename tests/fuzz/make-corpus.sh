#!/bin/sh
# Writes the fuzzer's seed corpus (tests/fuzz/corpus/): small qcow2 images
# of every kind qemu-img makes, 512-byte and 4 KiB clusters where it can,
# so that mutations land in metadata.  Run from tests/fuzz/ when a kind
# is added; the images are committed.
set -eu
cd "$(dirname "$0")/corpus"
rm -f ./*.qcow2
io() { qemu-io -f qcow2 "$@" >/dev/null; }
qemu-img create -q -f qcow2 -o cluster_size=512 v3-512.qcow2 64k
io -c 'write -P 0x11 0 3k' -c 'write -z 8k 2k' -c 'write -P 0x22 30k 1k' \
    v3-512.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512,compat=0.10 v2-512.qcow2 64k
io -c 'write -P 0x11 0 3k' v2-512.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 \
    rc1-512.qcow2 32k
io -c 'write -P 0x33 1k 2k' rc1-512.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 \
    rc64-512.qcow2 32k
io -c 'write -P 0x33 1k 2k' rc64-512.qcow2
qemu-img create -q -f qcow2 -o cluster_size=16k,extended_l2=on \
    extl2.qcow2 256k
io -c 'write -P 0x44 1k 2k' -c 'write -z 20k 1k' extl2.qcow2
raw=$(mktemp)
head -c 8192 /dev/urandom >"$raw"
head -c 8192 /dev/zero >>"$raw"
qemu-img convert -c -O qcow2 -o cluster_size=4096 "$raw" zlib.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=4096,compression_type=zstd \
    "$raw" zstd.qcow2
rm -f "$raw"
qemu-img create -q -f qcow2 -o cluster_size=512 base.qcow2 16k
qemu-img create -q -f qcow2 -o cluster_size=512 -b base.qcow2 -F qcow2 \
    overlay.qcow2
io -c 'write -P 0x55 0 1k' overlay.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512 snap.qcow2 16k
io -c 'write -P 0x66 0 1k' snap.qcow2
qemu-img snapshot -c s1 snap.qcow2
qemu-img create -q -f qcow2 -o cluster_size=4096,preallocation=metadata \
    prealloc.qcow2 16k

#!/bin/sh
# The rbd: driver on a real, throwaway single-node Ceph cluster
# (tests/ceph/cluster.sh): coblk-bench writes and verifies at QD64,
# coblk-img creates, converts in and out (checked against `rbd export`
# and qemu-img compare), resizes and reads snapshots, and every missing
# pool, image, snapshot or bad spec gets one clear message; qemu-img (its
# rbd module) is the oracle for contents and info.  Last, an OSD
# killed under load fails the requests after rados_osd_op_timeout instead
# of hanging.  Skipped (77) without the rbd: driver or the Ceph packages.
set -u

: "${top_builddir:?}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
img="$top_builddir/tools/coblk-img"
bench="$top_builddir/tools/coblk-bench"
if ! grep -q '^#define HAVE_RBD 1' "$top_builddir/config.h"; then
    echo "built without the rbd: driver (librbd-dev): skipped"
    exit 77
fi
for tool in qemu-img qemu-io rbd; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "$tool is not installed: skipped"
        exit 77
    fi
done
work=$(mktemp -d /var/tmp/coblk-rbd-test.XXXXXX)
cluster=$work/cluster
trap '"$top_srcdir/tests/ceph/cluster.sh" stop "$cluster"; rm -rf "$work"' EXIT
# A second try where the first start fails: Ceph's daemons race at boot
# now and then (cluster.sh says what it saw).
for try in 1 2; do
    CEPH_CONF=$("$top_srcdir/tests/ceph/cluster.sh" start "$cluster")
    status=$?
    [ $status -eq 0 ] || [ $status -eq 77 ] && break
done
case $status in
0) ;;
77) echo "the Ceph packages are not installed: skipped"; exit 77 ;;
*) echo "FAILED: the Ceph cluster did not start"; exit 1 ;;
esac
export CEPH_CONF
cd "$work" || exit 1
. "$top_srcdir/tests/integration/checks.sh"

# same_as_export IMAGE FILE: the rbd image holds what FILE (any format
# qemu-img reads) holds.
same_as_export() {
    rm -f export.raw
    rbd export "rbd/$1" export.raw >/dev/null 2>&1 &&
        qemu-img compare -q export.raw "$2"
}

# ---- create, info, resize --------------------------------------------------------
check "create a raw image on rbd" "$img" create -q -f raw rbd:rbd/a 64M
check "rbd sees its size" sh -c 'rbd info rbd/a | grep -q "size 64 MiB"'
check "info reads its size" sh -c \
    "'$img' info rbd:rbd/a | grep -qx 'virtual size: 64 MiB (67108864 bytes)'"
rbd namespace create rbd/ns1 >/dev/null 2>&1
check "create in a namespace" "$img" create -q -f raw rbd:rbd/ns1/n 8M
check "rbd sees it in the namespace" sh -c \
    'rbd info --namespace ns1 rbd/n | grep -q "size 8 MiB"'
check "qemu-img reads it there" qemu-img info -f raw rbd:rbd/ns1/n
fails_with "create over an image" "File exists" \
    "$img" create -q -f raw rbd:rbd/a 64M
check "resize grows it" "$img" resize -f raw rbd:rbd/a 96M
check "rbd sees the new size" sh -c 'rbd info rbd/a | grep -q "size 96 MiB"'

# ---- data: QD64 with verify, then trims ---------------------------------------------
check "randwrite at QD64, verified" "$bench" --name=v --filename=rbd:rbd/a \
    --rw=randwrite --bs=4k --iodepth=64 --size=96M --io_size=16M \
    --verify=crc32c --do_verify=1
check "mixed sizes at QD64, verified" "$bench" --name=m \
    --filename=rbd:rbd/a --rw=randwrite --bsrange=512-256k --iodepth=64 \
    --size=96M --io_size=24M --verify=md5 --do_verify=1
check "trims at QD16" "$bench" --name=t --filename=rbd:rbd/a \
    --rw=randtrim --bs=64k --iodepth=16 --size=96M --io_size=8M

# ---- convert in and out ---------------------------------------------------------------
qemu-img create -q -f qcow2 src.qcow2 40M
qemu-io -c 'write -P 0x5a 0 3M' -c 'write -z 8M 4M' -c 'write -P 0x33 30M 1M' \
    -c 'write -P 0x44 40959k 1k' src.qcow2 >/dev/null
check "convert qcow2 -> rbd" "$img" convert -O raw src.qcow2 rbd:rbd/b
check "rbd export reads what was converted" same_as_export b src.qcow2
check "coblk-img compare agrees" "$img" compare src.qcow2 -F raw rbd:rbd/b
check "convert rbd -> qcow2" "$img" convert -f raw -O qcow2 rbd:rbd/b \
    back.qcow2
check "what came back is the source" qemu-img compare -q src.qcow2 back.qcow2
# Over data, the source's zeroes must be written (write-zeroes).
qemu-img create -q -f raw ones.raw 40M
qemu-io -f raw -c 'write -P 0xff 0 40M' ones.raw >/dev/null
check "fill the image" "$img" convert -n -f raw -O raw ones.raw rbd:rbd/b
check "convert -n over data" "$img" convert -n -O raw src.qcow2 rbd:rbd/b
check "zeroes replaced the data" same_as_export b src.qcow2

# ---- snapshots: read-only, with their own contents -----------------------------------
rbd snap create rbd/b@s1 >/dev/null 2>&1
check "write after the snapshot" "$img" convert -n -f raw -O raw ones.raw \
    rbd:rbd/b
check "the snapshot keeps its contents" "$img" compare -f raw -F qcow2 \
    rbd:rbd/b@s1 src.qcow2
check "the image has the new ones" "$img" compare -f raw -F raw rbd:rbd/b \
    ones.raw
check "qemu-img reads the snapshot as coblk-img wrote it" \
    qemu-img compare -q -f raw -F qcow2 rbd:rbd/b@s1 src.qcow2
# info as qemu-img's (its rbd module is the oracle), but for the image's
# name, which qemu-img gives as json:{...}: object size, snapshot list.
info_agrees() {
    qemu-img info "$@" rbd:rbd/b | grep -v '^image: \|"filename"' >q.info &&
        "$img" info "$@" rbd:rbd/b | grep -v '^image: \|"filename"' >c.info &&
        diff q.info c.info
}
check "info as qemu-img's" info_agrees
check "info --output=json as qemu-img's" info_agrees --output=json
# map: objects that exist are data, the rest zeroes (the object map).
"$img" create -q -f raw rbd:rbd/m 64M
qemu-io -f raw -c 'write -P 1 0 1M' -c 'write -P 2 20M 4k' rbd:rbd/m >/dev/null
check "map --output=json as qemu-img's" sh -c \
    "qemu-img map -f raw --output=json rbd:rbd/m >q.map &&
     '$img' map -f raw --output=json rbd:rbd/m >c.map && diff q.map c.map"
check "the map has holes" grep -q '"data": false' c.map
fails_with "a snapshot is not written" "a snapshot opens read-only" \
    "$img" convert -n -f raw -O raw ones.raw rbd:rbd/b@s1

# ---- bad input: one message each ---------------------------------------------------------
fails_with "no such pool" "there is no pool 'nopool'" \
    "$img" info -f raw rbd:nopool/x
fails_with "no such image" "no image 'nope' in pool 'rbd'" \
    "$img" info -f raw rbd:rbd/nope
fails_with "no such snapshot" "no image 'b' with a snapshot 'zz'" \
    "$img" info -f raw rbd:rbd/b@zz
fails_with "no image in the spec" "does not start with POOL[/NAMESPACE]/IMAGE" \
    "$img" info -f raw rbd:rbd:key=SECRET
# The tool names what it could not open; the library's reason does not
# repeat the spec, which may hold a key.
cp check.out secret.out
check "a bad spec's reason keeps its key secret" \
    test "$(grep -o SECRET secret.out | wc -l)" -eq 1
fails_with "an escaped @ is part of the name" "no image 'b@s1' in pool 'rbd'" \
    "$img" info -f raw 'rbd:rbd/b\@s1'
fails_with "a snapshot is not created" "a snapshot (@s2) is made from an image" \
    "$img" create -q -f raw rbd:rbd/b@s2 1M
fails_with "an option without a value" "option 1 of the spec is no KEY=VALUE" \
    "$img" info -f raw rbd:rbd/b:conf
fails_with "an empty id" "id= needs a value" "$img" info -f raw rbd:rbd/b:id=
fails_with "a missing configuration file" "cannot read the Ceph configuration" \
    "$img" info -f raw rbd:rbd/b:conf=/nonexistent/ceph.conf
fails_with "an unknown Ceph option" "bad Ceph option" \
    "$img" info -f raw rbd:rbd/b:no_such_option=1
fails_with "no monitor answers" "cannot connect to the Ceph cluster" \
    "$img" info -f raw "rbd:rbd/b:mon_host=127.0.0.1\\:1:client_mount_timeout=2"

# ---- an OSD killed under load: errors after the timeout, not a hang ------------------
"$bench" --name=k --filename="rbd:rbd/a:rados_osd_op_timeout=3" \
    --rw=randwrite --bs=4k --iodepth=32 --size=96M --time_based --runtime=60 \
    >kill.out 2>&1 &
load=$!
sleep 2
kill -9 "$(cat "$cluster/osd.0.pid")"
for _ in $(seq 100); do
    kill -0 "$load" 2>/dev/null || break
    sleep 0.2
done
if kill -0 "$load" 2>/dev/null; then
    echo "FAILED: requests hung after the OSD was killed"
    kill -9 "$load"
    failures=$((failures + 1))
elif wait "$load"; then
    echo "FAILED: the run succeeded without its OSD"
    failures=$((failures + 1))
elif ! grep -q "Connection timed out\|timed out" kill.out; then
    echo "FAILED: the run failed without a timeout:"
    tail -5 kill.out
    failures=$((failures + 1))
else
    passes=$((passes + 1))
fi

echo "rbd: $passes passed, $failures failed"
[ "$failures" -eq 0 ]

#!/bin/sh
# coblk-img against qemu-img, the oracle: for each command line, both
# tools' stdout, stderr (the program's name aside) and exit status must
# agree; images coblk-img writes must pass `qemu-img check` and read as
# their source (`qemu-img compare`), and images qemu-img wrote must read
# back identically through coblk-img.  Skipped (77) without qemu-img and
# qemu-io.
set -u

: "${top_builddir:?}"
img="$top_builddir/tools/coblk-img"
for tool in qemu-img qemu-io python3; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "$tool is not installed: skipped"
        exit 77
    fi
done
work=$(mktemp -d /var/tmp/coblk-img-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
export TZ=UTC
failures=0
passes=0

ok() { passes=$((passes + 1)); }
failed() {
    echo "FAILED: $*"
    failures=$((failures + 1))
}

# run TOOL OUT ARGS...: TOOL's stdout, stderr and status into OUT.*.
run() {
    tool=$1 out=$2
    shift 2
    rc=0
    "$tool" "$@" >"$out.out" 2>"$out.err" || rc=$?
    echo "$rc" >"$out.rc"
    sed -i "s|$img|qemu-img|g; s|coblk-img|qemu-img|g" "$out.err"
}

# agree WHAT: the two runs' outputs in q.* and c.* are the same.
agree() {
    for part in out err rc; do
        if ! cmp -s "q.$part" "c.$part"; then
            failed "$1: $part differs (< qemu-img, > coblk-img)"
            diff "q.$part" "c.$part" | head -20
            return
        fi
    done
    ok
}

# same ARGS...: both tools run ARGS here; everything they print agrees.
same() {
    run qemu-img q "$@"
    run "$img" c "$@"
    agree "$*"
}

# same_status ARGS...: both fail or succeed alike (messages may differ:
# the library words its own).
same_status() {
    run qemu-img q "$@"
    run "$img" c "$@"
    if cmp -s q.rc c.rc; then ok; else
        failed "$*: exit $(cat q.rc) from qemu-img, $(cat c.rc) from coblk-img"
    fi
}

# both ARGS...: each tool runs ARGS in its own directory (q/, c/) holding
# the same inputs, so the images they write can be compared afterwards.
both_run() {
    (cd qd && run qemu-img ../q "$@")
    (cd cd && run "$img" ../c "$@")
}
both() {
    both_run "$@"
    agree "$* (writing)"
}

# images_agree NAME: qd/NAME (qemu-img's) and cd/NAME (coblk-img's) read
# the same, coblk-img's is clean, and both have the same size and format.
images_agree() {
    if ! qemu-img compare -q "qd/$1" "cd/$1"; then
        failed "$1: coblk-img's image reads differently from qemu-img's"
    elif [ "$(qemu-img info "qd/$1" | sed -n 2,3p)" != \
           "$(qemu-img info "cd/$1" | sed -n 2,3p)" ]; then
        failed "$1: format or virtual size differ"
        qemu-img info "qd/$1" | sed -n 2,3p
        qemu-img info "cd/$1" | sed -n 2,3p
    elif [ "$(qemu-img info "cd/$1" | sed -n 2p)" = "file format: qcow2" ] &&
         ! qemu-img check -q "cd/$1"; then
        failed "$1: qemu-img check finds coblk-img's image unclean"
    else
        ok
    fi
}

# reads_as IMAGE SOURCE: coblk-img's image reads as its source.  -U: the
# data is compared, not the locks (a TSan run once found the image's
# write lock still taken when qemu-img came to read it).
reads_as() {
    if qemu-img compare -U -q "$2" "$1"; then ok; else
        failed "$1 does not read as $2"
    fi
}

quiet_io() { qemu-io "$@" >/dev/null || failed "qemu-io $*"; }
# wait_until WHAT PID LOG COMMAND...: COMMAND succeeds within a minute (CI
# runs this beside a Ceph cluster), or the script ends, PID killed.
wait_until() {
    what=$1 pid=$2 log=$3
    shift 3
    i=0
    until "$@"; do
        i=$((i + 1))
        if [ $i -ge 600 ] || ! kill -0 "$pid" 2>/dev/null; then
            echo "FAILED: not within a minute: $what: $(cat "$log")"
            kill "$pid" 2>/dev/null
            exit 1
        fi
        sleep 0.1
    done
}

# ---- images qemu-img wrote ---------------------------------------------------
qemu-img create -q -f qcow2 base.qcow2 64M
quiet_io -c 'write -P 1 0 1M' -c 'write -z 2M 1M' -c 'write -P 2 5M 64k' \
    base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
quiet_io -c 'write -P 3 512k 1M' -c 'write -z 5M 4k' top.qcow2
mkdir sub qd cd
qemu-img create -q -f qcow2 -b ../top.qcow2 -F qcow2 sub/leaf.qcow2
qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k v2.qcow2 8M
quiet_io -c 'write -P 4 4k 100k' v2.qcow2
qemu-img create -q -f qcow2 -o extended_l2=on,compression_type=zstd \
    ext.qcow2 8M
quiet_io -c 'write -P 5 6k 3k' -c 'write -z 100k 40k' ext.qcow2
qemu-img create -q -f qcow2 -o refcount_bits=1,lazy_refcounts=on \
    lazy.qcow2 16M
qemu-img create -q -f qcow2 snap.qcow2 8M
quiet_io -c 'write -P 6 0 64k' snap.qcow2
qemu-img snapshot -c first snap.qcow2
quiet_io -c 'write -P 7 0 64k' snap.qcow2
qemu-img snapshot -c second snap.qcow2
qemu-img convert -c -O qcow2 base.qcow2 comp.qcow2
cp base.qcow2 dirty.qcow2
printf '\001' | dd of=dirty.qcow2 bs=1 seek=79 conv=notrunc 2>/dev/null
qemu-img create -q disk.raw 4M
quiet_io -f raw -c 'write -P 8 1M 1M' disk.raw
qemu-img create -q -f qcow2 huge.qcow2 256T
quiet_io -c 'write -P 9 100T 64k' huge.qcow2
printf 'QFI\373\000\000\000\001' >qcow1.img
qemu-img create -q -f qcow2 empty.qcow2 0
head -c 1000 /dev/urandom >odd.raw
head -c 70000 /dev/urandom >odd70k.raw
qemu-img create -q -f qcow2 -u -b missing.qcow2 -F qcow2 orphan.qcow2 1M
qemu-img create -q -f qcow2 'name, with commas.qcow2' 1M
echo "not an image" >junk.img
for f in base top sub/leaf v2 ext lazy snap comp dirty huge; do
    cp "$f.qcow2" "qd/$(basename "$f").qcow2"
    cp "$f.qcow2" "cd/$(basename "$f").qcow2"
done
cp disk.raw qd/disk.raw
cp disk.raw cd/disk.raw

# refcount_of IMAGE CLUSTER VALUE: sets a 16-bit refcount (first refcount
# block only), to make leaks and corruptions for check.
set_refcount() {
    python3 - "$@" <<'EOF'
import struct, sys
path, cluster, value = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    h = f.read(72)
    table = struct.unpack(">Q", h[48:56])[0]
    f.seek(table)
    block = struct.unpack(">Q", f.read(8))[0]
    f.seek(block + 2 * cluster)
    f.write(struct.pack(">H", value))
EOF
}
cp base.qcow2 leaky.qcow2
truncate -s +128k leaky.qcow2
size=$(stat -c %s leaky.qcow2)
set_refcount leaky.qcow2 $((size / 65536 - 1)) 1
set_refcount leaky.qcow2 $((size / 65536 - 2)) 1
cp base.qcow2 broken.qcow2
set_refcount broken.qcow2 5 0
# Reserved bits set in the first L1 entry.
cp base.qcow2 reserved.qcow2
python3 - <<'EOF'
import struct
with open("reserved.qcow2", "r+b") as f:
    l1 = struct.unpack(">Q", f.read(48)[40:48])[0]
    f.seek(l1)
    e = struct.unpack(">Q", f.read(8))[0]
    f.seek(l1)
    f.write(struct.pack(">Q", e | 0x100))
EOF
# Persistent bitmaps: one enabled ("auto"), one disabled of 128 KiB bits,
# data written while they were; then a copy coblk-img wrote to, which
# leaves them stale (QEMU then warns, and counts their clusters leaked).
qemu-img create -q -f qcow2 bitmaps.qcow2 64M
qemu-img bitmap --add bitmaps.qcow2 b0
qemu-img bitmap --add -g 128k bitmaps.qcow2 b1
qemu-img bitmap --disable bitmaps.qcow2 b1
qemu-io -c 'write -P 1 0 4M' bitmaps.qcow2 >/dev/null
cp bitmaps.qcow2 stale-bitmaps.qcow2
"$img" resize stale-bitmaps.qcow2 +64k >/dev/null
for f in leaky broken; do
    cp "$f.qcow2" "qd/$f.qcow2"
    cp "$f.qcow2" "cd/$f.qcow2"
done
cp odd.raw qd/odd.raw
cp odd.raw cd/odd.raw
cp odd70k.raw qd/odd70k.raw
cp odd70k.raw cd/odd70k.raw

# Written back before sizes are compared: a file's blocks (actual-size)
# can change when the kernel writes it back, between the two tools' runs.
sync

# ---- info ----------------------------------------------------------------------
for f in base.qcow2 top.qcow2 sub/leaf.qcow2 v2.qcow2 ext.qcow2 lazy.qcow2 \
         snap.qcow2 comp.qcow2 dirty.qcow2 disk.raw huge.qcow2 junk.img \
         empty.qcow2 odd.raw orphan.qcow2 'name, with commas.qcow2' \
         bitmaps.qcow2 stale-bitmaps.qcow2; do
    same info "$f"
    same info --output=json "$f"
    same info --backing-chain "$f"
    same info --backing-chain --output=json "$f"
    same info -U -f "$(case $f in *.raw|*.img) echo raw;; *) echo qcow2;; esac)" "$f"
done
same info -f raw base.qcow2
same info nonexistent.qcow2
same info -f foo base.qcow2
same info --output=xml base.qcow2
same info
same info a b
same info -z base.qcow2
same info --output=json --output=human base.qcow2
# Unknown incompatible features: named from the image's feature table,
# whose last entry may be cut short (QEMU's iotest 036: 14 bytes).
qemu-img create -q -f qcow2 feat.qcow2 1M
python3 - feat.qcow2 <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = bytearray(f.read(65536))
h[72:80] = struct.pack('>Q', (1 << 63) | (1 << 62))
at, exts = struct.unpack('>I', h[100:104])[0], b''
while True:
    kind, size = struct.unpack('>II', h[at:at + 8])
    if kind == 0:
        break
    if kind != 0x6803f857:
        exts += h[at:at + 8 + (size + 7) // 8 * 8]
    at += 8 + (size + 7) // 8 * 8
entry = b'\x00\x3fTest feature'
exts += struct.pack('>II', 0x6803f857, len(entry)) + entry + b'\0' * 2
exts += b'\0' * 8
start = struct.unpack('>I', h[100:104])[0]
f.seek(start)
f.write(exts)
f.seek(72)
f.write(h[72:80])
PY
same info feat.qcow2
# Malformed headers, in qemu-img's words: OFFSET BYTES (octal escapes).
qemu-img create -q -f qcow2 hdr.qcow2 1M
while read -r at bytes; do
    cp hdr.qcow2 bad-hdr.qcow2
    # shellcheck disable=SC2059
    printf "$bytes" | dd of=bad-hdr.qcow2 bs=1 seek="$at" conv=notrunc \
        2>/dev/null
    same info bad-hdr.qcow2
done <<'EOF'
4 \0\0\0\4
20 \0\0\0\10
20 \0\0\0\26
96 \0\0\0\7
100 \0\0\0\120
EOF
head -c 80 hdr.qcow2 >short-hdr.qcow2
same info -f qcow2 short-hdr.qcow2
same info -f qcow2 disk.raw

# ---- check ---------------------------------------------------------------------
for f in base.qcow2 top.qcow2 v2.qcow2 ext.qcow2 comp.qcow2 snap.qcow2 \
         leaky.qcow2 broken.qcow2 disk.raw empty.qcow2 reserved.qcow2 \
         orphan.qcow2 bitmaps.qcow2 stale-bitmaps.qcow2; do
    same check "$f"
    same check --output=json "$f"
    same check -q "$f"
done
same check -r foo base.qcow2
both check -r leaks leaky.qcow2
both check leaky.qcow2
# A cluster in use with no refcount: both rebuild the refcount structure,
# in the same clusters.
both check -r all broken.qcow2
same_status check broken.qcow2
images_agree broken.qcow2
cmp -s qd/broken.qcow2 cd/broken.qcow2 && ok ||
    failed "check -r all broken.qcow2: rebuilt unlike qemu-img's"
# A repair keeps persistent bitmaps: they count, they stay consistent
# (once coblk declared them stale at a read-write open, and freed them).
cp bitmaps.qcow2 qd/bitmaps-r.qcow2
cp bitmaps.qcow2 cd/bitmaps-r.qcow2
both check -r all bitmaps-r.qcow2
same info --output=json qd/bitmaps-r.qcow2
same check cd/bitmaps-r.qcow2

# ---- bitmap ------------------------------------------------------------------
# Each tool edits its own copy of bitmaps.qcow2 (b0 and b1 hold what QEMU
# recorded of a write), the same actions in the same order: what they
# print, the bitmaps info lists and every bit of them agree, and the
# images stay clean.  The bits are read by QEMU itself: qemu-nbd exports
# a bitmap, nbdinfo maps it.
bitmap_bits() {  # IMAGE NAME: the bitmap's dirty and clean extents
    sock=$work/bitmap.sock
    rm -f "$sock"
    # --fork: back once the socket listens; the server serves one client.
    qemu-nbd --fork -r -f qcow2 -k "$sock" -B "$2" "$1" &&
        nbdinfo --map=qemu:dirty-bitmap:"$2" "nbd+unix:///?socket=$sock" ||
        echo "FAILED: no map of bitmap $2 of $1"
}
exportable_bitmaps() {  # IMAGE: the names of its bitmaps not in use
    qemu-img info --output=json "$1" | python3 -c '
import json, sys
data = json.load(sys.stdin).get("format-specific", {}).get("data", {})
for b in data.get("bitmaps", []):
    if "in-use" not in b["flags"]:
        print(b["name"])'
}
bitmaps_agree() {  # IMAGE: info, check and every bitmap's bits agree
    same info qd/$1
    run qemu-img c info cd/$1
    sed -i 's|^image: cd/|image: qd/|; /^disk size:/d' c.out
    sed -i '/^disk size:/d' q.out
    agree "info of the bitmaps of $1"
    q=0 c=0
    qemu-img check -q qd/$1 >/dev/null 2>&1 || q=$?
    qemu-img check -q cd/$1 >/dev/null 2>&1 || c=$?
    if [ $q = $c ]; then ok; else
        failed "$1: qemu-img check exits $c on coblk-img's, $q on qemu-img's"
    fi
    command -v nbdinfo >/dev/null || return 0
    for b in $(exportable_bitmaps qd/$1); do
        bitmap_bits qd/$1 "$b" >q.bits
        bitmap_bits cd/$1 "$b" >c.bits
        if grep -q FAILED q.bits c.bits || ! cmp -s q.bits c.bits; then
            failed "bitmap $b of $1: bits differ from qemu-img's"
            diff q.bits c.bits | head -10
        else
            ok
        fi
    done
}
cp bitmaps.qcow2 bm.qcow2
quiet_io -c 'write -P 2 5000k 1' -c 'write 63M 4k' bm.qcow2
qemu-img bitmap --add -g 1k bm.qcow2 b2
quiet_io -c 'write -P 3 100k 10k' -c 'write 9M 5k' bm.qcow2
for d in qd cd; do
    cp bm.qcow2 $d/bm.qcow2
    qemu-img create -q -f qcow2 -o compat=0.10 $d/bm-v2.qcow2 1M
    qemu-img create -q -f qcow2 $d/bm-other.qcow2 128M
    qemu-img bitmap --add $d/bm-other.qcow2 other
    qemu-img create -q -f qcow2 $d/bm-same.qcow2 64M
    qemu-img bitmap --add -g 4k $d/bm-same.qcow2 same
    quiet_io -c 'write 7M 64k' $d/bm-same.qcow2
done
both bitmap --add bm.qcow2 n0
both bitmap --add -g 4k --disable bm.qcow2 n1
both bitmap --add -g 2M --merge b2 bm.qcow2 coarse
both bitmap --add -g 512 --merge b1 --merge b0 bm.qcow2 fine
both bitmap --merge b2 --merge b1 bm.qcow2 b0
both bitmap --merge same -b bm-same.qcow2 -F qcow2 bm.qcow2 n1
both bitmap --clear --enable bm.qcow2 n1
both bitmap --remove bm.qcow2 b1
both bitmap --remove --add bm.qcow2 n0
both bitmap --disable bm.qcow2 b2
bitmaps_agree bm.qcow2
# x-dirty-bitmap: block status from NBD's qemu:dirty-bitmap context, as
# QEMU reads it: a dirty extent is a hole, and map lists the clean ones.
for tool in q c; do
    rm -f "$work/xd.sock"
    qemu-nbd --fork -r -f qcow2 -k "$work/xd.sock" -B b0 qd/bm.qcow2
    run "$( [ $tool = q ] && echo qemu-img || echo "$img")" $tool map \
        --output=json --image-opts "driver=nbd,server.type=unix,server.path=$work/xd.sock,x-dirty-bitmap=qemu:dirty-bitmap:b0"
done
agree "map of bitmap b0 through x-dirty-bitmap"
# Refused, in qemu-img's words; the actions before the failing one stay.
both bitmap --add bm.qcow2 b0
both bitmap --clear bm.qcow2 nosuch
both bitmap --add --merge nosuch bm.qcow2 kept
both bitmap --merge other -b bm-other.qcow2 bm.qcow2 b0
both bitmap --add -g 3000 bm.qcow2 g
both bitmap --add -g 256 bm.qcow2 g
both bitmap --add -g 1x bm.qcow2 g
both bitmap --add bm.qcow2 ''
both bitmap --remove -f raw bm.qcow2 b0
both bitmap bm.qcow2 b0
both bitmap --add bm.qcow2
both bitmap -g 4k --remove bm.qcow2 b0
both bitmap -F qcow2 --merge b0 bm.qcow2 b2
both bitmap -b bm-other.qcow2 --add bm.qcow2 b9
both bitmap --bogus bm.qcow2 b0
both_run bitmap --add bm-v2.qcow2 b
same_status bitmap --add -f raw qd/bm-v2.qcow2 b
bitmaps_agree bm.qcow2
# A bitmap QEMU left in use (its writer died) may only be removed.
for d in qd cd; do
    cp bm.qcow2 $d/bm-used.qcow2
    qemu-io -c abort $d/bm-used.qcow2 2>/dev/null
done
both bitmap --clear bm-used.qcow2 b0
both bitmap --enable bm-used.qcow2 b2
both bitmap --merge b2 bm-used.qcow2 fine
both bitmap --add -g 64k --merge b0 bm-used.qcow2 new
both bitmap --remove bm-used.qcow2 coarse
bitmaps_agree bm-used.qcow2
# convert --bitmaps: every bitmap of the source, with its granularity,
# flags and bits, in the new image; those in use refused, or skipped with
# --skip-broken-bitmaps; targets that store none refused, as qemu-img
# refuses them (after creating them, as it does).
both convert --bitmaps -O qcow2 ../bm.qcow2 bm-conv.qcow2
bitmaps_agree bm-conv.qcow2
both convert --bitmaps -O qcow2 ../qd/bm-used.qcow2 bm-conv-used.qcow2
both convert --bitmaps --skip-broken-bitmaps -O qcow2 ../qd/bm-used.qcow2 \
    bm-conv-used.qcow2
bitmaps_agree bm-conv-used.qcow2
both convert --bitmaps -O raw ../bm.qcow2 bm-conv.raw
both convert --bitmaps -O qcow2 -o compat=0.10 ../bm.qcow2 bm-conv-v2.qcow2
both convert --bitmaps -f raw -O qcow2 ../bm.qcow2 bm-conv-none.qcow2
both convert --bitmaps -O qcow2 ../bm.qcow2 ../bm.qcow2 bm-conv-two.qcow2
both convert --skip-broken-bitmaps -O qcow2 ../bm.qcow2 bm-conv-skip.qcow2
# Bitmaps coblk declared stale are gone for both: a new one starts over.
for d in qd cd; do
    cp stale-bitmaps.qcow2 $d/bm-stale.qcow2
done
both bitmap --add bm-stale.qcow2 b0
bitmaps_agree bm-stale.qcow2

# ---- image options ----------------------------------------------------------------
# --image-opts and json: names, QEMU's options for a node and its file:
# read as the image they name, with qemu-img's messages for what is wrong.
for opts in driver=qcow2,file.filename=top.qcow2 \
            driver=qcow2,file.driver=file,file.filename=top.qcow2,node-name=n \
            file.filename=top.qcow2 driver=raw,file.filename=disk.raw \
            'driver=qcow2,file.filename=name,, with commas.qcow2'; do
    same info --image-opts "$opts"
    same info --backing-chain --output=json --image-opts "$opts"
    same map --image-opts "$opts"
    same check --image-opts "$opts"
done
same compare --image-opts driver=qcow2,file.filename=base.qcow2 \
    driver=qcow2,file.filename=top.qcow2
same measure -O qcow2 --image-opts driver=qcow2,file.filename=top.qcow2
same snapshot -l --image-opts driver=qcow2,file.filename=snap.qcow2
json='json:{"driver": "qcow2", "file": {"driver": "file", "filename": "top.qcow2"}}'
same info "$json"
same info --output=json "$json"
same map --output=json "$json"
same info 'json:{"driver":"raw","file":{"filename":"disk.raw"},"node-name":"r"}'
both convert --image-opts -O raw driver=qcow2,file.filename=../top.qcow2 \
    io-conv.raw
images_agree io-conv.raw
for d in qd cd; do cp bm.qcow2 $d/io-bm.qcow2; done
both bitmap --remove --image-opts \
    driver=qcow2,file.driver=file,file.filename=io-bm.qcow2 b0
bitmaps_agree io-bm.qcow2
for opts in filename=top.qcow2 driver=qcow2 driver=qcow2,file=top.qcow2 \
            driver=qcow2,file.filename=top.qcow2,foo=1 \
            driver=qcow2,file.filename=top.qcow2,file.foo=1 \
            driver=qcow2,file.filename=nonexistent.qcow2; do
    same info --image-opts "$opts"
done
same info --image-opts -f qcow2 driver=qcow2,file.filename=top.qcow2
same_status info 'json:{"driver": "qcow2"'
same_status info --image-opts driver=vmdk,file.filename=top.qcow2

# Refcount blocks lost (table entries zeroed, a small cluster size so that
# there are many): without repair of errors, both refuse with qemu-img's
# message; with it, both rebuild, and the images read as before.
for d in qd cd; do
    qemu-img create -q -f qcow2 -o cluster_size=1024 "$d/lost.qcow2" 16M
    qemu-io -c 'write -P 7 0 3M' -c 'write -c -P 8 4M 64k' \
        "$d/lost.qcow2" >/dev/null
    qemu-img snapshot -c s1 "$d/lost.qcow2"
    qemu-io -c 'write -P 9 1M 1M' "$d/lost.qcow2" >/dev/null
    python3 - "$d/lost.qcow2" <<'PYEOF'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    table = struct.unpack(">Q", f.read(56)[48:56])[0]
    f.seek(table + 8)
    f.write(bytes(8 * 4))
PYEOF
done
qemu-img convert -O raw qd/lost.qcow2 lost-before.raw
qemu-img convert -l s1 -O raw qd/lost.qcow2 lost-s1.raw
both check lost.qcow2
both check -r leaks lost.qcow2
both check -r all lost.qcow2
both check lost.qcow2
images_agree lost.qcow2
qemu-img convert -l s1 -O raw cd/lost.qcow2 lost-s1-after.raw
if qemu-img compare -q -F raw cd/lost.qcow2 lost-before.raw &&
   cmp -s lost-s1.raw lost-s1-after.raw; then ok; else
    failed "check -r all lost.qcow2: data or snapshot changed"
fi

# A refcount block inside a cluster, or far past the end: qemu-img cannot
# repair the first and grows the file to 1 TiB for the second; coblk
# rebuilds both in place.
for at in 0x50200 0x10000000000; do
    qemu-img create -q -f qcow2 askew.qcow2 16M
    qemu-io -c 'write -P 5 0 1M' askew.qcow2 >/dev/null
    qemu-img convert -O raw askew.qcow2 askew.raw
    python3 - askew.qcow2 $at <<'PYEOF'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    table = struct.unpack(">Q", f.read(56)[48:56])[0]
    f.seek(table)
    f.write(struct.pack(">Q", int(sys.argv[2], 0)))
PYEOF
    "$img" check -r all askew.qcow2 >c.out 2>c.err
    if [ $? = 0 ] && qemu-img check -q askew.qcow2 &&
       qemu-img compare -q -F raw askew.qcow2 askew.raw &&
       [ "$(stat -c %s askew.qcow2)" -lt 4194304 ] &&
       grep -q '^Rebuilding refcount structure$' c.err; then ok; else
        failed "check -r all with a refcount block at $at"
        cat c.out c.err | tail -5
    fi
done
# Two references to a cluster whose refcount is one bit wide (QEMU's
# iotest 112): reported, not "repaired" into a refcount that wraps to 0;
# with a wider refcount, mended.
for d in qd cd; do
    qemu-img create -q -f qcow2 -o refcount_bits=1 "$d/over.qcow2" 64M
    qemu-io -c 'write 0 64k' "$d/over.qcow2" >/dev/null
    printf '\200\000\000\000\000\005\000\000' |
        dd of="$d/over.qcow2" bs=1 seek=$((0x40008)) conv=notrunc 2>/dev/null
done
both check -r all over.qcow2
both amend -o refcount_bits=2 over.qcow2
both check -r all over.qcow2
images_agree over.qcow2

# Snapshot entries shorter than version 3 wants (QEMU's iotest 261): a
# version 2 table as older writers left it, under a version 3 header.
# check reports each; check -r all rewrites the table as qemu-img does,
# keeping the unknown extra data; the entries then match byte for byte.
cat >botch.py <<'PYEOF'
import struct, sys
# A version 2 image's snapshot table rewritten as old QEMUs and others
# wrote it (QEMU's iotest 261): entry 0 with no extra data, entry 1 with
# 50 bytes (unknown data after the known fields), entry 2 with 8; then
# the header made version 3 without upgrading the table.
path = sys.argv[1]
img = bytearray(open(path, 'rb').read())
nb, table = struct.unpack('>IQ', img[60:72])
at, entries = table, []
for i in range(nb):
    fixed = img[at:at + 40]
    id_len, name_len = struct.unpack('>HH', fixed[12:16])
    extra_len = struct.unpack('>I', fixed[36:40])[0]
    extra = img[at + 40:at + 40 + extra_len]
    names = img[at + 40 + extra_len:at + 40 + extra_len + id_len + name_len]
    entries.append((bytearray(fixed), bytes(extra), bytes(names)))
    at += (40 + extra_len + id_len + name_len + 7) & ~7
out = bytearray()
for i, (fixed, extra, names) in enumerate(entries):
    if i == 0:
        extra = b''
    elif i == 1:
        extra = (extra + bytes(24))[:24] + b'very important data'
        extra = extra + bytes(50 - len(extra))
    else:
        extra = extra[:8]
    fixed[36:40] = struct.pack('>I', len(extra))
    e = fixed + extra + names
    out += e + bytes(-len(e) % 8)
img[table:table + len(out)] = out
img[4:8] = struct.pack('>I', 3)
img[96:100] = struct.pack('>I', 4)
img[100:104] = struct.pack('>I', 104)
open(path, 'wb').write(img)
PYEOF
cat >entries.py <<'PYEOF'
import struct, sys
img = open(sys.argv[1], 'rb').read()
nb, at = struct.unpack('>IQ', img[60:72])
for i in range(nb):
    id_len, name_len = struct.unpack('>HH', img[at + 12:at + 16])
    extra = struct.unpack('>I', img[at + 36:at + 40])[0]
    print(extra, img[at + 40:at + 40 + extra + id_len + name_len].hex())
    at += (40 + extra + id_len + name_len + 7) & ~7
PYEOF
for d in qd cd; do
    qemu-img create -q -f qcow2 -o compat=0.10 "$d/botched.qcow2" 64M
    for sn in sn0 sn1 sn2; do
        qemu-img snapshot -c $sn "$d/botched.qcow2"
    done
    python3 botch.py "$d/botched.qcow2"
done
both check botched.qcow2
both check -r all botched.qcow2
both check botched.qcow2
if [ "$(python3 entries.py qd/botched.qcow2)" = \
     "$(python3 entries.py cd/botched.qcow2)" ]; then ok; else
    failed "check -r all: snapshot entries unlike qemu-img's"
fi

# An image marked corrupt: check -r opens it for the repair and, with
# nothing left wrong, clears the mark, as qemu-img does; with an L1 entry
# that stays broken (reserved bits set), the mark stays.
for d in qd cd; do
    qemu-img create -q -f qcow2 "$d/marked.qcow2" 16M
    qemu-io -c 'write -P 4 0 1M' "$d/marked.qcow2" >/dev/null
    cp "$d/marked.qcow2" "$d/marked-l1.qcow2"
    python3 - "$d/marked.qcow2" "$d/marked-l1.qcow2" <<'PYEOF'
import struct, sys
for i, path in enumerate(sys.argv[1:]):
    with open(path, "r+b") as f:
        h = f.read(80)
        f.seek(72)
        f.write(struct.pack(">Q", struct.unpack(">Q", h[72:80])[0] | 2))
        if i:
            l1 = struct.unpack(">Q", h[40:48])[0]
            f.seek(l1)
            e = struct.unpack(">Q", f.read(8))[0]
            f.seek(l1)
            f.write(struct.pack(">Q", e | 0x100))
PYEOF
done
both check -r leaks marked-l1.qcow2
both info marked-l1.qcow2
both check -r all marked.qcow2
both info marked.qcow2
cmp -s qd/marked.qcow2 cd/marked.qcow2 && ok ||
    failed "check -r all marked.qcow2: image unlike qemu-img's"

# ---- map -------------------------------------------------------------------------
for f in base.qcow2 top.qcow2 sub/leaf.qcow2 v2.qcow2 ext.qcow2 disk.raw \
         snap.qcow2; do
    same map "$f"
    same map --output=json "$f"
done
same map --output=json comp.qcow2
same map comp.qcow2
same map --output=json --start-offset=1M --max-length=4M top.qcow2
same map --start-offset=512k --max-length=3.5M top.qcow2
same map --start-offset=x top.qcow2
same map --output=json huge.qcow2
for f in odd.raw empty.qcow2 orphan.qcow2; do
    same map "$f"
    same map --output=json "$f"
done
same map --output=json --start-offset=600 odd.raw
same map --max-length=0 base.qcow2
same map --output=json --max-length=0 base.qcow2
same map --output=json --start-offset=1G base.qcow2

# ---- measure --------------------------------------------------------------------
same measure --size 1G
same measure -O qcow2 --size 1G
same measure -O qcow2 -o cluster_size=4k,refcount_bits=64 --size 100G
same measure -O qcow2 -o extended_l2=on --size 1T --output=json
same measure -O qcow2 -o preallocation=full --size 1G
same measure -O qcow2 -o preallocation=metadata --size 3G
for f in base.qcow2 top.qcow2 v2.qcow2 comp.qcow2 disk.raw; do
    same measure -O qcow2 "$f"
    same measure --output=json -O raw "$f"
done
same measure -O raw odd.raw
# Bitmaps: every bit, table and directory entry set aside, at the target's
# cluster size.
same measure -O qcow2 bitmaps.qcow2
same measure -O qcow2 -o cluster_size=512 --output=json bitmaps.qcow2
same measure -O qcow2 -o cluster_size=2M bitmaps.qcow2
same measure -O qcow2 odd.raw
same measure -O qcow2 -o compat=0.10 base.qcow2
same measure -O qcow2 -o size=100M base.qcow2
same measure
same measure --size 1G base.qcow2
same measure --size x
same measure -O qcow2 -o foo=1 --size 1G
same measure -O foo --size 1G

# ---- compare ----------------------------------------------------------------------
qemu-img convert -O raw top.qcow2 top.raw
cp top.raw topmod.raw
printf 'x' | dd of=topmod.raw bs=1 seek=3000000 conv=notrunc 2>/dev/null
qemu-img create -q -f qcow2 big.qcow2 128M
quiet_io -c 'write -P 1 0 1M' -c 'write -z 2M 1M' -c 'write -P 2 5M 64k' \
    big.qcow2
same compare base.qcow2 top.qcow2
same compare top.qcow2 top.raw
same compare -f qcow2 -F raw top.qcow2 top.raw
same compare top.qcow2 topmod.raw
same compare -q top.qcow2 topmod.raw
same compare -s top.qcow2 top.raw
same compare -s base.qcow2 base.qcow2
same compare base.qcow2 big.qcow2
same compare -s base.qcow2 big.qcow2
quiet_io -c 'write -P 1 100M 4k' big.qcow2
same compare base.qcow2 big.qcow2
same compare base.qcow2 nonexistent.qcow2
# A raw file's partial last sector reads as zeroes, to its end.
cp odd.raw odd-pad.raw
truncate -s 1024 odd-pad.raw
same compare odd.raw odd-pad.raw
same compare -T none odd.raw odd-pad.raw
printf '\1' | dd of=odd-pad.raw bs=1 seek=1023 conv=notrunc 2>/dev/null
same compare odd.raw odd-pad.raw
same compare base.qcow2

# ---- create ------------------------------------------------------------------------
# A comma inside an option's value is written ",," (QEMU's option lists):
# kept in the image, and written back so in the "Formatting" line.
for d in qd cd; do
    qemu-img create -q -f qcow2 "$d/a,b.qcow2" 1M
done
both create -f qcow2 -o backing_file=a,,b.qcow2,backing_fmt=qcow2 comma.qcow2
both info comma.qcow2
both create -f qcow2 -o backing_file=a,b.qcow2 comma2.qcow2
both create -f qcow2 -o cluster_size=4k,,compat=1.1 comma3.qcow2
n=0
while read -r args; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    both create $args
    name=$(echo "$args" | awk '{ for (i = 1; i <= NF; i++)
        if ($i ~ /^new/) { print $i; exit } }')
    if [ -n "$name" ] && [ -e "qd/$name" ]; then
        case $name in *unsafe*) ;; *) images_agree "$name" ;; esac
        same info --output=json "qd/$name"
        rm -f "qd/$name" "cd/$name"
    fi
done <<'EOF'
new.raw 1M
-f raw new.raw 1.5G
-f qcow2 new.qcow2 1G
-f qcow2 new.qcow2 1000
-f qcow2 -o compat=0.10,cluster_size=4k new.qcow2 100M
-f qcow2 -o cluster_size=2M,refcount_bits=64 new.qcow2 10G
-f qcow2 -o extended_l2=on,compression_type=zstd,lazy_refcounts=on new.qcow2 1M
-f qcow2 -o cluster_size=4k -o refcount_bits=8 new.qcow2 1M
-f qcow2 -o preallocation=metadata new.qcow2 300M
-f qcow2 -o preallocation=falloc new.qcow2 1M
-f raw -o preallocation=full new.raw 1M
-f qcow2 -b base.qcow2 -F qcow2 new.qcow2
-f qcow2 -b base.qcow2 -F qcow2 new.qcow2 128M
-f qcow2 -o compat=0.10,cluster_size=4k -b base.qcow2 -F qcow2 new.qcow2
-f qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 new.qcow2
-f qcow2 -u -b missing.qcow2 -F qcow2 new-unsafe.qcow2 1G
-q -f qcow2 new.qcow2 1M
-f qcow2 -o size=5M new.qcow2
new.raw 0x100
new.raw 010
new.raw +5
new.raw 1.k
new.raw 1000
-f qcow2 -o lazy_refcounts=yes,extended_l2=true new.qcow2 1M
-f qcow2 -o cluster_size=0.5k new.qcow2 1M
-f qcow2 -o cluster_size=1024b new.qcow2 1M
-f qcow2 -b missing.qcow2 bad.qcow2
-f qcow2 -o size=foobar bad.qcow2
-f qcow2 -o foo=1 bad.qcow2 1M
-f qcow2 -b missing.qcow2 -F qcow2 bad.qcow2
-f qcow2 -F qcow2 bad.qcow2 1M
-f qcow2 -u -b missing.qcow2 -F qcow2 bad.qcow2
-f qcow2 bad.qcow2
-f foo bad.qcow2 1M
-f qcow2 /nonexistent/bad.qcow2 1M
bad.raw 1.5
bad.raw 9E
bad.raw 10Q
bad.raw 1M extra
-F qcow2 bad.raw 1M
-o size=3M bad.raw 1M
-f raw -o preallocation=off,nocow=on,extent_size_hint=0 new-hint.raw 1M
-f qcow2 -o nocow=off,extent_size_hint=256k new-hint.qcow2 1M
-f raw -o extent_size_hint=5G bad.raw 1M
-f qcow2 -o extent_size_hint=x bad.qcow2 1M
EOF
same create
# qemu-img lists options coblk does not have (encryption, data files).
for fmt in qcow2 raw; do
    run "$img" c create -f $fmt -o help
    if [ "$(head -1 c.out)" = "Supported $fmt options:" ] &&
       grep -q '^  size=<size>  *- Virtual disk size$' c.out; then ok; else
        failed "create -f $fmt -o help"
    fi
done
# Library-worded messages; qemu-img's misses its last newline.
same_status create -f qcow2 -b base.qcow2 bad.qcow2
same_status create -f qcow2 -o compat=0.10,extended_l2=on bad.qcow2 1M
same_status create -f raw -o preallocation=metadata bad.raw 1M
# In qemu-img's words (its "Formatting" line then misses its newline).
for o in refcount_bits=3 refcount_bits=-1 refcount_bits=x \
         compat=0.10,refcount_bits=8 compat=0.10,lazy_refcounts=on \
         compat=0.10,compression_type=zstd cluster_size=3000 \
         cluster_size=4M; do
    run qemu-img q create -f qcow2 -o "$o" bad.qcow2 1M
    run "$img" c create -f qcow2 -o "$o" bad.qcow2 1M
    if cmp -s q.err c.err && cmp -s q.rc c.rc; then ok; else
        failed "create -o $o: $(cat c.err) where qemu-img says $(cat q.err)"
    fi
done
same create -f qcow2 -o cluster_size=512 bad.qcow2 1E

# ---- convert ---------------------------------------------------------------------------
while read -r args; do
    # shellcheck disable=SC2086
    both convert $args
    out=$(echo "$args" | awk '{ print $NF }')
    if [ -e "qd/$out" ] && [ "${out#out.}" != "$out" ]; then
        images_agree "$out"
        rm -f "qd/$out" "cd/$out"
    fi
done <<'EOF'
base.qcow2 out.raw
-O qcow2 top.qcow2 out.qcow2
-O raw top.qcow2 out.raw
-O qcow2 leaf.qcow2 out.qcow2
-O qcow2 -o compat=0.10,cluster_size=4k top.qcow2 out.qcow2
-O qcow2 -o extended_l2=on top.qcow2 out.qcow2
-c -O qcow2 top.qcow2 out.qcow2
-c -O qcow2 -o compression_type=zstd,cluster_size=4k top.qcow2 out.qcow2
-O qcow2 -B base.qcow2 -F qcow2 top.qcow2 out.qcow2
-S 0 -O raw base.qcow2 out.raw
-S 64k -O qcow2 base.qcow2 out.qcow2
-m 1 -O qcow2 top.qcow2 out.qcow2
-m 16 -W -O qcow2 top.qcow2 out.qcow2
-O raw base.qcow2 disk.raw top.qcow2 out.raw
-O raw -l second snap.qcow2 out.raw
-O raw -l snapshot.name=first snap.qcow2 out.raw
-O qcow2 -l 1 snap.qcow2 out.qcow2
-O qcow2 ext.qcow2 out.qcow2
-O qcow2 comp.qcow2 out.qcow2
-q -p -O raw top.qcow2 out.raw
-t none -T none -O raw top.qcow2 out.raw
-t writeback -O qcow2 top.qcow2 out.qcow2
-r 100M -O raw base.qcow2 out.raw
-O qcow2 huge.qcow2 out.qcow2
-c -O qcow2 odd70k.raw out.qcow2
-c -O qcow2 -o cluster_size=512 odd70k.raw out.qcow2
-c -O qcow2 -o cluster_size=2M,compression_type=zstd odd70k.raw out.qcow2
-O raw odd.raw out.raw
-O qcow2 odd.raw out.qcow2
-O raw odd.raw odd70k.raw odd.raw out.raw
-O qcow2 odd70k.raw base.qcow2 out.qcow2
-c -O qcow2 odd.raw odd70k.raw out.qcow2
-C -O raw top.qcow2 out.raw
-C -O qcow2 top.qcow2 out.qcow2
-C -O raw disk.raw out.raw
-C -O raw comp.qcow2 out.raw
-C -O raw odd.raw odd70k.raw odd.raw out.raw
-C -t none -T none -O raw top.qcow2 out.raw
-T none -O raw odd.raw out.raw
-t none -T none -O qcow2 odd.raw odd70k.raw out.qcow2
base.qcow2
-c -O raw base.qcow2 bad.raw
-m 17 base.qcow2 bad.raw
-m 0 base.qcow2 bad.raw
-S 100 base.qcow2 bad.raw
-O foo base.qcow2 bad.raw
--target-is-zero base.qcow2 bad.raw
-B base.qcow2 -O raw top.qcow2 bad.raw
-O qcow2 -B base.qcow2 top.qcow2 bad.qcow2
nonexistent.qcow2 bad.raw
-t foo base.qcow2 bad.raw
-o foo=bar -O qcow2 base.qcow2 bad.qcow2
-C -c -O qcow2 base.qcow2 bad.qcow2
-C -S 4k -O raw base.qcow2 bad.raw
-C --salvage -O raw base.qcow2 bad.raw
-l nosuch snap.qcow2 bad.raw
-O qcow2 -B base.qcow2 -F qcow2 top.qcow2 top.qcow2 bad.qcow2
-l 1 snap.qcow2 snap.qcow2 bad.raw
-F qcow2 base.qcow2 bad.raw
-n -o cluster_size=4k -O qcow2 base.qcow2 bad.qcow2
EOF
# -C through blkdebug: its rules still fire (no offload past a filter).
run "$img" c convert -C -f raw -O raw \
    'blkdebug:event=read,errno=EIO:file:disk.raw' cd/failed-c.raw
if [ "$(cat c.rc)" = 1 ] && grep -q 'Input/output error' c.err; then ok; else
    failed "convert -C through blkdebug: exit $(cat c.rc), $(cat c.err)"
fi
# -C: the data goes by copy_file_range(2), file to file, where strace
# can tell.
# (LeakSanitizer cannot run under ptrace: off for this one run.)
if command -v strace >/dev/null; then
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        strace -f -e trace=copy_file_range -o cd/trace "$img" convert -C \
        -O raw top.qcow2 cd/offload.raw || failed "convert -C"
    reads_as cd/offload.raw top.qcow2
    if grep -q 'copy_file_range.*= [1-9]' cd/trace; then ok; else
        failed "convert -C copied no data by copy_file_range"
    fi
fi
# Into existing images: -n, with and without --target-is-zero.
for d in qd cd; do
    qemu-img create -q -f qcow2 "$d/pre.qcow2" 64M
    qemu-io -c 'write -P 9 0 64M' "$d/pre.qcow2" >/dev/null
    qemu-img create -q "$d/small.raw" 1M
    qemu-img create -q -f qcow2 "$d/zero.qcow2" 64M
done
both convert -n -O qcow2 top.qcow2 pre.qcow2
images_agree pre.qcow2
reads_as cd/pre.qcow2 top.qcow2
both convert -n --target-is-zero -O qcow2 base.qcow2 zero.qcow2
images_agree zero.qcow2
both convert -n -O raw top.qcow2 small.raw
# -n: the rest of a source's last sector is written as zeroes, as qemu-img
# writes it (once the target's old bytes stayed there).
for d in qd cd; do
    qemu-img create -q -f raw "$d/ff.raw" 4k
    quiet_io -f raw -c 'write -P 0xff 0 4k' "$d/ff.raw"
done
both convert -n -O raw odd.raw odd.raw ff.raw
if cmp -s qd/ff.raw cd/ff.raw; then ok; else
    failed "convert -n: the tail of a source's last sector differs"
    cmp qd/ff.raw cd/ff.raw
fi
# ... and into raw files ending inside that sector: each grows to the
# whole sector, as under qemu-img.
for d in qd cd; do
    head -c 71000 /dev/zero >"$d/short.raw"
    head -c 71000 /dev/zero >"$d/short-direct.raw"
    head -c 71150 /dev/zero >"$d/long-enough.raw"
done
both convert -n -O raw odd70k.raw odd.raw short.raw
both convert -n -t none -O raw odd70k.raw odd.raw short-direct.raw
both convert -n -O raw odd70k.raw odd.raw long-enough.raw
for f in short.raw short-direct.raw long-enough.raw; do
    if cmp -s qd/$f cd/$f; then ok; else
        failed "convert -n into a raw file ending in the last sector: $f"
        cmp qd/$f cd/$f
    fi
done
# -n into an image with a backing file of its own: all is written.
for d in qd cd; do
    qemu-img create -q -f qcow2 "$d/other.qcow2" 64M
    qemu-io -c 'write -P 11 0 64M' "$d/other.qcow2" >/dev/null
    qemu-img create -q -f qcow2 -b other.qcow2 -F qcow2 "$d/backed.qcow2"
done
both convert -n -O qcow2 top.qcow2 backed.qcow2
reads_as cd/backed.qcow2 top.qcow2
# -n -B (qemu-img 7.2 takes it): only what the top image holds is written,
# into qcow2 and into raw, whatever backing the target has.
for d in qd cd; do
    qemu-img create -q -f qcow2 -b other.qcow2 -F qcow2 "$d/nb.qcow2"
    qemu-img create -q -f raw "$d/nb.raw" 64M
done
both convert -n -B base.qcow2 -O qcow2 top.qcow2 nb.qcow2
both convert -n -B base.qcow2 -O raw top.qcow2 nb.raw
for f in nb.qcow2 nb.raw; do
    if qemu-img compare -q "qd/$f" "cd/$f" &&
       [ "$(cd qd && qemu-img map --output=json "$f")" = \
         "$(cd cd && qemu-img map --output=json "$f")" ]; then ok; else
        failed "convert -n -B into $f differs from qemu-img's"
    fi
done
# -c -B: only what the top image holds is compressed in, the rest shows
# through (once a 2 MiB chunk took the backing file's data too).
both convert -c -O qcow2 -B base.qcow2 -F qcow2 top.qcow2 cb.qcow2
images_agree cb.qcow2
(cd qd && qemu-img map --output=json cb.qcow2) >q.map
(cd cd && qemu-img map --output=json cb.qcow2) >c.map
if cmp -s q.map c.map; then ok; else
    failed "convert -c -B allocates other clusters than qemu-img's"
    diff q.map c.map | head
fi
# -B: the top's clusters lie in a row after their L2 table, as qemu-img
# lays them out (once each cluster came alone: QEMU's iotest 122 and
# 024), and past the end of a shorter backing file nothing is written,
# not even zero clusters (compat=0.10 has none).
for d in qd cd; do
    qemu-img create -q -f qcow2 "$d/short.qcow2" 2M
    qemu-img create -q -f qcow2 -b short.qcow2 -F qcow2 "$d/long.qcow2" 8M
    quiet_io -c 'write -P 0x11 1M 1M' "$d/short.qcow2"
    quiet_io -c 'write -P 0x22 0 1536k' -c 'write -P 0x33 5M 1M' \
        "$d/long.qcow2"
done
for o in compat=1.1 compat=0.10; do
    both convert -O qcow2 -B short.qcow2 -o $o,backing_fmt=qcow2 \
        long.qcow2 bl.qcow2
    images_agree bl.qcow2
    (cd qd && qemu-img map bl.qcow2) >q.map
    (cd cd && qemu-img map bl.qcow2) >c.map
    if cmp -s q.map c.map; then ok; else
        failed "convert -B -o $o lays clusters out unlike qemu-img"
        diff q.map c.map | head
    fi
    rm -f qd/bl.qcow2 cd/bl.qcow2
done
# ... but where the source has no backing file, what it leaves unallocated
# reads as zeroes, and is written so over the target's backing data (once
# that showed through).
for d in qd cd; do
    qemu-img create -q -f qcow2 "$d/alone.qcow2" 2M
    quiet_io -c 'write -P 0x44 0 64k' "$d/alone.qcow2"
done
both convert -O qcow2 -B short.qcow2 -F qcow2 alone.qcow2 bz.qcow2
images_agree bz.qcow2
reads_as cd/bz.qcow2 cd/alone.qcow2
# -n -c into a larger image: whole clusters compress; a source that ends
# inside one fails there, as in qemu-img (once a buffer overrun).
head -c 1048576 /dev/urandom >whole.raw
head -c 1000000 whole.raw >part.raw
for d in qd cd; do
    cp whole.raw part.raw "$d/"
    qemu-img create -q -f qcow2 "$d/large.qcow2" 1G
    qemu-img create -q -f qcow2 "$d/large2.qcow2" 1G
done
both convert -n -c -f raw -O qcow2 whole.raw large.qcow2
images_agree large.qcow2
both convert -n -c -f raw -O qcow2 part.raw large2.qcow2
# Faults (blkdebug: a coblk spec as the target or source): a full disk is
# one message and exit 1; --salvage reads past a failing source.
# Slow writes, so that several fail at once: one line still.
for slow in "" ",delay-ns=10000000"; do
    run "$img" c convert -S 0 -n -O raw base.qcow2 \
        "blkdebug:event=write,errno=ENOSPC$slow:file:qd/pre.qcow2"
    if [ "$(cat c.rc)" = 1 ] && [ "$(cat c.err)" = \
         "qemu-img: error while writing at byte 0: No space left on device" ]
    then
        ok
    else
        failed "ENOSPC during convert ($slow): exit $(cat c.rc), $(cat c.err)"
    fi
done
run "$img" c convert -O raw 'blkdebug:event=read,errno=EIO:file:disk.raw' \
    cd/failed.raw
if [ "$(cat c.rc)" = 1 ] && grep -q 'Input/output error' c.err; then ok; else
    failed "a failing source: exit $(cat c.rc), $(cat c.err)"
fi
run "$img" c convert --salvage -O raw \
    'blkdebug:event=read,errno=EIO,every=2:file:disk.raw' cd/salvaged.raw
if [ "$(cat c.rc)" = 0 ] && grep -q 'error while reading' c.err; then ok; else
    failed "--salvage: exit $(cat c.rc), $(cat c.err)"
fi
# Images coblk-img wrote read back as their sources, through coblk-img too.
"$img" convert -O qcow2 top.qcow2 cd/round.qcow2
"$img" convert -O raw cd/round.qcow2 cd/round.raw
same compare cd/round.qcow2 top.qcow2
reads_as cd/round.raw top.qcow2
reads_as cd/round.qcow2 top.raw
# Without -W the target's clusters lie in the source's order, also where
# holes of the source end inside clusters (cut there, a chunk would share
# its last cluster with the next, wait for it, and fall behind a third).
head -c 24M /dev/urandom >cd/holes.raw
for at in $(seq 300 300 24000); do
    fallocate -p -o $((at * 1024)) -l 4096 cd/holes.raw
done
"$img" convert -O qcow2 cd/holes.raw cd/holes.qcow2
qemu-img map --output=json cd/holes.qcow2 >cd/holes.map
if qemu-img compare -q cd/holes.raw cd/holes.qcow2 &&
   tr -d '{}' <cd/holes.map | awk -F'"offset": ' 'NF > 1 {
       if ($2 + 0 < last) bad = 1
       last = $2 + 0
   } END { exit bad }'; then ok; else
    failed "convert -O qcow2 laid the clusters out of order: $(cat cd/holes.map)"
fi

# ---- resize -------------------------------------------------------------------------------
for d in qd cd; do
    qemu-img create -q -f qcow2 "$d/grow.qcow2" 1G
    qemu-img create -q "$d/grow.raw" 10M
    cp base.qcow2 "$d/shrink-base.qcow2"
    cp disk.raw "$d/shrink.raw"
    qemu-img create -q -f qcow2 -b ../base.qcow2 -F qcow2 "$d/shrink-top.qcow2"
    qemu-io -c 'write -P 3 512k 1M' "$d/shrink-top.qcow2" >/dev/null
    head -c 1000 disk.raw >"$d/odd1000.raw"
done
while read -r args; do
    # shellcheck disable=SC2086
    both resize $args
done <<'EOF'
grow.qcow2 +1G
grow.qcow2 -1G
--shrink grow.qcow2 -1G
grow.qcow2 x
--shrink grow.qcow2 -20G
grow.qcow2 3G
-f raw grow.raw 20M
-f raw grow.raw 5M
-f raw --shrink grow.raw 5M
-q grow.qcow2 +512M
-f qcow2 shrink-base.qcow2 64M
--shrink -f qcow2 shrink-base.qcow2 3M
--shrink -f qcow2 shrink-top.qcow2 1000k
--shrink -f raw shrink.raw 1M
-f raw odd1000.raw +1
-f raw odd1000.raw 1001
--shrink -f raw odd1000.raw 999
grow.qcow2
EOF
same info --output=json qd/grow.qcow2
for f in grow.qcow2 grow.raw shrink-base.qcow2 shrink-top.qcow2 \
         shrink.raw; do
    images_agree $f
done
if cmp -s qd/odd1000.raw cd/odd1000.raw; then ok; else
    failed "resize of a raw file of 1000 bytes differs from qemu-img's"
fi

# reads_zeroes FMT IMAGE: IMAGE reads as zeroes to its end (qemu-io prints
# its "read" line even when the pattern does not match: its exit status
# tells).
reads_zeroes() {
    size=$(qemu-img info -f "$1" --output=json "$2" |
           sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')
    qemu-io -f "$1" -c "read -P 0 0 $size" "$2" >/dev/null 2>&1
}

# resize --preallocation: each mode, on raw and on three kinds of qcow2;
# the new space reads as zeroes, is allocated as qemu-img allocates it,
# and each tool maps each image alike.  Clusters freed inside the file
# (the 5s, discarded) are reused and must not show through.
for d in qd cd; do
    for o in "" compat=0.10 extended_l2=on,cluster_size=128k; do
        qemu-img create -q -f qcow2 ${o:+-o $o} "$d/pre${o%%[=,]*}.qcow2" 1M
    done
    qemu-io -c 'write -P 5 0 1M' -c 'discard 0 1M' "$d/pre.qcow2" >/dev/null
    qemu-img create -q -f raw "$d/pre.raw" 1M
done
for f in pre.qcow2 precompat.qcow2 preextended_l2.qcow2 pre.raw; do
    for mode in metadata falloc full off bogus; do
        both resize --preallocation=$mode "$f" +1M
    done
    both resize --shrink --preallocation=full "$f" 1M
    images_agree "$f"
    for d in qd cd; do
        if ! reads_zeroes "${f##*.}" "$d/$f"; then
            failed "resize --preallocation: $d/$f does not read as zeroes"
        fi
        same map --output=json "$d/$f"
        # Where the clusters went may differ: what is allocated may not.
        qemu-img map --output=json "$d/$f" | python3 -c '
import json, sys
merged = []
for e in json.load(sys.stdin):
    e.pop("offset", None)
    key = [e[k] for k in sorted(e) if k not in ("start", "length")]
    if merged and merged[-1][0] == key:
        merged[-1][1] += e["length"]
    else:
        merged.append([key, e["length"]])
print(merged)' >"$d/$f.map"
    done
    if cmp -s "qd/$f.map" "cd/$f.map"; then ok; else
        failed "resize --preallocation: $f allocated unlike qemu-img's"
        diff "qd/$f.map" "cd/$f.map" | head -10
    fi
done
# Freed clusters that still hold the 5s in the file (the discard not
# passed down) are reused: they must read as zeroes.  (qemu-img 7.2's
# metadata preallocation shows the 5s here.)
qemu-img create -q -f qcow2 cd/stale.qcow2 1M
qemu-io --image-opts -c 'write -P 5 0 1M' -c 'discard 0 1M' \
    driver=qcow2,file.filename=cd/stale.qcow2,pass-discard-request=off \
    >/dev/null
for mode in metadata falloc full; do
    "$img" resize -q --preallocation=$mode cd/stale.qcow2 +1M
done
if reads_zeroes qcow2 cd/stale.qcow2 && qemu-img check -q cd/stale.qcow2
then ok; else
    failed "resize --preallocation: reused clusters show what they held"
fi

# ---- dd, snapshot -l ------------------------------------------------------------------------
while read -r args; do
    # shellcheck disable=SC2086
    both dd $args
    out=$(echo "$args" | sed -n 's/.*of=\([^ ]*\).*/\1/p')
    if [ -n "$out" ] && [ -e "qd/$out" ]; then
        images_agree "$out"
        rm -f "qd/$out" "cd/$out"
    fi
done <<'EOF'
if=top.qcow2 of=dd.raw bs=64k count=10
if=top.qcow2 of=dd.raw bs=64k count=10 skip=2
if=top.qcow2 of=dd.raw bs=1M skip=3
-O qcow2 if=top.qcow2 of=dd.qcow2 bs=1M skip=2
if=top.qcow2 of=dd.raw bs=3 count=1
if=odd.raw of=dd.raw bs=300
if=top.qcow2 of=dd.raw bs=64k count=10 skip=12
if=top.qcow2 of=dd.raw count=0
if=top.qcow2
if=top.qcow2 of=dd.raw bs=0
if=top.qcow2 of=dd.raw count=-1
if=top.qcow2 of=dd.raw foo=1
EOF
for f in snap.qcow2 base.qcow2 v2.qcow2; do
    same snapshot -l "$f"
    same snapshot "$f"
done
same snapshot -l -c x snap.qcow2
same snapshot -l

# ---- snapshot -c, -a, -d ------------------------------------------------------------------
# listing NAME: each tool's image NAME as qemu-img lists its snapshots,
# without the dates; both must list the same.
listings_agree() {
    for d in qd cd; do
        qemu-img snapshot -l "$d/$1" | awk '{ print $1, $2, $3, $4, $7 }' \
            >"$d.list"
    done
    if cmp -s qd.list cd.list; then ok; else
        failed "snapshot -l $1: $(cat cd.list) where qemu-img made $(cat qd.list)"
    fi
}
for d in qd cd; do
    (cd $d && rm -f sn.qcow2 sn.raw && qemu-img create -q -f qcow2 sn.qcow2 4M &&
     qemu-io -c 'write -P 1 0 3M' -c 'write -z 3M 64k' sn.qcow2 >/dev/null &&
     truncate -s 1M sn.raw)
done
both snapshot -c one sn.qcow2
# Writes after a snapshot (qemu-io's, the same on both sides) copy what
# it shares; a second snapshot, then back to the first.
for d in qd cd; do
    qemu-io -c 'write -P 2 1M 1M' -c 'discard 0 64k' "$d/sn.qcow2" >/dev/null
done
both snapshot -c two sn.qcow2
listings_agree sn.qcow2
both snapshot -a one sn.qcow2
images_agree sn.qcow2
both snapshot -a 2 sn.qcow2
images_agree sn.qcow2
both snapshot -d one sn.qcow2
listings_agree sn.qcow2
images_agree sn.qcow2
both snapshot -a nope sn.qcow2
both snapshot -d nope sn.qcow2
both snapshot -c x -f raw sn.raw
both snapshot -d two sn.qcow2
listings_agree sn.qcow2
images_agree sn.qcow2
# With persistent bitmaps, applying any snapshot is refused, as QEMU
# refuses it, and a resize to the same size leaves them valid (once both
# declared the bitmaps stale: an apply of a snapshot that was not there).
for d in qd cd; do
    cp bitmaps.qcow2 "$d/bm-sn.qcow2"
    qemu-img snapshot -c s "$d/bm-sn.qcow2"
done
both snapshot -a s bm-sn.qcow2
both snapshot -a nosuch bm-sn.qcow2
both resize bm-sn.qcow2 64M
qemu-img info cd/bm-sn.qcow2 >bm.out 2>bm.err
if [ ! -s bm.err ] && grep -q 'name: b1' bm.out; then ok; else
    failed "bitmaps declared stale by a refused apply or a no-op resize"
    cat bm.err
fi

# A damaged snapshot entry (QEMU's iotest 080): the image still opens;
# loading, applying or deleting that snapshot fails, and check reports it
# and its clusters as leaks, each in qemu-img's words.
qemu-img create -q -f qcow2 bad-sn.qcow2 64M
qemu-io -c 'write 0 512' bad-sn.qcow2 >/dev/null
qemu-img snapshot -c test bad-sn.qcow2
entry=$(od -An -t u8 --endian=big -j 64 -N 8 bad-sn.qcow2 | tr -d ' ')
printf '\000\000\000\000\000\100\002\000' |
    dd of=bad-sn.qcow2 bs=1 seek="$entry" conv=notrunc 2>/dev/null
same convert -l test bad-sn.qcow2 bad-sn.raw
same snapshot -a test bad-sn.qcow2
same snapshot -d test bad-sn.qcow2
same check bad-sn.qcow2
same info bad-sn.qcow2

# ---- commit, rebase --------------------------------------------------------------------
# chain DIR: a three-image chain in DIR and what its top reads, as raw.
chain() {
    (cd "$1" && rm -f c-*.qcow2 c-*.raw &&
     qemu-img create -q -f qcow2 c-base.qcow2 4M &&
     qemu-io -c 'write -P 1 0 2M' c-base.qcow2 >/dev/null &&
     qemu-img create -q -f qcow2 -b c-base.qcow2 -F qcow2 c-mid.qcow2 &&
     qemu-io -c 'write -P 2 1M 1M' c-mid.qcow2 >/dev/null &&
     qemu-img create -q -f qcow2 -b c-mid.qcow2 -F qcow2 c-top.qcow2 6M &&
     qemu-io -c 'write -P 3 1536k 1M' -c 'write -z 0 64k' \
         -c 'write -P 4 5M 64k' c-top.qcow2 >/dev/null &&
     qemu-img create -q -f qcow2 c-other.qcow2 8M &&
     qemu-io -c 'write -P 9 0 8M' c-other.qcow2 >/dev/null &&
     qemu-img convert -O raw c-top.qcow2 c-top.raw &&
     qemu-img convert -O raw c-mid.qcow2 c-mid.raw) ||
        failed "making a chain in $1"
}
# after WHAT: both tools' images of the chain read and are described alike.
after() {
    for f in c-base.qcow2 c-mid.qcow2 c-top.qcow2; do
        # A chain left pointing at a missing file reads nowhere.
        if qemu-img info --backing-chain "qd/$f" >/dev/null 2>&1; then
            images_agree "$f"
        fi
        same map --output=json "qd/$f"
        same info --output=json -U "qd/$f"
    done
}
while read -r args; do
    chain qd
    chain cd
    # shellcheck disable=SC2086
    eval "both $args"
    after
done <<'EOF'
commit c-top.qcow2
commit -d c-top.qcow2
commit -b c-base.qcow2 c-top.qcow2
commit -q -f qcow2 c-mid.qcow2
commit -b nosuch.qcow2 c-top.qcow2
commit c-base.qcow2
rebase -b c-base.qcow2 -F qcow2 c-top.qcow2
rebase -b c-other.qcow2 -F qcow2 c-top.qcow2
rebase -b '' c-top.qcow2
rebase -u -b c-base.qcow2 -F qcow2 c-top.qcow2
rebase -u -b nosuch.qcow2 -F qcow2 c-top.qcow2
rebase -b nosuch.qcow2 -F qcow2 c-top.qcow2
rebase -b c-base.qcow2 c-top.qcow2
rebase c-top.qcow2
EOF
# What the top read before a safe rebase, it reads after; a commit leaves
# the image reading the same, and the base as it read.
chain cd
"$img" rebase -b c-other.qcow2 -F qcow2 cd/c-top.qcow2
reads_as cd/c-top.qcow2 cd/c-top.raw
"$img" rebase -b '' cd/c-top.qcow2
reads_as cd/c-top.qcow2 cd/c-top.raw
chain cd
"$img" commit -q cd/c-top.qcow2
reads_as cd/c-top.qcow2 cd/c-top.raw
reads_as cd/c-mid.qcow2 cd/c-top.raw

# ---- amend -------------------------------------------------------------------------------
while read -r args; do
    for d in qd cd; do
        rm -f "$d/am.qcow2"
        qemu-img create -q -f qcow2 "$d/am.qcow2" 16M
        qemu-io -c 'write -P 1 0 1M' "$d/am.qcow2" >/dev/null
    done
    # shellcheck disable=SC2086
    both amend $args am.qcow2
    images_agree am.qcow2
    same info -U qd/am.qcow2
done <<'EOF'
-o compat=0.10
-o compat=1.1
-o lazy_refcounts=on
-p -o lazy_refcounts=on
-p -q -o lazy_refcounts=on
-o compat=1.1,lazy_refcounts=on
-o lazy_refcounts=off
-o cluster_size=4k
-o refcount_bits=16
-o refcount_bits=1
-o refcount_bits=64
-o refcount_bits=3
-o refcount_bits=8,compat=0.10
-o extended_l2=on
-o compression_type=zstd
-o foo=1
-o size=32M
-o compat=0.10,lazy_refcounts=on
-o preallocation=full
-o compat=2
-o backing_file=base.qcow2,backing_fmt=qcow2
-f raw -o compat=1.1
EOF
same amend base.qcow2
# A guessed raw image given to a command that writes it: the warning,
# then the error.
qemu-img create -q -f raw guessed.raw 1M
same commit guessed.raw
same rebase -b base.qcow2 -F qcow2 guessed.raw
same amend -o compat=1.1 guessed.raw
for d in qd cd; do
    qemu-img create -q -f qcow2 -o compat=0.10 "$d/am.qcow2" 16M
    qemu-io -c 'write -P 1 0 1M' "$d/am.qcow2" >/dev/null
done
both amend -o compat=1.1,lazy_refcounts=on am.qcow2
images_agree am.qcow2
same info -U qd/am.qcow2
both amend -o compat=0.10 am.qcow2
images_agree am.qcow2
same info -U qd/am.qcow2
# refcount_bits: a shared cluster (refcount 2) does not fit in one bit;
# a version 2 image upgraded and narrowed at once.
for d in qd cd; do
    qemu-io -c 'write -P 2 0 1M' "$d/am.qcow2" >/dev/null
done
while read -r args; do
    # shellcheck disable=SC2086
    both amend $args am.qcow2
    images_agree am.qcow2
    same info -U qd/am.qcow2
done <<'EOF'
-o compat=1.1,refcount_bits=2
-o refcount_bits=32
EOF
for d in qd cd; do
    qemu-img snapshot -c s "$d/am.qcow2"
done
both amend -o refcount_bits=1 am.qcow2
both amend -o compat=0.10 am.qcow2
same info -U qd/am.qcow2
if [ "$(qemu-img info qd/am.qcow2 | grep 'compat\|refcount bits')" = \
     "$(qemu-img info cd/am.qcow2 | grep 'compat\|refcount bits')" ]; then
    ok
else
    failed "amend refcount_bits: the two images' widths differ"
fi

# A downgrade writes zero clusters out as compat=0.10 can hold them:
# unallocated, or zeroes as data over a backing file and in a cluster
# that kept its host; the same clusters as qemu-img's, at the same offsets.
for d in qd cd; do
    rm -f "$d/zc.qcow2" "$d/zcb.qcow2"
    for f in zc.qcow2 zcb.qcow2; do
        if [ $f = zc.qcow2 ]; then
            qemu-img create -q -f qcow2 "$d/$f" 4M
        else
            qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/$f"
        fi
        quiet_io -c 'write -P 1 0 1M' -c 'write -z 1M 512k' \
            -c 'write -P 1 2M 256k' -c 'write -z 2M 128k' \
            -c 'write -z -u 3M 64k' "$d/$f"
    done
done
for f in zc.qcow2 zcb.qcow2; do
    both amend -o compat=0.10 "$f"
    images_agree "$f"
    same info -U "qd/$f"
    (cd qd && qemu-img map --output=json "$f") >q.map
    (cd cd && qemu-img map --output=json "$f") >c.map
    if cmp -s q.map c.map; then ok; else
        failed "amend -o compat=0.10 $f: clusters other than qemu-img's"
        diff q.map c.map | head
    fi
done
# With an internal snapshot: the active layer's zero clusters (written
# after it) are written out, the snapshot's data stays (qemu-img 7.2
# changes it: compared with the snapshot as it was).
for d in qd cd; do
    rm -f "$d/zs.qcow2"
    qemu-img create -q -f qcow2 "$d/zs.qcow2" 4M
    quiet_io -c 'write -P 1 0 2M' "$d/zs.qcow2"
    qemu-img snapshot -c s1 "$d/zs.qcow2"
    qemu-img convert -l s1 -O raw "$d/zs.qcow2" zs-s1.raw
    quiet_io -c 'write -z 0 512k' -c 'write -z -u 1M 128k' \
        -c 'write -P 2 2M 64k' "$d/zs.qcow2"
done
both amend -o compat=0.10 zs.qcow2
images_agree zs.qcow2
qemu-img convert -l s1 -O raw cd/zs.qcow2 cd/zs-s1.raw
if cmp -s cd/zs-s1.raw zs-s1.raw; then ok; else
    failed "amend -o compat=0.10: the snapshot's data changed"
fi
# A snapshot with zero clusters of its own: refused, the image as it was.
# (qemu-img 7.2 downgrades it into an image its check finds corrupt.)
qemu-img create -q -f qcow2 zs.qcow2 4M
quiet_io -c 'write -P 1 0 2M' -c 'write -z 1536k 64k' zs.qcow2
qemu-img snapshot -c s1 zs.qcow2
cp zs.qcow2 zs-before.qcow2
run "$img" c amend -o compat=0.10 zs.qcow2
if [ "$(cat c.rc)" = 1 ] && grep -q "snapshot 's1' has zero clusters" c.err &&
   cmp -s zs.qcow2 zs-before.qcow2; then ok; else
    failed "amend -o compat=0.10 of a snapshot with zero clusters:" \
        "exit $(cat c.rc), $(cat c.err)"
fi

# ---- bench ------------------------------------------------------------------------------
# qemu-img's lines (timing aside), then coblk-img's own; the data written
# is the pattern asked for.
for d in qd cd; do
    qemu-img create -q -f qcow2 "$d/bench.qcow2" 16M
done
while read -r args; do
    # shellcheck disable=SC2086
    both_run bench $args
    for t in q c; do
        sed -i 's/^Run completed in [0-9.]* seconds\.$/Run completed./' $t.out
        sed -i '/^IOPS: /d; /^Latency (us): /d' $t.out
    done
    agree "bench $args"
done <<'EOF'
-c 2000 base.qcow2
-c 2000 -d 4 -s 8k -S 16k -o 1M base.qcow2
-c 1000 -f raw -t none disk.raw
-w -c 1000 --pattern=7 -s 64k bench.qcow2
-w -c 1000 --flush-interval=100 bench.qcow2
-w -c 1000 --flush-interval=10 --no-drain -d 8 bench.qcow2
-c x base.qcow2
-d x base.qcow2
-s 0 base.qcow2
--pattern=300 -w bench.qcow2
--flush-interval=10 base.qcow2
--no-drain -w bench.qcow2
-i foo base.qcow2
-w -c 100 --flush-interval=10 bench.qcow2
-n -c 10 base.qcow2
-i native -c 10 base.qcow2
-n -t none -c 10 -f raw disk.raw
EOF
if qemu-img compare -q qd/bench.qcow2 cd/bench.qcow2 &&
   qemu-img check -q cd/bench.qcow2; then ok; else
    failed "bench -w wrote other data than qemu-img bench -w"
fi
run "$img" c bench -c 1000 --output=json base.qcow2
if python3 -c 'import json, sys
lines = open(sys.argv[1]).read().split("\n", 2)
d = json.loads(lines[2])
assert d["requests"] == 1000 and d["depth"] == 64, d
assert 0 < d["latency-ns"]["p50"] <= d["latency-ns"]["max"], d' c.out; then
    ok
else
    failed "bench --output=json"
fi

# Formats coblk does not read are refused by name, never guessed raw (their
# metadata read as the disk, a resize cutting them).
qemu-img create -q -f vmdk other.vmdk 1M
cp other.vmdk other-before.vmdk
# Guessed as QEMU guesses: a descriptor that is no vmdk's, a qcow2 magic
# with version 0, are raw.
printf '# Disk DescriptorFile\nhello\n' >text.raw
printf 'QFI\373\0\0\0\0' >qfi0.raw
same info text.raw
same info qfi0.raw
for cmd in "info" "convert -O raw" "resize"; do
    case $cmd in
    info) set -- info other.vmdk ;;
    resize) set -- resize other.vmdk 2M ;;
    *) set -- convert -O raw other.vmdk bad.raw ;;
    esac
    run "$img" c "$@"
    if [ "$(cat c.rc)" = 1 ] && grep -q "other.vmdk is a vmdk image" c.err &&
       cmp -s other.vmdk other-before.vmdk; then ok; else
        failed "$cmd of a vmdk image: exit $(cat c.rc), $(cat c.err)"
    fi
done

# ---- locks, as QEMU takes them ------------------------------------------------------
# has_lock FILE: a process holds an OFD lock on FILE.  Read in /proc/locks:
# asking qemu-img would open the file, and its own lock could make the
# holder's fail.
has_lock() {
    [ -e "$1" ] && grep -q "OFDLCK.*:$(stat -c %i "$1") " /proc/locks
}
# catches_usr1 PID: PID has a handler for SIGUSR1 (bit 10 of SigCgt).
catches_usr1() {
    [ $(( 0x$(awk '/^SigCgt/ { print $2 }' "/proc/$1/status") & 0x200 )) != 0 ]
}
# A writer (qemu-io, as a VM would) holds locked.qcow2: both tools refuse
# to read it consistently, to write it, or to create over it; -U reads.
qemu-img create -q -f qcow2 locked.qcow2 4M
quiet_io -c 'write -P 1 0 1M' locked.qcow2
# (10 minutes, killed below: 20 s once ran out on a loaded machine.)
qemu-io -c 'sleep 600000' locked.qcow2 >/dev/null 2>holder.err &
holder=$!
# Every check below is void if qemu-io has not taken its lock.
wait_until "qemu-io locked locked.qcow2" $holder holder.err \
    has_lock locked.qcow2
same info locked.qcow2
same info -U locked.qcow2
same map -U locked.qcow2
same check locked.qcow2
same compare locked.qcow2 base.qcow2
same convert -O raw locked.qcow2 bad.raw
same create -f qcow2 locked.qcow2 1M
same resize locked.qcow2 8M
same commit locked.qcow2
qemu-img create -q -f qcow2 -b locked.qcow2 -F qcow2 over-locked.qcow2
same commit over-locked.qcow2
same convert -B locked.qcow2 -F qcow2 -O qcow2 base.qcow2 bad-backed.qcow2
# -U shares what a command reads, never what it writes: refused where the
# image itself is written, locked where it is the output.
cp locked.qcow2 locked-before.qcow2
same check -U -r all locked.qcow2
same snapshot -U -c s locked.qcow2
same bench -U -w -c 1 locked.qcow2
same rebase -U -u -b base.qcow2 -F qcow2 locked.qcow2
same rebase -U -b base.qcow2 -F qcow2 locked.qcow2
same convert -U -n -O qcow2 base.qcow2 locked.qcow2
same dd -U -O qcow2 if=base.qcow2 of=locked.qcow2
if cmp -s locked.qcow2 locked-before.qcow2; then ok; else
    failed "-U: an image another process writes was written"
fi
kill $holder 2>/dev/null
wait $holder
# convert never writes over its source or the source's backing file.
cp top.qcow2 self.qcow2
cp base.qcow2 self-base.qcow2
same convert -O qcow2 self.qcow2 self.qcow2
same convert -O qcow2 top.qcow2 base.qcow2
reads_as self.qcow2 top.qcow2
reads_as base.qcow2 self-base.qcow2
# coblk-img holds what it converts (16 MiB at 2 MiB/s, a progress update
# a second): qemu-img may read the source but not write it, and may not
# read the target consistently.
qemu-img create -q -f qcow2 locked.qcow2 16M
quiet_io -c 'write -P 1 0 16M' locked.qcow2
"$img" convert -r 2M -O qcow2 locked.qcow2 held.qcow2 2>held.out &
holder=$!
# Once it has taken its locks and catches SIGUSR1: both come before the
# copy, which takes 8 s.
wait_until "the rate-limited convert started" $holder held.out \
    eval 'has_lock held.qcow2 && catches_usr1 $holder'
kill -USR1 $holder          # without -p: one progress line, on stderr
run qemu-img q info held.qcow2
if grep -q 'Failed to get shared "write" lock' q.err; then ok; else
    failed "qemu-img read the image coblk-img is writing"
fi
run qemu-img q resize locked.qcow2 32M
if grep -q 'Failed to get "write" lock' q.err; then ok; else
    failed "qemu-img resized the image coblk-img is reading"
fi
run qemu-img q info locked.qcow2
if [ "$(cat q.rc)" = 0 ]; then ok; else
    failed "qemu-img could not read what coblk-img only reads"
fi
wait $holder || failed "the rate-limited convert"
if grep -Eq '^    \([0-9]+\.[0-9]{2}/100%\)$' held.out; then ok; else
    failed "SIGUSR1 printed no progress line: $(cat held.out)"
fi
reads_as held.qcow2 locked.qcow2

# ---- "file:" names the protocol: the rest is the path, colons and all ----------------
both create -f qcow2 -b base.qcow2 -F qcow2 file:im:top.qcow2
both create -f raw file:im:raw.img 1M
both convert -O qcow2 top.qcow2 file:im:conv.qcow2
for f in im:top.qcow2 im:raw.img im:conv.qcow2; do
    images_agree "$f"
done
cp qd/im:top.qcow2 .
for args in "info file:im:top.qcow2" "info --output=json file:im:top.qcow2" \
            "info --backing-chain file:im:top.qcow2" "info file:base.qcow2" \
            "info file:$PWD/base.qcow2" "map file:im:top.qcow2" \
            "check file:im:top.qcow2" "compare file:im:top.qcow2 base.qcow2" \
            "info file:nosuch:file.qcow2" "info file:nosuch.qcow2"; do
    # shellcheck disable=SC2086
    same $args
done

# ---- command lines ---------------------------------------------------------------------
same
same nosuchcommand
same --frobnicate
same info -f
same check
same map
same compare
same convert
same resize base.qcow2
# Global -T (no trace events here: the warning), --output taking the file
# name, qemu-img's words for a bad size, option help with and without a
# file name.
while read -r args; do
    # shellcheck disable=SC2086
    same $args
done <<'EOF'
-T foo info base.qcow2
-T
--trace
-- info base.qcow2
bench -n nosuch.qcow2
--trace enable=bar,file=trace.log info base.qcow2
-Tfoo --trace=baz map base.qcow2
info --output base.qcow2
check --output base.qcow2
map --output base.qcow2
convert -S 1x base.qcow2 bad.raw
convert -r 1x base.qcow2 bad.raw
commit -r 1x top.qcow2
dd bs=1x if=base.qcow2 of=bad.raw
dd count=1x if=base.qcow2 of=bad.raw
map --start-offset=1x base.qcow2
bench -o 1x base.qcow2
create -f raw -o help
create -f raw -o help bad.raw
convert -O raw -o help base.qcow2 bad.raw
EOF

echo "coblk-img against qemu-img: $passes agreed, $failures failed"
[ "$failures" -eq 0 ]

#!/bin/sh
# coblk-nbd against its peers: QEMU's NBD client (qemu-io, qemu-img) reads
# and writes through it, and what it exports must look exactly as
# qemu-nbd's export of the same image (map with base:allocation and
# qemu:allocation-depth, info, contents).  Skipped (77) without qemu-img,
# qemu-io and qemu-nbd.
set -u

: "${top_builddir:?}"
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
nbd="$top_builddir/tools/coblk-nbd"
for tool in qemu-img qemu-io qemu-nbd python3; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "$tool is not installed: skipped"
        exit 77
    fi
done
work=$(mktemp -d /var/tmp/coblk-nbd-test.XXXXXX)
cleanup() {
    for pid in "$work"/*.pid; do
        [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
. "$top_srcdir/tests/integration/checks.sh"

uri() { echo "nbd+unix:///${2:-}?socket=$work/$1.sock"; }

# serve NAME ARGS...: coblk-nbd in the background on NAME.sock.
serve() {
    name=$1
    shift
    "$nbd" --fork --pid-file="$work/$name.pid" -k "$work/$name.sock" "$@"
}

# gone NAME: waits (up to 5 s) for the server NAME to exit.
gone() {
    pid=$(cat "$work/$1.pid" 2>/dev/null) || return 0
    for _ in $(seq 25); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
}

# listening NAME: waits (up to 10 s) for NAME.sock, a server started in
# the background.
listening() {
    for _ in $(seq 50); do
        [ -S "$work/$1.sock" ] && return 0
        sleep 0.2
    done
}

# ends PID WHAT: waits (up to 30 s) for a client in the background to
# exit; one still running is a hang: killed, and WHAT fails.
ends() {
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.3
    done
    kill -9 "$1"
    check "$2" false
}

# stop NAME: SIGTERM, then the server must be gone with its socket.
stop() {
    pid=$(cat "$work/$1.pid")
    kill "$pid"
    gone "$1"
    check "$1: exits on SIGTERM" sh -c "! kill -0 $pid 2>/dev/null"
    check "$1: removes its socket" test ! -e "$work/$1.sock"
}

# ---- raw: every command QEMU's client sends ----------------------------------
qemu-img create -q -f raw disk.raw 8M
qemu-io -f raw -c 'write -P 0x11 0 1M' disk.raw >/dev/null
serve raw -t -f raw disk.raw
check "raw: read what the file holds" \
    qemu-io -f raw -c 'read -P 0x11 0 1M' -c 'read -P 0 1M 1M' "$(uri raw)"
check "raw: write, FUA write, zeroes, discard, flush" \
    qemu-io -f raw -c 'write -P 0x22 1M 512k' -c 'write -f -P 0x33 2M 4k' \
    -c 'write -z 0 64k' -c 'discard 3M 1M' -c 'flush' "$(uri raw)"
check "raw: reads back through the export" \
    qemu-io -f raw -c 'read -P 0 0 64k' -c 'read -P 0x11 64k 960k' \
    -c 'read -P 0x22 1M 512k' -c 'read -P 0x33 2M 4k' "$(uri raw)"
check "raw: unaligned writes and reads" \
    qemu-io -f raw -c 'write -P 0x44 1000 3000' -c 'read -P 0x44 1000 3000' \
    -c 'read -P 0 4000 96' "$(uri raw)"
check "raw: convert from the export equals the file" \
    qemu-img convert -f raw -O raw "$(uri raw)" copy.raw
stop raw
check "raw: the file holds the writes" \
    qemu-io -f raw -c 'read -P 0x22 1M 512k' -c 'read -P 0x33 2M 4k' \
    -c 'read -P 0x44 1000 3000' disk.raw
check "raw: the copy equals the file" qemu-img compare -q copy.raw disk.raw

qemu-img create -q -f raw bench.raw 8M
serve bench -f raw bench.raw
check "raw: many writes in flight" qemu-img bench -q -f raw -w -c 2048 \
    -d 32 -s 4k --pattern=0x5a "$(uri bench)"
gone bench      # one-shot: it exits after its client
check "raw: all of them landed" qemu-io -f raw -c 'read -P 0x5a 0 8M' bench.raw

# ---- qcow2 over a backing file: as qemu-nbd exports it -----------------------
qemu-img create -q -f raw base.raw 4M
qemu-io -f raw -c 'write -P 1 0 1M' base.raw >/dev/null
qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2
qemu-io -f qcow2 -c 'write -P 2 512k 1M' -c 'write -z 2M 256k' \
    top.qcow2 >/dev/null
serve c -r -t -A -f qcow2 top.qcow2
qemu-nbd --fork --pid-file="$work/q.pid" -k "$work/q.sock" -r -t -A \
    -f qcow2 top.qcow2
for s in c q; do
    qemu-img map --output=json -f raw "$(uri $s)" >"map.$s"
    qemu-img map --output=json --image-opts "driver=nbd,server.type=unix,\
server.path=$work/$s.sock,x-dirty-bitmap=qemu:allocation-depth" >"depth.$s"
    qemu-img info --output=json "$(uri $s)" | sed "s|/$s.sock|/X.sock|" \
        >"info.$s"
done
check "qcow2: base:allocation as qemu-nbd's" cmp map.q map.c
check "qcow2: qemu:allocation-depth as qemu-nbd's" cmp depth.q depth.c
check "qcow2: info as qemu-nbd's" cmp info.q info.c
check "qcow2: contents as qemu-nbd's" qemu-img compare "$(uri c)" "$(uri q)"
fails "qcow2: read-only export refuses writes" \
    qemu-io -f raw -c 'write -P 9 0 4k' "$(uri c)"
check "qcow2: the refused write changed nothing" \
    qemu-io -f qcow2 -r -c 'read -P 1 0 512k' top.qcow2
stop c
kill "$(cat q.pid)"

# ---- a guessed raw image stays raw -------------------------------------------------
truncate -s 1M guessed.raw
qemu-img create -q -f qcow2 header.qcow2 1M
head -c 512 header.qcow2 >header.bin
serve guess -t guessed.raw 2>guess.err
fails "probed raw: a qcow2 header at block 0 is refused" \
    qemu-io -f raw -c "write -s header.bin 0 512" "$(uri guess)"
check "probed raw: other data at block 0 is written" \
    qemu-io -f raw -c 'write -P 0x11 0 512' -c 'read -P 0x11 0 512' \
    "$(uri guess)"
check "probed raw: the warning, as qemu-nbd's" \
    grep -q "probing guessed raw" guess.err
stop guess
check "probed raw: still raw" sh -c \
    "qemu-img info guessed.raw | grep -q 'file format: raw'"
serve named_raw -t -f raw guessed.raw
check "-f raw: the header may be written" \
    qemu-io -f raw -c "write -s header.bin 0 512" "$(uri named_raw)"
stop named_raw

# ---- names, one-shot serving, TCP ---------------------------------------------
serve named -t -x disk0 -D "the first disk" -f raw disk.raw
check "name: the named export opens" \
    qemu-io -f raw -c 'read -P 0x22 1M 4k' "$(uri named disk0)"
fails "name: another name is refused" \
    qemu-io -f raw -c 'read 0 4k' "$(uri named disk1)"
stop named

serve once -f raw disk.raw
check "one-shot: serves its first client" \
    qemu-io -f raw -c 'read -P 0x22 1M 4k' "$(uri once)"
gone once
check "one-shot: gone after it" test ! -e once.sock

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$nbd" --fork --pid-file="$work/tcp.pid" -t -b 127.0.0.1 -p "$port" \
    -f raw disk.raw
check "tcp: reads over TCP" \
    qemu-io -f raw -c 'read -P 0x22 1M 4k' "nbd://127.0.0.1:$port/"
kill "$(cat tcp.pid)"

# ---- the nbd:// client driver, against qemu-nbd and coblk-nbd ---------------------
img="$top_builddir/tools/coblk-img"
bench="$top_builddir/tools/coblk-bench"
qemu-nbd --fork --pid-file="$work/q.pid" -k "$work/q.sock" -r -t \
    -f qcow2 top.qcow2
serve c -r -t -f qcow2 top.qcow2
for s in q c; do
    for out in human json; do
        "$img" map --output=$out "$(uri $s)" >"cmap.$s.$out" 2>&1
        qemu-img map --output=$out "$(uri $s)" >"qmap.$s.$out" 2>&1
        check "client: map --output=$out of $s as qemu-img's" \
            cmp "qmap.$s.$out" "cmap.$s.$out"
    done
    "$img" info --output=json "$(uri $s)" >"cinfo.$s" 2>&1
    qemu-img info --output=json "$(uri $s)" >"qinfo.$s" 2>&1
    check "client: info of $s as qemu-img's" cmp "qinfo.$s" "cinfo.$s"
    check "client: convert from $s" \
        "$img" convert -f raw -O raw "$(uri $s)" "conv.$s.raw"
    check "client: what $s served is the image" \
        qemu-img compare -f raw "conv.$s.raw" -F qcow2 top.qcow2
    fails "client: a read-only export is not opened for writing" \
        "$img" convert -n -f raw -O raw base.raw "$(uri $s)"
done
fails "client: an export that is not there" "$img" info "$(uri c nope)"
kill "$(cat q.pid)"
stop c

# Writes through the client, to both servers, verified by fio's rules.
for s in q c; do
    qemu-img create -q -f raw "w.$s.raw" 8M
    if [ $s = q ]; then
        qemu-nbd --fork --pid-file="$work/q.pid" -k "$work/q.sock" -t \
            -f raw "w.$s.raw"
    else
        serve c -t -f raw "w.$s.raw"
    fi
    check "client: random writes verified through $s" \
        "$bench" --name=v --filename="$(uri $s)" --rw=randwrite --bs=4k \
        --iodepth=16 --size=8M --verify=crc32c --do_verify=1
    check "client: convert into $s" \
        "$img" convert -n -f raw -O raw disk.raw "$(uri $s)"
    check "client: $s holds what was written" \
        qemu-img compare -f raw disk.raw -F raw "$(uri $s)"
done
kill "$(cat q.pid)"
stop c

# A qcow2 image inside an export: the format over the network.
qemu-img convert -f qcow2 -O qcow2 top.qcow2 flat.qcow2
serve c -t -f raw flat.qcow2
"$img" info --output=json -f qcow2 "$(uri c)" >cinfo 2>&1
qemu-img info --output=json -f qcow2 "$(uri c)" >qinfo 2>&1
check "client: qcow2 over nbd, info as qemu-img's" cmp qinfo cinfo
check "client: qcow2 over nbd reads as the image" \
    "$img" compare -f qcow2 "$(uri c)" -F qcow2 top.qcow2
stop c

# ---- fio's nbd engine (libnbd) as the client ----------------------------------------
if command -v fio >/dev/null && fio --enghelp=nbd >/dev/null 2>&1; then
    qemu-img create -q -f raw fio.raw 16M
    serve fio -t -f raw fio.raw
    check "fio nbd engine: random writes at QD16, verified" \
        fio --name=w --ioengine=nbd --uri="$(uri fio)" --rw=randwrite \
        --bs=4k --iodepth=16 --size=16M --verify=crc32c --do_verify=1 \
        --verify_fatal=1 --exitall_on_error
    check "fio nbd engine: mixed sizes, read back and verified" \
        fio --name=m --ioengine=nbd --uri="$(uri fio)" --rw=randrw \
        --bsrange=512-128k --iodepth=8 --size=16M --verify=md5 \
        --do_verify=1 --verify_fatal=1
    check "fio nbd engine: trims" \
        fio --name=t --ioengine=nbd --uri="$(uri fio)" --rw=randtrim \
        --bs=64k --size=16M
    check "fio nbd engine: what it wrote is in the file" \
        qemu-img compare -f raw -F raw fio.raw "$(uri fio)"
    stop fio
else
    echo "fio or its nbd engine is not installed: its checks skipped"
fi

# ---- libnbd's tools and nbdkit (skipped without them) -----------------------------
if command -v nbdinfo >/dev/null && command -v nbdcopy >/dev/null; then
    serve c -r -t -A -e 4 -x disk -D "a disk" -f qcow2 top.qcow2
    qemu-nbd --fork --pid-file="$work/q.pid" -k "$work/q.sock" -r -t -A \
        -e 4 -x disk -D "a disk" -f qcow2 top.qcow2
    for s in q c; do
        nbdinfo --json --list "$(uri $s)" | grep -v '"uri"' >"list.$s"
        nbdinfo --map "$(uri $s disk)" >"nmap.$s"
        nbdinfo --map=qemu:allocation-depth "$(uri $s disk)" >"ndepth.$s"
        nbdcopy --connections=4 "$(uri $s disk)" "copy.$s.raw"
    done
    check "nbdinfo --list as of qemu-nbd" cmp list.q list.c
    check "nbdinfo --map as of qemu-nbd" cmp nmap.q nmap.c
    check "nbdinfo --map=qemu:allocation-depth as of qemu-nbd" \
        cmp ndepth.q ndepth.c
    check "nbdcopy, 4 connections, copies the image" \
        qemu-img compare -f raw copy.c.raw -F qcow2 top.qcow2
    kill "$(cat q.pid)"
    stop c
    qemu-img create -q -f raw multi.raw 8M
    serve c -t -e 4 -f raw multi.raw
    check "nbdcopy into the export over 4 connections" \
        nbdcopy --connections=4 disk.raw "$(uri c)"
    stop c
    check "what nbdcopy wrote is there" qemu-img compare -q disk.raw multi.raw
else
    echo "nbdinfo or nbdcopy is not installed: their checks skipped"
fi
if command -v nbdkit >/dev/null; then
    nbdkit --exit-with-parent -U "$work/k.sock" memory 16M &
    kit=$!
    listening k
    check "client: nbdkit memory, random writes at QD64 verified" \
        "$bench" --name=v --filename="$(uri k)" --rw=randwrite --bs=4k \
        --iodepth=64 --size=16M --verify=crc32c --do_verify=1
    "$img" map --output=json "$(uri k)" >cmap.k 2>&1
    qemu-img map --output=json "$(uri k)" >qmap.k 2>&1
    check "client: map of nbdkit's export as qemu-img's" cmp qmap.k cmap.k
    kill "$kit"
    wait "$kit" 2>/dev/null
    # A server that refuses requests not in whole 4 KiB blocks.
    nbdkit --exit-with-parent -U "$work/b.sock" --filter=blocksize-policy \
        memory 4M blocksize-minimum=4096 blocksize-preferred=4096 \
        blocksize-maximum=65536 blocksize-error-policy=error 2>kit.err &
    kit=$!
    listening b
    "$img" map --output=json --start-offset=100 "$(uri b)" >cmap.b 2>&1
    qemu-img map --output=json --start-offset=100 "$(uri b)" >qmap.b 2>&1
    check "client: block status in whole blocks, as qemu-img's" \
        cmp qmap.b cmap.b
    check "client: trims of part of a block are not sent" \
        "$bench" --name=t --filename="$(uri b)" --rw=randtrim --bs=512 \
        --number_ios=64 --size=4M
    check "client: 512-byte writes become whole-block writes, verified" \
        "$bench" --name=w --filename="$(uri b)" --rw=randwrite --bs=512 \
        --iodepth=8 --size=1M --verify=crc32c --do_verify=1
    "$img" convert -f raw -O raw "$(uri b)" b.raw
    check "client: what it reads is what qemu-img reads" \
        qemu-img compare -f raw b.raw -F raw "$(uri b)"
    kill "$kit"
    wait "$kit" 2>/dev/null
    nbdkit --exit-with-parent -U "$work/e.sock" --filter=error pattern 8M \
        error-pread-rate=1 error=EIO 2>kit.err &
    kit=$!
    listening e
    "$img" convert -f raw -O raw "$(uri e)" err.raw >err.out 2>&1
    check "client: nbdkit's read errors fail convert with EIO" \
        grep -q "Input/output error" err.out
    kill "$kit"
    wait "$kit" 2>/dev/null
    # A server that stalls 3 s on every read: with timeout=1 the read fails
    # with ETIMEDOUT, not a hang (test-nbd-client times it); a longer
    # limit waits it out.
    nbdkit --exit-with-parent -U "$work/d.sock" --filter=delay pattern 1M \
        rdelay=3 2>kit.err &
    kit=$!
    listening d
    "$img" convert -f raw -O raw "$(uri d)&timeout=1" d.raw >d.out 2>&1
    check "client: a stalled server times out" \
        grep -q "Connection timed out" d.out
    check "client: timeout=5 waits out a 3 s stall" \
        "$img" convert -f raw -O raw "$(uri d)&timeout=5" d.raw
    kill "$kit"
    wait "$kit" 2>/dev/null
else
    echo "nbdkit is not installed: its checks skipped"
fi

# ---- a server killed mid-run, then restarted ------------------------------------
# The client's requests fail (EIO) within seconds, never a hang; the new
# server takes over the dead one's socket.
qemu-img create -q -f raw kr.raw 8M
serve kr -t -f raw kr.raw
"$bench" --name=k --filename="$(uri kr)" --rw=randread --bs=4k --iodepth=16 \
    --size=8M --time_based --runtime=30 >kr.out 2>&1 &
reader=$!
sleep 2        # connected and reading by then, even under TSan
kill -9 "$(cat kr.pid)"
ends "$reader" "client: requests end when the server is killed"
wait "$reader"
check "client: a killed server fails the run" test $? -ne 0
check "client: ... with EIO" grep -q "Input/output error" kr.out
serve kr -f raw kr.raw
check "server: a restart replaces the dead server's socket" \
    qemu-img compare -f raw -F raw kr.raw "$(uri kr)"
gone kr

# With reconnect-delay, the client outlives its server: killed while the
# writes go out (4000 a second for 4 s) and again while they are read
# back and verified, restarted a second later each time, it resends what
# was in flight and the run passes.  With no server to come back, the
# requests fail once the delay has passed.
qemu-img create -q -f raw rc.raw 64M
serve rc -t -f raw rc.raw
"$bench" --name=r --filename="$(uri rc)&reconnect-delay=10" --rw=randwrite \
    --bs=4k --iodepth=16 --size=64M --rate_iops=4000 --verify=crc32c \
    --do_verify=1 >rc.out 2>&1 &
writer=$!
for at in 1.5 3.5; do
    sleep "$at"
    kill -9 "$(cat rc.pid)"
    sleep 1
    serve rc -t -f raw rc.raw
done
wait "$writer"
check "client: reconnects twice, resends, and verifies (exit $?)" \
    grep -q "err= 0" rc.out
kill "$(cat rc.pid)"
gone rc
# 64 reads and writes of 1 MiB in flight when qemu-nbd dies: sent again
# by their own coroutines while the reader reads (sent by the reader, they
# once filled both socket buffers for good).
qemu_nbd_rc() {
    qemu-nbd --fork --pid-file="$work/rc.pid" -k "$work/rc.sock" -t -e 4 \
        -f raw rc.raw
}
qemu_nbd_rc
"$bench" --name=b --filename="$(uri rc)&reconnect-delay=10" --rw=randrw \
    --bs=1M --iodepth=64 --size=64M --time_based --runtime=4 >rb.out 2>&1 &
big=$!
sleep 1.5
kill -9 "$(cat rc.pid)"
sleep 1
rm -f rc.sock
qemu_nbd_rc
ends "$big" "client: QD64 of 1 MiB across a restart ends"
wait "$big"
check "client: QD64 of 1 MiB reads and writes across a restart" \
    grep -q "err= 0" rb.out
kill "$(cat rc.pid)"
gone rc
serve rc -t -f raw rc.raw
"$bench" --name=g --filename="$(uri rc)&reconnect-delay=2" --rw=randread \
    --bs=4k --iodepth=16 --size=64M --time_based --runtime=30 >rg.out 2>&1 &
reader=$!
sleep 1
kill -9 "$(cat rc.pid)"
start=$(date +%s)
wait "$reader"
rc=$?
took=$(($(date +%s) - start))
check "client: gives up once reconnect-delay passes (exit $rc)" \
    test "$rc" -ne 0
check "client: ... with EIO, after the delay (took $took s)" \
    sh -c "grep -q 'Input/output error' rg.out && [ $took -ge 2 ] &&
           [ $took -le 10 ]"

# ---- usage errors --------------------------------------------------------------
fails "usage: no file" "$nbd" -k x.sock
fails "usage: a missing image" "$nbd" -k x.sock -f raw missing.raw
fails "usage: -k with -p" "$nbd" -k x.sock -p 1234 disk.raw
fails "usage: bad --shared" "$nbd" -k x.sock -e many disk.raw

echo "nbd.sh: $passes passed, $failures failed"
[ "$failures" -eq 0 ]

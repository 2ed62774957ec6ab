#!/bin/sh
# coblk-bench end to end: exact I/O counts, the JSON structure fio's
# scripts read (and fio's own JSON for the same job, when fio is
# installed), bad values refused with exit 1 and their message, signals,
# and the no-argument default.  python3 reads the JSON; without it the
# test is skipped (exit 77).
set -eu

: "${top_builddir:?}"
bench="$top_builddir/tools/coblk-bench"
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is needed to read the JSON reports: skipped"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # description, command...
    desc=$1
    shift
    if "$@"; then
        echo "ok: $desc"
    else
        echo "FAILED: $desc"
        failures=$((failures + 1))
    fi
}
json() {  # file, python expression on d (the parsed JSON): prints it
    python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"
}
# fio, the peer, bounded in time: a run of its log compression once hung
# (its job process deadlocked) and held CI for good.
if command -v fio >/dev/null 2>&1; then
    fio() {
        timeout -k 5 120 env fio "$@"
    }
fi
runs() {  # arguments: runs coblk-bench, its status in rc, stderr in err
    rc=0
    "$bench" "$@" >/dev/null 2>"$work/err" || rc=$?
}
rejects() {  # message, arguments: exit 1 with exactly that one line
    want=$1
    shift
    runs "$@"
    check "exit 1 for $*" test "$rc" -eq 1
    check "message for $*" test "$(cat "$work/err")" = "coblk-bench: $want"
}

# Exact counts: 16M of 4k random reads is 4096 I/Os, on null and on a file.
"$bench" --name=j --ioengine=null --size=16M --rw=randread --bs=4k \
    --iodepth=8 --output-format=json >"$work/null.json"
check "null: 4096 I/Os" test "$(json "$work/null.json" \
    "d['jobs'][0]['read']['total_ios']")" -eq 4096
"$bench" --name=j --filename="$work/img" --size=16M --rw=randwrite --bs=4k \
    --iodepth=16 --output-format=json >"$work/file.json"
check "file: 4096 writes" test "$(json "$work/file.json" \
    "d['jobs'][0]['write']['total_ios']")" -eq 4096
check "file: laid out" test "$(stat -c %s "$work/img")" -eq 16777216
"$bench" --name=j --filename="$work/img" --size=32M --rw=write \
    --number_ios=1 >/dev/null
check "a short file is laid out to size for a job that writes, as fio" \
    test "$(stat -c %s "$work/img")" -eq 33554432

# fallocate=: a new file's blocks, as fio reserves them (one 4k write:
# the rest is reserved or a hole).  Checked where the file system
# reserves what fallocate(1) asks and gives a 4k write 4k.
blocks() {  # mode ("": the default): the KiB a new 8M file has after one 4k write
    rm -f "$work/fa"
    "$bench" --name=j --filename="$work/fa" --size=8M --rw=write \
        --number_ios=1 ${1:+--fallocate="$1"} >/dev/null 2>&1 ||
        { echo fail; return; }
    echo $(( $(stat -c '%b * %B' "$work/fa") / 1024 ))
}
kib() {  # file: the KiB it has
    echo $(( $(stat -c '%b * %B' "$1") / 1024 ))
}
if fallocate -l 8M "$work/probe" 2>/dev/null &&
    [ "$(kib "$work/probe")" -ge 8192 ]; then
    for mode in "" native posix 1; do
        check "fallocate=${mode:-(native, the default)}: the whole file reserved" \
            test "$(blocks "$mode")" -ge 8192
    done
    check "fallocate=keep: reserved, and the size set" \
        test "$(blocks keep)" -ge 8192 -a "$(stat -c %s "$work/fa")" -eq 8388608
    truncate -s 1M "$work/fa"
    "$bench" --name=j --filename="$work/fa" --size=8M --rw=write \
        --number_ios=1 >/dev/null
    check "a short file extended for a write job is reserved too" \
        test "$(kib "$work/fa")" -ge 8192
fi
rm -f "$work/probe"
printf 'x' | dd of="$work/probe" bs=4k conv=sync status=none
if [ "$(kib "$work/probe")" -lt 1024 ]; then
    for mode in none truncate 0; do
        check "fallocate=$mode: a hole but the written block" \
            test "$(blocks "$mode")" -lt 1024 -a "$(stat -c %s "$work/fa")" -eq 8388608
    done
fi
rm -f "$work/probe"
rejects "fallocate: expected none, native, posix, keep or truncate, got 'yes'" \
    --name=j --ioengine=null --size=1M --fallocate=yes

# Valid JSON, even with a job name that needs escaping.
"$bench" --name='a"b\c' --ioengine=null --size=1M --output-format=json \
    >"$work/escaped.json"
check "json parses, the name intact" test "$(json "$work/escaped.json" \
    "d['jobs'][0]['jobname'] == 'a\"b\\\\c'")" = True

# The keys fio-plot and fio_jsonplus_clat2csv read, where they read them.
check "json: the keys fio's scripts read, in their places" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
j = d["jobs"][0]
assert {"jobname", "job options", "usr_cpu", "sys_cpu"} <= set(j), list(j)
r = j["read"]
assert {"iops", "bw", "runtime", "io_bytes", "total_ios", "clat_ns",
        "lat_ns"} <= set(r), list(r)
assert {"mean", "percentile"} <= set(r["clat_ns"]), list(r["clat_ns"])
assert "mean" in r["lat_ns"], list(r["lat_ns"])
' "$work/null.json"

# The same structure as fio's for the same job: every key at every level.
json_paths='
import json, sys
def paths(v, at=""):
    if isinstance(v, dict):
        for k, sub in v.items():
            yield at + "/" + k
            yield from paths(sub, at + "/" + k)
    elif isinstance(v, list):
        for i, sub in enumerate(v):
            yield from paths(sub, "%s[%d]" % (at, i))
ours, fios = (set(paths(json.load(open(f)))) for f in sys.argv[1:3])
# Beyond fio, under its own key: the engine'"'"'s rare paths.
ours = {p for p in ours if not p.split("/")[2:3] == ["coblk"]}
for p in sorted(ours ^ fios):
    print(("only ours: " if p in ours else "only fio: ") + p)
sys.exit(ours != fios)
'
if command -v fio >/dev/null 2>&1; then
    fio --name=j --ioengine=null --size=16M --rw=randread --bs=4k \
        --iodepth=8 --output-format=json >"$work/fio.json"
    check "fio agrees: 4096 I/Os" test "$(json "$work/fio.json" \
        "d['jobs'][0]['read']['total_ios']")" -eq 4096
    check "json: the keys of fio's, at every level" python3 -c \
        "$json_paths" "$work/null.json" "$work/fio.json"
else
    echo "SKIPPED: fio not installed: no comparison with its JSON"
fi

# Beyond fio: the engine's rare paths, in the normal report and in JSON
# under "coblk", the same numbers in both; none on a plain run, and the
# loop's own counts (an enter a batch, the peak at submission: iodepth
# and the notifier's read), summed over a group.
"$bench" --name=p --filename="$work/img" --size=4M --rw=randread --bs=4k \
    --direct=1 --iodepth=4 --numjobs=2 --group_reporting \
    --output-format=json,normal >"$work/paths.out"
check "coblk paths: the normal line" grep -q "^  coblk        : short \
reads=0, short writes=0, resubmits=0, bounces=0, splits=0, rmw waits=0, \
locked lookups=0, sq full=0, cq waits=0, cq overflows=0$" "$work/paths.out"
sed -n '/^{/,/^}/p' "$work/paths.out" >"$work/paths.json"
check "coblk paths: JSON" python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["jobs"][0]["coblk"]
rare = ("short_reads", "short_writes", "resubmits", "bounces", "splits",
        "rmw_waits", "locked_lookups", "sq_full", "cq_waits", "cq_overflows",
        "submit_retries")
assert all(c[k] == 0 for k in rare), c
assert c["inflight_peak"] == 5, c
assert c["submits"] >= 2 * 1024 / 4, c      # two jobs, 1024 I/Os each
' "$work/paths.json"

# fio's tuning options: gtod_reduce=1 keeps no latency, as fio's JSON
# shows it; what coblk does anyway is accepted quietly, what it cannot do
# is said once.
zeroed_lat='
import json, sys
zero = {"min": 0, "max": 0, "mean": 0.0, "stddev": 0.0, "N": 0}
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
assert all(r[k] == zero for k in ("slat_ns", "clat_ns", "lat_ns")), r
assert r["iops"] > 0 and r["total_ios"] == 16384, r
'
"$bench" --name=x --ioengine=null --size=64M --rw=randread --gtod_reduce=1 \
    --output-format=json >"$work/gtod.json"
check "gtod_reduce=1: latencies zeroed, I/O counted" python3 -c \
    "$zeroed_lat" "$work/gtod.json"
if command -v fio >/dev/null 2>&1; then
    fio --name=x --ioengine=null --size=64M --rw=randread --gtod_reduce=1 \
        --output-format=json >"$work/fio-gtod.json"
    check "gtod_reduce=1: as fio's" python3 -c "$zeroed_lat" \
        "$work/fio-gtod.json"
fi
"$bench" --name=x --ioengine=null --size=1M --registerfiles --nonvectored=1 \
    --userspace_reap --iodepth_batch_submit=8 --iodepth_batch_complete_max=8 \
    --fixedbufs=0 >/dev/null 2>"$work/quiet.err"
check "what coblk does anyway: no warning" test ! -s "$work/quiet.err"
"$bench" --fixedbufs --name=x --ioengine=null --size=1M --name=y \
    --ioengine=null --size=1M --sqthread_poll --sqthread_poll_cpu=1 --hipri \
    >/dev/null 2>"$work/warn.err"
check "what coblk cannot do: said once each" test "$(cat "$work/warn.err")" \
    = "coblk-bench: sqthread_poll: not supported by coblk, ignored
coblk-bench: sqthread_poll_cpu: not supported by coblk, ignored
coblk-bench: hipri: not supported by coblk, ignored"

# Exact counts of the other kinds: loops, number_ios, fsync (as fio: a
# flush before the write after every 16th), end_fsync, variable sizes.
"$bench" --name=j --ioengine=null --size=4M --bs=4k --loops=3 \
    --output-format=json >"$work/loops.json"
check "loops=3: 3072 I/Os" test "$(json "$work/loops.json" \
    "d['jobs'][0]['read']['total_ios']")" -eq 3072
"$bench" --name=j --ioengine=null --size=4M --number_ios=10 --loops=3 \
    --rw=randread --output-format=json >"$work/nios.json"
check "number_ios=10 per loop, 3 loops" test "$(json "$work/nios.json" \
    "d['jobs'][0]['read']['total_ios']")" -eq 30
"$bench" --name=j --ioengine=null --size=1M --time_based \
    --output-format=json >"$work/tb.json"
check "time_based without runtime: size-based, as fio" test "$(json \
    "$work/tb.json" "d['jobs'][0]['read']['total_ios']")" -eq 256
"$bench" --name=j --ioengine=null --size=64M --ramp_time=1 \
    --output-format=json >"$work/ramp.json"
check "a job done within ramp_time still reports its I/O, as fio" \
    test "$(json "$work/ramp.json" "d['jobs'][0]['read']['total_ios']")" \
    -eq 16384
"$bench" --name=j --ioengine=null --size=1M --rate_iops=1 --runtime=100ms \
    --output-format=json >"$work/rate.json"
check "rate_iops=1 in 100ms: 1 I/O" test "$(json "$work/rate.json" \
    "d['jobs'][0]['read']['total_ios']")" -eq 1
check "rate limit stops at runtime, not at the next I/O's turn (1 s)" \
    test "$(json "$work/rate.json" "d['jobs'][0]['job_runtime'] < 1000")" \
    = True
"$bench" --name=j --filename="$work/sync.img" --size=16M --rw=randwrite \
    --fsync=16 --end_fsync=1 --output-format=json >"$work/sync.json"
check "fsync=16 on 4096 writes: 255 flushes (end_fsync's not counted)" \
    test "$(json "$work/sync.json" "d['jobs'][0]['sync']['total_ios']")" \
    -eq 255
"$bench" --name=j --ioengine=null --size=64M --bssplit=4k/50:64k/50 \
    --rw=randwrite --output-format=json >"$work/split.json"
check "bssplit: exactly size written" test "$(json "$work/split.json" \
    "d['jobs'][0]['write']['io_bytes'] == 64 << 20")" = True
"$bench" --name=j --ioengine=null --size=16M --rw=randread \
    --bssplit=4k/50:64k/30:16k/20 --output-format=json >"$work/split2.json"
check "random bssplit: each block once, as fio" test "$(json \
    "$work/split2.json" "d['jobs'][0]['read']['io_kbytes']")" -eq 16384
"$bench" --name=j --ioengine=null --size=1M --loops=4294967295 \
    --runtime=200ms --output-format=json >"$work/loopsrt.json"
check "runtime ends loops too, after more than one" test "$(json \
    "$work/loopsrt.json" "d['jobs'][0]['read']['total_ios'] > 256 and \
d['jobs'][0]['job_runtime'] < 60000")" = True

# A job that only reads never changes a file: a region past its end is
# refused, one message for each condition; the file keeps its size.
truncate -s 1M "$work/small.img"
refused() {  # message, options of job j
    want=$1
    shift
    rejects "j: $want" --name=j "$@"
}
refused "size=16777216 at offset=0 goes past the end of file:$work/small.img (1048576 bytes)" \
    --rw=randread --filename="$work/small.img" --size=16M
refused "offset=33554432 is at or past the end of file:$work/small.img (1048576 bytes)" \
    --rw=read --filename="$work/small.img" --offset=32M
refused "offset=33554432 is at or past the end of file:$work/small.img (1048576 bytes)" \
    --rw=write --filename="$work/small.img" --offset=32M
refused "offset=1000 is not a multiple of 512" \
    --rw=read --filename="$work/small.img" --offset=1000
refused "file:$work/small.img has 2048 bytes after offset=1046528, fewer than the block size 4096" \
    --rw=read --filename="$work/small.img" --offset=1046528
refused "null:size=0 is empty: no bytes to do I/O on" --filename=null:size=0
refused "size=0 means the whole file, and ioengine=null has none: give a size" \
    --ioengine=null --size=0
check "a refused job leaves the file as it was" \
    test "$(stat -c %s "$work/small.img")" -eq 1048576
"$bench" --name=j --rw=read --filename="$work/small.img" --size=0 \
    --output-format=json >"$work/size0.json"
check "size=0: the whole file, as fio" test "$(json "$work/size0.json" \
    "d['jobs'][0]['read']['io_bytes']")" -eq 1048576

# Errors carry the library's errno into the report, as fio's carry the
# system's: a missing file (without size= there is nothing to lay out),
# a directory (EISDIR, as fio reports it), a queue the system cannot map.
rc=0
"$bench" --name=j --filename="$work/missing" --rw=read >"$work/enoent" \
    2>"$work/enoent.err" || rc=$?
check "missing file: exit 1" test "$rc" -eq 1
check "missing file: the library's message" test "$(cat "$work/enoent.err")" \
    = "coblk-bench: j: file: $work/missing: No such file or directory"
check "missing file: err=2 in the report" grep -q \
    "^j: (groupid=0, jobs=1): err= 2 (file: $work/missing: No such file" \
    "$work/enoent"
mkdir "$work/dir"
"$bench" --name=j --filename="$work/dir" --rw=write --size=1M \
    --output-format=json >"$work/eisdir.json" 2>/dev/null || :
check "directory: error 21 in the JSON" test "$(json "$work/eisdir.json" \
    "d['jobs'][0]['error']")" -eq 21
if command -v fio >/dev/null 2>&1; then
    fio --name=j --filename="$work/dir" --rw=write --size=1M \
        --output-format=json >"$work/fio-eisdir.json" 2>/dev/null || :
    check "directory: fio reports the same error" test "$(json \
        "$work/fio-eisdir.json" "d['jobs'][0]['error']")" -eq 21
fi
if [ "$(($(cat /proc/sys/vm/max_map_count) / 4))" -lt 65536 ]; then
    "$bench" --name=j --ioengine=null --iodepth=65536 --output-format=json \
        >"$work/e2big.json" 2>/dev/null || :
    check "a queue beyond vm.max_map_count: E2BIG (7), not ENOMEM" \
        test "$(json "$work/e2big.json" "d['jobs'][0]['error']")" -eq 7
else
    echo "SKIPPED: vm.max_map_count allows iodepth=65536: no queue error"
fi

# Verification: a written file checks; a flipped byte is found, named
# and fails the run; other checksums do not pass for crc32c data.
img="$work/verify.img"
"$bench" --name=v --filename="$img" --size=8M --rw=randwrite --bs=4k \
    --iodepth=8 --verify=crc32c >/dev/null 2>"$work/verify.err"
check "verify: clean data passes" test ! -s "$work/verify.err"
"$bench" --name=v --filename="$img" --size=8M --rw=randwrite --bs=4k \
    --iodepth=8 --verify=crc32c --verify_only=1 --output-format=json \
    >"$work/vonly.json" 2>"$work/verify.err"
check "verify_only: reads back all 2048 blocks" test "$(json \
    "$work/vonly.json" "d['jobs'][0]['read']['total_ios']")" -eq 2048
printf 'XX' | dd of="$img" bs=1 seek=$((4096 * 77 + 1000)) conv=notrunc \
    2>/dev/null
runs --name=v --filename="$img" --size=8M --rw=randwrite --bs=4k \
    --verify=crc32c --verify_only=1
check "verify: corruption fails the run (exit 1)" test "$rc" -eq 1
check "verify: names the bad block" grep -q \
    "^coblk-bench: v: verify: offset 315392: data checksum: expected crc32c" \
    "$work/err"
runs --name=v --filename="$img" --size=8M --rw=randread --bs=4k \
    --verify=crc32c
check "verify on reads: corruption fails the run (exit 1)" test "$rc" -eq 1
check "verify on reads: names the bad block" grep -q \
    "^coblk-bench: v: verify: offset 315392: " "$work/err"
"$bench" --name=v --filename="$img" --size=8M --rw=write --bs=64k \
    --verify=md5 --verify_backlog=8 --verify_pattern=0xdeadbeef \
    --output-format=json >"$work/backlog.json" 2>"$work/verify.err"
check "verify_backlog with md5 and a pattern" test ! -s "$work/verify.err"
check "verify_backlog: every block read back" test "$(json \
    "$work/backlog.json" "d['jobs'][0]['read']['total_ios']")" -eq 128
# verify=meta (fio's t0006): randrw with a backlog, each write read back.
"$bench" --name=m --filename="$work/meta.img" --size=8M --rw=randrw \
    --bs=4k --iodepth=32 --verify=meta --verify_backlog=64 \
    --verify_pattern=0xaaa --verify_fatal=1 --output-format=json \
    >"$work/meta.json" 2>"$work/verify.err"
check "verify=meta with a backlog and a pattern" test ! -s "$work/verify.err"
check "verify=meta: reads are twice the writes, as fio's t0006 wants" \
    python3 -c "import json, sys; j = json.load(open(sys.argv[1]))['jobs'][0]
r = j['read']['io_kbytes'] / j['write']['io_kbytes']
sys.exit(not 1.9 < r < 2.1)" "$work/meta.json"
"$bench" --name=v --filename="$work/fixed.img" --size=8M --rw=randwrite \
    --bs=4k --iodepth=16 --direct=1 --fixedbufs=1 --verify=md5 \
    --output-format=json >"$work/fixed.json" 2>"$work/verify.err"
# verify_interval: a header every 4k of each 64k write; a flipped byte is
# named at its 4k, and verify_dump=1 writes that 4k as read (fio's
# FILE.OFFSET.received) and, for a job that knows the write, .expected.
(cd "$work" && "$bench" --name=v --filename="$work/vi.img" --size=1M \
    --bs=64k --rw=randwrite --verify=crc32c --verify_interval=4k \
    --output-format=json >vi.json 2>vi.err)
check "verify_interval: clean data passes" test ! -s "$work/vi.err"
printf 'XX' | dd of="$work/vi.img" bs=1 seek=$((65536 * 3 + 4096 * 2 + 100)) \
    conv=notrunc 2>/dev/null
(cd "$work" && "$bench" --name=v --filename="$work/vi.img" --size=1M \
    --bs=64k --rw=randwrite --verify=crc32c --verify_interval=4k \
    --verify_only=1 --verify_dump=1 >/dev/null 2>vi.err) || :
check "verify_interval: the bad 4k named" grep -q \
    "^coblk-bench: v: verify: offset 204800: data checksum" "$work/vi.err"
check "verify_dump: received and expected, 4k each, one byte pair apart" \
    test "$(cmp -l "$work/vi.img.204800.received" \
        "$work/vi.img.204800.expected" | wc -l)" -eq 2 -a \
    "$(stat -c %s "$work/vi.img.204800.received")" -eq 4096
# A time_based job verifies, at its end, the last write of every block it
# wrote (fio's t0026); experimental_verify is taken.
"$bench" --name=t --filename="$work/tv.img" --size=1M --rw=randrw \
    --time_based --runtime=1 --verify=md5 --experimental_verify=1 \
    --rwmixread=0 --iodepth=8 --output-format=json >"$work/tv.json" \
    2>"$work/tv.err"
check "time_based verify: each of the 256 blocks read back once, clean" \
    test "$(json "$work/tv.json" "d['jobs'][0]['read']['total_ios']")" -eq \
    256 -a ! -s "$work/tv.err"
check "fixedbufs=1: registered buffers write and verify" \
    test ! -s "$work/verify.err"
check "fixedbufs=1: every block read back" test "$(json \
    "$work/fixed.json" "d['jobs'][0]['read']['total_ios']")" -eq 2048

# fio's engines run on coblk's: the synchronous ones at depth 1 (as fio
# caps them, with its note), each named in the reports; others refused.
for engine in sync psync vsync pvsync pvsync2 libaio posixaio; do
    "$bench" --name=e --ioengine=$engine --iodepth=8 --filename="$work/e.img" \
        --size=1M --rw=randrw --output-format=json >"$work/e.json"
    # fio's libaio has 97.27% at 8 for this job (the first 7 are lower).
    case $engine in libaio|posixaio) depth=8 ;; *) depth=1 ;; esac
    check "ioengine=$engine: all 256 I/Os, most at depth $depth, named" \
        test "$(json "$work/e.json" "'%d %d %s' % (
            d['jobs'][0]['read']['total_ios'] +
            d['jobs'][0]['write']['total_ios'],
            d['jobs'][0]['iodepth_level']['$depth'] >= 97,
            d['jobs'][0]['job options']['ioengine'])")" = "256 1 $engine"
done
"$bench" --name=e --ioengine=pvsync2 --iodepth=8 --filename="$work/e.img" \
    --size=1M >"$work/e.out"
check "ioengine=pvsync2: the engine and the depth asked in the header" grep -q \
    "^e: (g=0): rw=read, .*, ioengine=pvsync2, iodepth=8$" "$work/e.out"
check "ioengine=pvsync2: fio's note on the capped depth" grep -q \
    "^note: both iodepth >= 1 and synchronous I/O engine are selected, queue depth will be capped at 1$" \
    "$work/e.out"
runs --name=e --ioengine=rbd --size=1M
check "ioengine=rbd: refused (exit 1)" test "$rc" -eq 1
check "ioengine=rbd: one line naming it and what runs" test "$(cat \
    "$work/err")" = "coblk-bench: ioengine=rbd: not an engine coblk-bench runs; it runs io_uring, libaio, posixaio, sync, psync, vsync, pvsync and pvsync2 (all on coblk's io_uring engine, the synchronous ones at iodepth=1) and null"

# rw=MODE:N, as fio: holes end the pass at the end of the region; going
# backwards covers it all; a pass with holes verifies what it wrote.
truncate -s 40k "$work/holes.img"
for mode in read:8k read:-8k write:8k; do
    case $mode in write*) verify=--verify=crc32c ;; *) verify= ;; esac
    "$bench" --name=h --filename="$work/holes.img" --size=40k --bs=4k \
        --rw=$mode --loops=2 $verify --output-format=json \
        >"$work/holes.json"
    # Writes are read back to verify: 8 each.
    case $mode in read:-8k) want=20 ;; read*) want=8 ;; *) want=16 ;; esac
    check "rw=$mode: $want I/Os in two passes" test "$(json \
        "$work/holes.json" "d['jobs'][0]['read']['total_ios'] + \
        d['jobs'][0]['write']['total_ios']")" -eq $want
    if command -v fio >/dev/null 2>&1; then
        # In $work: fio leaves its verify state file where it runs.
        (cd "$work" && fio --name=h --filename="$work/holes.img" \
            --size=40k --bs=4k --rw=$mode --loops=2 $verify \
            --output-format=json >"$work/holes-fio.json")
        check "rw=$mode: as many I/Os as fio" test "$(json \
            "$work/holes.json" "d['jobs'][0]['read']['total_ios']")" -eq \
            "$(json "$work/holes-fio.json" "d['jobs'][0]['read']['total_ios']")"
    fi
done

# The same I/Os as fio: both write_iologs, without their times, agree line
# for line (verify reads excepted: fio reads back in write order).
truncate -s 1M "$work/seq.img"
"$bench" --name=r --filename="$work/seq.img" --size=1M --rw=randread \
    --write_iolog="$work/one.log" >/dev/null
check "write_iolog: fio's version line, add, open, 256 reads, close" \
    test "$(awk '{ print ($1 ~ /^[0-9]+$/) ? $3 : $0 }' "$work/one.log" |
        uniq -c | tr -s ' ')" = " 1 fio version 3 iolog
 1 add
 1 open
 256 read
 1 close"
if command -v fio >/dev/null 2>&1; then
    for args in "--rw=randread" "--rw=randread --norandommap" \
        "--rw=randrw --rwmixread=70" "--rw=rw --rwmixread=30" \
        "--rw=randwrite --bsrange=4k-16k" \
        "--rw=randread --bssplit=4k/50:8k/30:16k/20" \
        "--rw=randread --loops=2 --iodepth=8" "--rw=randread:4" \
        "--rw=randread --randrepeat=0 --randseed=42" \
        "--rw=randwrite --random_generator=tausworthe64" \
        "--zonemode=strided --zonerange=64k --zonesize=16k --rw=randread" \
        "--zonemode=strided --zonerange=32k --zonesize=64k --rw=randread" \
        "--zonemode=strided --zonerange=64k --zonesize=16k --zoneskip=64k --rw=read" \
        "--zonemode=strided --zonerange=64k --zonesize=64k --rw=randread --norandommap --io_size=512k" \
        "--rw=randread --random_distribution=zoned:50/5:30/15:20/" \
        "--rw=randrw --random_distribution=zoned:60/10:30/20:10/70 --bsrange=4k-16k" \
        "--rw=randread --random_generator=lfsr --norandommap" \
        "--rw=randwrite --random_generator=lfsr --loops=2" \
        "--rw=randread --random_generator=lfsr --zonemode=strided --zonerange=64k --zonesize=32k" \
        "--rw=read:512k --bs=128k" "--rw=randrw --bsrange=4k:16k" \
        "--rw=randrw --bs=4k,16k --norandommap" \
        "--rw=randwrite --bssplit=12k/50:16k/50 --norandommap" \
        "--rw=randread --bs=8k --blockalign=4k --norandommap" \
        "--rw=randrw --bs=4k --blockalign=8k,16k --norandommap"; do
        rm -f "$work/c.log" "$work/f.log"
        # shellcheck disable=SC2086
        "$bench" --name=r --filename="$work/seq.img" --size=1M $args \
            --write_iolog="$work/c.log" >/dev/null
        # shellcheck disable=SC2086
        fio --name=r --filename="$work/seq.img" --size=1M $args \
            --write_iolog="$work/f.log" >/dev/null
        check "fio's I/O sequence: $args" test "$(awk \
            '$3 ~ /read|write|trim/ { print $3, $4, $5 }' "$work/c.log" |
            md5sum)" = "$(awk '$3 ~ /read|write|trim/ { print $3, $4, $5 }' \
            "$work/f.log" | md5sum)"
    done
fi

# slat_percentiles, clat_percentiles, lat_percentiles: percentiles (and
# json+ bins) for those only, each within fio's 1/128 of the exact one
# from the latency logs, as fio's t/latency_percentiles.py checks.
(cd "$work" && "$bench" --name=p --filename="$work/seq.img" --size=1M \
    --rw=randrw --slat_percentiles=1 --clat_percentiles=0 \
    --lat_percentiles=1 --write_lat_log=pl --output-format=json+ \
    >"$work/pl.json")
check "*_percentiles: as asked, each within 1/128 of the logs'" python3 -c '
import csv, json, math, sys
d = json.load(open(sys.argv[1]))["jobs"][0]
for ddir, name in ((0, "read"), (1, "write")):
    for lat, want in (("slat", True), ("clat", False), ("lat", True)):
        j = d[name][lat + "_ns"]
        if ("percentile" in j) != want or ("bins" in j) != want:
            sys.exit("%s %s: percentile/bins %s" % (name, lat, "percentile" in j))
        if not want:
            continue
        logged = sorted(int(r[1]) for r in csv.reader(open(
            "%s/pl_%s.1.log" % (sys.argv[2], lat))) if int(r[2]) == ddir)
        if len(logged) != d[name]["total_ios"] or sum(j["bins"].values()) != len(logged):
            sys.exit("%s %s: %d logged" % (name, lat, len(logged)))
        for pct, value in j["percentile"].items():
            exact = logged[max(math.ceil(float(pct) / 100 * len(logged)) - 1, 0)]
            if abs(value - exact) > exact / 128:
                sys.exit("%s %s %s: %d, exact %d" % (name, lat, pct, value, exact))
' "$work/pl.json" "$work"

# Steady state, as fio: a loose limit is attained after ss_ramp, one more
# second and ss_dur seconds of samples, and stops the job; the criterion
# is the one its samples give; a limit of 0 is never attained.  Two
# samples never stray 100% from their mean unless one is 0 (50% was
# missed once, under ASan on a loaded machine).
"$bench" --name=s --ioengine=null --size=1G --rw=randread --time_based \
    --runtime=8 --ss_dur=2 --ss=iops:100% --ss_ramp=1 --output-format=json \
    >"$work/ss.json"
check "ss=iops:100%: attained, stopped at ss_ramp + ss_dur, criterion from its data" \
    python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
s, run = j["steadystate"], j["read"]["runtime"]
data = s["data"]["iops"]
mean = sum(data) / len(data)
dev = max(abs(x - mean) for x in data) / mean * 100
crit = float(s["criterion"].rstrip("%"))
sys.exit(not (s["attained"] == 1 and 3000 <= run < 7500 and
              s["duration"] == 2 and len(data) == 2 and
              abs(dev - crit) <= 0.005 * max(crit, 1e-9)))
' "$work/ss.json"
"$bench" --name=s --ioengine=null --size=1G --rw=randread --time_based \
    --runtime=3 --ss_dur=1 --ss=iops_slope:0 --output-format=json \
    >"$work/ss0.json"
check "ss=iops_slope:0: never attained, the whole runtime" test "$(json \
    "$work/ss0.json" "(d['jobs'][0]['steadystate']['attained'],
    abs(d['jobs'][0]['read']['runtime'] - 3000) <= 50)")" = "(0, True)"
check "--debug=parse: fio's steady state line" test "$("$bench" \
    --parse-only --debug=parse --ss=iops:.1% 2>/dev/null |
    sed 's/^parse *[0-9]* //')" = "set steady state threshold to 0.100000%"

# unified_rw_reporting=1: reads and writes as one "mixed" direction.
"$bench" --name=u --ioengine=null --size=16M --rw=randrw \
    --unified_rw_reporting=1 --output-format=json,normal >"$work/u.out"
check "unified_rw_reporting: only mixed, with every I/O" test "$(sed -n \
    '/^{/,/^}/p' "$work/u.out" | python3 -c 'import json, sys
j = json.load(sys.stdin)["jobs"][0]
print(sorted(k for k in j if k in ("read", "write", "trim", "mixed")),
      j["mixed"]["total_ios"])')" = "['mixed'] 4096"
check "unified_rw_reporting: fio's mixed and MIXED lines" test "$(grep -c \
    '^  mixed: IOPS=\|^  MIXED: bw=' "$work/u.out")" -eq 2
rejects "unified_rw_reporting: expected none or mixed (0 or 1), got \
'both'" --name=u --ioengine=null --unified_rw_reporting=both

# What writes carry, beside fio writing the same job: zlib's share and
# the share of distinct 4k blocks of the files agree within 3 points.
shares() {  # file: zlib's share and distinct blocks' share, in per cent
    python3 -c "import sys, zlib
d = open(sys.argv[1], 'rb').read()
b = {d[i:i + 4096] for i in range(0, len(d), 4096)}
print(round(100 * len(zlib.compress(d, 1)) / len(d)),
      round(100 * 4096 * len(b) / len(d)))" "$1"
}
if command -v fio >/dev/null 2>&1; then
    for opts in "--buffer_compress_percentage=60" \
                "--dedupe_percentage=40 --buffer_compress_percentage=20" \
                "--dedupe_percentage=50 --dedupe_mode=working_set" \
                "--rw=randrw --buffer_pattern=0x5a --size=4M" \
                "--rw=randread --dedupe_percentage=30" \
                "--zero_buffers=0" "--zero_buffers --scramble_buffers=1" \
                "--buffer_compress_percentage=100 --dedupe_percentage=50"; do
        rm -f "$work/cc.img" "$work/fc.img"
        # shellcheck disable=SC2086
        "$bench" --name=c --filename="$work/cc.img" --size=16M --rw=write \
            $opts >/dev/null
        # shellcheck disable=SC2086
        fio --name=c --filename="$work/fc.img" --size=16M --rw=write \
            $opts >/dev/null
        set -- $(shares "$work/cc.img") $(shares "$work/fc.img")
        check "$opts: zlib $1% and $2% distinct; fio's $3% and $4%" \
            test $(($1 - $3)) -le 3 -a $(($3 - $1)) -le 3 \
                 -a $(($2 - $4)) -le 3 -a $(($4 - $2)) -le 3
    done
    # dedupe_global (fio's examples/dedupe-global.fio): the working set is
    # both jobs' first new buffers, so that the two files together hold
    # fewer distinct blocks than each alone.
    for tool in "$bench" fio; do
        mkdir "$work/dg-${tool##*/}"
        "$tool" --directory="$work/dg-${tool##*/}" --size=16m --rw=write \
            --dedupe_mode=working_set --dedupe_global=1 \
            --dedupe_percentage=50 --dedupe_working_set_percentage=50 \
            --name=a --name=b >/dev/null
        cat "$work/dg-${tool##*/}/a.0.0" "$work/dg-${tool##*/}/b.0.0" \
            >"$work/dg-${tool##*/}/ab"
    done
    for f in a.0.0 ab; do
        set -- $(shares "$work/dg-coblk-bench/$f") $(shares "$work/dg-fio/$f")
        check "dedupe_global: $f: $2% distinct; fio's $4%" \
            test $(($2 - $4)) -le 3 -a $(($4 - $2)) -le 3
    done
fi

# buffer_pattern: what is written is the pattern; exitall: once a job of
# the group is done, the others stop (b would run 30 s).
"$bench" --name=p --filename="$work/bp.img" --size=64k --rw=write \
    --buffer_pattern=0xdeadbeef >/dev/null
check "buffer_pattern: the file holds the pattern throughout" test "$(od \
    -An -tx4 -v "$work/bp.img" | tr -s ' ' '\n' | sort -u | tr -d '\n')" = \
    efbeadde
"$bench" --name=a --ioengine=null --size=1M --exitall --name=b \
    --ioengine=null --size=1G --time_based --runtime=30 \
    --output-format=json >"$work/exitall.json"
check "exitall: the other job stopped within a second" test "$(json \
    "$work/exitall.json" "d['jobs'][1]['read']['runtime'] < 1000")" = True

# latency_target: a depth every I/O fits at is iodepth, found in a few
# windows; then one window at it and the job ends, time_based or not.
# Where even depth 1 misses (2 ms a read, a 500 us target), fio's
# ETIMEDOUT.
lat_job="--name=l --ioengine=null --size=100G --rw=randread --iodepth=32 \
    --latency_target=500 --latency_window=200000 --latency_percentile=99 \
    --time_based --runtime=20 --output-format=json"
# shellcheck disable=SC2086
"$bench" $lat_job >"$work/lat.json"
lat_fields="[d['jobs'][0][k] for k in ('latency_depth', 'latency_target', \
    'latency_window', 'latency_percentile')]"
check "latency_target: depth 32, the target in ns, the window in us" \
    test "$(json "$work/lat.json" "$lat_fields")" = \
    "[32, 500000, 200000, 99.0]"
check "latency_target: the job ends a window after the depth is found" \
    test "$(json "$work/lat.json" "d['jobs'][0]['read']['runtime'] < 1000")" = \
    True
if command -v fio >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    fio $lat_job >"$work/fio-lat.json"
    check "latency_target: fio reports the same" test \
        "$(json "$work/fio-lat.json" "$lat_fields")" = \
        "$(json "$work/lat.json" "$lat_fields")"
fi
rc=0
"$bench" --name=l --filename="blkdebug:event=read,delay-ns=2000000:null:size=1G" \
    --rw=randread --iodepth=8 --latency_target=500 --output-format=json \
    >"$work/lat-miss.json" 2>/dev/null || rc=$?
check "latency_target missed at depth 1: exit 1" test "$rc" -eq 1
check "latency_target missed at depth 1: fio's error 110 (ETIMEDOUT)" \
    test "$(json "$work/lat-miss.json" "d['jobs'][0]['error']")" = 110
# What the ramp saw does not count (a read of 30 ms there, at depth 1,
# once failed the job); the search starts afresh after it, as fio's.
runs --name=l --filename="blkdebug:event=read,delay-ns=30000000,once:null:size=1G" \
    --rw=randread --iodepth=16 --latency_target=20000 \
    --latency_window=300000 --ramp_time=1 --time_based --runtime=3
check "latency_target: a miss during ramp_time is not counted" \
    test "$rc" -eq 0

# continue_on_error: errors of that kind counted (fio's total_err and
# first_error), the job going on; without it, the first ends the job.
truncate -s 1M "$work/ce.img"
"$bench" --name=e --filename="blkdebug:event=read,errno=EIO,every=4:file:$work/ce.img" \
    --rw=randread --size=1M --continue_on_error=read --output-format=json \
    >"$work/ce.json"
check "continue_on_error=read: every 4th read failed, all 256 done" \
    test "$(json "$work/ce.json" "(d['jobs'][0]['error'],
    d['jobs'][0]['total_err'], d['jobs'][0]['first_error'],
    d['jobs'][0]['read']['total_ios'])")" = "(0, 64, 5, 256)"
runs --name=e --filename="blkdebug:event=read,errno=EIO,every=4:file:$work/ce.img" \
    --rw=randread --size=1M --continue_on_error=write
check "continue_on_error=write: a read error still ends the job" \
    test "$rc" -eq 1
# ignore_error: which errnos continue_on_error lets through (fio's
# default: EIO and EILSEQ only).
nospc="blkdebug:event=write,errno=ENOSPC,every=4:file:$work/ce.img"
runs --name=e --filename="$nospc" --rw=randwrite --size=1M \
    --continue_on_error=write
check "ignore_error: ENOSPC is no EIO: it ends the job" test "$rc" -eq 1
"$bench" --name=e --filename="$nospc" --rw=randwrite --size=1M \
    --continue_on_error=write --ignore_error=,EIO:ENOSPC \
    --output-format=json >"$work/ie.json"
check "ignore_error=,EIO:ENOSPC: let through, counted" \
    test "$(json "$work/ie.json" "(d['jobs'][0]['error'],
    d['jobs'][0]['total_err'], d['jobs'][0]['first_error'])")" = "(0, 64, 28)"
# fill_device=1: writing ends at ENOSPC, which is no error; what was
# written (3 MiB before the "full" device) is counted and verifies.
truncate -s 16M "$work/full.img"
full="blkdebug:event=write,errno=ENOSPC,offset=3M,len=1G:file:$work/full.img"
"$bench" --name=f --filename="$full" --rw=write --bs=64k --iodepth=8 \
    --size=16M --fill_device=1 --verify=crc32c --output-format=json \
    >"$work/full.json"
check "fill_device: writes end at ENOSPC, 3 MiB written and read back" \
    test "$(json "$work/full.json" "(d['jobs'][0]['error'],
    d['jobs'][0]['write']['io_bytes'], d['jobs'][0]['read']['io_bytes'])")" \
    = "(0, 3145728, 3145728)"
runs --name=f --filename="$full" --rw=write --bs=64k --size=16M
check "without fill_device, ENOSPC fails the job" test "$rc" -eq 1
rejects "ignore_error: unknown error 'ENOTANERROR' (a name such as ENOSPC, \
or a number; at most 16 a kind)" --name=e --ioengine=null \
    --ignore_error=ENOTANERROR

# --readonly: reads run, and lay no file out; --max-jobs as fio 3.33.
"$bench" --readonly --max-jobs=16 --name=r --ioengine=null --size=1M \
    --rw=randread --output-format=json >"$work/ro.json"
check "--readonly: a read job runs" test "$(json "$work/ro.json" \
    "d['jobs'][0]['read']['total_ios']")" -eq 256
runs --readonly --name=r --filename="$work/absent.img" --size=1M
check "--readonly: no file laid out (exit 1)" test "$rc" -eq 1 -a \
    ! -e "$work/absent.img"

# offset_increment: copy N starts N increments on; the same I/Os as fio's
# copies (their lines interleave, so compared sorted), and the same file.
if command -v fio >/dev/null 2>&1; then
    for who in coblk fio; do
        rm -f "$work/oi.img" "$work/oi-$who.log"
        if [ $who = coblk ]; then run="$bench"; else run=fio; fi
        "$run" --name=r --filename="$work/oi.img" --rw=randwrite --numjobs=2 \
            --offset_increment=512k --size=256k \
            --write_iolog="$work/oi-$who.log" >/dev/null
        stat -c %s "$work/oi.img" >"$work/oi-$who.size"
    done
    check "offset_increment: fio's I/Os and file size" test "$(awk \
        '$3 == "write" { print $4, $5 }' "$work/oi-coblk.log" | sort |
        md5sum) $(cat "$work/oi-coblk.size")" = "$(awk \
        '$3 == "write" { print $4, $5 }' "$work/oi-fio.log" | sort |
        md5sum) $(cat "$work/oi-fio.size")"
fi

# wait_for: a reader that verifies what a writer of the same run writes
# starts only once the writer is done (without it, it would find holes).
rm -f "$work/wf.img"
"$bench" --name=w --filename="$work/wf.img" --size=8M --rw=write \
    --verify=crc32c --do_verify=0 --name=r --filename="$work/wf.img" \
    --size=8M --rw=read --verify=crc32c --wait_for=w --output-format=json \
    >"$work/wf.json" 2>"$work/wf.err"
check "wait_for: the reader found every block written" test "$(json \
    "$work/wf.json" "d['jobs'][1]['read']['total_ios']")" -eq 2048 -a \
    ! -s "$work/wf.err"
rejects "b: wait_for=a: no job of that name before it" --name=b \
    --ioengine=null --size=1M --wait_for=a --name=a --ioengine=null \
    --size=1M

# A new file is written out before a job that reads it, as fio lays it
# out (data, not holes), with fio's line; a file that exists is not.
"$bench" --name=r --filename="$work/new.img" --size=8M --rw=randread \
    >"$work/layout.out"
check "layout: fio's line after Starting" test "$(sed -n 4p \
    "$work/layout.out")" = "r: Laying out IO file (1 file / 8MiB)"
check "layout: every 4k block of the new file holds data" python3 -c '
import sys
data = open(sys.argv[1], "rb").read()
blocks = [data[i:i + 4096] for i in range(0, len(data), 4096)]
sys.exit(len(data) != 8 << 20 or any(b == bytes(4096) for b in blocks))
' "$work/new.img"
truncate -s 8M "$work/sparse.img"
"$bench" --name=r --filename="$work/sparse.img" --size=8M --rw=randread \
    >"$work/layout.out"
check "layout: not of a file that exists" test "$(stat -c %b \
    "$work/sparse.img")" -eq 0
check "layout: no line for a file that exists" \
    test "$(grep -c "Laying out" "$work/layout.out")" -eq 0
"$bench" --name=r --filename="$work/new2.img" --size=1M --rw=read \
    --output-format=json >"$work/layout.json"
check "layout: no line in JSON output" json "$work/layout.json" \
    "d['jobs'][0]['read']['total_ios']"
mkdir "$work/jobdir"
"$bench" --name=d --directory="$work/jobdir" --filesize=2M --size=1M \
    --rw=read >"$work/dir.out"
check "directory=: fio's file name there, laid out to filesize=" \
    test "$(stat -c %s "$work/jobdir/d.0.0")" -eq $((2 << 20))
check "filesize=: the line says so" grep -q \
    "^d: Laying out IO file (1 file / 2MiB)$" "$work/dir.out"
"$bench" --name=d --directory="$work/jobdir" --size=1M --rw=write --unlink=1 \
    --output-format=json >"$work/dir.json"
check "unlink=1: the file is gone after the job" test ! -e "$work/jobdir/d.0.0"
check "unlink=1: after the job wrote it all" test "$(json "$work/dir.json" \
    "d['jobs'][0]['write']['io_bytes']")" -eq $((1 << 20))

# Verification with loops (each pass checked), sizes that are not
# multiples of the smallest, verify_only after a backlogged run, and
# overlapping writes in flight (the device is slowed once so that the
# second pass's write to a block overtakes the first's).
"$bench" --name=v --filename="$work/loops.img" --size=1M --rw=write \
    --loops=2 --verify=crc32c --output-format=json >"$work/vloops.json"
check "verify after each of 2 loops" test "$(json "$work/vloops.json" \
    "d['jobs'][0]['read']['total_ios']")" -eq 512
"$bench" --name=v --filename="$work/split.img" --size=4M --rw=randwrite \
    --bssplit=4k/30:6k/30:8k/40 --verify=crc32c >/dev/null \
    2>"$work/verify.err"
check "verify with bssplit=4k/30:6k/30:8k/40" test ! -s "$work/verify.err"
"$bench" --name=v --filename="$work/bl.img" --size=4M --rw=randwrite \
    --verify=crc32c --verify_backlog=16 >/dev/null
dd if=/dev/zero of="$work/bl.img" bs=4096 seek=10 count=1 conv=notrunc \
    2>/dev/null
runs --name=v --filename="$work/bl.img" --size=4M --rw=randwrite \
    --verify=crc32c --verify_backlog=16 --verify_only=1
check "verify_only with verify_backlog: a zeroed block fails (exit 1)" \
    test "$rc" -eq 1
check "verify_only with verify_backlog finds a zeroed block" grep -q \
    "offset 40960: bad magic" "$work/err"
dd if=/dev/zero of="$work/bl.img" bs=4096 seek=20 count=1 conv=notrunc \
    2>/dev/null
runs --name=v --filename="$work/bl.img" --size=4M --rw=randwrite \
    --verify=crc32c --verify_only=1
check "without verify_fatal every bad block is counted" test "$rc" -eq 1 \
    -a "$(grep -c "(2 bad blocks in all)" "$work/err")" -eq 1
runs --name=v --filename="$work/bl.img" --size=4M --rw=randwrite \
    --verify=crc32c --verify_only=1 --verify_fatal=1
check "verify_fatal stops at the first" test "$rc" -eq 1 -a \
    "$(grep -c "bad magic" "$work/err")" -eq 1 -a \
    "$(grep -c "in all" "$work/err")" -eq 0
truncate -s 8k "$work/ovl.img"
"$bench" --name=v --filename="blkdebug:event=write,delay-ns=50000000,once:file:$work/ovl.img" \
    --size=8k --rw=write --loops=2 --iodepth=4 --verify=crc32c >/dev/null \
    2>"$work/verify.err"
check "overlapping writes in flight go in order" test ! -s "$work/verify.err"

# Logs in fio's names and columns: time, value, direction, size, prio.
(cd "$work" && "$bench" --name=l --ioengine=null --size=4M --rw=randrw \
    --write_lat_log=lg --write_bw_log=lg --write_iops_log=lg >/dev/null)
for kind in lat clat slat bw iops; do
    check "log lg_$kind.1.log" test -s "$work/lg_$kind.1.log"
done
check "lat log: a line per I/O" test "$(wc -l <"$work/lg_lat.1.log")" -eq 1024
check "lat log columns" awk -F', ' 'NF != 5 || $3 > 1 || $4 != 4096 \
    { bad = 1 } END { exit bad }' "$work/lg_lat.1.log"
# Logs stored compressed (fio's .fz): what --inflate-log prints is the
# plain log, and fio and coblk-bench read each other's .fz alike.
(cd "$work" && "$bench" --name=z --ioengine=null --size=4M --rw=randrw \
    --write_lat_log=lz --log_offset=1 --log_compression=10k \
    --log_store_compressed=1 >/dev/null &&
    "$bench" --inflate-log=lz_clat.1.log.fz >lz.ours)
check "stored compressed: no plain log" test ! -e "$work/lz_clat.1.log"
check "--inflate-log: a line per I/O, with offsets" awk -F', ' \
    'NF != 6 || $4 != 4096 { bad = 1 } END { exit bad || NR != 1024 }' \
    "$work/lz.ours"
check "--inflate-log of a file that is no .fz fails" \
    sh -c "! '$bench' --inflate-log='$work/lz.ours' >/dev/null 2>&1"
if command -v fio >/dev/null 2>&1; then
    # fio's compressed log, a second time where its first run hangs.
    for attempt in 1 2; do
        (cd "$work" && rm -f fz_* &&
            timeout -k 5 30 env fio --name=f --ioengine=null --size=4M \
                --rw=randrw --write_lat_log=fz --log_compression=4k \
                --log_store_compressed=1 >/dev/null) && break
        echo "fio's compressed log: attempt $attempt failed"
    done
    (cd "$work" && fio --inflate-log=lz_clat.1.log.fz >lz.fio &&
        fio --inflate-log=fz_lat.1.log.fz >fz.fio &&
        "$bench" --inflate-log=fz_lat.1.log.fz >fz.ours)
    check "fio inflates coblk-bench's .fz as coblk-bench does" \
        cmp -s "$work/lz.ours" "$work/lz.fio"
    check "coblk-bench inflates fio's .fz as fio does" \
        cmp -s "$work/fz.ours" "$work/fz.fio"
fi

# Output formats: terse has fio's field count, json+ bins count every I/O.
"$bench" --name=t --ioengine=null --size=16M --minimal >"$work/terse"
fields=$(awk -F';' '{ print NF }' "$work/terse")
check "terse v3: fio 3.33's 121 fields (no disk stats)" test "$fields" -eq 121
if command -v fio >/dev/null 2>&1; then
    fio --name=t --ioengine=null --size=16M --minimal >"$work/fio.terse"
    check "terse: as many fields as fio" test "$fields" -eq \
        "$(awk -F';' '{ print NF }' "$work/fio.terse")"
fi
"$bench" --name=p --ioengine=null --size=16M --output-format=json+ \
    >"$work/plus.json"
check "json+: bins add up to the I/Os" test "$(json "$work/plus.json" \
    "sum(d['jobs'][0]['read']['clat_ns']['bins'].values())")" -eq 4096
if command -v fio_jsonplus_clat2csv >/dev/null 2>&1; then
    fio_jsonplus_clat2csv "$work/plus.json" "$work/clat.csv" >/dev/null
    check "fio_jsonplus_clat2csv reads and validates our json+" \
        fio_jsonplus_clat2csv --validate "$work/plus.json" "$work/clat.csv" \
        >/dev/null
fi

# Groups: stonewall runs b after a and reports two groups; --section picks.
"$bench" --name=a --ioengine=null --size=4M --name=b --ioengine=null \
    --size=4M --stonewall >"$work/groups"
check "two run status groups" test "$(grep -c '^Run status group' \
    "$work/groups")" -eq 2
"$bench" --section=b --name=a --ioengine=null --size=4M --name=b \
    --ioengine=null --size=8M --output-format=json >"$work/section.json"
check "--section=b runs b only" test "$(json "$work/section.json" \
    "[j['jobname'] for j in d['jobs']]")" = "['b']"

# While it runs: the status line, and --status-interval's reports so far.
"$bench" --name=s --ioengine=null --size=1G --runtime=2500ms --time_based \
    --eta=always --eta-interval=500ms --status-interval=1 \
    >"$work/status.out" 2>"$work/status.err"
check "status line on stdout, R for sequential reads" grep -q \
    'Jobs: 1 (f=1): \[R(1)\]\[[0-9.]*%\]' "$work/status.out"
check "status line: nothing on stderr" test ! -s "$work/status.err"
"$bench" --name=s --ioengine=null --size=1G --runtime=2500ms --time_based \
    --rw=randwrite --eta=always --eta-interval=200ms --eta-newline=1 \
    >"$work/newline.out"
check "--eta-newline=1: two or three status lines kept, w for random writes" \
    python3 -c '
import re, sys
kept = [l for l in open(sys.argv[1], newline="").read().split("\n")
        if re.search(r"Jobs: 1 \(f=1\): \[w\(1\)\][^\r]*$", l)]
sys.exit(not 2 <= len(kept) <= 3)' "$work/newline.out"
check "two reports so far, then the last" test "$(grep -c 'read: IOPS=' \
    "$work/status.out")" -eq 3
"$bench" --name=s --ioengine=null --size=1G --runtime=2500ms --time_based \
    --status-interval=1 --output-format=terse >"$work/status.terse"
check "--status-interval in the chosen format" awk -F';' \
    'NF != 121 { bad = 1 } END { exit bad || NR != 3 }' "$work/status.terse"

# Signals, as fio: SIGINT or SIGTERM stops the jobs, says so, reports what
# ran, removes the temporary files and exits 128; a second one exits at
# once.  Each run goes on for an hour unless stopped.
wait_for() {  # file, pattern: polls until the file has it; gives up after 60 s
    tries=0
    until grep -q "$2" "$1" 2>/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -le 600 ] || return 1
        sleep 0.1
    done
}
stop() {  # signal, pid: sends it (the process may be gone), rc its status
    kill "-$1" "$2" 2>/dev/null || :
    rc=0
    wait "$2" || rc=$?
}
mkdir "$work/tmp"
TMPDIR="$work/tmp" "$bench" --name=j --size=64M --rw=randread --time_based \
    --runtime=1h --status-interval=1 >"$work/int.out" 2>"$work/int.err" &
pid=$!
wait_for "$work/int.out" "read: IOPS=" || :
check "the temporary file is in \$TMPDIR" test "$(ls "$work/tmp" | wc -l)" -eq 1
stop INT "$pid"
check "SIGINT: exit 128, as fio" test "$rc" -eq 128
check "SIGINT: fio's line, where the report goes" grep -qx \
    "coblk-bench: terminating on signal 2" "$work/int.out"
sed -n '/terminating on signal/,$p' "$work/int.out" >"$work/int.report"
check "SIGINT: then the report of what ran" grep -q \
    "^  read: IOPS=.*msec)$" "$work/int.report"
check "SIGINT: and its group's line" grep -q "^   READ: bw=" "$work/int.report"
check "SIGINT: the temporary file is removed" test -z "$(ls "$work/tmp")"
check "SIGINT: nothing on stderr" test ! -s "$work/int.err"

TMPDIR="$work/tmp" "$bench" --name=j --size=64M --rw=randread --time_based \
    --runtime=1h --status-interval=1 --output-format=json \
    >"$work/term.json" 2>"$work/term.err" &
pid=$!
wait_for "$work/term.json" '"total_ios" : [1-9]' || :
stop TERM "$pid"
check "SIGTERM: exit 128" test "$rc" -eq 128
check "SIGTERM with json only: the line on stderr, JSON unbroken" test \
    "$(grep -v '^$' "$work/term.err")" = "coblk-bench: terminating on signal 15"
last_json() {  # file, expression on d, the last JSON document in the file
    python3 -c "import json, sys
text, docs, at = open(sys.argv[1]).read(), [], 0
while text[at:].strip():
    doc, end = json.JSONDecoder().raw_decode(text, at)
    docs.append(doc)
    at = end + len(text[end:]) - len(text[end:].lstrip())
d = docs[-1]
print($2)" "$1"
}
check "SIGTERM: the last JSON report has the reads done" test "$(last_json \
    "$work/term.json" "d['jobs'][0]['read']['total_ios'] > 0 and \
d['jobs'][0]['error'] == 0")" = True
check "SIGTERM: the temporary file is removed" test -z "$(ls "$work/tmp")"

# The second job's last flush (end_fsync) is delayed for 10 minutes: the
# first signal's report waits for it, the second signal does not.
truncate -s 1M "$work/flush.img"
TMPDIR="$work/tmp" "$bench" --name=a --size=64M --rw=randread --time_based \
    --runtime=1h --status-interval=1 --name=b --rw=write --size=1M \
    --end_fsync=1 \
    --filename="blkdebug:event=flush,delay-ns=600000000000:file:$work/flush.img" \
    >"$work/twice.out" 2>&1 &
pid=$!
wait_for "$work/twice.out" "read: IOPS=" || :
kill -INT "$pid"
wait_for "$work/twice.out" "terminating on signal 2" || :
stop INT "$pid"
check "a second signal: exit 128" test "$rc" -eq 128
check "a second signal: no report waited for" test "$(sed -n \
    '/terminating on signal/,$p' "$work/twice.out" | grep -c 'Run status')" \
    -eq 0
check "a second signal: the temporary file is removed" \
    test -z "$(ls "$work/tmp")"

# --plot writes an SVG report.
"$bench" --name=g --ioengine=null --size=64M --plot="$work/r.svg" >/dev/null
check "plot: an SVG file" grep -q '</svg>' "$work/r.svg"

# Bad values: exit 1, and one line that says what is wrong.
rejects "bs: 0 out of range [1, 1073741824]" --name=j --bs=0
rejects "iodepth: invalid number '-1'" --name=j --iodepth=-1
rejects "rw: invalid value 'up'" --name=j --rw=up
rejects "unrecognized option '--bogus'" --bogus
rejects "job <w> has write or trim bit set, but coblk-bench is in \
read-only mode (--readonly)" --readonly --name=w --ioengine=null --size=1M \
    --rw=randrw
rejects "max-jobs: expected a number above 0, got '0'" --max-jobs=0
rejects "cpus_allowed: expected a list of numbers and ranges below 1024 \
(0-3,6), got '2-1'" --name=c --cpus_allowed=2-1
rejects "numa_mem_policy: expected default, local, prefer:NODE, \
bind:NODES or interleave:NODES, got 'bind'" --name=c --numa_mem_policy=bind
runs --name=c --ioengine=null --size=1M --numa_cpu_nodes=1000
check "numa_cpu_nodes: a node the machine lacks fails the job (exit 1)" \
    test "$rc" -eq 1
check "numa_cpu_nodes: says which node" grep -q \
    "numa_cpu_nodes: this machine has no NUMA node 1000 with CPUs" \
    "$work/err"
rejects "debug: unknown category 'everything'" --debug=everything
rejects "failed to open job file '/nonexistent.fio': No such file or \
directory" /nonexistent.fio
rejects "j: size=67108864 at offset=0 goes past the end of null:size=1M \
(1048576 bytes)" --name=j --filename=null:size=1M --size=64M
rejects "j: verify needs a device that keeps data, not ioengine=null" \
    --name=j --ioengine=null --verify=crc32c
rejects "bssplit: percentages in '4k/90:8k/20' must add up to 100" \
    --name=j --bssplit=4k/90:8k/20
rejects "j: cannot write log /nonexistent/x_lat.1.log: No such file or \
directory" --name=j --ioengine=null --write_lat_log=/nonexistent/x
rejects "j: size=1024 is smaller than the block size 4096" \
    --name=j --ioengine=null --size=1k --bs=4k
rejects "j: block sizes must be multiples of 512 (got 700 to 700)" \
    --name=j --ioengine=null --bs=700
rejects "verify_backlog: 4294967295 out of range [0, 1048576]" \
    --name=j --ioengine=null --verify_backlog=4294967295
rejects "j: verify_only replays a size-based job's writes, not a \
time_based one's" --name=j --filename="$work/img" --verify=md5 \
    --verify_only=1 --time_based --runtime=1ms
rejects "j: offset=18446744073709551615 plus size=4096 is past any device" \
    --name=j --ioengine=null --offset=18446744073709551615 --size=4k

# Job files as fio reads them: include (beside the including file, no
# sections in it), '-' from standard input; --showcmd prints what fio
# prints for the same file.
mkdir -p "$work/inc"
printf 'iodepth=4\n' >"$work/inc/depth.fio"
printf '[global]\nioengine=null\nsize=1m\ninclude depth.fio\n[a]\nrw=read\n[b]\nrw=write\nnumjobs=2\n' \
    >"$work/inc/main.fio"
"$bench" --output-format=json "$work/inc/main.fio" >"$work/inc.json"
check "include: the included option is a global one" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(not (len(d["jobs"]) == 3 and
              d["global options"].get("iodepth") == "4"))' "$work/inc.json"
check "job file on standard input" test "$(printf '[a]\nioengine=null\nsize=1m\n[b]\nioengine=null\nsize=1m\n' |
    "$bench" --output-format=terse - | wc -l)" -eq 2
if command -v fio >/dev/null 2>&1; then
    check "--showcmd prints what fio prints" test \
        "$("$bench" --showcmd "$work/inc/main.fio" | sed 's/^coblk-bench/fio/')" = \
        "$(fio --showcmd "$work/inc/main.fio" | sed 's/ *$//')"
fi
rejects "hipri: not supported by coblk, and --warnings-fatal makes that an error" \
    --warnings-fatal --name=j --ioengine=null --size=1m --hipri

# read_iolog=: a recorded mixed job replayed issues the same I/Os in the
# same order (its own write_iolog says so), as many as fio's replay of
# the same log, with the bytes the log holds (fio 3.33 counts a few 8k
# I/Os short in its io_bytes here); the pace is kept (a 1 s log takes
# 1 s) unless replay_no_stall.
truncate -s 16M "$work/rp.img"
"$bench" --name=rec --filename="$work/rp.img" --rw=randrw \
    --bssplit=4k/50:8k/50 --size=16M --number_ios=300 --iodepth=4 \
    --write_iolog="$work/rec.log" >/dev/null
"$bench" --name=rep --read_iolog="$work/rec.log" --iodepth=4 \
    --write_iolog="$work/rep.log" --output-format=json >"$work/rep.json"
check "read_iolog: the same I/Os in the same order" test \
    "$(awk 'NR > 1 { $1 = ""; print }' "$work/rec.log" | md5sum)" = \
    "$(awk 'NR > 1 { $1 = ""; print }' "$work/rep.log" | md5sum)"
if command -v fio >/dev/null 2>&1; then
    fio --name=rep --read_iolog="$work/rec.log" --iodepth=4 \
        --ioengine=io_uring --output-format=json >"$work/rep-fio.json"
    check "read_iolog: as many I/Os as fio's replay" python3 -c '
import json, sys
ours, fio = (json.load(open(f))["jobs"][0] for f in sys.argv[1:])
sys.exit(any(ours[d]["total_ios"] != fio[d]["total_ios"]
             for d in ("read", "write")))' "$work/rep.json" \
        "$work/rep-fio.json"
fi
check "read_iolog: the bytes the log holds" python3 -c '
import json, sys
ours = json.load(open(sys.argv[1]))["jobs"][0]
want = {"read": 0, "write": 0}
for line in open(sys.argv[2]).readlines()[1:]:
    f = line.split()
    if f[2] in want:
        want[f[2]] += int(f[4])
sys.exit(any(ours[d]["io_bytes"] != want[d] for d in want))' \
    "$work/rep.json" "$work/rec.log"
"$bench" --name=slow --filename="$work/rp.img" --rw=randread --rate_iops=100 \
    --runtime=1 --time_based --write_iolog="$work/slow.log" >/dev/null
for stall in 0 1; do
    "$bench" --name=rep --read_iolog="$work/slow.log" \
        --replay_no_stall=$stall --output-format=json >"$work/stall$stall.json"
done
check "read_iolog: the recorded pace kept, or not with replay_no_stall" \
    python3 -c '
import json, sys
paced, free = (json.load(open(f))["jobs"][0]["job_runtime"]
               for f in sys.argv[1:])
sys.exit(not (paced >= 900 and free < paced / 2))' "$work/stall0.json" \
    "$work/stall1.json"
printf 'fio version 2 iolog\nrp.img add\nrp.img read 100 4096\n' \
    >"$work/bad.log"
rejects "read_iolog $work/bad.log:3: 4096 bytes at 100: offsets and lengths must be non-zero multiples of 512 (replay_align=512 aligns offsets)" \
    --name=j --read_iolog="$work/bad.log"

# flow=: fio's t0011 shortened: a job held to 400 IOPS, another of four
# times its weight in the same flow keeps four times its pace (the group
# starts together, so neither runs alone for a while).
"$bench" --ioengine=null --size=100g --bs=4k --runtime=2 --flow_id=1 \
    --output-format=json --name=flow1 --flow=1 --rate_iops=400 \
    --name=flow2 --flow=4 --rate_iops=4000 >"$work/flow.json"
check "flow: the rated job at its rate" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"]
sys.exit(not 360 <= j[0]["read"]["iops"] <= 440)' "$work/flow.json"
check "flow: weights 1 and 4 keep a pace of 1 to 4" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"]
sys.exit(not 3.5 <= j[1]["read"]["iops"] / j[0]["read"]["iops"] <= 4.5)' \
    "$work/flow.json"
rejects "flow: 1001 out of range [0, 1000]" --name=j --ioengine=null \
    --flow=1001

# thinktime: pauses as fio's, so a second holds as many I/Os as fio's.
if command -v fio >/dev/null 2>&1; then
    for think in "--thinktime=20ms --thinktime_blocks=4" \
        "--thinktime=20ms --thinktime_blocks=4 --thinktime_blocks_type=issue \
--iodepth=32"; do
        for who in "$bench" fio; do
            # shellcheck disable=SC2086
            "$who" --name=t --ioengine=null --size=1g --bs=4k --runtime=1 \
                --time_based $think --output-format=json 2>/dev/null |
                python3 -c 'import json, sys
print(json.load(sys.stdin)["jobs"][0]["read"]["total_ios"])'
        done >"$work/think"
        check "thinktime: I/Os in a second within 10% of fio's ($think)" \
            python3 -c 'import sys
ours, fios = (int(x) for x in open(sys.argv[1]).read().split())
sys.exit(not abs(ours - fios) <= fios / 10)' "$work/think"
    done
fi

# rate_process=poisson: intervals between issues vary as an exponential
# distribution's do (deviation about the mean); linear ones, little.
cv_of_issues() {  # iolog: the coefficient of variation of its intervals
    python3 -c 'import statistics, sys
t = [int(l.split()[0]) for l in open(sys.argv[1]) if " read " in l]
d = [b - a for a, b in zip(t, t[1:])]
print(statistics.pstdev(d) / statistics.mean(d))' "$1"
}
# 250 I/Os a second, 5 ms apart on average: late wake-ups on a loaded
# machine (sanitizers, tests beside) stay small beside that.
for process in poisson linear; do
    "$bench" --name=p --ioengine=null --size=1g --rw=randread \
        --rate_iops=250 --rate_process=$process --runtime=2 --time_based \
        --write_iolog="$work/$process.iolog" >/dev/null
done
check "rate_process=poisson: intervals vary as exponential ones" \
    python3 -c 'import sys; sys.exit(not 0.75 <= float(sys.argv[1]) <= 1.25)' \
    "$(cv_of_issues "$work/poisson.iolog")"
check "rate_process=linear: intervals stay even" \
    python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < 0.5)' \
    "$(cv_of_issues "$work/linear.iolog")"
# ratemin: a job held below it fails after fio's 2 s settling, with fio's
# words and errno 5.
runs --name=m --ioengine=null --size=1g --thinktime=10ms --ratemin=1m \
    --runtime=6 --time_based
check "ratemin: a job below it fails (exit 1)" test "$rc" -eq 1
check "ratemin: says so as fio does" grep -q \
    "^coblk-bench: m: rate_min=1048576B/s not met, got [0-9]*B/s$" \
    "$work/err"
rejects "m: minimum rate exceeds rate, ddir 0" --name=m --ioengine=null \
    --rate=1m --ratemin=2m

# exit_what: with all, a job done with exitall keeps the next stonewall
# group from starting; with group (the default), that group runs.
for what in all group; do
    "$bench" --ioengine=null --size=1g --name=a --exitall \
        --exit_what=$what --number_ios=10 --name=b --stonewall --runtime=1 \
        --time_based --output-format=json >"$work/exit-$what.json"
done
check "exit_what=all: the next group never runs" python3 -c '
import json, sys
sys.exit(json.load(open(sys.argv[1]))["jobs"][1]["read"]["total_ios"] != 0)' \
    "$work/exit-all.json"
check "exit_what=group: the next group runs" python3 -c '
import json, sys
sys.exit(json.load(open(sys.argv[1]))["jobs"][1]["read"]["total_ios"] == 0)' \
    "$work/exit-group.json"

# serialize_overlap: over one block, reads of 1 ms each at depth 8 go one
# at a time, or eight at a time without it.
truncate -s 4k "$work/one.img"
for so in 1 0; do
    "$bench" --name=s --rw=randread --size=4k --iodepth=8 --runtime=1 \
        --filename="blkdebug:event=read,delay-ns=1000000:file:$work/one.img" \
        --time_based --norandommap --serialize_overlap=$so \
        --output-format=json >"$work/so$so.json"
done
check "serialize_overlap: overlapping reads wait for each other" python3 -c '
import json, sys
iops = [json.load(open(f))["jobs"][0]["read"]["iops"] for f in sys.argv[1:]]
sys.exit(not iops[1] > 3 * iops[0])' "$work/so1.json" "$work/so0.json"

# blockalign: as fio, it turns the random map off, and says so.
runs --name=b --ioengine=null --size=1M --rw=randread --bs=16k \
    --blockalign=8k --parse-only
check "blockalign: the random map off, told once" test "$(cat "$work/err")" \
    = "coblk-bench: any use of blockalign= turns off the random map, as in fio"

# cmdprio: per-I/O priorities (the idle and best-effort classes, which
# need no privilege), their latencies by priority in JSON's "prios", each
# direction's adding up to its total; the same counts as fio's, whose
# draws the same seeds repeat.
prio_job='--name=p --ioengine=libaio --rw=randrw --size=4M
    --bssplit=64k/40:1024k/60 --numjobs=2 --group_reporting
    --cmdprio_bssplit=64k/25/2/1:64k/75/3/2:1024k/0 --output-format=json'
prios='
import json, sys
for f in sys.argv[1:]:
    job = json.load(open(f))["jobs"][0]
    print([(p["prioclass"], p["prio"], p["clat_ns"]["N"])
           for d in ("read", "write") for p in job[d]["prios"]])'
# shellcheck disable=SC2086
"$bench" $prio_job --filename="$work/prio.img" >"$work/prio.json"
check "cmdprio: prios add up to each direction's I/Os" python3 -c '
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
for d in ("read", "write"):
    prios = job[d]["prios"]
    assert [(p["prioclass"], p["prio"]) for p in prios] == \
        [(0, 0), (2, 1), (3, 2)], prios
    assert sum(p["clat_ns"]["N"] for p in prios) == job[d]["total_ios"]
' "$work/prio.json"
if command -v fio >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    fio $prio_job --filename="$work/prio-fio.img" >"$work/prio-fio.json"
    check "cmdprio: the same I/Os at each priority as fio" test \
        "$(python3 -c "$prios" "$work/prio.json")" = \
        "$(python3 -c "$prios" "$work/prio-fio.json")"
fi
rejects "p: cmdprio_percentage and cmdprio_bssplit options are mutually \
exclusive" --name=p --ioengine=libaio --cmdprio_percentage=10 \
    --cmdprio_bssplit=4k/10 --parse-only
rejects "prioclass: '4' is not a number in [0, 3]" --name=p --prioclass=4 \
    --parse-only

# No arguments: the README's main job, shortened.
COBLK_BENCH_RUNTIME=1 "$bench" >"$work/default" 2>&1
check "default run reports reads" grep -q "read: IOPS=" "$work/default"

echo "$failures failed"
[ "$failures" -eq 0 ]

#!/bin/sh
# coblk-bench end to end: exact I/O counts, the JSON keys fio's scripts
# read (and fio's own JSON for the same job, when fio is installed), bad
# values, and the no-argument default.
set -eu

: "${top_builddir:?}"
bench="$top_builddir/tools/coblk-bench"
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

# Exact counts: 16M of 4k random reads is 4096 I/Os, on null and on a file.
"$bench" --name=j --ioengine=null --size=16M --rw=randread --bs=4k \
    --iodepth=8 --output-format=json >"$work/null.json"
check "null: 4096 I/Os" grep -q '"total_ios" : 4096,' "$work/null.json"
"$bench" --name=j --filename="$work/img" --size=16M --rw=randwrite --bs=4k \
    --iodepth=16 --output-format=json >"$work/file.json"
check "file: 4096 writes" grep -q '"total_ios" : 4096,' "$work/file.json"
check "file: laid out" test "$(stat -c %s "$work/img")" -eq 16777216

# Valid JSON, even with a job name that needs escaping.
"$bench" --name='a"b\c' --ioengine=null --size=1M --output-format=json \
    >"$work/escaped.json"
if command -v python3 >/dev/null 2>&1; then
    check "json parses" python3 -c 'import json, sys; json.load(sys.stdin)' \
        <"$work/escaped.json"
fi

# The keys fio-plot and fio_jsonplus_clat2csv read.
for key in '"jobs"' '"jobname"' '"read"' '"iops"' '"bw"' '"clat_ns"' \
           '"percentile"' '"lat_ns"' '"mean"' '"job options"' '"usr_cpu"' \
           '"sys_cpu"' '"runtime"' '"io_bytes"' '"total_ios"'; do
    check "json has $key" grep -q "$key" "$work/null.json"
done

if command -v fio >/dev/null 2>&1; then
    fio --name=j --ioengine=null --size=16M --rw=randread --bs=4k \
        --iodepth=8 --output-format=json >"$work/fio.json"
    check "fio agrees: 4096 I/Os" grep -q '"total_ios" : 4096,' \
        "$work/fio.json"
    for key in $(grep -o '"[a-z_]*" :' "$work/null.json" | sort -u |
                 sed 's/ ://'); do
        check "fio has $key too" grep -q "$key" "$work/fio.json"
    done
else
    echo "fio not installed: no comparison with its JSON"
fi

# Bad values: one line, exit 1.
for args in "--name=j --bs=0" "--name=j --iodepth=-1" "--name=j --rw=up" \
            "--bogus" "/nonexistent.fio" \
            "--name=j --filename=$work/img --size=64M"; do
    # shellcheck disable=SC2086
    if "$bench" $args >"$work/out" 2>"$work/err"; then
        check "rejects $args" false
    else
        check "one line for $args" test "$(wc -l <"$work/err")" -eq 1
    fi
done

# No arguments: the README's main job, shortened.
COBLK_BENCH_RUNTIME=1 "$bench" >"$work/default" 2>&1
check "default run reports reads" grep -q "read: IOPS=" "$work/default"

echo "$failures failed"
[ "$failures" -eq 0 ]

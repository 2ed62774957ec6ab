#!/bin/sh
# coblk-nbd against qemu-nbd (issue 14), one machine, alternating runs:
# 4k random reads at QD32 over a Unix socket, each server exporting its
# own 1 GiB sparse file with O_DIRECT (qemu-nbd: --cache=none
# --aio=io_uring; the software path, no device I/O):
#   servers:    fio's nbd engine (libnbd) as the client of each: IOPS, and
#               the server's CPU time per read (/proc/PID/stat);
#   end to end: coblk-bench over nbd+unix:// to coblk-nbd vs fio's nbd
#               engine to qemu-nbd, the same job;
#   clients:    CPU per read of coblk-bench's nbd:// driver and of fio's
#               nbd engine, both against coblk-nbd.
#
# usage: tests/bench/nbd.sh [ROUNDS [SECONDS]]   (from the build tree)
# Exit status: 0 targets met, 1 a target missed, 2 the benchmark failed.
set -eu
. "$(dirname "$0")/lib.sh"

rounds=${1:-3}
seconds=${2:-5}
nbd=tools/coblk-nbd
bench=tools/coblk-bench
for p in "$nbd" "$bench"; do
    [ -x "$p" ] || { echo "nbd.sh: $p missing: run make first" >&2; exit 2; }
done
for c in fio qemu-nbd python3; do
    command -v "$c" >/dev/null 2>&1 || { echo "nbd.sh: $c is not installed" >&2; exit 2; }
done
fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*nbd' ||
    { echo "nbd.sh: this fio has no nbd engine" >&2; exit 2; }
out=$(mktemp -d /var/tmp/coblk-nbd-bench.XXXXXX)
cleanup() {
    for pid in "$out"/*.pid; do
        [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
    done
    rm -rf "$out"
}
trap cleanup EXIT
truncate -s 1G "$out/c.img" "$out/q.img"
"$nbd" --fork -t -e 0 -n -f raw -k "$out/c.sock" --pid-file="$out/c.pid" \
    "$out/c.img"
qemu-nbd --fork -t -e 0 --cache=none --aio=io_uring -f raw \
    -k "$out/q.sock" --pid-file="$out/q.pid" "$out/q.img"

job="--name=n --rw=randread --bs=4k --iodepth=32 --time_based --runtime=$seconds"
uri() { echo "nbd+unix:///?socket=$out/$1.sock"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$(cat "$out/$1.pid")/stat"; }

# fio_nbd NAME SERVER: fio's nbd engine against SERVER (c or q); records
# "NAME IOPS" and "NAME_cpu NS-PER-READ" of the server.
fio_nbd() {
    before=$(ticks "$2")
    # shellcheck disable=SC2086
    fio $job --ioengine=nbd --uri="$(uri "$2")" --output-format=json \
        >"$out/json" 2>/dev/null || { echo "nbd.sh: fio failed" >&2; exit 2; }
    after=$(ticks "$2")
    python3 - "$out/json" "$1" "$before" "$after" "$(getconf CLK_TCK)" \
        >>"$out/r" <<'PY' || exit 2
import json, sys
text = open(sys.argv[1]).read()
job = json.loads(text[text.index("{"):])["jobs"][0]
name, before, after, hz = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ios = max(job["read"]["total_ios"], 1)
print(name, job["read"]["iops"])
print(name + "_cpu", (after - before) / hz * 1e9 / ios)
print(name + "_client", (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] * 1e6 / ios)
PY
}

i=1
while [ "$i" -le "$rounds" ]; do
    fio_nbd coblk_nbd c
    fio_nbd qemu_nbd q
    # shellcheck disable=SC2086
    "$bench" $job --size=1G --filename="$(uri c)" --output-format=json \
        >"$out/json" 2>/dev/null || { echo "nbd.sh: coblk-bench failed" >&2; exit 2; }
    python3 -c 'import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
ios = max(job["read"]["total_ios"], 1)
print("coblk_e2e", job["read"]["iops"])
print("coblk_e2e_client", (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] * 1e6 / ios)' \
        "$out/json" >>"$out/r" || exit 2
    i=$((i + 1))
done

ratio() { awk -v a="$(median "$out/r" "$1")" -v b="$(median "$out/r" "$2")" 'BEGIN { printf "%.2f", a / b }'; }

echo "4k randread QD32 over a Unix socket, 1 GiB sparse files, O_DIRECT, $rounds alternating rounds of ${seconds}s, medians"
for who in coblk_nbd qemu_nbd coblk_e2e; do
    printf '%-16s %12.0f IOPS\n' "$who" "$(median "$out/r" "$who")"
done
for who in coblk_nbd_cpu qemu_nbd_cpu; do
    printf '%-16s %12.0f ns of server CPU per read\n' "$who" "$(median "$out/r" "$who")"
done
for who in coblk_e2e_client coblk_nbd_client; do
    printf '%-16s %12.0f ns of client CPU per read (%s)\n' "$who" \
        "$(median "$out/r" "$who")" \
        "$([ $who = coblk_e2e_client ] && echo coblk-bench || echo fio)"
done
target "coblk-nbd / qemu-nbd, fio's nbd engine as client" "$(ratio coblk_nbd qemu_nbd)" ">=" 1.5
echo "ratio:         server CPU per read, coblk-nbd / qemu-nbd = $(ratio coblk_nbd_cpu qemu_nbd_cpu)"
target "coblk-bench->coblk-nbd / fio->qemu-nbd" "$(ratio coblk_e2e qemu_nbd)" ">=" 2
target "client CPU per read, coblk-bench / fio's nbd engine" "$(ratio coblk_e2e_client coblk_nbd_client)" "<=" 0.5
exit $status

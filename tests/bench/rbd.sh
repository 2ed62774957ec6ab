#!/bin/sh
# coblk-bench's rbd: driver against fio's rbd engine (issue 15), on a
# throwaway one-node Ceph cluster (tests/ceph/cluster.sh, memstore: no
# device I/O), alternating runs: 4k random reads and random writes at QD32
# of one 256 MiB image, written out first; IOPS, and the client's CPU time
# per I/O: the whole process's, librbd's threads included (getrusage of
# the child; fio's own usr_cpu counts only its job's thread).
#
# usage: tests/bench/rbd.sh [ROUNDS [SECONDS]]   (from the build tree)
# Exit status: 0 targets met, 1 a target missed, 2 the benchmark failed.
set -eu
. "$(dirname "$0")/lib.sh"

rounds=${1:-3}
seconds=${2:-5}
bench=tools/coblk-bench
[ -x "$bench" ] || { echo "rbd.sh: $bench missing: run make first" >&2; exit 2; }
grep -q '^#define HAVE_RBD 1' config.h ||
    { echo "rbd.sh: built without the rbd: driver" >&2; exit 2; }
for c in fio rbd python3; do
    command -v "$c" >/dev/null 2>&1 || { echo "rbd.sh: $c is not installed" >&2; exit 2; }
done
fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*rbd' ||
    { echo "rbd.sh: this fio has no rbd engine" >&2; exit 2; }
out=$(mktemp -d /var/tmp/coblk-rbd-bench.XXXXXX)
cluster_sh=$(cd "$(dirname "$0")/../ceph" && pwd)/cluster.sh
trap '"$cluster_sh" stop "$out/cluster"; rm -rf "$out"' EXIT
CEPH_CONF=$("$cluster_sh" start "$out/cluster") || exit 2
export CEPH_CONF
rbd create --size 256M rbd/b
# Written out: reads of objects that do not exist would measure nothing.
fio --name=fill --ioengine=rbd --pool=rbd --rbdname=b --clientname=admin \
    --rw=write --bs=4M --iodepth=4 >/dev/null 2>&1 ||
    { echo "rbd.sh: filling the image failed" >&2; exit 2; }

# measured NAME DIRECTION COMMAND...: runs COMMAND (JSON on stdout) and
# records "NAME IOPS" and "NAME_cpu NS-PER-IO", the process's CPU time.
measured() {
    python3 - "$@" >>"$out/r" <<'PY' || exit 2
import json, resource, subprocess, sys
name, rw, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
if run.returncode:
    sys.exit("rbd.sh: %s failed" % cmd[0])
job = json.loads(run.stdout[run.stdout.index("{"):])["jobs"][0]
ios = max(job[rw]["total_ios"], 1)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(name, job[rw]["iops"])
print(name + "_cpu", cpu * 1e9 / ios)
PY
}

i=1
while [ "$i" -le "$rounds" ]; do
    for rw in randread randwrite; do
        dir=${rw#rand}
        job="--name=r --rw=$rw --bs=4k --iodepth=32 --size=256M --time_based --runtime=$seconds"
        # shellcheck disable=SC2086
        measured "fio_$dir" "$dir" fio $job --ioengine=rbd --pool=rbd \
            --rbdname=b --clientname=admin --output-format=json
        # shellcheck disable=SC2086
        measured "coblk_$dir" "$dir" "$bench" $job --filename=rbd:rbd/b \
            --output-format=json
    done
    i=$((i + 1))
done

ratio() { awk -v a="$(median "$out/r" "$1")" -v b="$(median "$out/r" "$2")" 'BEGIN { printf "%.2f", a / b }'; }

echo "4k random I/O at QD32 on a one-node memstore cluster, $rounds alternating rounds of ${seconds}s, medians"
for who in coblk_read fio_read coblk_write fio_write; do
    printf '%-12s %8.0f IOPS %8.0f ns of client CPU per I/O\n' "$who" \
        "$(median "$out/r" "$who")" "$(median "$out/r" "${who}_cpu")"
done
target "randread IOPS, coblk-bench / fio's rbd engine" "$(ratio coblk_read fio_read)" ">=" 1.2
target "randwrite IOPS, coblk-bench / fio's rbd engine" "$(ratio coblk_write fio_write)" ">=" 1.2
target "client CPU per read, coblk-bench / fio" "$(ratio coblk_read_cpu fio_read_cpu)" "<=" 0.5
target "client CPU per write, coblk-bench / fio" "$(ratio coblk_write_cpu fio_write_cpu)" "<=" 0.5
exit $status

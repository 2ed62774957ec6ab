#!/bin/sh
# A throwaway single-node Ceph cluster for the RBD tests, as an ordinary
# process tree under DIR: one monitor, one OSD on memstore, no manager
# (RBD needs none), no authentication, pools of one replica.
#
# usage: tests/ceph/cluster.sh start DIR   prints the CEPH_CONF to use
#        tests/ceph/cluster.sh stop DIR    kills the daemons, removes DIR
# start waits (at most 60 s) for the OSD to be up and a pool "rbd" to be
# ready; on failure it tears down what it started and exits non-zero.
# Exit status 77: the Ceph packages are not installed.
set -eu

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
cmd=$1 dir=$2

stop() {
    # SIGKILL: a memstore OSD that gets SIGTERM writes its RAM out first.
    # Then wait until they are gone, ports and all: the next cluster must
    # not meet them.
    pids=
    for pid in $(cat "$dir"/*.pid 2>/dev/null); do
        # Only our daemons: a pid file may outlive its process.
        case $(cat "/proc/$pid/comm" 2>/dev/null) in
        ceph-*) pids="$pids $pid" ;;
        esac
    done
    for pid in $pids; do
        kill -9 "$pid" 2>/dev/null || true
    done
    for _ in $(seq 50); do
        alive=
        for pid in $pids; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    rm -rf "$dir"
}

case $cmd in
stop)
    [ -d "$dir" ] || exit 0
    # Never remove a directory this script did not make.
    [ -f "$dir/ceph.conf" ] ||
        { echo "cluster.sh: $dir holds no cluster" >&2; exit 2; }
    stop
    exit 0 ;;
start) ;;
*) usage ;;
esac

for tool in ceph-mon ceph-osd ceph monmaptool; do
    command -v $tool >/dev/null 2>&1 ||
        { echo "cluster.sh: $tool is not installed" >&2; exit 77; }
done
[ ! -e "$dir" ] || { echo "cluster.sh: $dir exists" >&2; exit 2; }
mkdir -p "$dir/mon" "$dir/osd" "$dir/run"
dir=$(cd "$dir" && pwd)
trap 'status=$?; [ $status -eq 0 ] || { tail -n 20 "$dir"/*.log >&2 || true; stop; }' EXIT

# A port of our own: the first that nothing listens on.
port=$((20000 + $$ % 20000))
while ss -Htln "sport = :$port" 2>/dev/null | grep -q .; do
    port=$((port + 1))
done
fsid=$(cat /proc/sys/kernel/random/uuid)
conf=$dir/ceph.conf
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$port
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $dir/run
log file = $dir/\$name.log
pid file = $dir/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
osd crush chooseleaf type = 0
paxos propose interval = 0.05
mon warn on pool no redundancy = false
rbd cache = false
[mon.a]
mon data = $dir/mon
[osd.0]
osd data = $dir/osd
osd objectstore = memstore
# Objects take their whole size in RAM: room for 3 GiB of them.
memstore device bytes = 3221225472
osd max object name len = 256
osd max object namespace len = 64
CONF
export CEPH_CONF=$conf

monmaptool --create --addv a "v1:127.0.0.1:$port" --fsid "$fsid" \
    "$dir/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$dir/monmap" >"$dir/mkfs.log" 2>&1
ceph-mon -i a >>"$dir/mkfs.log" 2>&1
uuid=$(cat /proc/sys/kernel/random/uuid)
id=$(ceph --connect-timeout 20 osd new "$uuid")
ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >>"$dir/mkfs.log" 2>&1
# Ceph 16's OSD may send its first command to the monitor before it has
# learnt the cluster's fsid, and then stops ("wrong fsid"): try again.
tries=0
until ceph-osd -i "$id" >>"$dir/mkfs.log" 2>&1; do
    tries=$((tries + 1))
    [ $tries -lt 5 ] || { echo "cluster.sh: osd.$id does not start" >&2; exit 1; }
    sleep 0.2
done

deadline=$(($(date +%s) + 60))
until ceph --connect-timeout 5 osd dump 2>/dev/null | grep -q "^osd.$id up"; do
    [ "$(date +%s)" -lt "$deadline" ] ||
        { echo "cluster.sh: osd.$id not up after 60 s" >&2; exit 1; }
    sleep 0.2
done
ceph --connect-timeout 20 osd pool create rbd 8 >/dev/null 2>&1
rbd pool init rbd
echo "$conf"

#!/bin/sh
# fio's own test suites with coblk-bench as the fio binary, and fio itself
# as the control on the same machine: t/run-fio-tests.py, whose entries
# include readonly.py, steadystate_tests.py, strided.py,
# latency_percentiles.py, jsonplus2csv_test.py and log_compression.py
# (each also counted by its own sub-tests).  Nothing of fio's is vendored
# or fetched: give the path to a fio 3.33 source tree (git checkout of
# fio-3.33, or `apt-get source fio`); without one the script skips.
#
# usage: tests/integration/fio-suites.sh FIO_SRC [COBLK_BENCH [FIO]]
#   (from the build tree; COBLK_BENCH defaults to tools/coblk-bench,
#   FIO to the fio on PATH)
# Prints one line per test and a table per suite.  Exit status: 0 when
# coblk-bench passes every test fio passes, 1 when not, 2 when the run
# failed, 77 without a fio source tree or fio.
#
# fio's own C tools (t/axmap, t/ieee754, t/lfsr-test, t/stest), its zoned
# device tests (root, null_blk) and its unit tests do not run a fio binary
# and are skipped for both.  steadystate_tests.py needs scipy
# (python3-scipy); the Python with it is preferred.
set -u

src=${1:-}
if [ -z "$src" ] || [ ! -f "$src/t/run-fio-tests.py" ]; then
    echo "SKIP: no fio source tree given (fio-suites.sh FIO_SRC)"
    exit 77
fi
bench=$(readlink -f "${2:-tools/coblk-bench}")
fio=${3:-$(command -v fio || true)}
if [ -z "$fio" ] || [ ! -x "$bench" ]; then
    echo "SKIP: needs fio and $bench"
    exit 77
fi
python=python3
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import scipy' 2>/dev/null; then
        python=$p
        break
    fi
done

work=$(mktemp -d /var/tmp/coblk-fio-suites.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/fio-root
mkdir "$root"
tar -C "$src" --exclude=.git -cf - . | tar -C "$root" -xf - || exit 2
# run-fio-tests.py reads the build's config-host.h for what to run: no
# zoned block devices (it would load null_blk), libaio when fio has it.
(cd "$root" && ./configure >/dev/null 2>&1) || {
    echo "fio-suites.sh: fio's ./configure failed" >&2
    exit 2
}
sed -i '/CONFIG_HAS_BLKZONED/d' "$root/config-host.h"
if "$fio" --enghelp 2>/dev/null | grep -qw libaio &&
    ! grep -q CONFIG_LIBAIO "$root/config-host.h"; then
    echo '#define CONFIG_LIBAIO' >>"$root/config-host.h"
fi

not_binary="1000 1001 1002 1005 1007 1008 1009"
run_suite() {  # name, binary
    # shellcheck disable=SC2086
    (cd "$work" && PATH=$(dirname "$python"):$PATH timeout 3600 \
        "$python" "$root/t/run-fio-tests.py" -r "$root" -f "$2" \
        -a "$work/$1" --skip $not_binary) >"$work/$1.log" 2>&1
}
run_suite fio "$fio"
run_suite coblk "$bench"
grep -q "^Test 1 " "$work/fio.log" || {
    echo "fio-suites.sh: the control run failed:" >&2
    tail -20 "$work/fio.log" >&2
    exit 2
}

# "Test N PASSED|FAILED|SKIPPED ... NAME" -> "N RESULT NAME", without the
# tests skipped here for running no fio binary.
results() {
    grep -v "(User request)" "$work/$1.log" |
        sed -n 's/^Test \([0-9]*\) \(PASSED\|FAILED\|SKIPPED\).* \([^ ]*\)$/\1 \2 \3/p'
}
# A script's own summary in its artifacts: "PASSED TOTAL", or "0 ?".
sub_tests() {  # run, test number
    dir=$(printf '%s/%s/%04d' "$work" "$1" "$2")
    cat "$dir"/*.stdout 2>/dev/null | tr 'A-Z' 'a-z' |
        sed -n 's/^\([0-9]*\) tests\{0,1\}\((s)\)\{0,1\} passed, \([0-9]*\) \(test(s) \)\{0,1\}failed.*/\1 \3/p' |
        tail -1 | awk '{ print $1, $1 + $2 } END { if (!NR) print 0, "?" }'
}

results fio >"$work/fio.r"
results coblk >"$work/coblk.r"
status=0
printf '%-6s %-34s %-8s %-8s %s\n' test name fio coblk "sub-tests (fio, coblk)"
while read -r n fio_result name; do
    coblk_result=$(awk -v n="$n" '$1 == n { print $2 }' "$work/coblk.r")
    subs=
    case $name in
        *.py) subs="$(sub_tests fio "$n" | tr ' ' /), $(sub_tests coblk "$n" |
              awk '{ print $1 }')" ;;
    esac
    printf '%-6s %-34s %-8s %-8s %s\n' "$n" "$name" "$fio_result" \
        "${coblk_result:-NONE}" "$subs"
    if [ "$fio_result" = PASSED ] && [ "$coblk_result" != PASSED ]; then
        status=1
    fi
done <"$work/fio.r"

count() { grep -c " $2 " "$work/$1.r"; }
echo "run-fio-tests.py: fio passed $(count fio PASSED), failed" \
    "$(count fio FAILED), skipped $(count fio SKIPPED); coblk-bench passed" \
    "$(count coblk PASSED), failed $(count coblk FAILED), skipped" \
    "$(count coblk SKIPPED) (tests that run no fio binary left out)"
exit $status

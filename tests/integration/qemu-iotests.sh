#!/bin/bash
# QEMU's own iotests with coblk-img as qemu-img, beside the same tests with
# the real qemu-img as the control.  Fetches nothing: give it a QEMU source
# tree of the installed qemu-img's version (Debian 12: `apt-get source
# qemu`, 7.2); without one it exits 77.  qemu-io and qemu-nbd stay QEMU's;
# the tests that need the system emulator are not in the lists (a stub
# stands in for it, as the runner wants one).
#
# usage: tests/integration/qemu-iotests.sh QEMU_SRC [qcow2|raw [TEST...]]
#        (from the build tree; default: both formats, the tests below)
# Prints each test's result with both tools, then the totals.
set -u

: "${top_builddir:=$(pwd)}"
src=${1:-}
iotests=$src/tests/qemu-iotests
img="$top_builddir/tools/coblk-img"
if [ -z "$src" ] || [ ! -x "$iotests/check" ]; then
    echo "usage: $0 QEMU_SRC [FMT [TEST...]]: no QEMU source tree: skipped"
    exit 77
fi
for tool in qemu-img qemu-io qemu-nbd python3; do
    command -v $tool >/dev/null 2>&1 || { echo "no $tool: skipped"; exit 77; }
done
[ -x "$img" ] || { echo "$img missing: run make first" >&2; exit 1; }

# The tests that pass with qemu-img 7.2 here and need no system emulator.
qcow2_tests="001 002 003 004 005 008 009 010 011 012 013 014 015 017 018 019
020 021 022 023 024 025 026 027 029 031 032 033 034 035 036 037 038 039 042
043 046 047 048 049 050 052 053 054 058 061 062 063 066 069 072 073 074 079
080 089 090 097 098 103 104 105 107 110 111 112 114 115 121 122 125 126 133
134 137 138 150 154 158 159 170 174 177 178 179 187 188 189 190 197 198 204
214 215 217 226 243 250 251 252 261 263 265 268 270 271 272 279 284 287 289
290 292 293 305 313 nbd-qemu-allocation qemu-img-bitmaps"
raw_tests="001 002 003 004 005 008 009 010 011 012 021 025 032 033 048 052
063 077 101 104 106 150 159 160 170 171 178 197 215 221 226 251 253"

# No dot in the name: tests 197 and 215 refuse a TEST_DIR with one.
work=$(mktemp -d /var/tmp/coblk-iotests-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/stub" "$work/run/tests/qemu-iotests"
ln -s "$iotests/check" "$work/run/tests/qemu-iotests/check"
# Run by the name qemu-img, coblk-img gives itself that name in its
# messages (no filter between it and its stderr, which would reorder that
# and stdout); a shared build's program is libtool's, under .libs.
real=$img libs=
if [ -x "$top_builddir/tools/.libs/coblk-img" ]; then
    real=$top_builddir/tools/.libs/coblk-img libs=$top_builddir/.libs
fi
cat >"$work/bin/qemu-img" <<EOF
#!/bin/bash
${libs:+export LD_LIBRARY_PATH=$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}}
exec -a qemu-img "$real" "\$@"
EOF
# The runner insists on an emulator and a storage daemon; these answer
# the two questions it asks and refuse the rest.
cat >"$work/stub/qemu-system-x86_64" <<'EOF'
#!/bin/sh
case "$*" in
*"-machine help"*) exit 0 ;;
*"format=help"*) qemu-img --help | sed -n 's/^Supported formats: //p' |
                  tr ' ' '\n' | sed 's/^/  /'; exit 0 ;;
esac
exit 1
EOF
printf '#!/bin/sh\nexit 1\n' >"$work/stub/qemu-storage-daemon"
chmod +x "$work/bin/qemu-img" "$work/stub/"*

# result TOOL FMT TEST: pass, fail, notrun or timeout.
result() {
    # Short: a test's socket paths must fit in 108 bytes.
    local tag=q
    [ "$1" = "$work/bin/qemu-img" ] && tag=c
    local scratch=$work/s/$tag-$2-$3
    mkdir -p "$scratch/t" "$scratch/s"
    (cd "$work/run/tests/qemu-iotests" &&
     QEMU_IMG_PROG=$1 QEMU_PROG=$work/stub/qemu-system-x86_64 \
     QSD_PROG=$work/stub/qemu-storage-daemon QEMU_IO_PROG=$(command -v qemu-io) \
     QEMU_NBD_PROG=$(command -v qemu-nbd) TEST_DIR=$scratch/t \
     SOCK_DIR=$scratch/s timeout -k 5 150 python3 ./check -tap "-$2" "$3") \
        >"$scratch.log" 2>&1
    local rc=$?
    if [ $rc = 124 ] || [ $rc = 137 ]; then echo timeout
    elif grep -qE '^ok .*# SKIP' "$scratch.log"; then echo notrun
    elif grep -qE '^ok ' "$scratch.log"; then echo pass
    else echo fail
    fi
    rm -rf "$scratch"
}

fmts=${2:-"qcow2 raw"}
control=0 ours=0 runs=0
for fmt in $fmts; do
    if [ $# -gt 2 ]; then
        tests="${*:3}"
    elif [ "$fmt" = raw ]; then
        tests=$raw_tests
    else
        tests=$qcow2_tests
    fi
    for t in $tests; do
        q=$(result "$(command -v qemu-img)" "$fmt" "$t")
        c=$(result "$work/bin/qemu-img" "$fmt" "$t")
        printf '%-6s %-22s qemu-img %-8s coblk-img %s\n' "$fmt" "$t" "$q" "$c"
        runs=$((runs + 1))
        [ "$q" = pass ] && control=$((control + 1))
        [ "$q" = pass ] && [ "$c" = pass ] && ours=$((ours + 1))
    done
done
echo "QEMU iotests: $runs runs; qemu-img passes $control, coblk-img $ours" \
     "of those"

#!/bin/sh
# Coroutine benchmark: the asm backend against the seed's design (the
# ucontext backend), alternating runs on the same machine, medians and
# ratios printed with the targets of issue 2.
#
# usage: tests/bench/coroutine.sh [ROUNDS [SCALE]]
# Run it from the build tree (the source tree for an in-tree build).
# Exit status: 0 targets met, 1 a target missed, 2 the benchmark failed.
set -eu
. "$(dirname "$0")/lib.sh"

rounds=${1:-5}
scale=${2:-1}
dir=tests/bench
[ -x "$dir/bench-coroutine-ucontext" ] || dir=$(dirname "$0")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

backends=ucontext
[ -x "$dir/bench-coroutine-asm" ] && backends="ucontext asm"
for b in $backends; do
    [ -x "$dir/bench-coroutine-$b" ] || {
        echo "coroutine.sh: $dir/bench-coroutine-$b missing: run make first" >&2
        exit 2
    }
done

i=1
while [ "$i" -le "$rounds" ]; do
    for b in $backends; do
        "$dir/bench-coroutine-$b" "$scale" >>"$out/$b" || exit 2
    done
    i=$((i + 1))
done


echo "coroutine benchmark: $rounds alternating rounds, median ns per operation"
printf '%-10s %10s %10s %8s\n' metric ucontext asm asm/seed
for m in lifecycle yield nesting cycle; do
    u=$(median "$out/ucontext" "$m")
    if [ -f "$out/asm" ]; then
        a=$(median "$out/asm" "$m")
        printf '%-10s %10s %10s %8s\n' "$m" "$u" "$a" \
            "$(awk -v a="$a" -v u="$u" 'BEGIN { printf "%.2f", a / u }')"
    else
        printf '%-10s %10s %10s %8s\n' "$m" "$u" - -
    fi
done

# Targets (issue 2): asm yield <= 0.65x seed, asm lifecycle <= 0.6x seed,
# nesting <= 250 ns per level.
if [ -f "$out/asm" ]; then
    ratio() { awk -v a="$(median "$out/asm" "$1")" \
                  -v u="$(median "$out/ucontext" "$1")" \
                  'BEGIN { printf "%.2f", a / u }'; }
    target "asm yield / seed" "$(ratio yield)" "<=" 0.65
    target "asm lifecycle / seed" "$(ratio lifecycle)" "<=" 0.6
    target "asm nesting ns/level" "$(median "$out/asm" nesting)" "<=" 250
fi
target "ucontext nesting ns/level" "$(median "$out/ucontext" nesting)" "<=" 250
exit $status

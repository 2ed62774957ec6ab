#!/bin/sh
# Installs coblk into a scratch root, then builds the README's example with
# pkg-config --cflags --libs coblk and runs it: the library, headers and
# coblk.pc work for a user.  Exit 77 (skip) without a C compiler or
# pkg-config.
set -eu

: "${top_srcdir:?}" "${top_builddir:?}"
command -v pkg-config >/dev/null 2>&1 || { echo "no pkg-config"; exit 77; }
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || { echo "no C compiler"; exit 77; }
# A sanitizer runtime must be the program's first library: a plain
# program cannot load a sanitized libcoblk.
[ -z "${SAN_CFLAGS:-}" ] || { echo "sanitized build"; exit 77; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
make -s -C "$top_builddir" install DESTDIR="$root" >/dev/null
libdir=$(find "$root" -name coblk.pc -exec dirname {} \; | head -n 1)
[ -n "$libdir" ] || { echo "coblk.pc was not installed"; exit 1; }
libdir=$(dirname "$libdir")

awk '/<!-- example:begin -->/ { on = 1; next }
     /<!-- example:end -->/ { on = 0 }
     on && !/^```/' "$top_srcdir/README.md" >"$root/example.c"
[ -s "$root/example.c" ] || { echo "no example in README.md"; exit 1; }

export PKG_CONFIG_SYSROOT_DIR="$root"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
"$cc" -o "$root/example" "$root/example.c" $(pkg-config --cflags --libs coblk)
out=$(LD_LIBRARY_PATH="$libdir" "$root/example")
echo "$out"
[ "$out" = "status 0, first byte 0, 1048576 bytes" ] ||
    { echo "unexpected output"; exit 1; }

# Only coblk_* symbols are exported.
extra=$(nm -D --defined-only "$libdir"/libcoblk.so | awk '{ print $3 }' |
        grep -v -e '^coblk_' -e '^COBLK_' || true)
[ -z "$extra" ] || { echo "exported beyond coblk_*: $extra"; exit 1; }

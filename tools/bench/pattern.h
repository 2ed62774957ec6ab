/*
 * fio's verify_pattern values: the bytes a job's verified blocks carry
 * after their header.  Only the syntax; verify.c writes and checks them.
 */
#ifndef COBLK_BENCH_PATTERN_H
#define COBLK_BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* Parses fio's verify_pattern: a sequence of 0x-prefixed hex ("0xdeadbeef"
 * is de ad be ef), decimal numbers in int's range (their bytes,
 * little-endian, as few as hold the value: 258 is 02 01, -1 ff ff ff ff)
 * and quoted strings ("abc" or 'abc'), e.g. 0xff"abc"-12.  Stores up to
 * max bytes in out and their count in len; returns 0, or -1 with a
 * message in err. */
int pattern_parse(const char *text, uint8_t *out, unsigned max,
                  unsigned *len, char *err, size_t err_size);

#endif

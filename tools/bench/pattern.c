/*
 * fio's verify_pattern values (see pattern.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "pattern.h"

struct pattern_out {
    uint8_t *buf;
    unsigned max, len;
    const char *text;           /* the whole value, for messages */
    char *err;
    size_t err_size;
};

__attribute__((format(printf, 2, 3)))
static const char *pattern_fail(struct pattern_out *o, const char *fmt, ...)
{
    va_list ap;

    if (o->err && o->err_size) {
        va_start(ap, fmt);
        vsnprintf(o->err, o->err_size, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

static bool put_byte(struct pattern_out *o, uint8_t byte)
{
    if (o->len == o->max) {
        pattern_fail(o, "verify_pattern: longer than %u bytes", o->max);
        return false;
    }
    o->buf[o->len++] = byte;
    return true;
}

/* "abc" or 'abc'; there is no escaping the quote */
static const char *parse_quoted(struct pattern_out *o, const char *s)
{
    const char *end = strchr(s + 1, *s);

    if (!end) {
        return pattern_fail(o, "verify_pattern: missing closing %c in '%s'",
                            *s, o->text);
    }
    for (const char *c = s + 1; c < end; c++) {
        if (!put_byte(o, (uint8_t)*c)) {
            return NULL;
        }
    }
    return end + 1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static bool is_hex_prefix(const char *s)
{
    return s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

/* 0x followed by digit pairs, an odd first digit alone: 0xabc is 0a bc.
 * As in fio, "0xff0x14" is two numbers. */
static const char *parse_hex(struct pattern_out *o, const char *s)
{
    const char *digits = s + 2;
    size_t n = 0;

    while (hex_value(digits[n]) >= 0) {
        n++;
    }
    if (n && is_hex_prefix(digits + n - 1)) {
        n--;
    }
    if (!n) {
        return pattern_fail(o, "verify_pattern: no hex digits after 0x in "
                            "'%s'", o->text);
    }
    for (size_t i = 0; i < n;) {
        size_t width = (n - i) % 2 ? 1 : 2;
        int byte = 0;
        for (size_t j = 0; j < width; j++) {
            byte = byte << 4 | hex_value(digits[i + j]);
        }
        if (!put_byte(o, (uint8_t)byte)) {
            return NULL;
        }
        i += width;
    }
    return digits + n;
}

/* An int; its bytes little-endian up to the last nonzero one (0 is 00).
 * A 0 followed by x starts the next number: -100xab is -10, 0xab. */
static const char *parse_decimal(struct pattern_out *o, const char *s)
{
    const char *c = s;
    bool negative = *c == '-';
    uint64_t v = 0;

    if (*c == '-' || *c == '+') {
        c++;
    }
    const char *digits = c;
    for (; *c >= '0' && *c <= '9' && !is_hex_prefix(c); c++) {
        if (v <= (uint64_t)INT32_MAX + 1) {     /* then it only grows */
            v = v * 10 + (uint64_t)(*c - '0');
        }
    }
    if (c == digits && s == o->text) {
        return pattern_fail(o, "verify_pattern: invalid value '%s'", o->text);
    }
    if (c == digits) {
        return pattern_fail(o, "verify_pattern: invalid value '%s' at '%s'",
                            o->text, s);
    }
    if (v > (uint64_t)INT32_MAX + negative) {
        return pattern_fail(o, "verify_pattern: %.*s out of range [%d, %d]",
                            (int)(c - s), s, INT32_MIN, INT32_MAX);
    }
    uint32_t bits = (uint32_t)(negative ? -v : v);
    do {
        if (!put_byte(o, (uint8_t)bits)) {
            return NULL;
        }
        bits >>= 8;
    } while (bits);
    return c;
}

static const char *parse_element(struct pattern_out *o, const char *s)
{
    if (*s == '"' || *s == '\'') {
        return parse_quoted(o, s);
    }
    if (*s == '%') {
        return pattern_fail(o, "verify_pattern: formats such as %%o are not "
                            "supported");
    }
    if (is_hex_prefix(s)) {
        return parse_hex(o, s);
    }
    return parse_decimal(o, s);
}

int pattern_parse(const char *text, uint8_t *out, unsigned max,
                  unsigned *len, char *err, size_t err_size)
{
    struct pattern_out o = {
        .buf = out, .max = max, .text = text, .err = err,
        .err_size = err_size,
    };

    if (!text || !*text) {
        pattern_fail(&o, "verify_pattern: empty value");
        return -1;
    }
    for (const char *s = text; *s;) {
        s = parse_element(&o, s);
        if (!s) {
            return -1;
        }
    }
    if (!o.len) {
        pattern_fail(&o, "verify_pattern: empty pattern");
        return -1;
    }
    *len = o.len;
    return 0;
}

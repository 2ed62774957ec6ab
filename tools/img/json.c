/*
 * JSON as qemu-img prints it: four-space indentation, "key": value, and
 * object keys in the order QEMU's dictionaries iterate them.  That order
 * is not insertion order: QEMU keeps keys in 512 hash buckets, walks the
 * buckets in order, and puts a new key at the head of its bucket.  Scripts
 * parse the JSON and should not care, but people diff it; so keys are
 * ordered the same way here, by the same (tdb) hash.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

#define QDICT_BUCKETS 512

enum json_type { J_OBJECT, J_ARRAY, J_INT, J_UINT, J_BOOL, J_STRING };

struct json {
    enum json_type type;
    union {
        int64_t i;
        uint64_t u;
        bool b;
        char *s;
    } v;
    char *key;                      /* as a member of an object */
    struct json *first, *last;      /* members, in insertion order */
    struct json *next;
    bool broken;                    /* a member failed to allocate */
};

static struct json *json_new(enum json_type type)
{
    struct json *j = calloc(1, sizeof(*j));
    if (j) {
        j->type = type;
    }
    return j;
}

struct json *json_object(void) { return json_new(J_OBJECT); }
struct json *json_array(void) { return json_new(J_ARRAY); }

struct json *json_int(int64_t v)
{
    struct json *j = json_new(J_INT);
    if (j) {
        j->v.i = v;
    }
    return j;
}

struct json *json_uint(uint64_t v)
{
    struct json *j = json_new(J_UINT);
    if (j) {
        j->v.u = v;
    }
    return j;
}

struct json *json_bool(bool v)
{
    struct json *j = json_new(J_BOOL);
    if (j) {
        j->v.b = v;
    }
    return j;
}

struct json *json_string(const char *s)
{
    struct json *j = json_new(J_STRING);
    if (j && !(j->v.s = strdup(s))) {
        free(j);
        j = NULL;
    }
    return j;
}

void json_add(struct json *parent, const char *key, struct json *value)
{
    if (!parent) {
        json_free(value);
        return;
    }
    if (!value || (key && !(value->key = strdup(key)))) {
        parent->broken = true;
        json_free(value);
        return;
    }
    parent->broken |= value->broken;
    if (parent->last) {
        parent->last->next = value;
    } else {
        parent->first = value;
    }
    parent->last = value;
}

void json_free(struct json *v)
{
    while (v) {
        struct json *next = v->next;
        json_free(v->first);
        if (v->type == J_STRING) {
            free(v->v.s);
        }
        free(v->key);
        free(v);
        v = next;
    }
}

/* ---- QEMU's order ------------------------------------------------------------ */

static unsigned qdict_bucket(const char *key)
{
    size_t len = strlen(key);
    uint32_t value = 0x238F13AFu * (uint32_t)len;

    for (size_t i = 0; i < len; i++) {
        value += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
    }
    return (1103515243u * value + 12345u) % QDICT_BUCKETS;
}

struct ordered {
    const struct json *member;
    unsigned bucket, index;
};

/* Bucket by bucket; in a bucket, the latest inserted first. */
static int by_qdict_order(const void *a, const void *b)
{
    const struct ordered *x = a, *y = b;

    if (x->bucket != y->bucket) {
        return x->bucket < y->bucket ? -1 : 1;
    }
    return x->index > y->index ? -1 : 1;
}

/* ---- printing ---------------------------------------------------------------- */

/* The code point of the UTF-8 sequence at *p (advanced past it), or
 * U+FFFD for a malformed one, as QEMU reads it. */
static uint32_t utf8_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    unsigned extra = s[0] >= 0xf0 ? 3 : s[0] >= 0xe0 ? 2 : s[0] >= 0xc0 ? 1
                                                                         : 0;
    uint32_t cp = s[0] & (0x3f >> extra);

    if (!extra || s[0] >= 0xf8) {
        *p = s + 1;
        return 0xfffd;
    }
    for (unsigned i = 1; i <= extra; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *p = s + i;
            return 0xfffd;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *p = s + extra + 1;
    return cp > 0x10ffff ? 0xfffd : cp;
}

static void print_code_point(FILE *out, uint32_t cp)
{
    if (cp >= 0x10000) {
        cp -= 0x10000;
        fprintf(out, "\\u%04X\\u%04X", 0xd800 + (cp >> 10),
                0xdc00 + (cp & 0x3ff));
    } else {
        fprintf(out, "\\u%04X", cp);
    }
}

static void print_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80) {
            const unsigned char *at = p;
            print_code_point(out, utf8_next(&at));
            p = at - 1;
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fprintf(out, "\\u%04X", *p);
            } else {
                fputc(*p, out);
            }
        }
    }
    fputc('"', out);
}

static void newline(FILE *out, unsigned depth)
{
    fprintf(out, "\n%*s", (int)(4 * depth), "");
}

static int print_value(FILE *out, const struct json *v, unsigned depth);

static int print_container(FILE *out, const struct json *v, unsigned depth)
{
    size_t n = 0;
    for (const struct json *m = v->first; m; m = m->next) {
        n++;
    }
    struct ordered *order = calloc(n ? n : 1, sizeof(*order));
    if (!order) {
        return -ENOMEM;
    }
    size_t i = 0;
    for (const struct json *m = v->first; m; m = m->next, i++) {
        order[i] = (struct ordered){ m, m->key ? qdict_bucket(m->key) : 0,
                                     (unsigned)i };
    }
    if (v->type == J_OBJECT) {
        qsort(order, n, sizeof(*order), by_qdict_order);
    }
    fputc(v->type == J_OBJECT ? '{' : '[', out);
    int ret = 0;
    for (i = 0; i < n && ret == 0; i++) {
        if (i) {
            fputc(',', out);
        }
        newline(out, depth + 1);
        if (v->type == J_OBJECT) {
            print_string(out, order[i].member->key);
            fputs(": ", out);
        }
        ret = print_value(out, order[i].member, depth + 1);
    }
    free(order);
    newline(out, depth);
    fputc(v->type == J_OBJECT ? '}' : ']', out);
    return ret;
}

static int print_value(FILE *out, const struct json *v, unsigned depth)
{
    switch (v->type) {
    case J_OBJECT:
    case J_ARRAY:
        return print_container(out, v, depth);
    case J_INT:
        fprintf(out, "%" PRId64, v->v.i);
        break;
    case J_UINT:
        fprintf(out, "%" PRIu64, v->v.u);
        break;
    case J_BOOL:
        fputs(v->v.b ? "true" : "false", out);
        break;
    case J_STRING:
        print_string(out, v->v.s);
        break;
    }
    return 0;
}

int json_print(FILE *out, const struct json *v)
{
    if (!v || v->broken) {
        return -ENOMEM;
    }
    int ret = print_value(out, v, 0);
    fputc('\n', out);
    return ret;
}

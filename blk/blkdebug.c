/*
 * blkdebug:RULES:CHILDSPEC: a filter over any device that injects faults.
 *
 * RULES is one or more rules separated by ';', each a comma-separated list:
 *   event=read|write|flush|any   which requests (default any)
 *   offset=N,len=N               only those touching these bytes
 *   errno=EIO|ENOSPC|...|N       fail them with this error
 *   short=BYTES                  transfer them in two parts, BYTES first,
 *                                as the kernel does on a short transfer
 *   delay-ns=N                   wait this long first
 *   once | every=N | prob=P      when: the first match, every Nth match,
 *   seed=S                       or with probability P (0..1), seeded
 * e.g. "blkdebug:event=read,errno=EIO,every=3;event=write,short=512:file:x"
 *
 * Requests go to the child through its public entry points, so the
 * child's own generic path (bounds, alignment) applies below the filter.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"

#define MAX_RULES 16

enum event { EVENT_ANY, EVENT_READ, EVENT_WRITE, EVENT_FLUSH };

typedef struct rule {
    enum event event;
    uint64_t offset, len;           /* len 0: any offset */
    int err;                        /* negative errno, or 0 */
    uint64_t short_bytes;
    uint64_t delay_ns;
    bool once;
    uint64_t every;                 /* 0: every match */
    double prob;                    /* < 0: no probability */
    uint64_t seed;
    atomic_ulong matches;
} rule;

typedef struct blkdebug_state {
    struct coblk_dev *child;
    unsigned nr_rules;
    rule rules[MAX_RULES];
} blkdebug_state;

static const struct {
    const char *name;
    int err;
} errno_names[] = {
    { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EAGAIN", EAGAIN },
    { "EINVAL", EINVAL }, { "EROFS", EROFS }, { "ENOMEM", ENOMEM },
    { "ETIMEDOUT", ETIMEDOUT }, { "ENOTSUP", ENOTSUP },
};

static int parse_errno(const char *value, int *err)
{
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]);
         i++) {
        if (!strcmp(value, errno_names[i].name)) {
            *err = errno_names[i].err;
            return 0;
        }
    }
    uint64_t n;
    if (blk_parse_number("blkdebug", "errno", value, 1, 4095, &n) < 0) {
        return blk_error(-EINVAL, "blkdebug: errno must be a name (EIO, "
                         "ENOSPC, EAGAIN, EINVAL, EROFS, ENOMEM, ETIMEDOUT, "
                         "ENOTSUP) or a number from 1 to 4095, not '%s'",
                         value);
    }
    *err = (int)n;
    return 0;
}

/* A probability: a decimal from 0 to 1, without sign or spaces. */
static int parse_prob(const char *value, double *out)
{
    char *end;
    bool starts_right = isdigit((unsigned char)*value) || *value == '.';
    double prob = starts_right ? strtod(value, &end) : -1;

    if (!starts_right || *end || !(prob >= 0 && prob <= 1)) {
        return blk_error(-EINVAL, "blkdebug: prob must be from 0 to 1, not "
                         "'%s'", value);
    }
    *out = prob;
    return 0;
}

static int parse_event(const char *value, enum event *out)
{
    static const char *const names[] = { "any", "read", "write", "flush" };

    for (int i = 0; i < 4; i++) {
        if (!strcmp(value, names[i])) {
            *out = (enum event)i;
            return 0;
        }
    }
    return blk_error(-EINVAL, "blkdebug: bad event '%s' (any, read, write, "
                     "flush)", value);
}

/* A size (offset, len, short) with the option's name in the message. */
static int parse_bytes(const char *key, const char *value, uint64_t *out)
{
    if (blk_parse_size(value, out) < 0) {
        return blk_error(-EINVAL, "blkdebug: bad %s '%s' (bytes, e.g. 4096 "
                         "or 4k)", key, value);
    }
    return 0;
}

static int rule_option(void *opaque, const char *key, const char *value)
{
    rule *r = opaque;

    if (!strcmp(key, "event")) {
        return parse_event(value, &r->event);
    }
    if (!strcmp(key, "errno")) {
        int ret = parse_errno(value, &r->err);
        r->err = -r->err;
        return ret;
    }
    if (!strcmp(key, "offset")) {
        return parse_bytes(key, value, &r->offset);
    }
    if (!strcmp(key, "len")) {
        return parse_bytes(key, value, &r->len);
    }
    if (!strcmp(key, "short")) {
        return parse_bytes(key, value, &r->short_bytes);
    }
    if (!strcmp(key, "delay-ns")) {
        return blk_parse_number("blkdebug", key, value, 0, BLK_DELAY_MAX_NS,
                                &r->delay_ns);
    }
    if (!strcmp(key, "every")) {
        return blk_parse_number("blkdebug", key, value, 1, UINT64_MAX,
                                &r->every);
    }
    if (!strcmp(key, "seed")) {
        return blk_parse_number("blkdebug", key, value, 0, UINT64_MAX,
                                &r->seed);
    }
    if (!strcmp(key, "prob")) {
        return parse_prob(value, &r->prob);
    }
    return blk_error(-EINVAL, "blkdebug: unknown rule option '%s' (event, "
                     "offset, len, errno, short, delay-ns, once, every, "
                     "prob, seed)", key);
}

/* "once" is a flag without a value: accept it by rewriting to once=1. */
static int parse_rule(char *text, rule *r)
{
    char *once = strstr(text, "once");
    r->prob = -1;
    if (once && (once == text || once[-1] == ',') &&
        (once[4] == ',' || once[4] == '\0')) {
        r->once = true;
        /* The word and one comma beside it: ",," would be a comma in a
         * value (optlist.h). */
        size_t cut = 4;
        if (once[4] == ',') {
            cut++;
        } else if (once > text) {
            once--;
            cut++;
        }
        memmove(once, once + cut, strlen(once + cut) + 1);
    }
    if (!*text) {
        return r->once ? 0 : blk_error(-EINVAL, "blkdebug: empty rule");
    }
    return blk_parse_options(text, rule_option, r);
}

static int parse_rules(const char *text, blkdebug_state *s)
{
    char *copy = strdup(text);
    char *save = NULL;
    int ret = 0;

    if (!copy) {
        return blk_error(-ENOMEM, "out of memory");
    }
    for (char *item = strtok_r(copy, ";", &save); item && ret == 0;
         item = strtok_r(NULL, ";", &save)) {
        if (s->nr_rules == MAX_RULES) {
            ret = blk_error(-EINVAL, "blkdebug: at most %d rules",
                            MAX_RULES);
            break;
        }
        ret = parse_rule(item, &s->rules[s->nr_rules++]);
    }
    free(copy);
    if (ret == 0 && s->nr_rules == 0) {
        ret = blk_error(-EINVAL, "blkdebug: no rules "
                        "(blkdebug:RULES:CHILDSPEC)");
    }
    return ret;
}

static int blkdebug_open(struct coblk_dev *dev, const char *args)
{
    const char *colon = strchr(args, ':');

    if (!colon || !colon[1]) {
        return blk_error(-EINVAL, "blkdebug: expected blkdebug:RULES:CHILD, "
                         "e.g. blkdebug:event=read,errno=EIO:file:x.img");
    }
    blkdebug_state *s = calloc(1, sizeof(*s));
    if (!s) {
        return blk_error(-ENOMEM, "out of memory");
    }
    char *rules = strndup(args, (size_t)(colon - args));
    int ret = rules ? parse_rules(rules, s) : -ENOMEM;
    free(rules);
    if (ret == 0) {
        ret = blk_open_child(dev, colon + 1, &s->child);
    }
    if (ret < 0) {
        free(s);
        return ret;
    }
    dev->opaque = s;
    dev->size = s->child->size;
    dev->file = s->child;
    return 0;
}

static void blkdebug_close(struct coblk_dev *dev)
{
    blkdebug_state *s = dev->opaque;

    coblk_dev_close(s->child);
    free(s);
}

/* A deterministic draw in [0, 1) for the nth match of a rule. */
static double draw(uint64_t seed, uint64_t n)
{
    uint64_t x = seed ^ (n * 0x9e3779b97f4a7c15u);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return (double)(x >> 11) / (double)(1ull << 53);
}

/* The first rule that fires for this request, or NULL. */
static rule *firing_rule(blkdebug_state *s, enum event event,
                         uint64_t offset, uint64_t bytes)
{
    for (unsigned i = 0; i < s->nr_rules; i++) {
        rule *r = &s->rules[i];
        if (r->event != EVENT_ANY && r->event != event) {
            continue;
        }
        /* Overlap of [offset, +bytes) and [r->offset, +r->len), written
         * without sums that could wrap. */
        if (r->len && (offset >= r->offset ? offset - r->offset >= r->len
                                           : r->offset - offset >= bytes)) {
            continue;
        }
        uint64_t n = atomic_fetch_add(&r->matches, 1) + 1;
        bool fires = r->once    ? n == 1
                     : r->every ? n % r->every == 0
                     : r->prob >= 0 ? draw(r->seed, n) < r->prob
                                    : true;
        if (fires) {
            return r;
        }
    }
    return NULL;
}

/* Applies a rule's delay and error; returns the error or 0. */
static int coroutine_fn inject(const rule *r)
{
    if (r && r->delay_ns) {
        coblk_co_sleep_ns(r->delay_ns);
    }
    return r ? r->err : 0;
}

static int coroutine_fn blkdebug_rw(struct coblk_dev *dev, bool write,
                                    uint64_t offset, uint64_t bytes,
                                    const struct iovec *iov, unsigned iovcnt,
                                    int req_flags)
{
    blkdebug_state *s = dev->opaque;
    const rule *r = firing_rule(s, write ? EVENT_WRITE : EVENT_READ, offset,
                                bytes);
    int ret = inject(r);
    if (ret < 0) {
        return ret;
    }
    uint64_t first = r && r->short_bytes && r->short_bytes < bytes
                         ? r->short_bytes : bytes;
    struct iovec *part = malloc((iovcnt + 1) * sizeof(*part));
    if (!part) {
        return -ENOMEM;
    }
    for (uint64_t done = 0; done < bytes && ret == 0;) {
        uint64_t len = done == 0 ? first : bytes - done;
        size_t covered;
        unsigned n = iov_slice(iov, iovcnt, done, len, part, iovcnt + 1,
                               &covered);
        ret = write ? coblk_co_pwritev(s->child, offset + done, covered,
                                       part, n, req_flags)
                    : coblk_co_preadv(s->child, offset + done, covered,
                                      part, n);
        done += covered;
    }
    free(part);
    return ret;
}

static int coroutine_fn blkdebug_preadv(struct coblk_dev *dev,
                                        uint64_t offset, uint64_t bytes,
                                        const struct iovec *iov,
                                        unsigned iovcnt)
{
    return blkdebug_rw(dev, false, offset, bytes, iov, iovcnt, 0);
}

static int coroutine_fn blkdebug_pwritev(struct coblk_dev *dev,
                                         uint64_t offset, uint64_t bytes,
                                         const struct iovec *iov,
                                         unsigned iovcnt, int req_flags)
{
    return blkdebug_rw(dev, true, offset, bytes, iov, iovcnt, req_flags);
}

static int coroutine_fn blkdebug_flush(struct coblk_dev *dev)
{
    blkdebug_state *s = dev->opaque;
    int ret = inject(firing_rule(s, EVENT_FLUSH, 0, 0));

    return ret < 0 ? ret : coblk_co_flush(s->child);
}

static int coroutine_fn blkdebug_pdiscard(struct coblk_dev *dev,
                                          uint64_t offset, uint64_t bytes)
{
    return coblk_co_pdiscard(((blkdebug_state *)dev->opaque)->child, offset,
                             bytes);
}

static int coroutine_fn blkdebug_pwrite_zeroes(struct coblk_dev *dev,
                                               uint64_t offset,
                                               uint64_t bytes, int req_flags)
{
    blkdebug_state *s = dev->opaque;
    int ret = inject(firing_rule(s, EVENT_WRITE, offset, bytes));

    return ret < 0 ? ret
                   : coblk_co_pwrite_zeroes(s->child, offset, bytes,
                                            req_flags);
}

/* Faults are for requests: a size change goes straight through. */
static int coroutine_fn blkdebug_truncate(struct coblk_dev *dev, uint64_t size,
                                          enum coblk_prealloc mode)
{
    return blk_co_truncate_child(dev, ((blkdebug_state *)dev->opaque)->child,
                                 size, mode);
}

const blk_driver blk_blkdebug_driver = {
    .name = "blkdebug",
    .filter = true,
    .open = blkdebug_open,
    .close = blkdebug_close,
    .co_preadv = blkdebug_preadv,
    .co_pwritev = blkdebug_pwritev,
    .co_flush = blkdebug_flush,
    .co_pdiscard = blkdebug_pdiscard,
    .co_pwrite_zeroes = blkdebug_pwrite_zeroes,
    .co_truncate = blkdebug_truncate,
};

/*
 * coblk-bench options (see options.h).  Values follow fio: sizes take
 * k/m/g/t/p suffixes in powers of 1024 (with an optional "i" and "b"),
 * times are seconds unless suffixed (us, ms, s, m, h), booleans are 0/1.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "flow.h"
#include "options.h"
#include "pattern.h"
#include "replay.h"

#define MAX_BS (1ull << 30)
#define DEFAULT_BS 4096u

enum opt_type {
    OPT_STR, OPT_SIZE, OPT_UINT, OPT_TIME, OPT_TIME_US, OPT_BOOL, OPT_ENUM,
    OPT_FUNC,                   /* parsed by its own function */
};

typedef int (*opt_parser)(struct job *job, const char *value, char *err,
                          size_t err_size);

struct opt {
    const char *name;
    enum opt_type type;
    size_t offset;              /* in struct job */
    size_t size;                /* of the field (OPT_STR) */
    uint64_t min, max;          /* OPT_SIZE, OPT_UINT */
    const char *const *choices; /* OPT_ENUM, NULL-terminated */
    opt_parser parse;           /* OPT_FUNC */
    bool value_optional;        /* OPT_FUNC: may be given as a flag */
    /* fio's io_uring options that coblk needs no setting for: the value
     * is checked, then dropped; with unsupported, the option (when on)
     * sets that bit of job->unsupported, to be warned about. */
    bool no_field;
    unsigned unsupported;
};

static const char *const rw_names[] = {
    "read", "write", "randread", "randwrite", "rw", "randrw", "trim",
    "randtrim", "trimwrite", "randtrimwrite", NULL,
};
static const char *const engine_names[] = {
    "io_uring", "null", "libaio", "posixaio", "sync", "psync", "vsync",
    "pvsync", "pvsync2", NULL,
};
static const char *const nonvectored_values[] = { "-1", "0", "1", NULL };
static const char *const submit_modes[] = { "inline", "offload", NULL };
static const char *const think_types[] = { "complete", "issue", NULL };
static const char *const rate_processes[] = { "linear", "poisson", NULL };
static const char *const dedupe_modes[] = { "repeat", "working_set", NULL };
static const char *const exit_whats[] = { "group", "stonewall", "all", NULL };
static const char *const generator_names[] = {
    "tausworthe", "lfsr", "tausworthe64", NULL,
};
/* Names of the UNSUPPORTED_* bits, in their order. */
static const char *const unsupported_names[] = {
    "sqthread_poll", "sqthread_poll_cpu", "hipri", "error_dump=1",
    "create_on_open=1",
};

void bench_job_defaults(struct job *job)
{
    *job = (struct job){
        .bs = DEFAULT_BS, .dir_bs_min = { DEFAULT_BS, DEFAULT_BS, DEFAULT_BS },
        .dir_bs_max = { DEFAULT_BS, DEFAULT_BS, DEFAULT_BS }, .rw = RW_READ, .rwmixread = 50, .iodepth = 1,
        .numjobs = 1, .engine = ENGINE_IO_URING, .randseed = 0x89,
        .replay_time_scale = 100,
        .iodepth_batch_submit = 1, .iodepth_batch_complete_min = 1,
        .randrepeat = true, .do_verify = true, .loops = 1,
        .ios_per_seek = 1, .clat_percentiles = true, .per_job_logs = true,
        .ss_iops = true, .ss_slope = true, .ss_pct = true, .ss_limit = 0.01,
        .wait_for_job = -1, .ratecycle_ms = 1000,
        .fallocate = FALLOC_NATIVE,
        .scramble_buffers = true, .compress_chunk = 512,
        .dedupe_working_set_pct = 5, .latency_percentile = 100.0,
    };
}

const char *bench_rw_name(enum rw_mode rw)
{
    return rw_names[rw];
}

const char *bench_engine_name(enum engine engine)
{
    return engine_names[engine];
}

bool bench_engine_is_sync(enum engine engine)
{
    return engine >= ENGINE_SYNC;
}

bool bench_rw_is_random(enum rw_mode rw)
{
    return rw == RW_RANDREAD || rw == RW_RANDWRITE || rw == RW_RANDRW ||
           rw == RW_RANDTRIM || rw == RW_RANDTRIMWRITE;
}

static int fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return -1;
}

/* Digits, then an optional unit; returns false on anything else. */
static bool parse_number(const char *text, uint64_t *value, const char **unit)
{
    char *end;

    if (!isdigit((unsigned char)*text)) {
        return false;
    }
    errno = 0;
    *value = strtoull(text, &end, 10);
    *unit = end;
    return errno == 0;
}

/* What fio's parser skips after a value, silently as fio (its own
 * t/strided.py writes "filesize=65536)"): closing brackets and quotes. */
static bool stray_closers(const char *rest)
{
    return *rest && !rest[strspn(rest, ")]}'\"")];
}

static bool parse_size(const char *text, uint64_t *out)
{
    static const char suffixes[] = "kmgtp";
    uint64_t value;
    const char *unit;

    if (!parse_number(text, &value, &unit)) {
        return false;
    }
    unsigned shift = 0;
    if (stray_closers(unit)) {
        unit += strlen(unit);
    }
    if (*unit) {
        const char *at = strchr(suffixes, tolower((unsigned char)*unit));
        if (!at) {
            return false;
        }
        shift = 10 * (unsigned)(at - suffixes + 1);
        unit++;
        if (tolower((unsigned char)*unit) == 'i') {
            unit++;
        }
        if (tolower((unsigned char)*unit) == 'b') {
            unit++;
        }
        if (*unit && !stray_closers(unit)) {
            return false;
        }
    }
    if (value > (UINT64_MAX >> shift)) {
        return false;
    }
    *out = value << shift;
    return true;
}

/* A time, in units of default_ns without a suffix (fio: seconds for
 * most, microseconds for thinktime and its kin). */
static bool parse_time_ns(const char *text, uint64_t default_ns,
                          uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {
        { "s", 1000000000 }, { "ms", 1000000 }, { "us", 1000 },
        { "m", 60000000000 }, { "h", 3600000000000 },
    };
    uint64_t value;
    const char *unit;

    if (!parse_number(text, &value, &unit)) {
        return false;
    }
    if (!*unit) {
        if (value > UINT64_MAX / default_ns) {
            return false;
        }
        *out = value * default_ns;
        return true;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (!strcasecmp(unit, units[i].unit)) {
            if (value > UINT64_MAX / units[i].ns) {
                return false;
            }
            *out = value * units[i].ns;
            return true;
        }
    }
    return false;
}

/* "0" or "1", or a flag without a value (1). */
static int parse_bool(const char *name, const char *value, bool *out,
                      char *err, size_t err_size)
{
    if (value && strcmp(value, "0") && strcmp(value, "1")) {
        return fail(err, err_size, "%s: expected 0 or 1, got '%s'", name,
                    value);
    }
    *out = !value || !strcmp(value, "1");
    return 0;
}

/* ---- options with their own syntax ------------------------------------------ */

/* error_dump: coblk-bench counts the errors continue_on_error lets
 * through without printing each, which is error_dump=0. */
static int parse_error_dump(struct job *job, const char *value, char *err,
                            size_t err_size)
{
    bool dump = false;

    if (parse_bool("error_dump", value, &dump, err, err_size) < 0) {
        return -1;
    }
    job->unsupported = dump ? job->unsupported | UNSUPPORTED_ERROR_DUMP
                            : job->unsupported & ~UNSUPPORTED_ERROR_DUMP;
    return 0;
}

static int parse_rwmixwrite(struct job *job, const char *value, char *err,
                            size_t err_size)
{
    uint64_t pct;
    const char *unit;

    if (!parse_number(value, &pct, &unit) || *unit || pct > 100) {
        return fail(err, err_size, "rwmixwrite: expected 0 to 100, got '%s'",
                    value);
    }
    job->rwmixread = 100 - (unsigned)pct;
    return 0;
}

/* size=0 is fio's "no size": the whole file. */
static int parse_job_size(struct job *job, const char *value, char *err,
                          size_t err_size)
{
    if (!parse_size(value, &job->size)) {
        return fail(err, err_size, "size: invalid size '%s'", value);
    }
    job->size_given = true;
    return 0;
}

/* As fio: gtod_reduce=1 turns every latency and bandwidth measurement
 * off (later options may turn one back on) and lets the clock be read
 * rarely; gtod_reduce=0 changes nothing else. */
static int parse_gtod_reduce(struct job *job, const char *value, char *err,
                             size_t err_size)
{
    if (parse_bool("gtod_reduce", value, &job->gtod_reduce, err,
                   err_size) < 0) {
        return -1;
    }
    if (job->gtod_reduce) {
        job->disable_lat = job->disable_clat = job->disable_slat = true;
        job->disable_bw = true;
    }
    return 0;
}

/* fio's per-direction values: "1m" for reads, writes and trims, "1m,2m"
 * 1m reads and 2m writes and trims, "1m,2m," trims left to the default,
 * ",2m" writes and trims only: the part for each direction, "" for the
 * default.  -1 for more than three. */
static int per_direction(const char *value, char part[3][1024])
{
    unsigned n = 0;

    for (const char *p = value;; p += strcspn(p, ",") + 1) {
        size_t len = strcspn(p, ",");
        if (n == 3 || len >= 1024) {
            return -1;
        }
        memcpy(part[n], p, len);
        part[n++][len] = '\0';
        if (!p[len]) {
            break;
        }
    }
    /* The last given goes for the directions after it. */
    for (unsigned d = n; d < 3; d++) {
        strcpy(part[d], part[n - 1]);
    }
    return 0;
}

/* A size as fio's lenient parser reads one: what follows the number and
 * its unit ("512/25") is ignored. */
static bool parse_size_prefix(const char *text, uint64_t *out)
{
    char head[64];
    size_t len = 0;

    while (text[len] && (isalnum((unsigned char)text[len]) ||
                         text[len] == '.') && len < sizeof(head) - 1) {
        len++;
    }
    memcpy(head, text, len);
    head[len] = '\0';
    return parse_size(head, out);
}

/* One direction's "4k-64k" (or fio's 4k:64k). */
static bool parse_one_range(const char *text, uint64_t *min, uint64_t *max)
{
    const char *sep = strchr(text, '-');

    sep = sep ? sep : strchr(text, ':');
    return sep && parse_size_prefix(text, min) &&
           parse_size_prefix(sep + 1, max) && *min && *min <= *max &&
           *max <= MAX_BS;
}

/* bs=SIZE[,SIZE[,SIZE]]: reads, writes, trims (an empty one: 4k). */
static int parse_bs(struct job *job, const char *value, char *err,
                    size_t err_size)
{
    char part[3][1024];

    if (per_direction(value, part) < 0) {
        return fail(err, err_size, "bs: at most READ,WRITE,TRIM, got '%s'",
                    value);
    }
    for (int d = 0; d < 3; d++) {
        uint64_t bs = DEFAULT_BS;
        if (part[d][0] && !parse_size(part[d], &bs)) {
            return fail(err, err_size, "bs: invalid size '%s'", part[d]);
        }
        if (!bs || bs > MAX_BS) {
            return fail(err, err_size, "bs: %s out of range [1, %llu]",
                        part[d], (unsigned long long)MAX_BS);
        }
        job->dir_bs_min[d] = job->dir_bs_max[d] = bs;
        job->nr_bssplit[d] = 0;
    }
    job->bs = job->dir_bs_min[0];
    return 0;
}

/* "4k-64k": the range bs takes at random, for each direction. */
static int parse_bsrange(struct job *job, const char *value, char *err,
                         size_t err_size)
{
    char part[3][1024];

    if (per_direction(value, part) < 0) {
        return fail(err, err_size, "bsrange: at most READ,WRITE,TRIM, got "
                    "'%s'", value);
    }
    for (int d = 0; d < 3; d++) {
        job->nr_bssplit[d] = 0;
        if (!part[d][0]) {
            job->dir_bs_min[d] = job->dir_bs_max[d] = DEFAULT_BS;
        } else if (!parse_one_range(part[d], &job->dir_bs_min[d],
                                    &job->dir_bs_max[d])) {
            return fail(err, err_size, "bsrange: invalid range '%s' (MIN-MAX, "
                        "0 < MIN <= MAX <= 1g)", value);
        }
    }
    return 0;
}

/* One direction's "4k/10:64k/50:32k": sizes with percentages; those
 * without one share what the others leave. */
static int parse_split_list(char *list, struct bs_split *out, unsigned *nr,
                            const char *value, char *err, size_t err_size)
{
    char *save, *item;
    unsigned n = 0, given = 0, unweighted = 0;
    bool weighted[MAX_BSSPLIT];

    for (item = strtok_r(list, ":", &save); item;
         item = strtok_r(NULL, ":", &save)) {
        struct bs_split *split = &out[n];
        char *slash = strchr(item, '/');
        uint64_t pct = 0;
        const char *unit;
        if (slash) {
            *slash = '\0';
        }
        if (n == MAX_BSSPLIT || !parse_size(item, &split->bs) ||
            !split->bs || split->bs > MAX_BS ||
            (slash && (!parse_number(slash + 1, &pct, &unit) || *unit ||
                       pct > 100))) {
            return fail(err, err_size, "bssplit: invalid entry '%s' in '%s' "
                        "(at most %d of SIZE/PCT)", item, value, MAX_BSSPLIT);
        }
        split->pct = slash ? (unsigned)pct : 0;
        weighted[n] = slash != NULL;
        given += split->pct;
        unweighted += !slash;
        n++;
    }
    if (!n || given > 100 || (given < 100 && !unweighted)) {
        return fail(err, err_size, "bssplit: percentages in '%s' must add up "
                    "to 100", value);
    }
    for (unsigned i = 0, left = 100 - given; i < n; i++) {
        if (!weighted[i]) {
            unsigned share = left / unweighted--;
            out[i].pct = share;
            left -= share;
        }
    }
    *nr = n;
    return 0;
}

/* bssplit=LIST[,LIST[,LIST]]: reads, writes, trims (an empty one: 4k). */
static int parse_bssplit(struct job *job, const char *value, char *err,
                         size_t err_size)
{
    char part[3][1024];

    if (per_direction(value, part) < 0) {
        return fail(err, err_size, "bssplit: at most READ,WRITE,TRIM lists, "
                    "got '%s'", value);
    }
    for (int d = 0; d < 3; d++) {
        job->dir_bs_min[d] = job->dir_bs_max[d] = DEFAULT_BS;
        job->nr_bssplit[d] = 0;
        if (part[d][0] && parse_split_list(part[d], job->bssplit[d],
                                           &job->nr_bssplit[d], value, err,
                                           err_size) < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- I/O priorities ------------------------------------------------------ */

uint16_t bench_ioprio_value(unsigned ioprio_class, unsigned level)
{
    ioprio_class = ioprio_class ? ioprio_class : IOPRIO_CLASS_BE;
    return (uint16_t)(ioprio_class << IOPRIO_CLASS_SHIFT | level);
}

/* A whole number in [lo, hi] (a priority's class or level, a share). */
static int parse_in_range(const char *name, const char *text, unsigned lo,
                          unsigned hi, unsigned *out, char *err,
                          size_t err_size)
{
    uint64_t v;
    const char *unit;

    if (!parse_number(text, &v, &unit) || *unit || v < lo || v > hi) {
        return fail(err, err_size, "%s: '%s' is not a number in [%u, %u]",
                    name, text, lo, hi);
    }
    *out = (unsigned)v;
    return 0;
}

/* prio=0..7 and prioclass=0..3: the job's priority (fio's ioprio_set()
 * of the job's thread). */
static int parse_prio(struct job *job, const char *value, char *err,
                      size_t err_size)
{
    job->prio_given = true;
    return parse_in_range("prio", value, 0, IOPRIO_MAX_LEVEL, &job->prio,
                          err, err_size);
}

static int parse_prioclass(struct job *job, const char *value, char *err,
                           size_t err_size)
{
    job->prio_given = true;
    return parse_in_range("prioclass", value, IOPRIO_CLASS_NONE,
                          IOPRIO_CLASS_IDLE, &job->prioclass, err, err_size);
}

/* The cmdprio options' values: READ[,WRITE] (one for both), as fio's
 * engines take them; -1 for more. */
static int read_write_parts(const char *value, char part[3][1024])
{
    const char *comma = strchr(value, ',');

    if (comma && strchr(comma + 1, ',')) {
        return -1;
    }
    return per_direction(value, part);
}

/* NAME=V[,V] of the cmdprio options: reads' and writes' values in
 * [lo, hi]; an empty part leaves that direction's as it was. */
static int parse_cmdprio_values(struct job *job, const char *name,
                                const char *value, unsigned lo, unsigned hi,
                                unsigned out[CMDPRIO_DIRS], char *err,
                                size_t err_size)
{
    char part[3][1024];

    if (read_write_parts(value, part) < 0) {
        return fail(err, err_size, "%s: at most READ,WRITE, got '%s'", name,
                    value);
    }
    for (int d = 0; d < CMDPRIO_DIRS; d++) {
        if (part[d][0] &&
            parse_in_range(name, part[d], lo, hi, &out[d], err,
                           err_size) < 0) {
            return -1;
        }
    }
    job->cmdprio_option = job->cmdprio_option ? job->cmdprio_option : name;
    return 0;
}

static int parse_cmdprio_percentage(struct job *job, const char *value,
                                    char *err, size_t err_size)
{
    return parse_cmdprio_values(job, "cmdprio_percentage", value, 0, 100,
                                job->cmdprio_pct, err, err_size);
}

/* Class 0 (none) is refused, as fio: unset means real-time. */
static int parse_cmdprio_class(struct job *job, const char *value,
                               char *err, size_t err_size)
{
    return parse_cmdprio_values(job, "cmdprio_class", value,
                                IOPRIO_CLASS_RT, IOPRIO_CLASS_IDLE,
                                job->cmdprio_class, err, err_size);
}

static int parse_cmdprio_level(struct job *job, const char *value,
                               char *err, size_t err_size)
{
    return parse_cmdprio_values(job, "cmdprio", value, 0, IOPRIO_MAX_LEVEL,
                                job->cmdprio_level, err, err_size);
}

/* One cmdprio_bssplit entry: SIZE[/[PCT[/CLASS/LEVEL]]]; without a class
 * and level, the I/Os take cmdprio_class and cmdprio's (ioprio -1). */
static int parse_cmdprio_entry(char *item, struct prio_choice *c,
                               char *err, size_t err_size)
{
    char text[256];
    char *field[5] = { item };
    unsigned n = 1, prio_class, level;

    snprintf(text, sizeof(text), "%s", item);
    for (char *p = item; (p = strchr(p, '/')) && n < 5; n++) {
        *p++ = '\0';
        field[n] = p;
    }
    if (n == 3 || n > 4 || !parse_size(field[0], &c->bs) || !c->bs ||
        c->bs > MAX_BS) {
        return fail(err, err_size, "cmdprio_bssplit: invalid entry '%s' "
                    "(SIZE/PCT or SIZE/PCT/CLASS/LEVEL)", text);
    }
    c->pct = 0;
    c->ioprio = -1;
    if (n >= 2 && field[1][0] &&
        parse_in_range("cmdprio_bssplit", field[1], 0, 100, &c->pct, err,
                       err_size) < 0) {
        return -1;
    }
    if (n == 4) {
        if (parse_in_range("cmdprio_bssplit", field[2], IOPRIO_CLASS_NONE,
                           IOPRIO_CLASS_IDLE, &prio_class, err,
                           err_size) < 0 ||
            parse_in_range("cmdprio_bssplit", field[3], 0, IOPRIO_MAX_LEVEL,
                           &level, err, err_size) < 0) {
            return -1;
        }
        c->ioprio = bench_ioprio_value(prio_class, level);
    }
    return 0;
}

/* One direction's "64k/25/1/1:64k/75/3/2:1024k/0": its entries of more
 * than 0%, in the order of their sizes (fio's), each size's shares at
 * most 100% together. */
static int parse_cmdprio_list(char *list, struct prio_choice *out,
                              unsigned *nr, char *err, size_t err_size)
{
    char *save, *item;
    unsigned n = 0;

    for (item = strtok_r(list, ":", &save); item;
         item = strtok_r(NULL, ":", &save)) {
        struct prio_choice c;
        if (parse_cmdprio_entry(item, &c, err, err_size) < 0) {
            return -1;
        }
        if (!c.pct) {
            continue;           /* as fio: says nothing */
        }
        if (n == MAX_BSSPLIT) {
            return fail(err, err_size, "cmdprio_bssplit: more than %d "
                        "entries", MAX_BSSPLIT);
        }
        unsigned j = n++, total = c.pct;
        for (; j > 0 && out[j - 1].bs > c.bs; j--) {
            out[j] = out[j - 1];
        }
        out[j] = c;
        for (unsigned i = 0; i < n; i++) {
            total += i != j && out[i].bs == c.bs ? out[i].pct : 0;
        }
        if (total > 100) {
            return fail(err, err_size, "cmdprio_bssplit: total percentage "
                        "for bs: %llu exceeds 100",
                        (unsigned long long)c.bs);
        }
    }
    *nr = n;
    return 0;
}

/* cmdprio_bssplit=LIST[,LIST]: reads', writes'. */
static int parse_cmdprio_bssplit(struct job *job, const char *value,
                                 char *err, size_t err_size)
{
    char part[3][1024];

    if (read_write_parts(value, part) < 0) {
        return fail(err, err_size, "cmdprio_bssplit: at most READ,WRITE "
                    "lists, got '%s'", value);
    }
    for (int d = 0; d < CMDPRIO_DIRS; d++) {
        job->nr_cmdprio_bssplit[d] = 0;
        if (part[d][0] &&
            parse_cmdprio_list(part[d], job->cmdprio_bssplit[d],
                               &job->nr_cmdprio_bssplit[d], err,
                               err_size) < 0) {
            return -1;
        }
    }
    job->cmdprio_bssplit_given = value[0] != '\0';
    job->cmdprio_option = job->cmdprio_option ? job->cmdprio_option
                                              : "cmdprio_bssplit";
    return 0;
}

static int parse_rate_triple(const char *name, const char *value,
                             uint64_t out[3], bool sizes, char *err,
                             size_t err_size)
{
    char part[3][1024];

    if (per_direction(value, part) < 0) {
        return fail(err, err_size, "%s: invalid value '%s' (at most "
                    "READ,WRITE,TRIM)", name, value);
    }
    for (int d = 0; d < 3; d++) {
        const char *unit;
        bool ok = !part[d][0] ||
                  (sizes ? parse_size(part[d], &out[d])
                         : parse_number(part[d], &out[d], &unit) && !*unit);
        if (!ok) {
            return fail(err, err_size, "%s: invalid value '%s' (RATE or "
                        "READ,WRITE,TRIM)", name, value);
        }
        if (!part[d][0]) {
            out[d] = 0;
        }
    }
    return 0;
}

static int parse_rate(struct job *job, const char *value, char *err,
                      size_t err_size)
{
    return parse_rate_triple("rate", value, job->rate, true, err, err_size);
}

static int parse_rate_iops(struct job *job, const char *value, char *err,
                           size_t err_size)
{
    return parse_rate_triple("rate_iops", value, job->rate_iops, false, err,
                             err_size);
}

static int parse_blockalign(struct job *job, const char *value, char *err,
                            size_t err_size)
{
    return parse_rate_triple("blockalign", value, job->ba, true, err,
                             err_size);
}

static int parse_ratemin(struct job *job, const char *value, char *err,
                         size_t err_size)
{
    return parse_rate_triple("ratemin", value, job->ratemin, true, err,
                             err_size);
}

static int parse_rate_iops_min(struct job *job, const char *value, char *err,
                               size_t err_size)
{
    return parse_rate_triple("rate_iops_min", value, job->rate_iops_min,
                             false, err, err_size);
}

/* "random", or "zipf:THETA" with THETA > 0 and not 1. */
/* A percentage of a zoned split, or -1 when left out (fio then shares
 * what is left between those left out). */
static int zone_percent(const char *text, size_t len)
{
    char number[8];
    uint64_t pct;
    const char *unit;

    if (!len) {
        return -1;
    }
    if (len >= sizeof(number)) {
        return -2;
    }
    memcpy(number, text, len);
    number[len] = '\0';
    return parse_number(number, &pct, &unit) && !*unit && pct <= 100
               ? (int)pct : -2;
}

/* Fills the sizes left out as fio: what is left of 100, split evenly. */
static void share_rest(struct job *job)
{
    unsigned sum = 0, missing = 0;

    for (unsigned i = 0; i < job->nr_zones; i++) {
        missing += job->zones[i].size == UINT8_MAX;
        sum += job->zones[i].size == UINT8_MAX ? 0 : job->zones[i].size;
    }
    for (unsigned i = 0; i < job->nr_zones && missing && sum <= 100; i++) {
        if (job->zones[i].size == UINT8_MAX) {
            job->zones[i].size = (uint8_t)((100 - sum) / missing);
        }
    }
}

/* zoned:ACCESS/SIZE:...: ACCESS% of the I/O to the next SIZE% of the
 * region; sizes left out get an even part of the rest; the accesses must
 * add up to 100, the sizes to no more. */
static int parse_zones(struct job *job, const char *list, char *err,
                       size_t err_size)
{
    const char *at = list;

    job->nr_zones = 0;
    while (*at && job->nr_zones < MAX_ZONES) {
        size_t len = strcspn(at, ":,");
        const char *slash = memchr(at, '/', len);
        int access = zone_percent(at, slash ? (size_t)(slash - at) : len);
        int size = slash ? zone_percent(slash + 1,
                                         len - (size_t)(slash - at) - 1)
                         : -1;
        if (access < 0 || size < -1 || at[len] == ',') {
            return fail(err, err_size, "random_distribution: zoned: expected "
                        "ACCESS/SIZE percentages, one split for all "
                        "directions, got '%.*s'", (int)len, at);
        }
        job->zones[job->nr_zones].access = (uint8_t)access;
        job->zones[job->nr_zones++].size = (uint8_t)size;
        at += len + (at[len] != '\0');
    }
    share_rest(job);
    unsigned access = 0, size = 0;
    for (unsigned i = 0; i < job->nr_zones; i++) {
        access += job->zones[i].access;
        size += job->zones[i].size;
    }
    if (access != 100 || size > 100) {
        return fail(err, err_size, "random_distribution: zoned: the accesses "
                    "must add up to 100%% and the sizes to no more (got %u%% "
                    "and %u%%)", access, size);
    }
    job->distribution = DIST_ZONED;
    return 0;
}

static int parse_distribution(struct job *job, const char *value, char *err,
                              size_t err_size)
{
    char *end;

    if (!strcmp(value, "random")) {
        job->distribution = DIST_RANDOM;
        return 0;
    }
    if (!strncmp(value, "zoned:", 6)) {
        return parse_zones(job, value + 6, err, err_size);
    }
    if (!strncmp(value, "zipf:", 5)) {
        double theta = strtod(value + 5, &end);
        if (end != value + 5 && !*end && theta > 0 && theta != 1 &&
            theta < 100) {
            job->distribution = DIST_ZIPF;
            job->zipf_theta = theta;
            return 0;
        }
    }
    return fail(err, err_size, "random_distribution: expected random, "
                "zipf:THETA (THETA > 0, not 1) or zoned:ACCESS/SIZE:..., got "
                "'%s'", value);
}

static int parse_verify(struct job *job, const char *value, char *err,
                        size_t err_size)
{
    static const struct {
        const char *name;
        enum verify_algo algo;
    } algos[] = {
        { "0", VERIFY_NONE }, { "null", VERIFY_NONE },
        { "crc32c", VERIFY_CRC32C }, { "crc32c-intel", VERIFY_CRC32C },
        { "md5", VERIFY_MD5 }, { "meta", VERIFY_META },
    };

    for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++) {
        if (!strcmp(value, algos[i].name)) {
            job->verify = algos[i].algo;
            return 0;
        }
    }
    return fail(err, err_size, "verify: expected crc32c, md5, meta or 0, "
                "got '%s'", value);
}

static int parse_verify_pattern(struct job *job, const char *value, char *err,
                                size_t err_size)
{
    return pattern_parse(value, job->verify_pattern, MAX_VERIFY_PATTERN,
                         &job->verify_pattern_len, err, err_size);
}

static int parse_buffer_pattern(struct job *job, const char *value, char *err,
                                size_t err_size)
{
    return pattern_parse(value, job->buffer_pattern, MAX_VERIFY_PATTERN,
                         &job->buffer_pattern_len, err, err_size);
}

/* "99:99.9:99.99" */
static int parse_percentiles(struct job *job, const char *value, char *err,
                             size_t err_size)
{
    const char *at = value;
    unsigned n = 0;

    while (*at) {
        char *end;
        double pct = strtod(at, &end);
        if (end == at || (*end && *end != ':') || !(pct > 0 && pct <= 100) ||
            n == MAX_PERCENTILES) {
            return fail(err, err_size, "percentile_list: expected up to %d "
                        "values in (0, 100] separated by ':', got '%s'",
                        MAX_PERCENTILES, value);
        }
        job->percentiles[n++] = pct;
        at = *end ? end + 1 : end;
    }
    if (!n) {
        return fail(err, err_size, "percentile_list: empty");
    }
    job->nr_percentiles = n;
    return 0;
}

/* write_*_log: a file name prefix; none given, the job's name, known
 * when the job is finished (bench_job_finish). */
static int set_log_prefix(char *prefix, size_t size, struct job *job,
                          unsigned by_name, const char *value,
                          const char *name, char *err, size_t err_size)
{
    const char *chosen = value ? value : "-";   /* replaced by the name */

    if (!*chosen || strlen(chosen) >= size) {
        return fail(err, err_size, "%s: needs a file name prefix of at most "
                    "%zu bytes", name, size - 1);
    }
    strcpy(prefix, chosen);
    job->log_by_name = value ? job->log_by_name & ~by_name
                             : job->log_by_name | by_name;
    return 0;
}

static int parse_lat_log(struct job *job, const char *value, char *err,
                         size_t err_size)
{
    return set_log_prefix(job->lat_log, sizeof(job->lat_log), job,
                          LOG_BY_NAME_LAT, value, "write_lat_log", err,
                          err_size);
}

static int parse_bw_log(struct job *job, const char *value, char *err,
                        size_t err_size)
{
    return set_log_prefix(job->bw_log, sizeof(job->bw_log), job,
                          LOG_BY_NAME_BW, value, "write_bw_log", err,
                          err_size);
}

static int parse_iops_log(struct job *job, const char *value, char *err,
                          size_t err_size)
{
    return set_log_prefix(job->iops_log, sizeof(job->iops_log), job,
                          LOG_BY_NAME_IOPS, value, "write_iops_log", err,
                          err_size);
}

/* --debug=parse: fio's lines for what it parsed (here, steady state's). */
static bool debug_parse;

/* iops|iops_slope|bw|bw_slope:LIMIT[%]: an IOPS limit is a number, a
 * bandwidth one a size in bytes per second, a percentage either. */
/* A comma-separated list of names from `names` (NULL-terminated, at most
 * 32) as the bit set of their indexes: 0, or -1 with the first other
 * item (or the whole list, too long to read) in bad. */
static int parse_name_set(const char *value, const char *const *names,
                          unsigned *bits, char *bad, size_t bad_size)
{
    char copy[256], *save;

    *bits = 0;
    if (!value || strlen(value) >= sizeof(copy)) {
        snprintf(bad, bad_size, "%s", value ? value : "");
        return -1;
    }
    strcpy(copy, value);
    for (char *item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        unsigned i = 0;
        while (names[i] && strcmp(item, names[i])) {
            i++;
        }
        if (!names[i]) {
            snprintf(bad, bad_size, "%s", item);
            return -1;
        }
        *bits |= 1u << i;
    }
    return 0;
}

/* replay_skip=read,write,trim,sync: what a replay leaves out. */
static int parse_replay_skip(struct job *job, const char *value, char *err,
                             size_t err_size)
{
    /* In the order of REPLAY_*. */
    static const char *const kinds[] = { "read", "write", "trim", "sync",
                                         NULL };
    char bad[256];

    if (parse_name_set(value, kinds, &job->replay_skip, bad,
                       sizeof(bad)) < 0) {
        return fail(err, err_size, "replay_skip: expected read, write, "
                    "trim or sync, got '%s'", bad);
    }
    return 0;
}

static int parse_steady(struct job *job, const char *value, char *err,
                        size_t err_size)
{
    static const char *const kinds[] = { "iops", "iops_slope", "bw",
                                         "bw_slope" };
    const char *colon = strchr(value, ':');
    size_t len = colon ? (size_t)(colon - value) : 0;
    unsigned k = 0;

    while (k < 4 && (strlen(kinds[k]) != len || strncmp(value, kinds[k], len))) {
        k++;
    }
    if (k == 4 || !colon[1]) {
        return fail(err, err_size, "ss: expected iops, iops_slope, bw or "
                    "bw_slope, a colon and a limit, got '%s'", value);
    }
    const char *limit = colon + 1;
    char *end;
    job->ss_iops = k < 2;
    job->ss_slope = k % 2;
    job->ss_pct = limit[strlen(limit) - 1] == '%';
    if (job->ss_pct || job->ss_iops) {
        job->ss_limit = strtod(limit, &end);
        if (end == limit || *end != (job->ss_pct ? '%' : '\0') ||
            job->ss_limit < 0) {
            return fail(err, err_size, "ss: invalid limit '%s'", limit);
        }
    } else {
        uint64_t bytes;
        if (!parse_size(limit, &bytes)) {
            return fail(err, err_size, "ss: invalid limit '%s'", limit);
        }
        job->ss_limit = (double)bytes;
    }
    if (debug_parse) {
        if (job->ss_pct) {
            printf("parse    %d set steady state threshold to %f%%\n",
                   (int)getpid(), job->ss_limit);
        } else if (job->ss_iops) {
            printf("parse    %d set steady state IOPS threshold to %f\n",
                   (int)getpid(), job->ss_limit);
        } else {
            printf("parse    %d set steady state BW threshold to %llu\n",
                   (int)getpid(), (unsigned long long)job->ss_limit);
        }
    }
    return 0;
}

/* none or strided; fio's zbd (zoned block devices) is not run here. */
static int parse_zonemode(struct job *job, const char *value, char *err,
                          size_t err_size)
{
    if (!strcmp(value, "none")) {
        job->zonemode = ZONES_NONE;
    } else if (!strcmp(value, "strided")) {
        job->zonemode = ZONES_STRIDED;
    } else {
        return fail(err, err_size, "zonemode: expected none or strided, got "
                    "'%s'%s", value, !strcmp(value, "zbd")
                    ? " (coblk-bench does not drive zoned block devices)"
                    : "");
    }
    return 0;
}

/* fio's zones (3.33): none unless zonemode=strided, which needs a zone
 * size; the range is the size unless given; all in whole blocks. */
static int finish_zones(struct job *job, char *err, size_t err_size)
{
    if (job->zonemode == ZONES_NONE) {
        if (job->zonesize) {
            return fail(err, err_size, "%s: zonemode=none and zonesize= do "
                        "not go together", job->name);
        }
        return 0;
    }
    if (!job->zonesize) {
        return fail(err, err_size, "%s: zonemode=strided needs a zonesize=",
                    job->name);
    }
    job->zonerange = job->zonerange ? job->zonerange : job->zonesize;
    if (job->zonerange % job->bs_unit || job->zonesize % job->bs_unit ||
        job->zoneskip % job->bs_unit || job->zonerange < job->bs_max) {
        return fail(err, err_size, "%s: zonerange, zonesize and zoneskip "
                    "must be whole blocks of %llu bytes, the range at least "
                    "one I/O", job->name,
                    (unsigned long long)job->bs_unit);
    }
    return 0;
}

/* MODE[:N]: fio's modes ("readwrite" is "rw"), and its offset modifier:
 * a size, maybe negative, for sequential modes; a count for random ones. */
static int parse_rw(struct job *job, const char *value, char *err,
                    size_t err_size)
{
    size_t len = strcspn(value, ":");
    const char *modifier = value[len] ? value + len + 1 : NULL;
    bool alias = len == 9 && !strncmp(value, "readwrite", 9);
    unsigned mode = alias ? RW_RW : 0;

    while (!alias && rw_names[mode] &&
           (strlen(rw_names[mode]) != len ||
            strncmp(value, rw_names[mode], len))) {
        mode++;
    }
    if (!rw_names[mode]) {
        return fail(err, err_size, "rw: invalid value '%s'", value);
    }
    job->rw = (enum rw_mode)mode;
    job->seq_add = 0;
    job->ios_per_seek = 1;
    if (!modifier) {
        return 0;
    }
    uint64_t n;
    bool negative = *modifier == '-';
    if (bench_rw_is_random(job->rw)) {
        const char *unit;
        if (!parse_number(modifier, &n, &unit) || *unit || !n ||
            n > UINT32_MAX) {
            return fail(err, err_size, "rw: expected a count of I/Os after "
                        "'%.*s:', got '%s'", (int)len, value, modifier);
        }
        job->ios_per_seek = (unsigned)n;
    } else {
        if (!parse_size(modifier + negative, &n) || n > INT64_MAX) {
            return fail(err, err_size, "rw: expected a size after '%.*s:', "
                        "got '%s'", (int)len, value, modifier);
        }
        job->seq_add = negative ? -(int64_t)n : (int64_t)n;
    }
    return 0;
}

static int parse_rw_sequencer(struct job *job, const char *value, char *err,
                              size_t err_size)
{
    if (strcmp(value, "sequential") && strcmp(value, "identical")) {
        return fail(err, err_size, "rw_sequencer: expected sequential or "
                    "identical, got '%s'", value);
    }
    job->seek_identical = !strcmp(value, "identical");
    return 0;
}

static int parse_randseed(struct job *job, const char *value, char *err,
                          size_t err_size)
{
    const char *unit;

    if (!parse_number(value, &job->randseed, &unit) || *unit) {
        return fail(err, err_size, "randseed: invalid number '%s'", value);
    }
    job->randseed_given = true;
    return 0;
}

/* none|0 or mixed|1: reads, writes and trims reported as one "mixed"
 * direction (fio's "both", all four, is not done). */
static int parse_unified(struct job *job, const char *value, char *err,
                         size_t err_size)
{
    if (!strcmp(value, "none") || !strcmp(value, "0")) {
        job->unified_rw = false;
    } else if (!strcmp(value, "mixed") || !strcmp(value, "1")) {
        job->unified_rw = true;
    } else {
        return fail(err, err_size, "unified_rw_reporting: expected none or "
                    "mixed (0 or 1), got '%s'", value);
    }
    return 0;
}

static int parse_cpus_allowed(struct job *job, const char *value, char *err,
                              size_t err_size)
{
    char why[200];

    if (id_set_parse(value, &job->cpus, why, sizeof(why)) < 0) {
        return fail(err, err_size, "cpus_allowed: %s", why);
    }
    job->cpus_given = true;
    return 0;
}

/* cpumask=: the CPUs as the bits of a number. */
static int parse_cpumask(struct job *job, const char *value, char *err,
                         size_t err_size)
{
    char *end;
    errno = 0;
    unsigned long long mask = strtoull(value, &end, 0);

    if (errno || end == value || *end || !mask) {
        return fail(err, err_size, "cpumask: expected a non-zero bit mask, "
                    "got '%s'", value);
    }
    memset(&job->cpus, 0, sizeof(job->cpus));
    job->cpus.bits[0] = mask;
    job->cpus_given = true;
    return 0;
}

static int parse_cpus_policy(struct job *job, const char *value, char *err,
                             size_t err_size)
{
    if (strcmp(value, "shared") && strcmp(value, "split")) {
        return fail(err, err_size, "cpus_allowed_policy: expected shared or "
                    "split, got '%s'", value);
    }
    job->cpus_split = !strcmp(value, "split");
    return 0;
}

/* numa_cpu_nodes=: the CPUs of those nodes (found when the job runs). */
static int parse_numa_cpu_nodes(struct job *job, const char *value,
                                char *err, size_t err_size)
{
    char why[200];

    if (id_set_parse(value, &job->numa_nodes, why, sizeof(why)) < 0) {
        return fail(err, err_size, "numa_cpu_nodes: %s", why);
    }
    job->numa_given = true;
    return 0;
}

static int parse_numa_mem_policy(struct job *job, const char *value,
                                 char *err, size_t err_size)
{
    if (strlen(value) >= sizeof(job->mem_policy)) {
        return fail(err, err_size, "numa_mem_policy: value too long");
    }
    if (affinity_mem_policy(value, false, err, err_size) < 0) {
        return -1;
    }
    strcpy(job->mem_policy, value);
    return 0;
}

/* none|read|write|io|verify|all (0 none, 1 all), as fio. */
static int parse_continue(struct job *job, const char *value, char *err,
                          size_t err_size)
{
    static const struct {
        const char *name;
        unsigned bits;
    } kinds[] = {
        { "none", 0 }, { "0", 0 }, { "read", CONTINUE_READ },
        { "write", CONTINUE_WRITE },
        { "io", CONTINUE_READ | CONTINUE_WRITE },
        { "verify", CONTINUE_VERIFY },
        { "all", CONTINUE_READ | CONTINUE_WRITE | CONTINUE_VERIFY },
        { "1", CONTINUE_READ | CONTINUE_WRITE | CONTINUE_VERIFY },
    };

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (!strcmp(value, kinds[i].name)) {
            job->continue_on_error = kinds[i].bits;
            return 0;
        }
    }
    return fail(err, err_size, "continue_on_error: expected none, read, "
                "write, io, verify or all, got '%s'", value);
}

/* none|native|posix|keep|truncate (0 none, 1 posix), as fio. */
static int parse_fallocate(struct job *job, const char *value, char *err,
                           size_t err_size)
{
    static const struct {
        const char *name;
        enum falloc_mode mode;
    } modes[] = {
        { "native", FALLOC_NATIVE }, { "none", FALLOC_NONE },
        { "0", FALLOC_NONE }, { "posix", FALLOC_POSIX },
        { "1", FALLOC_POSIX }, { "keep", FALLOC_KEEP },
        { "truncate", FALLOC_TRUNCATE },
    };

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (!strcmp(value, modes[i].name)) {
            job->fallocate = modes[i].mode;
            return 0;
        }
    }
    return fail(err, err_size, "fallocate: expected none, native, posix, "
                "keep or truncate, got '%s'", value);
}

/* An errno by its name ("ENOSPC") or number; 0 if neither. */
static int errno_of(const char *text)
{
    char *end;
    long n = strtol(text, &end, 10);

    if (end != text && !*end) {
        return n > 0 && n < 4096 ? (int)n : 0;
    }
    for (int e = 1; e < 4096; e++) {
        const char *name = strerrorname_np(e);
        if (name && !strcmp(name, text)) {
            return e;
        }
    }
    return 0;
}

/* READ_LIST,WRITE_LIST,VERIFY_LIST, each of errnos joined by ':'. */
static int parse_ignore_error(struct job *job, const char *value, char *err,
                              size_t err_size)
{
    const char *p = value;

    for (int kind = 0; kind < 3 && p; kind++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        job->nr_ignore_error[kind] = 0;
        for (size_t at = 0; at < len;) {
            char name[32];
            size_t n = strcspn(p + at, ":,");
            n = n < len - at ? n : len - at;
            if (n >= sizeof(name)) {
                return fail(err, err_size, "ignore_error: unknown error in "
                            "'%s'", value);
            }
            memcpy(name, p + at, n);
            name[n] = '\0';
            int e = errno_of(name);
            if (!e || job->nr_ignore_error[kind] == MAX_IGNORE_ERRORS) {
                return fail(err, err_size, "ignore_error: %s '%s' (a name "
                            "such as ENOSPC, or a number; at most %d a "
                            "kind)", e ? "too many errors at" : "unknown error",
                            name, MAX_IGNORE_ERRORS);
            }
            job->ignore_error[kind][job->nr_ignore_error[kind]++] = e;
            at += n + 1;
        }
        p = comma ? comma + 1 : NULL;
    }
    if (p) {
        return fail(err, err_size, "ignore_error: at most three lists "
                    "(READ,WRITE,VERIFY), got '%s'", value);
    }
    return 0;
}

bool bench_error_ignored(const struct job *job, int kind, int err)
{
    static const unsigned bits[] = { CONTINUE_READ, CONTINUE_WRITE,
                                     CONTINUE_VERIFY };

    if (!(job->continue_on_error & bits[kind])) {
        return false;
    }
    if (!job->nr_ignore_error[kind]) {
        return err == EIO || err == EILSEQ;
    }
    for (unsigned i = 0; i < job->nr_ignore_error[kind]; i++) {
        if (job->ignore_error[kind][i] == err) {
            return true;
        }
    }
    return false;
}

/* buffered=1 is direct=0, and the other way round. */
static int parse_buffered(struct job *job, const char *value, char *err,
                          size_t err_size)
{
    bool buffered = true;

    if (parse_bool("buffered", value, &buffered, err, err_size) < 0) {
        return -1;
    }
    job->direct = !buffered;
    return 0;
}

/* zero_buffers, refill_buffers, scramble_buffers: set in the job, they
 * overrule what fio would otherwise choose (content.c). */
static int parse_zero_buffers(struct job *job, const char *value, char *err,
                              size_t err_size)
{
    job->zero_buffers_given = true;
    return parse_bool("zero_buffers", value, &job->zero_buffers, err,
                      err_size);
}

static int parse_refill_buffers(struct job *job, const char *value,
                                char *err, size_t err_size)
{
    job->refill_buffers_given = true;
    return parse_bool("refill_buffers", value, &job->refill_buffers, err,
                      err_size);
}

static int parse_latency_percentile(struct job *job, const char *value,
                                    char *err, size_t err_size)
{
    char *end;
    double pct = strtod(value, &end);

    if (end == value || *end || !(pct >= 0.0 && pct <= 100.0)) {
        return fail(err, err_size, "latency_percentile: '%s' is not a "
                    "percentage from 0 to 100", value);
    }
    job->latency_percentile = pct;
    return 0;
}

static int parse_scramble_buffers(struct job *job, const char *value,
                                  char *err, size_t err_size)
{
    job->scramble_buffers_given = true;
    return parse_bool("scramble_buffers", value, &job->scramble_buffers, err,
                      err_size);
}

/* fio's engines: those coblk-bench runs, or one line saying which it
 * runs ("ioengine=rbd: ..."). */
static int parse_engine(struct job *job, const char *value, char *err,
                        size_t err_size)
{
    for (unsigned i = 0; engine_names[i]; i++) {
        if (!strcmp(value, engine_names[i])) {
            job->engine = (enum engine)i;
            return 0;
        }
    }
    return fail(err, err_size, "ioengine=%s: not an engine coblk-bench runs; "
                "it runs io_uring, libaio, posixaio, sync, psync, vsync, "
                "pvsync and pvsync2 (all on coblk's io_uring engine, the "
                "synchronous ones at iodepth=1) and null", value);
}

#define OPTION(n, t, f, lo, hi, ch)                                          \
    { .name = n, .type = t, .offset = offsetof(struct job, f),               \
      .size = sizeof(((struct job *)0)->f), .min = lo, .max = hi,            \
      .choices = ch }
#define FUNC(n, fn) { .name = n, .type = OPT_FUNC, .parse = fn }
#define FLAG_FUNC(n, fn)                                                     \
    { .name = n, .type = OPT_FUNC, .parse = fn, .value_optional = true }
#define ACCEPTED(n, t, ch, bit)                                              \
    { .name = n, .type = t, .max = UINT32_MAX, .choices = ch,                \
      .no_field = true, .unsupported = bit }

static const struct opt options[] = {
    OPTION("name", OPT_STR, name, 0, 0, NULL),
    OPTION("filename", OPT_STR, filename, 0, 0, NULL),
    OPTION("description", OPT_STR, description, 0, 0, NULL),
    OPTION("directory", OPT_STR, directory, 0, 0, NULL),
    OPTION("filename_format", OPT_STR, filename_format, 0, 0, NULL),
    OPTION("unlink", OPT_BOOL, unlink, 0, 0, NULL),
    OPTION("fill_device", OPT_BOOL, fill_device, 0, 0, NULL),
    OPTION("fill_fs", OPT_BOOL, fill_device, 0, 0, NULL),
    OPTION("filesize", OPT_SIZE, filesize, 1, UINT64_MAX, NULL),
    FUNC("fallocate", parse_fallocate),
    FLAG_FUNC("buffered", parse_buffered),
    FUNC("size", parse_job_size),
    OPTION("offset", OPT_SIZE, offset, 0, UINT64_MAX, NULL),
    OPTION("io_size", OPT_SIZE, io_size, 0, UINT64_MAX, NULL),
    OPTION("offset_increment", OPT_SIZE, offset_increment, 0, UINT64_MAX,
           NULL),
    OPTION("io_limit", OPT_SIZE, io_size, 0, UINT64_MAX, NULL),
    FUNC("zonemode", parse_zonemode),
    OPTION("zonerange", OPT_SIZE, zonerange, 0, UINT64_MAX, NULL),
    OPTION("zonesize", OPT_SIZE, zonesize, 0, UINT64_MAX, NULL),
    OPTION("zoneskip", OPT_SIZE, zoneskip, 0, UINT64_MAX, NULL),
    FUNC("bs", parse_bs),
    FUNC("blocksize", parse_bs),
    FUNC("bsrange", parse_bsrange),
    FUNC("blocksize_range", parse_bsrange),
    FUNC("bssplit", parse_bssplit),
    FUNC("rw", parse_rw),
    FUNC("readwrite", parse_rw),
    FUNC("rw_sequencer", parse_rw_sequencer),
    OPTION("rwmixread", OPT_UINT, rwmixread, 0, 100, NULL),
    FUNC("rwmixwrite", parse_rwmixwrite),
    OPTION("iodepth", OPT_UINT, iodepth, 1, 65536, NULL),
    OPTION("iodepth_batch_submit", OPT_UINT, iodepth_batch_submit, 0, 65536,
           NULL),
    OPTION("iodepth_batch", OPT_UINT, iodepth_batch_submit, 0, 65536, NULL),
    OPTION("iodepth_batch_complete_min", OPT_UINT, iodepth_batch_complete_min,
           0, 65536, NULL),
    OPTION("iodepth_batch_complete", OPT_UINT, iodepth_batch_complete_min, 0,
           65536, NULL),
    OPTION("iodepth_batch_complete_max", OPT_UINT, iodepth_batch_complete_max,
           0, 65536, NULL),
    OPTION("numjobs", OPT_UINT, numjobs, 1, 4096, NULL),
    OPTION("runtime", OPT_TIME, runtime_ns, 0, UINT64_MAX, NULL),
    OPTION("timeout", OPT_TIME, runtime_ns, 0, UINT64_MAX, NULL),
    OPTION("time_based", OPT_BOOL, time_based, 0, 0, NULL),
    OPTION("ramp_time", OPT_TIME, ramp_time_ns, 0, UINT64_MAX, NULL),
    OPTION("startdelay", OPT_TIME, startdelay_ns, 0, UINT64_MAX, NULL),
    OPTION("direct", OPT_BOOL, direct, 0, 0, NULL),
    FUNC("ioengine", parse_engine),
    /* coblk always registers its files, uses the non-vectored read and
     * write for a request of one buffer, and reaps completions from the
     * ring in user space: fio's options for these need no setting. */
    ACCEPTED("registerfiles", OPT_BOOL, NULL, 0),
    /* coblk-bench runs every job instance as a thread (fio: a process
     * unless thread=1; fio 3.33 also takes "threads"). */
    ACCEPTED("thread", OPT_BOOL, NULL, 0),
    ACCEPTED("threads", OPT_BOOL, NULL, 0),
    ACCEPTED("nonvectored", OPT_ENUM, nonvectored_values, 0),
    ACCEPTED("userspace_reap", OPT_BOOL, NULL, 0),
    /* fio's way to verify without a log of the writes (it replays their
     * offsets); coblk keeps a sequence number per block instead, and
     * verifies the same data either way. */
    ACCEPTED("experimental_verify", OPT_BOOL, NULL, 0),
    /* fio can hand submission to a thread of its own; coblk submits from
     * the job's thread in both modes (its queue batches instead). */
    ACCEPTED("io_submit_mode", OPT_ENUM, submit_modes, 0),
    /* coblk lays files out one after another either way (the files are
     * the same), and verifies on the job's thread rather than on fio's
     * verify threads (the same blocks, the same checks). */
    ACCEPTED("create_serialize", OPT_BOOL, NULL, 0),
    ACCEPTED("verify_async", OPT_UINT, NULL, 0),
    ACCEPTED("verify_async_cpus", OPT_STR, NULL, 0),
    /* fio makes the file when the job opens it; coblk makes every file
     * before the jobs start. */
    ACCEPTED("create_on_open", OPT_BOOL, NULL, UNSUPPORTED_CREATE_ON_OPEN),
    OPTION("fixedbufs", OPT_BOOL, fixedbufs, 0, 0, NULL),
    ACCEPTED("sqthread_poll", OPT_BOOL, NULL, UNSUPPORTED_SQTHREAD_POLL),
    ACCEPTED("sqthread_poll_cpu", OPT_UINT, NULL,
             UNSUPPORTED_SQTHREAD_POLL_CPU),
    ACCEPTED("hipri", OPT_BOOL, NULL, UNSUPPORTED_HIPRI),
    FLAG_FUNC("error_dump", parse_error_dump),
    FLAG_FUNC("gtod_reduce", parse_gtod_reduce),
    OPTION("disable_lat", OPT_BOOL, disable_lat, 0, 0, NULL),
    OPTION("disable_clat", OPT_BOOL, disable_clat, 0, 0, NULL),
    OPTION("disable_slat", OPT_BOOL, disable_slat, 0, 0, NULL),
    OPTION("disable_bw_measurement", OPT_BOOL, disable_bw, 0, 0, NULL),
    OPTION("disable_bw", OPT_BOOL, disable_bw, 0, 0, NULL),
    OPTION("norandommap", OPT_BOOL, norandommap, 0, 0, NULL),
    OPTION("randrepeat", OPT_BOOL, randrepeat, 0, 0, NULL),
    FUNC("randseed", parse_randseed),
    FUNC("random_distribution", parse_distribution),
    OPTION("random_generator", OPT_ENUM, random_generator, 0, 0,
           generator_names),
    FUNC("rate", parse_rate),
    FUNC("rate_iops", parse_rate_iops),
    FUNC("ignore_error", parse_ignore_error),
    FUNC("blockalign", parse_blockalign),
    FUNC("ba", parse_blockalign),
    FUNC("ratemin", parse_ratemin),
    FUNC("rate_min", parse_ratemin),
    FUNC("rate_iops_min", parse_rate_iops_min),
    OPTION("ratecycle", OPT_UINT, ratecycle_ms, 1, UINT32_MAX, NULL),
    OPTION("rate_cycle", OPT_UINT, ratecycle_ms, 1, UINT32_MAX, NULL),
    OPTION("rate_process", OPT_ENUM, rate_process, 0, 0, rate_processes),
    OPTION("fsync", OPT_UINT, fsync, 0, UINT32_MAX, NULL),
    OPTION("end_fsync", OPT_BOOL, end_fsync, 0, 0, NULL),
    FUNC("verify", parse_verify),
    OPTION("do_verify", OPT_BOOL, do_verify, 0, 0, NULL),
    OPTION("verify_only", OPT_BOOL, verify_only, 0, 0, NULL),
    OPTION("verify_fatal", OPT_BOOL, verify_fatal, 0, 0, NULL),
    OPTION("verify_backlog", OPT_UINT, verify_backlog, 0, 1u << 20, NULL),
    FUNC("verify_pattern", parse_verify_pattern),
    FUNC("buffer_pattern", parse_buffer_pattern),
    FLAG_FUNC("zero_buffers", parse_zero_buffers),
    FLAG_FUNC("refill_buffers", parse_refill_buffers),
    FLAG_FUNC("scramble_buffers", parse_scramble_buffers),
    OPTION("buffer_compress_percentage", OPT_UINT, compress_pct, 0, 100,
           NULL),
    OPTION("buffer_compress_chunk", OPT_SIZE, compress_chunk, 0, UINT32_MAX,
           NULL),
    OPTION("dedupe_percentage", OPT_UINT, dedupe_pct, 0, 100, NULL),
    OPTION("dedupe_mode", OPT_ENUM, dedupe_mode, 0, 0, dedupe_modes),
    OPTION("dedupe_working_set_percentage", OPT_UINT,
           dedupe_working_set_pct, 0, 100, NULL),
    OPTION("dedupe_global", OPT_BOOL, dedupe_global, 0, 0, NULL),
    OPTION("latency_target", OPT_TIME_US, latency_target_ns, 0, UINT64_MAX,
           NULL),
    OPTION("latency_window", OPT_TIME_US, latency_window_ns, 0, UINT64_MAX,
           NULL),
    FUNC("latency_percentile", parse_latency_percentile),
    OPTION("latency_run", OPT_BOOL, latency_run, 0, 0, NULL),
    OPTION("verify_interval", OPT_SIZE, verify_interval, 512, UINT32_MAX,
           NULL),
    OPTION("verify_dump", OPT_BOOL, verify_dump, 0, 0, NULL),
    OPTION("group_reporting", OPT_BOOL, group_reporting, 0, 0, NULL),
    FUNC("unified_rw_reporting", parse_unified),
    FUNC("percentile_list", parse_percentiles),
    OPTION("slat_percentiles", OPT_BOOL, slat_percentiles, 0, 0, NULL),
    OPTION("clat_percentiles", OPT_BOOL, clat_percentiles, 0, 0, NULL),
    OPTION("lat_percentiles", OPT_BOOL, lat_percentiles, 0, 0, NULL),
    FLAG_FUNC("write_lat_log", parse_lat_log),
    FLAG_FUNC("write_bw_log", parse_bw_log),
    FLAG_FUNC("write_iops_log", parse_iops_log),
    OPTION("log_avg_msec", OPT_UINT, log_avg_msec, 0, UINT32_MAX, NULL),
    OPTION("write_iolog", OPT_STR, write_iolog, 0, 0, NULL),
    OPTION("read_iolog", OPT_STR, read_iolog, 0, 0, NULL),
    OPTION("replay_redirect", OPT_STR, replay_redirect, 0, 0, NULL),
    OPTION("replay_no_stall", OPT_BOOL, replay_no_stall, 0, 0, NULL),
    OPTION("replay_time_scale", OPT_UINT, replay_time_scale, 1, UINT32_MAX,
           NULL),
    OPTION("replay_align", OPT_SIZE, replay_align, 0, UINT64_MAX, NULL),
    OPTION("replay_scale", OPT_UINT, replay_scale, 1, UINT64_MAX, NULL),
    FUNC("replay_skip", parse_replay_skip),
    ACCEPTED("read_iolog_chunked", OPT_BOOL, NULL, 0),
    OPTION("log_offset", OPT_BOOL, log_offset, 0, 0, NULL),
    OPTION("per_job_logs", OPT_BOOL, per_job_logs, 0, 0, NULL),
    /* Logs are kept as text (fio keeps them compressed in memory: the same
     * files come out); stored compressed, in fio's .fz chunks. */
    OPTION("log_compression", OPT_SIZE, log_compression, 0, UINT64_MAX,
           NULL),
    ACCEPTED("log_compression_cpus", OPT_STR, NULL, 0),
    OPTION("log_store_compressed", OPT_BOOL, log_store_compressed, 0, 0,
           NULL),
    FUNC("ss", parse_steady),
    FUNC("steadystate", parse_steady),
    OPTION("ss_dur", OPT_TIME, ss_dur_ns, 0, UINT64_MAX, NULL),
    OPTION("steadystate_duration", OPT_TIME, ss_dur_ns, 0, UINT64_MAX, NULL),
    OPTION("ss_ramp", OPT_TIME, ss_ramp_ns, 0, UINT64_MAX, NULL),
    OPTION("steadystate_ramp_time", OPT_TIME, ss_ramp_ns, 0, UINT64_MAX,
           NULL),
    OPTION("stonewall", OPT_BOOL, stonewall, 0, 0, NULL),
    OPTION("wait_for_previous", OPT_BOOL, stonewall, 0, 0, NULL),
    OPTION("new_group", OPT_BOOL, new_group, 0, 0, NULL),
    OPTION("wait_for", OPT_STR, wait_for, 0, 0, NULL),
    OPTION("exitall", OPT_BOOL, exitall, 0, 0, NULL),
    OPTION("serialize_overlap", OPT_BOOL, serialize_overlap, 0, 0, NULL),
    OPTION("exit_what", OPT_ENUM, exit_what, 0, 0, exit_whats),
    FUNC("continue_on_error", parse_continue),
    FUNC("cpus_allowed", parse_cpus_allowed),
    FUNC("cpumask", parse_cpumask),
    FUNC("cpus_allowed_policy", parse_cpus_policy),
    FUNC("numa_cpu_nodes", parse_numa_cpu_nodes),
    FUNC("numa_mem_policy", parse_numa_mem_policy),
    OPTION("log_prio", OPT_BOOL, log_prio, 0, 0, NULL),
    FUNC("prio", parse_prio),
    FUNC("prioclass", parse_prioclass),
    /* Options of the io_uring and libaio engines (bench_job_finish). */
    FUNC("cmdprio_percentage", parse_cmdprio_percentage),
    FUNC("cmdprio_class", parse_cmdprio_class),
    FUNC("cmdprio", parse_cmdprio_level),
    FUNC("cmdprio_bssplit", parse_cmdprio_bssplit),
    OPTION("loops", OPT_UINT, loops, 1, UINT32_MAX, NULL),
    OPTION("number_ios", OPT_UINT, number_ios, 0, UINT64_MAX, NULL),
    OPTION("flow_id", OPT_UINT, flow_id, 0, UINT32_MAX, NULL),
    OPTION("flow", OPT_UINT, flow, 0, FLOW_MAX_WEIGHT, NULL),
    OPTION("flow_sleep", OPT_UINT, flow_sleep, 0, UINT32_MAX, NULL),
    OPTION("thinktime", OPT_TIME_US, thinktime_ns, 0, UINT64_MAX, NULL),
    OPTION("thinktime_spin", OPT_TIME_US, thinktime_spin_ns, 0, UINT64_MAX,
           NULL),
    OPTION("thinktime_blocks", OPT_UINT, thinktime_blocks, 0, UINT32_MAX,
           NULL),
    OPTION("thinktime_blocks_type", OPT_ENUM, thinktime_blocks_type, 0, 0,
           think_types),
    OPTION("thinktime_iotime", OPT_TIME, thinktime_iotime_ns, 0, UINT64_MAX,
           NULL),
};

static const struct opt *find_option(const char *name)
{
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        if (!strcmp(options[i].name, name)) {
            return &options[i];
        }
    }
    return NULL;
}

/* A value as a number: a boolean's 0 or 1, a choice's index, a size, a
 * count or a time in ns within the option's range. */
static int parse_value(const struct opt *o, const char *name,
                       const char *value, uint64_t *number, char *err,
                       size_t err_size)
{
    const char *unit;
    bool on = false;

    switch (o->type) {
    case OPT_BOOL:
        if (parse_bool(name, value, &on, err, err_size) < 0) {
            return -1;
        }
        *number = on;
        return 0;
    case OPT_ENUM:
        for (uint64_t i = 0; o->choices[i]; i++) {
            if (!strcmp(value, o->choices[i])) {
                *number = i;
                return 0;
            }
        }
        return fail(err, err_size, "%s: invalid value '%s'", name, value);
    case OPT_SIZE:
        if (!parse_size(value, number)) {
            return fail(err, err_size, "%s: invalid size '%s'", name, value);
        }
        break;
    case OPT_UINT:
        if (!parse_number(value, number, &unit) || *unit) {
            return fail(err, err_size, "%s: invalid number '%s'", name,
                        value);
        }
        break;
    case OPT_TIME:
    case OPT_TIME_US:
        if (!parse_time_ns(value, o->type == OPT_TIME ? 1000000000 : 1000,
                           number)) {
            return fail(err, err_size, "%s: invalid time '%s'", name, value);
        }
        break;
    case OPT_STR:
    case OPT_FUNC:
        return fail(err, err_size, "%s: not a number", name);
    }
    if (*number < o->min || *number > o->max) {
        return fail(err, err_size, "%s: %s out of range [%llu, %llu]", name,
                    value, (unsigned long long)o->min,
                    (unsigned long long)o->max);
    }
    return 0;
}

static void store(const struct opt *o, struct job *job, uint64_t number)
{
    char *field = (char *)job + o->offset;

    if (o->no_field) {
        /* A boolean that is off asks for what coblk does anyway. */
        bool on = o->type != OPT_BOOL || number;
        job->unsupported = on ? job->unsupported | o->unsupported
                              : job->unsupported & ~o->unsupported;
    } else if (o->size == sizeof(bool)) {
        *(bool *)field = number;
    } else if (o->size == sizeof(unsigned)) {
        *(unsigned *)field = (unsigned)number;
    } else {
        *(uint64_t *)field = number;
    }
}

static int set_option(struct job *job, const char *name, const char *value,
                      char *err, size_t err_size)
{
    const struct opt *o = find_option(name);
    uint64_t number = 0;

    if (!o) {
        return fail(err, err_size, "unrecognized option '--%s'", name);
    }
    if (o->type == OPT_FUNC) {
        if (!value && !o->value_optional) {
            return fail(err, err_size, "option '%s' needs a value", name);
        }
        return o->parse(job, value, err, err_size);
    }
    if (!value && o->type != OPT_BOOL) {
        return fail(err, err_size, "option '%s' needs a value", name);
    }
    if (o->type == OPT_STR && o->no_field) {
        store(o, job, 1);               /* any text: nothing to keep */
        return 0;
    }
    if (o->type == OPT_STR) {
        if (strlen(value) >= o->size) {
            return fail(err, err_size, "%s: value too long", name);
        }
        strcpy((char *)job + o->offset, value);
        return 0;
    }
    if (parse_value(o, name, value, &number, err, err_size) < 0) {
        return -1;
    }
    store(o, job, number);
    return 0;
}

/* ---- options as given -------------------------------------------------------- */

bool bench_given_next(const struct job *job, size_t *pos, const char **name,
                      const char **value)
{
    if (*pos >= job->given_len) {
        return false;
    }
    *name = job->given + *pos;
    *value = *name + strlen(*name) + 1;
    *pos = (size_t)(*value + strlen(*value) + 1 - job->given);
    return true;
}

static void forget_given(struct job *job, const char *name)
{
    size_t pos = 0, at;
    const char *n, *v;

    while (at = pos, bench_given_next(job, &pos, &n, &v)) {
        if (!strcmp(n, name)) {
            memmove(job->given + at, job->given + pos, job->given_len - pos);
            job->given_len -= pos - at;
            return;
        }
    }
}

static int remember_given(struct job *job, const char *name,
                          const char *value, char *err, size_t err_size)
{
    size_t n = strlen(name) + 1, v = strlen(value) + 1;

    forget_given(job, name);
    if (job->given_len + n + v > sizeof(job->given)) {
        return fail(err, err_size, "%s: too many options for one job",
                    job->name);
    }
    memcpy(job->given + job->given_len, name, n);
    memcpy(job->given + job->given_len + n, value, v);
    job->given_len += n + v;
    return 0;
}

int bench_set_option(struct job *job, const char *name, const char *value,
                     char *err, size_t err_size)
{
    if (set_option(job, name, value, err, err_size) < 0) {
        return -1;
    }
    return value ? remember_given(job, name, value, err, err_size) : 0;
}

/* ---- command line and job files ---------------------------------------------- */

static struct job *add_job(struct bench_config *cfg, const char *name,
                           char *err, size_t err_size)
{
    struct job *jobs = realloc(cfg->jobs, (cfg->nr_jobs + 1) * sizeof(*jobs));
    if (!jobs) {
        fail(err, err_size, "out of memory");
        return NULL;
    }
    cfg->jobs = jobs;
    struct job *job = &jobs[cfg->nr_jobs++];
    *job = cfg->global;
    job->given_len = 0;         /* the globals' are "global options" */
    snprintf(job->name, sizeof(job->name), "%s", name);
    return job;
}

static int parse_formats(struct bench_config *cfg, const char *value,
                         char *err, size_t err_size)
{
    /* In the order of the OUTPUT_* bits. */
    static const char *const formats[] = { "normal", "json", "json+",
                                           "terse", NULL };
    char bad[256];

    if (parse_name_set(value, formats, &cfg->formats, bad, sizeof(bad)) <
        0) {
        return fail(err, err_size, "output-format: expected normal, json, "
                    "json+ or terse, got '%s'", bad);
    }
    if (!cfg->formats) {
        return fail(err, err_size, "output-format: empty");
    }
    return 0;
}

static int parse_eta(struct bench_config *cfg, const char *value, char *err,
                     size_t err_size)
{
    static const char *const modes[] = { "auto", "always", "never" };

    for (int i = 0; i < 3; i++) {
        if (value && !strcmp(value, modes[i])) {
            cfg->eta = (enum eta_mode)i;
            return 0;
        }
    }
    return fail(err, err_size, "eta: expected auto, always or never, got "
                "'%s'", value ? value : "");
}

static int parse_interval(const char *name, const char *value, uint64_t min,
                          uint64_t *out, char *err, size_t err_size)
{
    uint64_t ns;

    if (!value || !parse_time_ns(value, 1000000000, &ns) || ns < min) {
        return fail(err, err_size, "%s: expected a time of at least %llums, "
                    "got '%s'", name, (unsigned long long)(min / 1000000),
                    value ? value : "");
    }
    *out = ns;
    return 0;
}

static int add_section(struct bench_config *cfg, const char *value,
                       char *err, size_t err_size)
{
    char **sections = realloc(cfg->sections,
                              (cfg->nr_sections + 1) * sizeof(*sections));
    if (!sections) {
        return fail(err, err_size, "out of memory");
    }
    cfg->sections = sections;
    if (!value || !*value ||
        !(sections[cfg->nr_sections] = strdup(value))) {
        return fail(err, err_size, "section: needs a job name");
    }
    cfg->nr_sections++;
    return 0;
}

static int set_path(char *field, size_t size, const char *name,
                    const char *value, char *err, size_t err_size)
{
    if (!value || !*value || strlen(value) >= size) {
        return fail(err, err_size, "%s: needs a file name", name);
    }
    strcpy(field, value);
    return 0;
}

/* --debug=LIST: fio's categories are checked; coblk-bench has no debug
 * output, and says so once. */
static int parse_debug(const char *value, char *err, size_t err_size)
{
    static const char *const kinds[] = {
        "process", "file", "io", "mem", "blktrace", "verify", "random",
        "parse", "diskutil", "job", "mutex", "profile", "time", "net",
        "rate", "compress", "steadystate", "helperthread", "zbd", "all",
        NULL,
    };
    enum { PARSE = 7, ALL = 19 };
    unsigned bits;
    char bad[256];

    if (parse_name_set(value, kinds, &bits, bad, sizeof(bad)) < 0) {
        return fail(err, err_size, "debug: unknown category '%s'", bad);
    }
    debug_parse |= (bits & (1u << PARSE | 1u << ALL)) != 0;
    return 0;
}

/* Options of the program rather than of a job: 1 if name was one (0 on
 * success inside), 0 if not, -1 on a bad value. */
static int global_flag(struct bench_config *cfg, const char *name,
                       const char *value, char *err, size_t err_size)
{
    int ret;

    if (!strcmp(name, "output-format")) {
        ret = parse_formats(cfg, value, err, err_size);
    } else if (!strcmp(name, "minimal")) {
        cfg->formats = OUTPUT_TERSE;
        ret = 0;
    } else if (!strcmp(name, "terse-version")) {
        ret = value && !strcmp(value, "3") ? 0
              : fail(err, err_size, "terse-version: only 3 is supported");
    } else if (!strcmp(name, "output")) {
        ret = set_path(cfg->output, sizeof(cfg->output), name, value, err,
                       err_size);
    } else if (!strcmp(name, "plot")) {
        ret = set_path(cfg->plot, sizeof(cfg->plot), name, value, err,
                       err_size);
    } else if (!strcmp(name, "eta")) {
        ret = parse_eta(cfg, value, err, err_size);
    } else if (!strcmp(name, "eta-newline")) {
        ret = parse_interval(name, value, 100000000, &cfg->eta_newline_ns,
                             err, err_size);
    } else if (!strcmp(name, "eta-interval")) {
        ret = parse_interval(name, value, 100000000, &cfg->eta_interval_ns,
                             err, err_size);
    } else if (!strcmp(name, "status-interval")) {
        ret = parse_interval(name, value, 1000000000,
                             &cfg->status_interval_ns, err, err_size);
    } else if (!strcmp(name, "section")) {
        ret = add_section(cfg, value, err, err_size);
    } else if (!strcmp(name, "max-jobs")) {
        /* fio 3.33 takes it and grows its job table as needed: so does
         * coblk-bench, which has no table to size. */
        uint64_t n;
        const char *unit;
        ret = value && parse_number(value, &n, &unit) && !*unit && n
                  ? 0 : fail(err, err_size, "max-jobs: expected a number "
                             "above 0, got '%s'", value ? value : "");
    } else if (!strcmp(name, "readonly")) {
        cfg->readonly = true;
        ret = 0;
    } else if (!strcmp(name, "debug")) {
        ret = parse_debug(value, err, err_size);
    } else if (!strcmp(name, "parse-only")) {
        cfg->parse_only = true;
        ret = 0;
    } else if (!strcmp(name, "append-terse")) {
        cfg->append_terse = true;
        ret = 0;
    } else if (!strcmp(name, "showcmd")) {
        cfg->show_cmd = true;
        ret = 0;
    } else if (!strcmp(name, "warnings-fatal")) {
        cfg->warnings_fatal = true;
        ret = 0;
    } else if (!strcmp(name, "help")) {
        cfg->show_help = true;
        ret = 0;
    } else if (!strcmp(name, "version")) {
        cfg->show_version = true;
        ret = 0;
    } else if (!strcmp(name, "inflate-log")) {
        ret = set_path(cfg->inflate_log, sizeof(cfg->inflate_log), name,
                       value, err, err_size);
    } else {
        return 0;
    }
    return ret < 0 ? -1 : 1;
}

/* Edit distance between a and b, at most 32 characters each (longer: a
 * large number). */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned row[33];

    if (la > 32 || lb > 32) {
        return UINT32_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = (unsigned)j;
    }
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The known option closest to name, if close enough to be a typo. */
static const char *closest_option(const char *name)
{
    const char *best = NULL;
    unsigned best_distance = strlen(name) < 6 ? 2 : 3;  /* excluded */

    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        unsigned d = edit_distance(name, options[i].name);
        if (d < best_distance) {
            best = options[i].name;
            best_distance = d;
        }
    }
    return best;
}

/* An option nobody knows: named where it was given, with a guess. */
static int unknown_option(const char *name, const char *where, char *err,
                          size_t err_size)
{
    const char *guess = closest_option(name);
    char hint[96] = "";

    if (guess) {
        snprintf(hint, sizeof(hint), " (did you mean %s%s?)",
                 where ? "" : "--", guess);
    }
    if (where) {
        return fail(err, err_size, "%s: unknown option '%s'%s", where, name,
                    hint);
    }
    return fail(err, err_size, "unrecognized option '--%s'%s", name, hint);
}

/* Adds " --NAME[=VALUE]" to the command line --showcmd prints. */
static int cmd_add(struct bench_config *cfg, const char *name,
                   const char *value, char *err, size_t err_size)
{
    size_t n = strlen(name) + (value ? strlen(value) : 0) + 5;
    char *cmd = realloc(cfg->cmd, cfg->cmd_len + n);

    if (!cmd) {
        return fail(err, err_size, "out of memory");
    }
    cfg->cmd = cmd;
    cfg->cmd_len += (size_t)snprintf(cmd + cfg->cmd_len, n, " --%s%s%s", name,
                                     value ? "=" : "", value ? value : "");
    return 0;
}

/* One "name[=value]" for the current job (or the globals), given at where
 * ("file:line") in a job file, NULL on the command line.  On the command
 * line --name starts a job; in a job file the section does, and name=
 * renames it, as fio. */
static int apply(struct bench_config *cfg, struct job *job,
                 const char *where, char *item, char *err, size_t err_size)
{
    char *eq = strchr(item, '=');
    const char *value = NULL;
    bool in_file = where != NULL;

    if (eq) {
        *eq = '\0';
        value = eq + 1;
    }
    int flag = global_flag(cfg, item, value, err, err_size);
    if (flag) {
        return flag < 0 ? -1 : 0;
    }
    if (!find_option(item)) {
        return unknown_option(item, where, err, err_size);
    }
    if (cmd_add(cfg, item, value, err, err_size) < 0) {
        return -1;
    }
    if (!strcmp(item, "name") && !in_file) {
        job = add_job(cfg, value ? value : "", err, err_size);
        if (!job) {
            return -1;
        }
        return value ? remember_given(job, item, value, err, err_size) : 0;
    }
    return bench_set_option(job ? job : &cfg->global, item, value, err,
                            err_size);
}

/* Expands ${VAR} from the environment into out. */
static int expand_env(const char *line, char *out, size_t size)
{
    size_t used = 0;

    while (*line) {
        const char *var = NULL;
        size_t var_len = 0;
        if (line[0] == '$' && line[1] == '{' && strchr(line, '}')) {
            var = line + 2;
            var_len = (size_t)(strchr(line, '}') - var);
        }
        if (var) {
            char name[256];
            snprintf(name, sizeof(name), "%.*s", (int)var_len, var);
            const char *value = getenv(name);
            size_t len = value ? strlen(value) : 0;
            if (used + len >= size) {
                return -1;
            }
            memcpy(out + used, value ? value : "", len);
            used += len;
            line = var + var_len + 1;
        } else {
            if (used + 1 >= size) {
                return -1;
            }
            out[used++] = *line++;
        }
    }
    out[used] = '\0';
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) {
        *--end = '\0';
    }
    return s;
}

/* Cuts a ';' or '#' comment: at the start of the line, or after a space
 * (so that a value such as a quoted pattern may hold one). */
static void strip_comment(char *line)
{
    for (char *c = line; *c; c++) {
        if ((*c == ';' || *c == '#') &&
            (c == line || isspace((unsigned char)c[-1]))) {
            *c = '\0';
            return;
        }
    }
}

/* Where a job file's lines go: the section being read (NULL: [global] or
 * none yet), and how deep in includes. */
struct job_file_state {
    struct job *job;
    unsigned depth;
};

#define INCLUDE_DEPTH_MAX 16

static int parse_job_stream(struct bench_config *cfg, FILE *f,
                            const char *path, struct job_file_state *st,
                            char *err, size_t err_size);

/* "include FILE": FILE read as if its lines stood here; it may not start
 * sections.  As fio finds it: as named, else beside the including file. */
static int include_file(struct bench_config *cfg, const char *from,
                        const char *name, struct job_file_state *st,
                        char *err, size_t err_size)
{
    char path[4096];
    const char *slash = strrchr(from, '/');
    int dir_len = access(name, F_OK) && slash ? (int)(slash - from + 1) : 0;

    if ((size_t)snprintf(path, sizeof(path), "%.*s%s", dir_len, from, name) >=
        sizeof(path)) {
        return fail(err, err_size, "include %s: path too long", name);
    }
    if (st->depth >= INCLUDE_DEPTH_MAX) {
        return fail(err, err_size, "include %s: more than %d includes deep "
                    "(does it include itself?)", path, INCLUDE_DEPTH_MAX);
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        return fail(err, err_size, "unable to open '%s' job file: %s", path,
                    strerror(errno));
    }
    st->depth++;
    int ret = parse_job_stream(cfg, f, path, st, err, err_size);
    st->depth--;
    fclose(f);
    return ret;
}

/* "key = value" -> "key=value", in place. */
static void join_key_value(char *text)
{
    char *eq = strchr(text, '=');

    if (eq) {
        *eq = '\0';
        char *key = trim(text), *value = trim(eq + 1);
        memmove(text, key, strlen(key) + 1);
        size_t len = strlen(text);
        text[len] = '=';
        memmove(text + len + 1, value, strlen(value) + 1);
    }
}

/* One line of a job file (comments stripped, trimmed, not empty). */
static int parse_job_line(struct bench_config *cfg, char *text,
                          const char *path, int lineno,
                          struct job_file_state *st, char *err,
                          size_t err_size)
{
    if (*text == '[') {
        char *close = strchr(text, ']');
        if (!close) {
            return fail(err, err_size, "%s:%d: missing ']'", path, lineno);
        }
        if (st->depth) {
            return fail(err, err_size, "%s:%d: no new sections in included "
                        "files", path, lineno);
        }
        *close = '\0';
        bool global = !strcmp(text + 1, "global");
        st->job = global ? NULL : add_job(cfg, text + 1, err, err_size);
        if (!global && !st->job) {
            return -1;
        }
        return global ? 0 : cmd_add(cfg, "name", text + 1, err, err_size);
    }
    if (!strncmp(text, "include", 7) && isspace((unsigned char)text[7])) {
        return include_file(cfg, path, trim(text + 8), st, err, err_size);
    }
    join_key_value(text);
    char where[4200];
    snprintf(where, sizeof(where), "%s:%d", path, lineno);
    if (apply(cfg, st->job, where, text, err, err_size) < 0) {
        size_t len = strlen(err);
        if (strncmp(err, where, strlen(where))) {
            snprintf(err + len, err_size - len, " (%s)", where);
        }
        return -1;
    }
    return 0;
}

static int parse_job_stream(struct bench_config *cfg, FILE *f,
                            const char *path, struct job_file_state *st,
                            char *err, size_t err_size)
{
    char raw[8192], line[8192];
    int lineno = 0;

    while (fgets(raw, sizeof(raw), f)) {
        lineno++;
        if (expand_env(raw, line, sizeof(line)) < 0) {
            return fail(err, err_size, "%s:%d: line too long", path, lineno);
        }
        strip_comment(line);
        char *text = trim(line);
        if (*text && parse_job_line(cfg, text, path, lineno, st, err,
                                    err_size) < 0) {
            return -1;
        }
    }
    return 0;
}

/* A job file, or "-": one read from standard input, as fio reads it. */
static int parse_job_file(struct bench_config *cfg, const char *path,
                          char *err, size_t err_size)
{
    struct job_file_state st = { 0 };
    bool from_stdin = !strcmp(path, "-");
    FILE *f = from_stdin ? stdin : fopen(path, "r");

    if (!f) {
        return fail(err, err_size, "failed to open job file '%s': %s", path,
                    strerror(errno));
    }
    int ret = parse_job_stream(cfg, f, from_stdin ? "<stdin>" : path, &st,
                               err, err_size);
    if (!from_stdin) {
        fclose(f);
    }
    return ret;
}

/* Settings that depend on others, and combinations that cannot work. */
uint64_t bench_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The directions whose sizes count: those the job does (reads too when
 * it verifies what it writes). */
static bool sizes_count(const struct job *job, int dir)
{
    switch (job->rw) {
    case RW_READ:
    case RW_RANDREAD:
        return dir == 0;
    case RW_WRITE:
    case RW_RANDWRITE:
        return dir == 1 || (dir == 0 && job->verify);
    case RW_TRIM:
    case RW_RANDTRIM:
        return dir == 2;
    case RW_TRIMWRITE:
    case RW_RANDTRIMWRITE:
        return dir != 0;
    default:
        return dir != 2;
    }
}

/* Each direction's smallest and largest size, and the unit its sizes are
 * multiples of (a split's greatest common divisor, a range's minimum). */
static uint64_t finish_direction(struct job *job, int d)
{
    if (!job->nr_bssplit[d]) {
        return job->dir_bs_min[d];
    }
    uint64_t unit = job->bssplit[d][0].bs;
    job->dir_bs_min[d] = job->dir_bs_max[d] = unit;
    for (unsigned i = 1; i < job->nr_bssplit[d]; i++) {
        uint64_t bs = job->bssplit[d][i].bs;
        job->dir_bs_min[d] = bs < job->dir_bs_min[d] ? bs : job->dir_bs_min[d];
        job->dir_bs_max[d] = bs > job->dir_bs_max[d] ? bs : job->dir_bs_max[d];
        unit = bench_gcd(unit, bs);
    }
    return unit;
}

/* bs_min, bs_max and the unit blocks are counted in: the greatest common
 * divisor of the sizes, so that every I/O covers whole units. */
static int finish_block_sizes(struct job *job, char *err, size_t err_size)
{
    job->bs_min = UINT64_MAX;
    job->bs_max = job->bs_unit = 0;
    for (int d = 0; d < 3; d++) {
        uint64_t unit = finish_direction(job, d);
        /* As fio: sequential I/O, or none given, aligns to the size. */
        if (!job->ba[d] || !bench_rw_is_random(job->rw)) {
            job->ba[d] = job->dir_bs_min[d];
        } else if (job->ba[d] != job->dir_bs_min[d] && sizes_count(job, d)) {
            job->blockalign_nomap |= !job->norandommap;
            job->norandommap = true;
        }
        unit = bench_gcd(unit, job->ba[d]);
        if (sizes_count(job, d)) {
            job->bs_min = job->dir_bs_min[d] < job->bs_min
                              ? job->dir_bs_min[d] : job->bs_min;
            job->bs_max = job->dir_bs_max[d] > job->bs_max
                              ? job->dir_bs_max[d] : job->bs_max;
            job->bs_unit = job->bs_unit ? bench_gcd(job->bs_unit, unit) : unit;
        }
    }
    if (job->bs_unit % 512) {
        return fail(err, err_size, "%s: block sizes must be multiples of "
                    "512 (got %llu to %llu)", job->name,
                    (unsigned long long)job->bs_min,
                    (unsigned long long)job->bs_max);
    }
    if (job->size && job->size < job->bs_max) {
        return fail(err, err_size, "%s: size=%llu is smaller than the block "
                    "size %llu", job->name, (unsigned long long)job->size,
                    (unsigned long long)job->bs_max);
    }
    return 0;
}

/* fio's filename_format: $jobname, $jobnum and $filenum replaced (one
 * file per job here: both numbers 0). */
static void format_file_name(const struct job *job, char *out, size_t size)
{
    static const char *const keys[] = { "$jobname", "$jobnum", "$filenum" };
    const char *at = job->filename_format[0] ? job->filename_format
                                             : "$jobname.$jobnum.$filenum";
    size_t used = 0;

    while (*at && used + 1 < size) {
        size_t k = 0;
        while (k < 3 && strncmp(at, keys[k], strlen(keys[k]))) {
            k++;
        }
        if (k < 3) {
            used += (size_t)snprintf(out + used, size - used, "%s",
                                     k ? "0" : job->name);
            used = used < size ? used : size - 1;
            at += strlen(keys[k]);
        } else {
            out[used++] = *at++;
        }
    }
    out[used] = '\0';
}

/* The file's name as fio makes it: filename= under directory=, or from
 * filename_format= there (or in the working directory when a format is
 * given; without either, coblk-bench uses a temporary file). */
static int finish_file_name(struct job *job, char *err, size_t err_size)
{
    char path[sizeof(job->filename)], name[sizeof(job->filename)];

    if (!job->filename[0] && (job->directory[0] ||
                              job->filename_format[0])) {
        format_file_name(job, name, sizeof(name));
    } else if (job->directory[0] && job->filename[0] != '/' &&
               !strchr(job->filename, ':')) {
        snprintf(name, sizeof(name), "%s", job->filename);
    } else {
        return 0;       /* absolute, a coblk spec, or a temporary file */
    }
    int n = job->directory[0]
                ? snprintf(path, sizeof(path), "%s/%s", job->directory, name)
                : snprintf(path, sizeof(path), "%s", name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return fail(err, err_size, "%s: directory= and filename= make a "
                    "path too long", job->name);
    }
    strcpy(job->filename, path);
    job->directory[0] = '\0';      /* applied: finishing twice is the same */
    return 0;
}

/* As fio: a minimum above the cap, or a minimum of the other kind. */
static int check_rate_minimums(const struct job *job, char *err,
                               size_t err_size)
{
    for (int d = 0; d < 3; d++) {
        if ((job->ratemin[d] && job->rate_iops[d] && !job->rate[d]) ||
            (job->rate_iops_min[d] && job->rate[d] && !job->rate_iops[d])) {
            return fail(err, err_size, "%s: rate and rate_iops are mutually "
                        "exclusive", job->name);
        }
        if ((job->rate[d] && job->rate[d] < job->ratemin[d]) ||
            (job->rate_iops[d] && job->rate_iops[d] < job->rate_iops_min[d])) {
            return fail(err, err_size, "%s: minimum rate exceeds rate, ddir "
                        "%d", job->name, d);
        }
    }
    return 0;
}

/* The logs named after the job: now that it has its name. */
static void name_logs(struct job *job)
{
    const char *name = job->name[0] ? job->name : "coblk-bench";

    if (job->log_by_name & LOG_BY_NAME_LAT) {
        snprintf(job->lat_log, sizeof(job->lat_log), "%s", name);
    }
    if (job->log_by_name & LOG_BY_NAME_BW) {
        snprintf(job->bw_log, sizeof(job->bw_log), "%s", name);
    }
    if (job->log_by_name & LOG_BY_NAME_IOPS) {
        snprintf(job->iops_log, sizeof(job->iops_log), "%s", name);
    }
}

void bench_replay_opts(const struct job *job, struct replay_opts *opts)
{
    *opts = (struct replay_opts){
        .skip = job->replay_skip, .scale = job->replay_scale,
        .align = job->replay_align, .time_scale = job->replay_time_scale,
        .no_stall = job->replay_no_stall,
        .redirect = job->replay_redirect[0] != '\0' };
}

/* How many logs read_iolog= lists. */
static unsigned replay_logs(const struct job *job)
{
    unsigned count = 1;

    for (const char *c = job->read_iolog; (c = strchr(c, ':')); c++) {
        count++;
    }
    return count;
}

const char *bench_replay_log(const struct job *job, unsigned instance,
                             char *path, size_t size)
{
    const char *at = job->read_iolog;

    for (unsigned i = instance % replay_logs(job); i > 0; i--) {
        at = strchr(at, ':') + 1;
    }
    size_t len = strcspn(at, ":");
    snprintf(path, size, "%.*s", (int)(len < size ? len : size - 1), at);
    return path;
}

/* read_iolog=: every log read through once: what it holds sets the
 * directions and the buffers, its file (or replay_redirect=) the job's
 * file when none is named. */
static int finish_replay(struct job *job, char *err, size_t err_size)
{
    struct replay_opts opts;
    char path[4096];

    if (job->replay_align & (job->replay_align - 1)) {
        return fail(err, err_size, "%s: replay_align=%llu is no power of 2",
                    job->name, (unsigned long long)job->replay_align);
    }
    if (job->verify || job->serialize_overlap) {
        return fail(err, err_size, "%s: read_iolog= replays the log as it "
                    "is: no verify= or serialize_overlap= with it",
                    job->name);
    }
    bench_replay_opts(job, &opts);
    job->replay_kinds = 0;
    job->replay_end = 0;
    for (unsigned i = 0; i < replay_logs(job); i++) {
        struct replay_summary sum;
        bench_replay_log(job, i, path, sizeof(path));
        if (replay_scan(path, &opts, &sum, err, err_size) < 0) {
            return -1;
        }
        if (!job->filename[0]) {
            snprintf(job->filename, sizeof(job->filename), "%s",
                     job->replay_redirect[0] ? job->replay_redirect
                                             : sum.file);
        }
        job->replay_kinds |= sum.kinds;
        job->replay_end = sum.end > job->replay_end ? sum.end
                                                    : job->replay_end;
        job->bs_max = sum.max_bytes > job->bs_max ? sum.max_bytes
                                                  : job->bs_max;
    }
    return 0;
}

/* fill_device without size=: as fio, a file gets the free space of its
 * file system (rounded down to the largest block); a device or spec, its
 * size as ever (0 here). */
static uint64_t free_space(const struct job *job)
{
    char dir[sizeof(job->filename)];
    struct stat st;
    struct statvfs fs;

    if (!job->filename[0] || strchr(job->filename, ':') ||
        (stat(job->filename, &st) == 0 && !S_ISREG(st.st_mode))) {
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s", job->filename);
    char *slash = strrchr(dir, '/');
    if (slash) {
        slash[slash == dir] = '\0';
    }
    if (statvfs(slash ? dir : ".", &fs) < 0) {
        return 0;
    }
    uint64_t bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
    uint64_t block = job->bs_max ? job->bs_max : 4096;
    return bytes - bytes % block;
}

/* fio's checks of dedupe_mode=working_set: its set is a share of size. */
static int check_dedupe(const struct job *job, char *err, size_t err_size)
{
    if (!job->dedupe_pct || job->dedupe_mode != DEDUPE_WORKING_SET) {
        return 0;
    }
    if (!job->size_given) {
        return fail(err, err_size, "%s: dedupe_mode=working_set needs "
                    "size= (the working set is a share of it)", job->name);
    }
    if (job->dedupe_working_set_pct + job->dedupe_pct > 100) {
        return fail(err, err_size, "%s: dedupe_percentage=%u cannot be "
                    "reached: dedupe_working_set_percentage=%u of the size "
                    "is unique data", job->name, job->dedupe_pct,
                    job->dedupe_working_set_pct);
    }
    return 0;
}

/* Whether rw= does reads (d 0) or writes (1): fio's td_read(),
 * td_write(). */
static bool rw_does(enum rw_mode rw, int d)
{
    switch (rw) {
    case RW_READ:
    case RW_RANDREAD:
        return d == 0;
    case RW_WRITE:
    case RW_RANDWRITE:
    case RW_TRIMWRITE:
    case RW_RANDTRIMWRITE:
        return d == 1;
    case RW_RW:
    case RW_RANDRW:
        return true;
    default:
        return false;
    }
}

/* The index of ioprio among the direction's priorities, added if new. */
static unsigned prio_index(struct job *job, int d, uint16_t ioprio)
{
    unsigned i = 0;

    while (i < job->nr_prio_values[d] && job->prio_values[d][i] != ioprio) {
        i++;
    }
    if (i == job->nr_prio_values[d]) {
        job->prio_values[d][job->nr_prio_values[d]++] = ioprio;
    }
    return i;
}

/* Direction d's choices (fio's cmdprio for a direction the job does):
 * cmdprio_bssplit's, or cmdprio_percentage of any size; each with its
 * priority and its statistics' index, the job's priority being 0. */
static void finish_prio_choices(struct job *job, int d)
{
    struct prio_choice *c = job->prio_choices[d];
    unsigned n = 0;
    unsigned prio_class = job->cmdprio_class[d] ? job->cmdprio_class[d]
                                                : IOPRIO_CLASS_RT;
    uint16_t implicit = bench_ioprio_value(prio_class,
                                           job->cmdprio_level[d]);

    if (rw_does(job->rw, d) && job->cmdprio_bssplit_given) {
        n = job->nr_cmdprio_bssplit[d];
        memcpy(c, job->cmdprio_bssplit[d], n * sizeof(*c));
    } else if (rw_does(job->rw, d) && job->cmdprio_pct[d]) {
        c[n++] = (struct prio_choice){ .pct = job->cmdprio_pct[d],
                                       .ioprio = -1 };
    }
    job->nr_prio_choices[d] = n;
    job->nr_prio_values[d] = 0;
    if (!n) {
        return;
    }
    prio_index(job, d, job->ioprio);
    for (unsigned i = 0; i < n; i++) {
        c[i].ioprio = c[i].ioprio < 0 ? implicit : c[i].ioprio;
        c[i].index = prio_index(job, d, (uint16_t)c[i].ioprio);
    }
}

/* The job's priority, and cmdprio's for those of its I/Os it picks, as
 * fio's engines check the options at their start. */
static int finish_priorities(struct job *job, char *err, size_t err_size)
{
    job->ioprio = job->prio_given ? bench_ioprio_value(job->prioclass,
                                                       job->prio)
                                  : 0;
    if (job->cmdprio_option && job->engine != ENGINE_IO_URING &&
        job->engine != ENGINE_LIBAIO) {
        return fail(err, err_size, "%s: %s is an option of the io_uring and "
                    "libaio engines, not of ioengine=%s", job->name,
                    job->cmdprio_option, bench_engine_name(job->engine));
    }
    if ((job->cmdprio_pct[0] || job->cmdprio_pct[1]) &&
        job->cmdprio_bssplit_given) {
        return fail(err, err_size, "%s: cmdprio_percentage and "
                    "cmdprio_bssplit options are mutually exclusive",
                    job->name);
    }
    for (int d = 0; d < CMDPRIO_DIRS; d++) {
        finish_prio_choices(job, d);
    }
    return 0;
}

int bench_job_finish(struct job *job, char *err, size_t err_size)
{
    name_logs(job);
    if (finish_file_name(job, err, err_size) < 0 ||
        check_rate_minimums(job, err, err_size) < 0) {
        return -1;
    }
    /* One file per job: filesize= is its size; as fio, the region ends
     * with the file, at the latest. */
    if (job->filesize) {
        if (job->offset >= job->filesize) {
            return fail(err, err_size, "%s: offset=%llu is past "
                        "filesize=%llu", job->name,
                        (unsigned long long)job->offset,
                        (unsigned long long)job->filesize);
        }
        uint64_t room = job->filesize - job->offset;
        job->size = job->size_given && job->size && job->size < room
                        ? job->size : room;
    }
    if (finish_block_sizes(job, err, err_size) < 0 ||
        (job->read_iolog[0] && finish_replay(job, err, err_size) < 0)) {
        return -1;
    }
    if (job->fill_device && !job->size) {
        job->size = free_space(job);
    }
    if (job->time_based && !job->runtime_ns) {
        job->time_based = false;        /* as fio: nothing to base it on */
    }
    /* As fio: a submit batch of 0 is the iodepth; a maximum below the
     * minimum is the minimum.  A maximum of 0 (not fio's default, the
     * minimum) reaps whatever has completed. */
    job->iodepth_asked = job->iodepth_asked ? job->iodepth_asked
                                            : job->iodepth;
    if (bench_engine_is_sync(job->engine)) {
        job->iodepth = 1;       /* fio caps them, with a note */
    }
    if (!job->iodepth_batch_submit ||
        job->iodepth_batch_submit > job->iodepth) {
        job->iodepth_batch_submit = job->iodepth;
    }
    if (job->iodepth_batch_complete_min > job->iodepth) {
        job->iodepth_batch_complete_min = job->iodepth;
    }
    if (job->iodepth_batch_complete_max > job->iodepth) {
        job->iodepth_batch_complete_max = job->iodepth;
    }
    if (job->iodepth_batch_complete_max &&
        job->iodepth_batch_complete_max < job->iodepth_batch_complete_min) {
        job->iodepth_batch_complete_max = job->iodepth_batch_complete_min;
    }
    if (job->engine == ENGINE_NULL && job->size_given && !job->size) {
        return fail(err, err_size, "%s: size=0 means the whole file, and "
                    "ioengine=null has none: give a size", job->name);
    }
    if (finish_zones(job, err, err_size) < 0 ||
        check_dedupe(job, err, err_size) < 0 ||
        finish_priorities(job, err, err_size) < 0) {
        return -1;
    }
    if (job->seq_add) {
        /* Blocks count in a unit the holes are whole ones of too. */
        uint64_t hole = (uint64_t)(job->seq_add < 0 ? -job->seq_add
                                                    : job->seq_add);
        job->bs_unit = bench_gcd(job->bs_unit, hole);
        if (job->bs_unit % 512) {
            return fail(err, err_size, "%s: rw=%s:%lld: the offset modifier "
                        "must be a multiple of 512", job->name,
                        bench_rw_name(job->rw), (long long)job->seq_add);
        }
    }
    if (job->verify_interval && job->verify_interval < job->bs_unit &&
        job->bs_unit % job->verify_interval) {
        return fail(err, err_size, "%s: verify_interval=%llu must divide "
                    "the block size %llu", job->name,
                    (unsigned long long)job->verify_interval,
                    (unsigned long long)job->bs_unit);
    }
    if (job->verify && (job->rw == RW_TRIM || job->rw == RW_RANDTRIM ||
                        job->rw == RW_TRIMWRITE ||
                        job->rw == RW_RANDTRIMWRITE)) {
        return fail(err, err_size, "%s: verify does not apply to rw=%s",
                    job->name, bench_rw_name(job->rw));
    }
    if (job->verify && job->engine == ENGINE_NULL) {
        return fail(err, err_size, "%s: verify needs a device that keeps "
                    "data, not ioengine=null", job->name);
    }
    if (job->verify_only && !job->verify) {
        return fail(err, err_size, "%s: verify_only needs verify=crc32c or "
                    "verify=md5", job->name);
    }
    bool reads_only = job->rw == RW_READ || job->rw == RW_RANDREAD;
    if (job->verify && job->time_based && job->verify_only) {
        return fail(err, err_size, "%s: verify_only replays a size-based "
                    "job's writes, not a time_based one's", job->name);
    }
    if (reads_only) {
        job->verify_only = false;   /* a read job checks what it reads */
    }
    uint64_t spread;
    if (job->offset_increment % 512 ||
        __builtin_mul_overflow(job->offset_increment, job->numjobs - 1,
                               &spread) ||
        job->offset > UINT64_MAX - spread) {
        return fail(err, err_size, "%s: offset_increment=%llu must be a "
                    "multiple of 512, and numjobs of them from the offset "
                    "within any device", job->name,
                    (unsigned long long)job->offset_increment);
    }
    if (job->size && job->offset > UINT64_MAX - job->size) {
        return fail(err, err_size, "%s: offset=%llu plus size=%llu is past "
                    "any device", job->name,
                    (unsigned long long)job->offset,
                    (unsigned long long)job->size);
    }
    return 0;
}

static bool section_chosen(const struct bench_config *cfg, const char *name)
{
    if (!cfg->nr_sections) {
        return true;
    }
    for (unsigned i = 0; i < cfg->nr_sections; i++) {
        if (!strcmp(cfg->sections[i], name)) {
            return true;
        }
    }
    return false;
}

static int finish_config(struct bench_config *cfg, char *err,
                         size_t err_size)
{
    unsigned kept = 0, instances = 0;

    cfg->formats = cfg->formats ? cfg->formats : OUTPUT_NORMAL;
    /* As fio: the terse lines too, before the normal reports. */
    if (cfg->append_terse && (cfg->formats & OUTPUT_NORMAL)) {
        cfg->formats |= OUTPUT_TERSE;
    }
    cfg->eta_interval_ns = cfg->eta_interval_ns ? cfg->eta_interval_ns
                                                : 1000000000;
    for (unsigned i = 0; i < cfg->nr_jobs; i++) {
        if (section_chosen(cfg, cfg->jobs[i].name)) {
            cfg->jobs[kept++] = cfg->jobs[i];
        }
    }
    cfg->nr_jobs = kept;
    cfg->nr_groups = kept ? 1 : 0;
    for (unsigned i = 0; cfg->readonly && i < kept; i++) {
        if (cfg->jobs[i].rw != RW_READ && cfg->jobs[i].rw != RW_RANDREAD) {
            return fail(err, err_size, "job <%s> has write or trim bit set, "
                        "but coblk-bench is in read-only mode (--readonly)",
                        cfg->jobs[i].name);
        }
    }
    for (unsigned i = 0; i < kept; i++) {
        struct job *job = &cfg->jobs[i];
        if (i && (job->stonewall || job->new_group)) {
            cfg->nr_groups++;
        }
        job->groupid = cfg->nr_groups ? cfg->nr_groups - 1 : 0;
        job->wait_for_job = -1;
        for (unsigned w = 0; job->wait_for[0] && w < i; w++) {
            if (!strcmp(cfg->jobs[w].name, job->wait_for)) {
                job->wait_for_job = (int)w;
            }
        }
        if (job->wait_for[0] && job->wait_for_job < 0) {
            return fail(err, err_size, "%s: wait_for=%s: no job of that name "
                        "before it", job->name, job->wait_for);
        }
        if (bench_job_finish(job, err, err_size) < 0) {
            return -1;
        }
        if (cfg->readonly && (job->replay_kinds & ((1u << REPLAY_WRITE) |
                                                   (1u << REPLAY_TRIM)))) {
            return fail(err, err_size, "job <%s> replays writes or trims, "
                        "but coblk-bench is in read-only mode (--readonly)",
                        job->name);
        }
        instances += job->numjobs;
    }
    for (unsigned i = 0; i < kept; i++) {
        cfg->jobs[i].instances_in_run = instances;
    }
    return 0;
}

int bench_parse_args(struct bench_config *cfg, int argc, char **argv,
                     char *err, size_t err_size)
{
    memset(cfg, 0, sizeof(*cfg));
    bench_job_defaults(&cfg->global);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            if (parse_job_file(cfg, arg, err, err_size) < 0) {
                return -1;
            }
            continue;
        }
        char item[8192];
        if (strlen(arg + 2) >= sizeof(item)) {
            return fail(err, err_size, "option too long");
        }
        strcpy(item, arg + 2);
        struct job *job = cfg->nr_jobs ? &cfg->jobs[cfg->nr_jobs - 1] : NULL;
        if (apply(cfg, job, NULL, item, err, err_size) < 0) {
            return -1;
        }
    }
    return finish_config(cfg, err, err_size);
}

void bench_config_free(struct bench_config *cfg)
{
    free(cfg->cmd);
    cfg->cmd = NULL;
    free(cfg->jobs);
    for (unsigned i = 0; i < cfg->nr_sections; i++) {
        free(cfg->sections[i]);
    }
    free(cfg->sections);
    cfg->jobs = NULL;
    cfg->sections = NULL;
    cfg->nr_jobs = cfg->nr_sections = 0;
}

/* The options given that coblk does not have (UNSUPPORTED_* bits). */
static unsigned unsupported_bits(const struct bench_config *cfg)
{
    unsigned bits = cfg->global.unsupported;

    for (unsigned i = 0; i < cfg->nr_jobs; i++) {
        bits |= cfg->jobs[i].unsupported;
    }
    return bits;
}

void bench_warn_unsupported(const struct bench_config *cfg, FILE *out)
{
    for (unsigned i = 0; i < cfg->nr_jobs; i++) {
        if (cfg->jobs[i].blockalign_nomap) {
            fputs("coblk-bench: any use of blockalign= turns off the random "
                  "map, as in fio\n", out);
            break;
        }
    }
    unsigned bits = unsupported_bits(cfg);
    for (unsigned b = 0; b < UNSUPPORTED_COUNT; b++) {
        if (bits & (1u << b)) {
            fprintf(out, "coblk-bench: %s: not supported by coblk, "
                    "ignored\n", unsupported_names[b]);
        }
    }
}

int bench_check_warnings(const struct bench_config *cfg, char *err,
                         size_t err_size)
{
    unsigned bits = cfg->warnings_fatal ? unsupported_bits(cfg) : 0;

    for (unsigned b = 0; b < UNSUPPORTED_COUNT; b++) {
        if (bits & (1u << b)) {
            return fail(err, err_size, "%s: not supported by coblk, and "
                        "--warnings-fatal makes that an error",
                        unsupported_names[b]);
        }
    }
    return 0;
}

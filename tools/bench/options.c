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

#include "options.h"

enum opt_type { OPT_STR, OPT_SIZE, OPT_UINT, OPT_TIME, OPT_BOOL, OPT_ENUM };

struct opt {
    const char *name;
    enum opt_type type;
    size_t offset;              /* in struct job */
    size_t size;                /* of the field (OPT_STR) */
    uint64_t min, max;          /* OPT_SIZE, OPT_UINT */
    const char *const *choices; /* OPT_ENUM, NULL-terminated */
};

static const char *const rw_names[] = {
    "read", "write", "randread", "randwrite", "rw", "randrw", "trim",
    "randtrim", NULL,
};
static const char *const engine_names[] = { "io_uring", "null", NULL };

#define FIELD(f) offsetof(struct job, f), sizeof(((struct job *)0)->f)

static const struct opt options[] = {
    { "name", OPT_STR, FIELD(name), 0, 0, NULL },
    { "filename", OPT_STR, FIELD(filename), 0, 0, NULL },
    { "size", OPT_SIZE, FIELD(size), 1, UINT64_MAX, NULL },
    { "offset", OPT_SIZE, FIELD(offset), 0, UINT64_MAX, NULL },
    { "bs", OPT_SIZE, FIELD(bs), 1, 1u << 30, NULL },
    { "rw", OPT_ENUM, FIELD(rw), 0, 0, rw_names },
    { "readwrite", OPT_ENUM, FIELD(rw), 0, 0, rw_names },
    { "rwmixread", OPT_UINT, FIELD(rwmixread), 0, 100, NULL },
    { "iodepth", OPT_UINT, FIELD(iodepth), 1, 65536, NULL },
    { "numjobs", OPT_UINT, FIELD(numjobs), 1, 4096, NULL },
    { "runtime", OPT_TIME, FIELD(runtime_ns), 0, UINT64_MAX, NULL },
    { "time_based", OPT_BOOL, FIELD(time_based), 0, 0, NULL },
    { "direct", OPT_BOOL, FIELD(direct), 0, 0, NULL },
    { "ioengine", OPT_ENUM, FIELD(engine), 0, 0, engine_names },
    { "norandommap", OPT_BOOL, FIELD(norandommap), 0, 0, NULL },
    { "randseed", OPT_UINT, FIELD(randseed), 0, UINT64_MAX, NULL },
    { "group_reporting", OPT_BOOL, FIELD(group_reporting), 0, 0, NULL },
};

void bench_job_defaults(struct job *job)
{
    *job = (struct job){
        .bs = 4096, .rw = RW_READ, .rwmixread = 50, .iodepth = 1,
        .numjobs = 1, .engine = ENGINE_IO_URING, .randseed = 0x89,
    };
}

const char *bench_rw_name(enum rw_mode rw)
{
    return rw_names[rw];
}

bool bench_rw_is_random(enum rw_mode rw)
{
    return rw == RW_RANDREAD || rw == RW_RANDWRITE || rw == RW_RANDRW ||
           rw == RW_RANDTRIM;
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

static bool parse_size(const char *text, uint64_t *out)
{
    static const char suffixes[] = "kmgtp";
    uint64_t value;
    const char *unit;

    if (!parse_number(text, &value, &unit)) {
        return false;
    }
    unsigned shift = 0;
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
        if (*unit) {
            return false;
        }
    }
    if (value > (UINT64_MAX >> shift)) {
        return false;
    }
    *out = value << shift;
    return true;
}

static bool parse_time_ns(const char *text, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {
        { "", 1000000000 }, { "s", 1000000000 }, { "ms", 1000000 },
        { "us", 1000 }, { "m", 60000000000 }, { "h", 3600000000000 },
    };
    uint64_t value;
    const char *unit;

    if (!parse_number(text, &value, &unit)) {
        return false;
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

static const struct opt *find_option(const char *name)
{
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        if (!strcmp(options[i].name, name)) {
            return &options[i];
        }
    }
    return NULL;
}

int bench_set_option(struct job *job, const char *name, const char *value,
                     char *err, size_t err_size)
{
    const struct opt *o = find_option(name);
    char *field;
    uint64_t number = 0;

    if (!o) {
        return fail(err, err_size, "unrecognized option '--%s'", name);
    }
    field = (char *)job + o->offset;
    if (!value && o->type != OPT_BOOL) {
        return fail(err, err_size, "option '%s' needs a value", name);
    }
    switch (o->type) {
    case OPT_STR:
        if (strlen(value) >= o->size) {
            return fail(err, err_size, "%s: value too long", name);
        }
        strcpy(field, value);
        return 0;
    case OPT_BOOL:
        if (value && strcmp(value, "0") && strcmp(value, "1")) {
            return fail(err, err_size, "%s: expected 0 or 1, got '%s'",
                        name, value);
        }
        *(bool *)field = !value || !strcmp(value, "1");
        return 0;
    case OPT_ENUM:
        for (int i = 0; o->choices[i]; i++) {
            if (!strcmp(value, o->choices[i])) {
                *(int *)field = i;
                return 0;
            }
        }
        return fail(err, err_size, "%s: invalid value '%s'", name, value);
    case OPT_SIZE:
        if (!parse_size(value, &number)) {
            return fail(err, err_size, "%s: invalid size '%s'", name, value);
        }
        break;
    case OPT_UINT: {
        const char *unit;
        if (!parse_number(value, &number, &unit) || *unit) {
            return fail(err, err_size, "%s: invalid number '%s'", name,
                        value);
        }
        break;
    }
    case OPT_TIME:
        if (!parse_time_ns(value, &number)) {
            return fail(err, err_size, "%s: invalid time '%s'", name, value);
        }
        break;
    }
    if (number < o->min || number > o->max) {
        return fail(err, err_size, "%s: %s out of range [%llu, %llu]", name,
                    value, (unsigned long long)o->min,
                    (unsigned long long)o->max);
    }
    if (o->size == sizeof(unsigned)) {
        *(unsigned *)field = (unsigned)number;
    } else {
        *(uint64_t *)field = number;
    }
    return 0;
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
    snprintf(job->name, sizeof(job->name), "%s", name);
    return job;
}

/* Options of the program rather than of a job; 1 if name was one. */
static int global_flag(struct bench_config *cfg, const char *name,
                       const char *value, char *err, size_t err_size)
{
    if (!strcmp(name, "output-format")) {
        if (!value || (strcmp(value, "normal") && strcmp(value, "json"))) {
            return fail(err, err_size, "output-format: expected normal or "
                        "json, got '%s'", value ? value : "");
        }
        cfg->format = strcmp(value, "json") ? OUTPUT_NORMAL : OUTPUT_JSON;
        return 1;
    }
    if (!strcmp(name, "output")) {
        if (!value || strlen(value) >= sizeof(cfg->output)) {
            return fail(err, err_size, "output: needs a file name");
        }
        strcpy(cfg->output, value);
        return 1;
    }
    if (!strcmp(name, "parse-only")) {
        cfg->parse_only = true;
        return 1;
    }
    if (!strcmp(name, "help")) {
        cfg->show_help = true;
        return 1;
    }
    if (!strcmp(name, "version")) {
        cfg->show_version = true;
        return 1;
    }
    return 0;
}

/* One "name[=value]" for the current job (or the globals). */
static int apply(struct bench_config *cfg, struct job *job, char *item,
                 char *err, size_t err_size)
{
    char *eq = strchr(item, '=');
    const char *value = NULL;

    if (eq) {
        *eq = '\0';
        value = eq + 1;
    }
    int flag = global_flag(cfg, item, value, err, err_size);
    if (flag) {
        return flag < 0 ? -1 : 0;
    }
    if (!strcmp(item, "name")) {
        return add_job(cfg, value ? value : "", err, err_size) ? 0 : -1;
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

static int parse_job_file(struct bench_config *cfg, const char *path,
                          char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    char raw[8192], line[8192];
    int lineno = 0;
    struct job *job = NULL;
    bool in_global = false;

    if (!f) {
        return fail(err, err_size, "failed to open job file '%s': %s", path,
                    strerror(errno));
    }
    while (fgets(raw, sizeof(raw), f)) {
        lineno++;
        if (expand_env(raw, line, sizeof(line)) < 0) {
            fclose(f);
            return fail(err, err_size, "%s:%d: line too long", path, lineno);
        }
        char *text = trim(line);
        if (!*text || *text == ';' || *text == '#') {
            continue;
        }
        if (*text == '[') {
            char *close = strchr(text, ']');
            if (!close) {
                fclose(f);
                return fail(err, err_size, "%s:%d: missing ']'", path,
                            lineno);
            }
            *close = '\0';
            in_global = !strcmp(text + 1, "global");
            job = in_global ? NULL : add_job(cfg, text + 1, err, err_size);
            if (!in_global && !job) {
                fclose(f);
                return -1;
            }
            continue;
        }
        char *eq = strchr(text, '=');
        if (eq) {      /* "key = value" */
            *eq = '\0';
            char *key = trim(text), *value = trim(eq + 1);
            memmove(text, key, strlen(key) + 1);
            size_t len = strlen(text);
            text[len] = '=';
            memmove(text + len + 1, value, strlen(value) + 1);
        }
        if (apply(cfg, job, text, err, err_size) < 0) {
            size_t len = strlen(err);
            snprintf(err + len, err_size - len, " (%s:%d)", path, lineno);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
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
        if (apply(cfg, job, item, err, err_size) < 0) {
            return -1;
        }
    }
    return 0;
}

void bench_config_free(struct bench_config *cfg)
{
    free(cfg->jobs);
    cfg->jobs = NULL;
    cfg->nr_jobs = 0;
}

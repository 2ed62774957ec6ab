/*
 * coblk-bench's SVG report: well-formed XML, one line per job and
 * direction in each chart, axes that hold the data, no NaN or inf, and
 * the edge cases (no I/O, single points, huge values, unwritable path).
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench/plot.h"

struct svg {
    char path[64];
    char *text;
};

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    assert_non_null(f);
    for (int c; (c = fgetc(f)) != EOF;) {
        if (len + 2 > cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        buf[len++] = (char)c;
    }
    fclose(f);
    if (!buf) {
        buf = calloc(1, 1);
    }
    buf[len] = '\0';
    return buf;
}

/* Writes the report to a temporary file and reads it back. */
static void plot(struct svg *svg, const struct job_result *results,
                 unsigned n)
{
    char err[256] = "";
    int fd;

    snprintf(svg->path, sizeof(svg->path), "/tmp/test-bench-plot-XXXXXX");
    fd = mkstemp(svg->path);
    assert_true(fd >= 0);
    close(fd);
    if (plot_svg(svg->path, results, n, err, sizeof(err))) {
        fail_msg("plot_svg: %s", err);
    }
    svg->text = read_all(svg->path);
    if (getenv("KEEP_SVG")) {
        fprintf(stderr, "kept %s\n", svg->path);
    } else {
        unlink(svg->path);
    }
}

/* ---- a small XML well-formedness check ---------------------------------- */

static const char *name_end(const char *p)
{
    while (*p && !strchr(" \t\n/>=\"'", *p)) {
        p++;
    }
    return p;
}

/* An entity reference at p ('&'); the character after it, or NULL. */
static const char *entity(const char *p)
{
    static const char *const names[] = { "&lt;", "&gt;", "&amp;", "&quot;",
                                         "&apos;" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strncmp(p, names[i], strlen(names[i]))) {
            return p + strlen(names[i]);
        }
    }
    if (p[1] == '#') {
        const char *q = p + 2 + (p[2] == 'x');
        const char *end = q + strspn(q, "0123456789abcdefABCDEF");
        return end > q && *end == ';' ? end + 1 : NULL;
    }
    return NULL;
}

/* Character data up to the next '<' (or a quote, in attributes). */
static const char *chars(const char *p, char stop)
{
    while (*p && *p != '<' && *p != stop) {
        if (*p != '&') {
            p++;
        } else if (!(p = entity(p))) {
            return NULL;
        }
    }
    return p;
}

/* Attributes of a start tag; after its '>' or "/>" (*empty set), or NULL. */
static const char *attributes(const char *p, bool *empty)
{
    for (;;) {
        p += strspn(p, " \t\n");
        if (*p == '>' || (p[0] == '/' && p[1] == '>')) {
            *empty = *p == '/';
            return p + 1 + *empty;
        }
        const char *end = name_end(p);
        if (end == p || end[0] != '=' || (end[1] != '"' && end[1] != '\'')) {
            return NULL;
        }
        p = chars(end + 2, end[1]);
        if (!p || *p != end[1]) {
            return NULL;
        }
        p++;
    }
}

/* Balanced tags, one root, quoted attributes, valid entities. */
static bool well_formed(const char *p)
{
    const char *stack[256];
    size_t depth = 0, roots = 0;

    while (p && *p) {
        if (depth == 0 && *p != '<') {
            p += strspn(p, " \t\n");
            if (*p && *p != '<') {
                return false;   /* text outside the root */
            }
        } else if (*p != '<') {
            p = chars(p, '\0');
        } else if (!strncmp(p, "<!--", 4)) {
            p = strstr(p, "-->");
            p = p ? p + 3 : NULL;
        } else if (p[1] == '/') {
            const char *end = name_end(p + 2);
            if (!depth || end - p - 2 != name_end(stack[depth - 1])
                                         - stack[depth - 1]
                || strncmp(p + 2, stack[depth - 1], end - p - 2)
                || *end != '>') {
                return false;
            }
            depth--;
            p = end + 1;
        } else {
            bool empty;
            const char *name = p + 1;
            if (name_end(name) == name || depth == 256) {
                return false;
            }
            roots += depth == 0;
            p = attributes(name_end(name), &empty);
            if (!empty) {
                stack[depth++] = name;
            }
        }
    }
    return p && depth == 0 && roots == 1;
}

/* ---- what the report holds ---------------------------------------------- */

/* The text between id="chart-<id>" and the next chart (or the end). */
static char *chart(const char *svg, const char *id)
{
    char key[64];

    snprintf(key, sizeof(key), "id=\"chart-%s\"", id);
    const char *start = strstr(svg, key);
    assert_non_null(start);
    const char *end = strstr(start + 1, "id=\"chart-");
    size_t len = end ? (size_t)(end - start) : strlen(start);
    char *s = malloc(len + 1);

    assert_non_null(s);
    memcpy(s, start, len);
    s[len] = '\0';
    return s;
}

static unsigned count(const char *s, const char *what)
{
    unsigned n = 0;

    for (s = strstr(s, what); s; s = strstr(s + 1, what)) {
        n++;
    }
    return n;
}

static unsigned chart_count(const char *svg, const char *id, const char *what)
{
    char *c = chart(svg, id);
    unsigned n = count(c, what);

    free(c);
    return n;
}

/* The largest y tick label of a chart, with its k/M/G... suffix. */
static double y_axis_max(const char *svg, const char *id)
{
    char *c = chart(svg, id);
    double max = -1;

    for (const char *p = strstr(c, "class=\"ytick\""); p;
         p = strstr(p + 1, "class=\"ytick\"")) {
        char *end;
        double v = strtod(strchr(p, '>') + 1, &end);
        const char *prefix = strchr("kMGTPE", *end);
        for (int k = 0; prefix && *end && k <= prefix - "kMGTPE"; k++) {
            v *= 1000;
        }
        max = v > max ? v : max;
    }
    free(c);
    return max;
}

static void assert_clean(const char *svg)
{
    size_t len = strlen(svg);

    assert_true(!strncmp(svg, "<svg", 4));
    assert_true(len > 7 && !strcmp(svg + len - 7, "</svg>\n"));
    assert_true(well_formed(svg));
    assert_null(strstr(svg, "nan"));
    assert_null(strstr(svg, "NaN"));
    assert_null(strstr(svg, "inf"));
}

/* ---- synthetic results -------------------------------------------------- */

static struct job make_job(const char *name, enum rw_mode rw)
{
    struct job job;

    bench_job_defaults(&job);
    snprintf(job.name, sizeof(job.name), "%s", name);
    job.rw = rw;
    job.iodepth = 32;
    return job;
}

static void add_point(struct job_result *r, uint64_t t_ms, int dir,
                      uint64_t ios)
{
    struct series *s = &r->series;
    size_t i = 0;

    while (i < s->count && s->points[i].t_ms != t_ms) {
        i++;
    }
    if (i == s->count) {
        if (s->count == s->capacity) {
            s->capacity = s->capacity ? 2 * s->capacity : 16;
            s->points = realloc(s->points, s->capacity * sizeof(*s->points));
            assert_non_null(s->points);
        }
        s->points[s->count++] = (struct series_point){ .t_ms = t_ms };
    }
    s->points[i].ios[dir] += ios;
    s->points[i].bytes[dir] += ios * 4096;
}

/* n I/Os in dir, latencies spread from lo_ns over a few octaves. */
static void add_ios(struct job_result *r, int dir, unsigned n, uint64_t lo_ns)
{
    for (unsigned i = 0; i < n; i++) {
        lat_add(&r->dir[dir].clat, lo_ns + (uint64_t)i * i % (lo_ns * 7 + 1));
    }
    r->dir[dir].ios += n;
    r->dir[dir].bytes += (uint64_t)n * 4096;
}

static void free_results(struct job_result *r, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        bench_result_free(&r[i]);
    }
}

/* ---- tests -------------------------------------------------------------- */

static void test_one_job_two_instances(void **state)
{
    struct job job = make_job("a<b & \"c\"", RW_RANDRW);
    struct job_result r[2];
    double max_iops = 0;
    struct svg svg;

    (void)state;
    job.numjobs = 2;
    for (unsigned k = 0; k < 2; k++) {
        bench_result_init(&r[k], &job, k);
        r[k].runtime_ns = 5000000000ull;
        add_ios(&r[k], DIR_READ, 5000, 20000);
        add_ios(&r[k], DIR_WRITE, 2000, 80000);
        for (uint64_t i = 1; i <= 10; i++) {
            add_point(&r[k], i * 500, DIR_READ, 400 + 37 * i + 100 * k);
            add_point(&r[k], i * 500, DIR_WRITE, 150 + 11 * i);
        }
    }
    for (uint64_t i = 1; i <= 10; i++) {
        double sum = 2 * (400 + 37 * i) + 100;  /* both instances */
        max_iops = sum / 0.5 > max_iops ? sum / 0.5 : max_iops;
    }
    plot(&svg, r, 2);
    assert_clean(svg.text);
    assert_non_null(strstr(svg.text, "a&lt;b &amp; &quot;c&quot;"));
    assert_null(strstr(svg.text, "a<b"));
    assert_non_null(strstr(svg.text, "rw=randrw"));
    assert_int_equal(count(svg.text, "font-weight=\"bold\">a&lt;b"), 1);
    assert_int_equal(chart_count(svg.text, "iops", "<polyline"), 2);
    assert_int_equal(chart_count(svg.text, "bw", "<polyline"), 2);
    assert_int_equal(chart_count(svg.text, "pct", "<polyline"), 2);
    assert_int_equal(chart_count(svg.text, "hist", "<path"), 2);
    assert_true(y_axis_max(svg.text, "iops") >= max_iops);
    assert_true(y_axis_max(svg.text, "iops") < 2 * max_iops);
    assert_non_null(strstr(svg.text, "Bandwidth (MiB/s)"));
    free(svg.text);
    free_results(r, 2);
}

static void test_several_jobs_and_edge_cases(void **state)
{
    struct job jobs[4] = {
        make_job("single", RW_READ), make_job("huge", RW_WRITE),
        make_job("trim", RW_TRIM), make_job("no-series", RW_READ),
    };
    struct job_result r[4];
    struct svg svg;

    (void)state;
    for (unsigned k = 0; k < 4; k++) {
        bench_result_init(&r[k], &jobs[k], 0);
        r[k].runtime_ns = 1000000000ull;
    }
    add_ios(&r[0], DIR_READ, 1, 1);                 /* one point, 1 ns */
    add_point(&r[0], 500, DIR_READ, 1);
    r[1].dir[DIR_WRITE].ios = UINT64_MAX / 2;       /* huge everything */
    r[1].dir[DIR_WRITE].bytes = UINT64_MAX;
    lat_add(&r[1].dir[DIR_WRITE].clat, UINT64_MAX);
    lat_add(&r[1].dir[DIR_WRITE].clat, 1000);
    add_point(&r[1], 500, DIR_WRITE, UINT64_MAX / 8192);
    add_point(&r[1], 500, DIR_WRITE, 0);
    add_point(&r[1], 1000, DIR_WRITE, UINT64_MAX / 8192);
    add_ios(&r[2], DIR_TRIM, 100, 500000);
    for (uint64_t i = 1; i <= 3000; i++) {          /* averaged down */
        add_point(&r[2], i * 500, DIR_TRIM, i % 7);
    }
    add_ios(&r[3], DIR_READ, 10, 3000);
    r[3].runtime_ns = 0;

    plot(&svg, r, 4);
    assert_clean(svg.text);
    assert_int_equal(chart_count(svg.text, "iops", "<polyline"), 3);
    assert_int_equal(chart_count(svg.text, "iops", "<circle"), 1);
    assert_int_equal(chart_count(svg.text, "pct", "<polyline"), 4);
    assert_int_equal(chart_count(svg.text, "hist", "<path"), 4);
    assert_true(y_axis_max(svg.text, "iops") >= UINT64_MAX / 8192 / 0.5);
    assert_true(strlen(svg.text) < 200000);
    free(svg.text);
    free_results(r, 4);
}

static void test_no_io(void **state)
{
    struct job job = make_job("idle", RW_READ);
    struct job_result r;
    struct svg svg;

    (void)state;
    plot(&svg, NULL, 0);
    assert_clean(svg.text);
    assert_non_null(strstr(svg.text, "no I/O"));
    free(svg.text);

    bench_result_init(&r, &job, 0);
    r.error = -5;
    snprintf(r.errmsg, sizeof(r.errmsg), "read failed <EIO>");
    plot(&svg, &r, 1);
    assert_clean(svg.text);
    assert_non_null(strstr(svg.text, "no I/O"));
    assert_non_null(strstr(svg.text, "idle"));
    assert_non_null(strstr(svg.text, "read failed &lt;EIO&gt;"));
    assert_null(strstr(svg.text, "<polyline"));
    free(svg.text);
    bench_result_free(&r);
}

static void test_odd_names(void **state)
{
    struct job job = make_job("", RW_READ);
    struct job_result r;
    struct svg svg;

    (void)state;
    /* Broken UTF-8, a control character, a long name. */
    snprintf(job.name, sizeof(job.name), "%s", "\xff\xc3(\x01 caf\xc3\xa9 "
             "0123456789012345678901234567890123456789");
    bench_result_init(&r, &job, 0);
    r.runtime_ns = 1000000;
    add_ios(&r, DIR_READ, 3, 100);
    plot(&svg, &r, 1);
    assert_clean(svg.text);
    assert_non_null(strstr(svg.text, "caf\xc3\xa9"));
    assert_null(strstr(svg.text, "\xff"));
    assert_null(strstr(svg.text, "\x01"));
    assert_non_null(strstr(svg.text, "\xe2\x80\xa6"));     /* cut */
    assert_non_null(strstr(svg.text, "no samples"));       /* no series */
    free(svg.text);
    bench_result_free(&r);
}

static void test_unwritable_path(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(plot_svg("/nonexistent-dir/report.svg", NULL, 0, err,
                              sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/report.svg"));
}

static void test_well_formed_check(void **state)
{
    (void)state;
    assert_true(well_formed("<svg a=\"1\"><g><text>x &amp; y</text></g>"
                            "<rect/></svg>\n"));
    assert_true(well_formed("<svg><t a=\"&lt;\">&gt;</t></svg>"));
    assert_false(well_formed("<svg><g></svg>"));
    assert_false(well_formed("<svg><g></h></g></svg>"));
    assert_false(well_formed("<svg>a & b</svg>"));
    assert_false(well_formed("<svg a=\"<\"></svg>"));
    assert_false(well_formed("<svg a=1></svg>"));
    assert_false(well_formed("<svg></svg><svg></svg>"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed_check),
        cmocka_unit_test(test_one_job_two_instances),
        cmocka_unit_test(test_several_jobs_and_edge_cases),
        cmocka_unit_test(test_no_io),
        cmocka_unit_test(test_odd_names),
        cmocka_unit_test(test_unwritable_path),
    };

    return cmocka_run_group_tests_name("bench-plot", tests, NULL, NULL);
}

/*
 * coblk-bench reports: fio 3.x's normal and terse v3 layouts from
 * synthetic results with known numbers (test-bench-report-json has the
 * JSON ones).
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/options.h"
#include "bench/report.h"
#include "bench/run.h"
#include "report-fixtures.h"

#define TERSE_V3_FIELDS 121     /* fio 3.33 --minimal, no disk */

/* ---- terse -------------------------------------------------------------- */

static unsigned count_fields(const char *line)
{
    unsigned n = 1;

    for (; *line && *line != '\n'; line++) {
        n += *line == ';';
    }
    return n;
}

/* Field k (1-based, as fio's HOWTO numbers them) of the line. */
static const char *field(const char *line, unsigned k)
{
    static char buf[128];

    for (unsigned i = 1; i < k; i++) {
        line = strchr(line, ';');
        assert_non_null(line);
        line++;
    }
    size_t len = strcspn(line, ";\n");
    assert_true(len < sizeof(buf));
    memcpy(buf, line, len);
    buf[len] = '\0';
    return buf;
}

static void test_terse_fields(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("j1", 0, false);
    struct job_result *r = calloc(1, sizeof(*r));
    char pct[64];

    fill(r, &job, DIR_READ);
    char *text = render(&cfg, r, 1, OUTPUT_TERSE);
    assert_int_equal(occurrences(text, "\n"), 1);
    assert_int_equal(count_fields(text), TERSE_V3_FIELDS);
    assert_string_equal(field(text, 1), "3");
    assert_string_equal(field(text, 2), "coblk-bench-" PACKAGE_VERSION);
    assert_string_equal(field(text, 3), "j1");
    assert_string_equal(field(text, 4), "0");
    assert_string_equal(field(text, 5), "0");
    assert_string_equal(field(text, 6), "4000");        /* read KiB */
    assert_string_equal(field(text, 7), "2000");        /* KiB/s */
    assert_string_equal(field(text, 8), "500");         /* IOPS */
    assert_string_equal(field(text, 9), "2000");        /* msec */
    assert_string_equal(field(text, 10), "2");          /* slat min us */
    assert_string_equal(field(text, 14), "150");        /* clat min us */
    assert_string_equal(field(text, 15), "350");
    assert_string_equal(field(text, 16), "250.000000"); /* clat mean us */
    snprintf(pct, sizeof(pct), "50.000000%%=%llu",
             (unsigned long long)lat_percentile(&r->dir[DIR_READ].clat, 50)
                 / 1000);
    assert_string_equal(field(text, 17 + 7), pct);
    assert_string_equal(field(text, 17 + 18), "0%=0");  /* 17 defaults */
    assert_string_equal(field(text, 38), "152");        /* lat min us */
    assert_string_equal(field(text, 42), "1900");       /* bw min */
    assert_string_equal(field(text, 44), "100.000000%");
    assert_string_equal(field(text, 45), "2000.000000");
    assert_string_equal(field(text, 47), "0");          /* write KiB */
    assert_string_equal(field(text, 90), "10");         /* ctx */
    assert_string_equal(field(text, 96), "100.0%");     /* depth 8 */
    assert_string_equal(field(text, 93), "0.0%");
    assert_string_equal(field(text, 106), "50.00%");    /* 100-249 us */
    assert_string_equal(field(text, 107), "50.00%");    /* 250-499 us */
    assert_string_equal(field(text, 121), "0.00%");
    free(text);
    bench_result_free(r);
    free(r);
}

/* ---- normal ------------------------------------------------------------- */

static void test_normal_layout(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("j1", 0, false);
    struct job_result *r = calloc(1, sizeof(*r));

    fill(r, &job, DIR_READ);
    char *text = render(&cfg, r, 1, OUTPUT_NORMAL);
    assert_true(!strncmp(text, "\nj1: (groupid=0, jobs=1): err= 0: pid=",
                         38));
    assert_has(text, "\n  read: IOPS=500, BW=2000KiB/s (2048kB/s)"
               "(4000KiB/2000msec)\n"
               "    slat (nsec): min=2000, max=2000, avg=2000.00, "
               "stdev= 0.00\n"
               "    clat (usec): min=150, max=350, avg=250.00, "
               "stdev=100.05\n"
               "     lat (usec): min=152, max=352, avg=252.00, "
               "stdev=100.05\n"
               "    clat percentiles (usec):\n     |  1.00th=[  ");
    assert_has(text, "th=[  ");
    assert_int_equal(occurrences(text, "     | "), 5);  /* 17 in 4 a line */
    assert_has(text, "\n   bw (  KiB/s): min= 1900, max= 2100, per=100.00%, "
               "avg=2000.00, stdev=81.65, samples=4\n"
               "   iops        : min=  475, max=  525, avg=500.00, "
               "stdev=20.41, samples=4\n"
               "  lat (usec)   : 250=50.00%, 500=50.00%\n"
               "  cpu          : usr=0.00%, sys=0.02%, ctx=10, majf=0, "
               "minf=0\n"
               "  IO depths    : 1=0.0%, 2=0.0%, 4=0.0%, 8=100.0%, 16=0.0%, "
               "32=0.0%, >=64=0.0%\n"
               "     submit    : 0=0.0%, 4=100.0%, 8=0.0%, 16=0.0%, 32=0.0%, "
               "64=0.0%, >=64=0.0%\n"
               "     complete  : 0=0.0%, 4=100.0%, 8=0.0%, 16=0.0%, 32=0.0%, "
               "64=0.0%, >=64=0.0%\n"
               "     issued rwts: total=1000,0,0,0 short=0,0,0,0 "
               "dropped=0,0,0,0\n"
               "     latency   : target=0, window=0, percentile=100.00%, "
               "depth=8\n"
               "  coblk cpu/io : 412ns (usr=98ns engine, sys=314ns kernel)\n"
               "  coblk        : short reads=1, short writes=0, resubmits=0, "
               "bounces=3, splits=0, rmw waits=0, locked lookups=4, "
               "sq full=2, cq waits=0, cq overflows=0\n"
               "\nRun status group 0 (all jobs):\n"
               "   READ: bw=2000KiB/s (2048kB/s), 2000KiB/s-2000KiB/s "
               "(2048kB/s-2048kB/s), io=4000KiB (4096kB), "
               "run=2000-2000msec\n");
    assert_null(strstr(text, "WRITE:"));
    assert_null(strstr(text, "zone resets"));
    free(text);
    bench_result_free(r);
    free(r);
}

/* fio's units: nsec unless min, max and stdev are all large; values of
 * six digits and more scaled (8286.9k). */
static void test_normal_units(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("j1", 0, false);
    struct job_result *r = calloc(1, sizeof(*r));
    struct lat_stats *c = &r->dir[DIR_WRITE].clat;

    job.rw = RW_WRITE;
    fill(r, &job, DIR_WRITE);
    memset(c, 0, sizeof(*c));
    for (unsigned i = 0; i < 999; i++) {
        lat_add(c, 150);
    }
    lat_add(c, 8286900);
    memset(&r->dir[DIR_WRITE].lat, 0, sizeof(r->dir[DIR_WRITE].lat));
    memset(&r->dir[DIR_WRITE].slat, 0, sizeof(r->dir[DIR_WRITE].slat));
    for (unsigned i = 0; i < 1000; i++) {
        lat_add(&r->dir[DIR_WRITE].lat, i % 2 ? 3000000 : 150000000);
        lat_add(&r->dir[DIR_WRITE].slat, i % 2 ? 3000 : 100000);
        lat_add(&r->sync, 200000);
    }
    char *text = render(&cfg, r, 1, OUTPUT_NORMAL);
    assert_has(text, "    slat (usec): min=3, max=100, avg=51.50, ");
    /* Not usec without spread. */
    assert_has(text, "    sync (nsec): min=200000, max=200000, "
               "avg=200000.00, stdev= 0.00\n");
    assert_has(text, "  write: IOPS=500, BW=2000KiB/s (2048kB/s)"
               "(4000KiB/2000msec); 0 zone resets\n");
    assert_has(text, "    clat (nsec): min=150, max=8286.9k, avg=");
    assert_has(text, "     lat (msec): min=3, max=150, avg=76.50, ");
    assert_has(text, "    clat percentiles (nsec):\n"
               "     |  1.00th=[    151],");
    assert_has(text, "  lat (nsec)   : 250=99.90%\n"
               "  lat (msec)   : 10=0.10%\n");
    assert_has(text, "  WRITE: bw=2000KiB/s");
    free(text);
    /* Terse v3 has no nsec buckets: fio counts those I/Os under 2 usec. */
    text = render(&cfg, r, 1, OUTPUT_TERSE);
    assert_string_equal(field(text, 100), "99.90%");
    assert_string_equal(field(text, 101), "0.00%");
    assert_string_equal(field(text, 112), "0.10%");    /* 4-9 msec */
    free(text);
    bench_result_free(r);
    free(r);
}

static void test_normal_sync_and_error(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("j1", 0, false);
    struct job_result *r = calloc(2, sizeof(*r));

    fill(&r[0], &job, DIR_WRITE);
    for (unsigned i = 0; i < 250; i++) {
        lat_add(&r[0].sync, 80 + i % 7);
    }
    r[0].sync_ios = 250;
    bench_result_init(&r[1], &job, 1);
    r[1].error = -EIO;
    char *text = render(&cfg, r, 2, OUTPUT_NORMAL);
    assert_has(text, "  lat (usec)   : 250=50.00%, 500=50.00%\n"
               "  fsync/fdatasync/sync_file_range:\n"
               "    sync (nsec): min=80, max=86, avg=");
    assert_has(text, "    sync percentiles (nsec):\n     |  1.00th=[   80],");
    assert_has(text, "     issued rwts: total=0,1000,0,250 ");
    assert_has(text, "\nj1: (groupid=0, jobs=1): err= 5 (Input/output error)"
               ": pid=");
    /* No I/O: no CPU per I/O. */
    assert_int_equal(occurrences(text, "coblk cpu/io"), 1);
    free(text);
    for (unsigned i = 0; i < 2; i++) {
        bench_result_free(&r[i]);
    }
    free(r);
}

/* What fio prints with gtod_reduce=1: no latency, bandwidth or
 * latency distribution lines; flushes counted without a sync section. */
static void test_normal_without_latencies(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("j1", 0, false);
    struct job_result *r = calloc(1, sizeof(*r));

    fill_without_latencies(r, &job);
    char *text = render(&cfg, r, 1, OUTPUT_NORMAL);
    assert_has(text, "\n  write: IOPS=500, BW=2000KiB/s (2048kB/s)"
               "(4000KiB/2000msec); 0 zone resets\n"
               "  cpu          : usr=0.00%, sys=0.00%, ctx=0, majf=0, "
               "minf=0\n");
    assert_has(text, "     issued rwts: total=0,1000,0,62 ");
    assert_null(strstr(text, "fsync/fdatasync"));
    assert_null(strstr(text, "lat ("));
    free(text);
    bench_result_free(r);
    free(r);
}

static void test_percentile_list(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("j1", 0, false);
    struct job_result *r = calloc(1, sizeof(*r));

    job.percentiles[0] = 99.9;
    job.percentiles[1] = 50;
    job.nr_percentiles = 2;
    fill(r, &job, DIR_READ);
    char *text = render(&cfg, r, 1, OUTPUT_NORMAL);
    assert_has(text, "    clat percentiles (usec):\n     | 50.0th=[  ");
    assert_has(text, "], 99.9th=[  ");
    free(text);
    text = render(&cfg, r, 1, OUTPUT_TERSE);
    assert_true(!strncmp(field(text, 18), "50.000000%=", 11));
    assert_true(!strncmp(field(text, 19), "99.900000%=", 11));
    assert_string_equal(field(text, 20), "0%=0");
    assert_int_equal(count_fields(text), TERSE_V3_FIELDS);
    free(text);
    bench_result_free(r);
    free(r);
}

/* ---- groups ------------------------------------------------------------- */

static void test_group_reporting(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("g", 0, true);
    struct job_result *r = calloc(2, sizeof(*r));

    fill(&r[0], &job, DIR_READ);
    fill(&r[1], &job, DIR_READ);
    r[1].instance = 1;
    r[1].ctx = 5;
    char *text = render(&cfg, r, 2, OUTPUT_NORMAL);
    assert_int_equal(occurrences(text, "(groupid="), 1);
    assert_has(text, "\ng: (groupid=0, jobs=2): err= 0: pid=");
    assert_has(text, "  read: IOPS=1000, BW=4000KiB/s (4096kB/s)"
               "(8000KiB/2000msec)\n");
    /* fio adds the members' bandwidths up. */
    assert_has(text, "   bw (  KiB/s): min= 3800, max= 4200, per=100.00%, "
               "avg=4000.00, stdev=75.59, samples=8\n");
    assert_has(text, "ctx=15, majf=0");
    assert_has(text, "     issued rwts: total=2000,0,0,0 ");
    assert_has(text, "  coblk cpu/io : 412ns (usr=98ns engine, sys=314ns "
               "kernel)\n");
    assert_has(text, "   READ: bw=4000KiB/s (4096kB/s), 4000KiB/s-4000KiB/s "
               "(4096kB/s-4096kB/s), io=8000KiB (8192kB), "
               "run=2000-2000msec\n");
    free(text);
    text = render(&cfg, r, 2, OUTPUT_TERSE);
    assert_int_equal(occurrences(text, "\n"), 1);
    assert_string_equal(field(text, 6), "8000");
    assert_string_equal(field(text, 8), "1000");
    free(text);
    for (unsigned i = 0; i < 2; i++) {
        bench_result_free(&r[i]);
    }
    free(r);
}

static void test_two_groups(void **state)
{
    (void)state;
    struct bench_config cfg = config(2);
    struct job a = make_job("a", 0, false), b = make_job("b", 1, false);
    struct job_result *r = calloc(3, sizeof(*r));

    b.rw = RW_WRITE;
    fill(&r[0], &a, DIR_READ);
    fill(&r[1], &b, DIR_WRITE);
    fill(&r[2], &b, DIR_WRITE);
    r[2].runtime_ns = 4000000000;
    r[2].dir[DIR_WRITE].bw = (struct sample_stats){ 0 };
    add_samples(&r[2].dir[DIR_WRITE].bw, 1000, 50);
    char *text = render(&cfg, r, 3, OUTPUT_NORMAL);
    assert_int_equal(occurrences(text, "Run status group"), 2);
    assert_int_equal(occurrences(text, ": (groupid=1, jobs=1)"), 2);
    const char *g0 = strstr(text, "\nRun status group 0 (all jobs):\n"
                            "   READ:");
    const char *g1 = strstr(text, "\nRun status group 1 (all jobs):\n  WRITE: "
                            "bw=2000KiB/s (2048kB/s), 1000KiB/s-2000KiB/s "
                            "(1024kB/s-2048kB/s), io=8000KiB (8192kB), "
                            "run=2000-4000msec\n");
    assert_non_null(g0);
    assert_non_null(g1);
    assert_true(g0 < g1);
    /* The slower job had half its group's bandwidth. */
    assert_has(text, "per=50.00%");
    free(text);
    text = render(&cfg, r, 3, OUTPUT_TERSE);
    assert_int_equal(occurrences(text, "\n"), 3);
    const char *second = strchr(text, '\n') + 1;
    const char *third = strchr(second, '\n') + 1;
    assert_string_equal(field(text, 4), "0");
    assert_string_equal(field(second, 4), "1");
    assert_string_equal(field(third, 4), "1");
    assert_string_equal(field(third, 44), "0.000000%");     /* no reads */
    assert_string_equal(field(third, 83), "950");           /* write bw min */
    assert_string_equal(field(third, 85), "50.000000%");    /* write per */
    free(text);
    for (unsigned i = 0; i < 3; i++) {
        bench_result_free(&r[i]);
    }
    free(r);
}

/* fio's num2str: four digits with the point, rounded; a fraction that
 * rounds to 1.0 carries into the whole number (15.95 GiB is 16.0). */
static void test_num2str_rounding(void **state)
{
    char buf[NUM_LEN];

    assert_string_equal(num2str(buf, 17130000000ull, 4, true,
                                N2S_BYTEPERSEC), "16.0GiB/s");
    assert_string_equal(num2str(buf, 17130000000ull, 4, false,
                                N2S_BYTEPERSEC), "17.1GB/s");
    assert_string_equal(num2str(buf, 16780000000ull, 4, true,
                                N2S_BYTEPERSEC), "15.6GiB/s");
    assert_string_equal(num2str(buf, 4182000, 4, false, N2S_NONE), "4182k");
    assert_string_equal(num2str(buf, 999, 4, false, N2S_NONE), "999");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terse_fields),
        cmocka_unit_test(test_num2str_rounding),
        cmocka_unit_test(test_normal_layout),
        cmocka_unit_test(test_normal_units),
        cmocka_unit_test(test_normal_sync_and_error),
        cmocka_unit_test(test_normal_without_latencies),
        cmocka_unit_test(test_percentile_list),
        cmocka_unit_test(test_group_reporting),
        cmocka_unit_test(test_two_groups),
    };
    return cmocka_run_group_tests_name("bench-report", tests, NULL, NULL);
}

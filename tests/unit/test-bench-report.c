/*
 * coblk-bench reports: fio 3.x's normal, JSON, JSON+ and terse v3 layouts
 * from synthetic results with known numbers.
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
#include <sys/wait.h>

#include <cmocka.h>

#include "bench/options.h"
#include "bench/report.h"
#include "bench/run.h"

#define TERSE_V3_FIELDS 121     /* fio 3.33 --minimal, no disk */

/* ---- building results --------------------------------------------------- */

static struct bench_config config(unsigned nr_groups)
{
    struct bench_config cfg;

    memset(&cfg, 0, sizeof(cfg));
    bench_job_defaults(&cfg.global);
    cfg.nr_groups = nr_groups;
    return cfg;
}

/* As the command line does it: "job options" are those given. */
static void set(struct job *job, const char *name, const char *value)
{
    char err[256];

    if (bench_set_option(job, name, value, err, sizeof(err)) < 0) {
        fail_msg("%s=%s: %s", name, value, err);
    }
}

static struct job make_job(const char *name, unsigned groupid, bool grouped)
{
    struct job job;

    bench_job_defaults(&job);
    set(&job, "name", name);
    set(&job, "rw", "randread");
    set(&job, "iodepth", "8");
    job.groupid = groupid;
    job.group_reporting = grouped;
    return job;
}

static void add_samples(struct sample_stats *s, double mid, double step)
{
    sample_add(s, mid - step);
    sample_add(s, mid);
    sample_add(s, mid + step);
    sample_add(s, mid);
}

/* 1000 I/Os of 4 KiB in 2 s on direction d: clat half 150 us, half
 * 350 us (mean 250 us), slat 2 us; 2000 KiB/s and 500 IOPS sampled. */
static void fill(struct job_result *r, const struct job *job, int d)
{
    struct dir_stats *s = &r->dir[d];

    bench_result_init(r, job, 0);
    for (unsigned i = 0; i < 1000; i++) {
        uint64_t clat = i % 2 ? 350000 : 150000;
        lat_add(&s->slat, 2000);
        lat_add(&s->clat, clat);
        lat_add(&s->lat, clat + 2000);
    }
    s->ios = 1000;
    s->bytes = 1000 * 4096;
    add_samples(&s->bw, 2000, 100);
    add_samples(&s->iops, 500, 25);
    r->io_depth[depth_bucket(8)] = 1000;
    r->submit[batch_bucket(1)] = 1000;
    r->complete[batch_bucket(1)] = 1000;
    r->runtime_ns = 2000000000;
    r->usr_sec = 98e-9 * 1000;
    r->sys_sec = 314e-9 * 1000;
    r->ctx = 10;
}

static char *render(const struct bench_config *cfg,
                    const struct job_result *results, unsigned n,
                    unsigned format)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_non_null(out);
    report_write(out, cfg, results, n, format);
    assert_int_equal(fclose(out), 0);
    assert_non_null(text);
    return text;
}

static void assert_has(const char *text, const char *part)
{
    if (!strstr(text, part)) {
        fail_msg("missing \"%s\" in:\n%s", part, text);
    }
}

static unsigned occurrences(const char *text, const char *part)
{
    unsigned n = 0;

    for (const char *at = text; (at = strstr(at, part)); at++) {
        n++;
    }
    return n;
}

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

/* ---- JSON, checked by Python's parser ----------------------------------- */

static bool have_python(void)
{
    return system("python3 -c 'import json' >/dev/null 2>&1") == 0;
}

/* Runs the Python statements with the parsed report in d; they assert. */
static void check_json(const char *json, const char *checks)
{
    static const char prologue[] =
        "import json, sys\n"
        "def bad(c): sys.exit(\"not JSON: \" + c)\n"
        "d = json.load(sys.stdin, parse_constant=bad)\n";
    char *cmd = NULL;

    if (!have_python()) {
        skip();
    }
    assert_true(asprintf(&cmd, "python3 -c '%s%s'", prologue, checks) > 0);
    FILE *py = popen(cmd, "w");
    assert_non_null(py);
    fputs(json, py);
    int status = pclose(py);
    free(cmd);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail_msg("JSON checks failed (status %d):\n%s\n%s", status, checks,
                 json);
    }
}

/* fio 3.33's keys, in its order, for a job and a direction. */
static const char job_keys[] =
    "[\"jobname\", \"groupid\", \"error\", \"eta\", \"elapsed\", "
    "\"job options\", \"read\", \"write\", \"trim\", \"sync\", "
    "\"job_runtime\", \"usr_cpu\", \"sys_cpu\", \"ctx\", \"majf\", \"minf\", "
    "\"iodepth_level\", \"iodepth_submit\", \"iodepth_complete\", "
    "\"latency_ns\", \"latency_us\", \"latency_ms\", \"latency_depth\", "
    "\"latency_target\", \"latency_percentile\", \"latency_window\"]";
static const char dir_keys[] =
    "[\"io_bytes\", \"io_kbytes\", \"bw_bytes\", \"bw\", \"iops\", "
    "\"runtime\", \"total_ios\", \"short_ios\", \"drop_ios\", \"slat_ns\", "
    "\"clat_ns\", \"lat_ns\", \"bw_min\", \"bw_max\", \"bw_agg\", "
    "\"bw_mean\", \"bw_dev\", \"bw_samples\", \"iops_min\", \"iops_max\", "
    "\"iops_mean\", \"iops_stddev\", \"iops_samples\"]";

static void test_json(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("j1", 0, false);
    struct job_result *r = calloc(1, sizeof(*r));
    char checks[4096];

    set(&job, "bs", "8k");
    set(&job, "direct", "1");
    fill(r, &job, DIR_READ);
    char *text = render(&cfg, r, 1, OUTPUT_JSON);
    snprintf(checks, sizeof(checks),
             "assert list(d) == [\"fio version\", \"timestamp\", "
             "\"timestamp_ms\", \"time\", \"jobs\"], list(d)\n"
             "j = d[\"jobs\"][0]\n"
             "assert list(j) == %s, list(j)\n"
             "for k in (\"read\", \"write\", \"trim\"):\n"
             "    assert list(j[k]) == %s, list(j[k])\n"
             "r = j[\"read\"]\n"
             "assert r[\"total_ios\"] == 1000 and r[\"io_kbytes\"] == 4000\n"
             "assert r[\"iops\"] == 500.0 and r[\"bw\"] == 2000\n"
             "assert r[\"runtime\"] == 2000\n"
             "c = r[\"clat_ns\"]\n"
             "assert c[\"mean\"] == 250000.0 and c[\"N\"] == 1000\n"
             "assert c[\"min\"] == 150000 and c[\"max\"] == 350000\n"
             "assert len(c[\"percentile\"]) == 17\n"
             "assert \"50.000000\" in c[\"percentile\"]\n"
             "assert \"bins\" not in c\n"
             "assert \"percentile\" not in r[\"slat_ns\"]\n"
             "assert r[\"bw_min\"] == 1900 and r[\"bw_max\"] == 2100\n"
             "assert r[\"bw_agg\"] == 100.0 and r[\"bw_samples\"] == 4\n"
             "assert r[\"iops_mean\"] == 500.0\n"
             "assert j[\"write\"][\"total_ios\"] == 0\n"
             "assert j[\"sync\"] == {\"total_ios\": 0, \"lat_ns\": "
             "{\"min\": 0, \"max\": 0, \"mean\": 0.0, \"stddev\": 0.0, "
             "\"N\": 0}}\n"
             "assert j[\"job_runtime\"] == 2000 and j[\"ctx\"] == 10\n"
             "assert j[\"iodepth_level\"][\"8\"] == 100.0\n"
             "assert j[\"iodepth_submit\"][\"4\"] == 100.0\n"
             "assert j[\"latency_us\"][\"250\"] == 50.0\n"
             "assert j[\"latency_us\"][\"500\"] == 50.0\n"
             "assert list(j[\"latency_ms\"])[-1] == \">=2000\"\n"
             "assert j[\"latency_depth\"] == 8\n"
             "o = j[\"job options\"]\n"
             "assert o == {\"name\": \"j1\", \"rw\": \"randread\", "
             "\"bs\": \"8k\", \"iodepth\": \"8\", \"direct\": \"1\"}, o\n",
             job_keys, dir_keys);
    check_json(text, checks);
    free(text);
    bench_result_free(r);
    free(r);
}

static void test_json_global_options(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job_result *r = calloc(1, sizeof(*r));

    set(&cfg.global, "iodepth", "8");
    set(&cfg.global, "group_reporting", "1");
    struct job job = cfg.global;
    job.given_len = 0;          /* what a job inherits is not its own */
    set(&job, "name", "j1");
    set(&job, "rw", "randread");
    fill(r, &job, DIR_READ);
    char *text = render(&cfg, r, 1, OUTPUT_JSON);
    check_json(text,
               "assert list(d)[4] == \"global options\", list(d)\n"
               "assert d[\"global options\"] == {\"iodepth\": \"8\", "
               "\"group_reporting\": \"1\"}, d[\"global options\"]\n"
               "o = d[\"jobs\"][0][\"job options\"]\n"
               "assert o == {\"name\": \"j1\", \"rw\": \"randread\"}, o\n");
    free(text);
    bench_result_free(r);
    free(r);
}

static void test_json_plus_bins(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("j1", 0, false);
    struct job_result *r = calloc(1, sizeof(*r));

    fill(r, &job, DIR_WRITE);
    for (unsigned i = 0; i < 250; i++) {
        lat_add(&r->sync, 80000 + 1000 * (i % 7));
    }
    char *text = render(&cfg, r, 1, OUTPUT_JSON_PLUS);
    check_json(text,
               "w = d[\"jobs\"][0][\"write\"]\n"
               "b = w[\"clat_ns\"][\"bins\"]\n"
               "assert sum(b.values()) == w[\"total_ios\"] == 1000\n"
               "assert all(int(k) > 140000 for k in b)\n"
               "assert list(map(int, b)) == sorted(map(int, b))\n"
               "assert \"bins\" not in w[\"lat_ns\"]\n"
               "assert \"bins\" not in d[\"jobs\"][0][\"read\"][\"clat_ns\"]\n"
               "s = d[\"jobs\"][0][\"sync\"]\n"
               "assert s[\"total_ios\"] == 250\n"
               "assert sum(s[\"lat_ns\"][\"bins\"].values()) == 250\n"
               "assert len(s[\"lat_ns\"][\"percentile\"]) == 17\n");
    free(text);
    bench_result_free(r);
    free(r);
}

static void test_json_no_io(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("idle", 0, false);
    struct job_result *r = calloc(1, sizeof(*r));

    bench_result_init(r, &job, 0);
    char *text = render(&cfg, r, 1, OUTPUT_JSON_PLUS);
    assert_null(strstr(text, "nan"));
    assert_null(strstr(text, ": inf"));
    assert_null(strstr(text, ": -inf"));
    check_json(text,
               "j = d[\"jobs\"][0]\n"
               "assert j[\"read\"][\"iops\"] == 0 and j[\"usr_cpu\"] == 0\n"
               "assert \"percentile\" not in j[\"read\"][\"clat_ns\"]\n");
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
    text = render(&cfg, r, 2, OUTPUT_JSON);
    check_json(text,
               "assert len(d[\"jobs\"]) == 1\n"
               "j = d[\"jobs\"][0]\n"
               "assert j[\"read\"][\"total_ios\"] == 2000\n"
               "assert j[\"read\"][\"clat_ns\"][\"N\"] == 2000\n"
               "assert j[\"job_runtime\"] == 4000\n"
               "assert j[\"read\"][\"bw_mean\"] == 4000.0\n");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terse_fields),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_global_options),
        cmocka_unit_test(test_json_plus_bins),
        cmocka_unit_test(test_json_no_io),
        cmocka_unit_test(test_normal_layout),
        cmocka_unit_test(test_normal_units),
        cmocka_unit_test(test_normal_sync_and_error),
        cmocka_unit_test(test_percentile_list),
        cmocka_unit_test(test_group_reporting),
        cmocka_unit_test(test_two_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * coblk-bench's JSON and JSON+ reports, fio 3.x's structure, from
 * synthetic results with known numbers, checked by Python's parser.
 * Skipped (exit 77) without python3.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "report-fixtures.h"

#define SKIP_STATUS 77          /* automake's "skipped" */

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

/* fio 3.33's keys, in its order, for a job and a direction; then ours,
 * the engine's rare paths. */
static const char job_keys[] =
    "[\"jobname\", \"groupid\", \"error\", \"eta\", \"elapsed\", "
    "\"job options\", \"read\", \"write\", \"trim\", \"sync\", "
    "\"job_runtime\", \"usr_cpu\", \"sys_cpu\", \"ctx\", \"majf\", \"minf\", "
    "\"iodepth_level\", \"iodepth_submit\", \"iodepth_complete\", "
    "\"latency_ns\", \"latency_us\", \"latency_ms\", \"latency_depth\", "
    "\"latency_target\", \"latency_percentile\", \"latency_window\", "
    "\"coblk\"]";
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
             "assert j[\"coblk\"] == {\"short_reads\": 1, "
             "\"short_writes\": 0, \"resubmits\": 0, \"bounces\": 3, "
             "\"splits\": 0, \"rmw_waits\": 0, \"locked_lookups\": 4, "
             "\"submits\": 250, "
             "\"sq_full\": 2, \"cq_waits\": 0, \"cq_overflows\": 0, "
             "\"submit_retries\": 0, \"inflight_peak\": 9}, j[\"coblk\"]\n"
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
    r->sync_ios = 250;
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

/* fio's JSON with gtod_reduce=1: latencies zero and without
 * percentiles, flushes counted. */
static void test_json_without_latencies(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("j1", 0, false);
    struct job_result *r = calloc(1, sizeof(*r));

    fill_without_latencies(r, &job);
    char *text = render(&cfg, r, 1, OUTPUT_JSON);
    check_json(text,
               "w = d[\"jobs\"][0][\"write\"]\n"
               "zero = {\"min\": 0, \"max\": 0, \"mean\": 0.0, "
               "\"stddev\": 0.0, \"N\": 0}\n"
               "for k in (\"slat_ns\", \"clat_ns\", \"lat_ns\"):\n"
               "    assert w[k] == zero, (k, w[k])\n"
               "assert w[\"iops\"] == 500.0 and w[\"total_ios\"] == 1000\n"
               "assert w[\"bw_samples\"] == 0 and w[\"iops_samples\"] == 0\n"
               "s = d[\"jobs\"][0][\"sync\"]\n"
               "assert s == {\"total_ios\": 62, \"lat_ns\": zero}, s\n");
    free(text);
    bench_result_free(r);
    free(r);
}

static void test_json_group_reporting(void **state)
{
    (void)state;
    struct bench_config cfg = config(1);
    struct job job = make_job("g", 0, true);
    struct job_result *r = calloc(2, sizeof(*r));

    fill(&r[0], &job, DIR_READ);
    fill(&r[1], &job, DIR_READ);
    r[1].instance = 1;
    char *text = render(&cfg, r, 2, OUTPUT_JSON);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_global_options),
        cmocka_unit_test(test_json_plus_bins),
        cmocka_unit_test(test_json_no_io),
        cmocka_unit_test(test_json_without_latencies),
        cmocka_unit_test(test_json_group_reporting),
    };

    if (!have_python()) {
        printf("python3 with its json module is needed: skipped\n");
        return SKIP_STATUS;
    }
    return cmocka_run_group_tests_name("bench-report-json", tests, NULL,
                                       NULL);
}

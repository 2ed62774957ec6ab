/*
 * coblk-bench: a fio-like benchmark on libcoblk.  fio's option names, job
 * files and report layouts; per request, a pooled coroutine instead of
 * fio's engine machinery.  Uses the public API only.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/options.h"
#include "bench/report.h"
#include "bench/run.h"

#define DEFAULT_SIZE (1ull << 30)

static void usage(FILE *out)
{
    fputs("usage: coblk-bench [--OPTION=VALUE ...] [--name=JOB ...] "
          "[JOBFILE ...]\n"
          "fio's options and job files, e.g.\n"
          "  coblk-bench --name=rr --filename=/var/tmp/x.img --size=1G "
          "--rw=randread --bs=4k --iodepth=32 --direct=1\n"
          "With no arguments: 4k random reads, iodepth 32, 10 s, on a 1 GiB "
          "sparse temporary file.\n"
          "Program options: --output=FILE --output-format=normal|json "
          "--parse-only --version --help\n"
          "Job options: name filename size offset bs rw rwmixread iodepth "
          "numjobs runtime time_based direct ioengine (io_uring, null) "
          "norandommap randseed group_reporting\n", out);
}

/* The README's main job: what fio users run first. */
static void default_job(struct bench_config *cfg)
{
    static struct job job;
    const char *runtime = getenv("COBLK_BENCH_RUNTIME");
    char err[256];

    bench_job_defaults(&job);
    snprintf(job.name, sizeof(job.name), "randread");
    job.rw = RW_RANDREAD;
    job.iodepth = 32;
    job.direct = true;
    job.time_based = true;
    job.runtime_ns = 10000000000ull;
    if (runtime && bench_set_option(&job, "runtime", runtime, err,
                                    sizeof(err)) < 0) {
        fprintf(stderr, "coblk-bench: COBLK_BENCH_RUNTIME: %s\n", err);
        exit(1);
    }
    cfg->jobs = malloc(sizeof(job));
    cfg->jobs[0] = job;
    cfg->nr_jobs = 1;
}

struct instance {
    const struct job *job;
    const char *spec;
    unsigned index;
    struct job_result *result;
};

static void *run_instance(void *opaque)
{
    struct instance *in = opaque;

    bench_run(in->job, in->spec, in->index, in->result);
    return NULL;
}

/* A sparse temporary file for a job that names none. */
static int temp_file(const struct job *job, char *path, size_t size)
{
    snprintf(path, size, "/var/tmp/coblk-bench.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) {
        return -1;
    }
    int ret = ftruncate(fd, (off_t)(job->offset +
                                    (job->size ? job->size : DEFAULT_SIZE)));
    close(fd);
    return ret;
}

int main(int argc, char **argv)
{
    struct bench_config cfg;
    char err[1024];

    if (bench_parse_args(&cfg, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "coblk-bench: %s\n", err);
        bench_config_free(&cfg);
        return 1;
    }
    if (cfg.show_help || cfg.show_version || cfg.parse_only) {
        if (cfg.show_help) {
            usage(stdout);
        } else if (cfg.show_version) {
            printf("coblk-bench-%s\n", PACKAGE_VERSION);
        }
        bench_config_free(&cfg);
        return 0;
    }
    if (argc == 1) {
        default_job(&cfg);
    } else if (cfg.nr_jobs == 0) {
        fprintf(stderr, "coblk-bench: no job defined (start one with "
                "--name=NAME)\n");
        return 1;
    }

    unsigned total = 0;
    for (unsigned j = 0; j < cfg.nr_jobs; j++) {
        total += cfg.jobs[j].numjobs;
    }
    struct job_result *results = calloc(total, sizeof(*results));
    struct instance *instances = calloc(total, sizeof(*instances));
    pthread_t *threads = calloc(total, sizeof(*threads));
    char (*specs)[4200] = calloc(cfg.nr_jobs, sizeof(*specs));
    char (*temps)[64] = calloc(cfg.nr_jobs, sizeof(*temps));
    int status = 0;
    unsigned started = 0;

    for (unsigned j = 0; j < cfg.nr_jobs && status == 0; j++) {
        struct job *job = &cfg.jobs[j];
        if (!job->filename[0] && job->engine == ENGINE_IO_URING) {
            if (temp_file(job, temps[j], sizeof(temps[j])) < 0) {
                fprintf(stderr, "coblk-bench: temporary file: %s\n",
                        strerror(errno));
                status = 1;
                break;
            }
            snprintf(job->filename, sizeof(job->filename), "%s", temps[j]);
        }
        if (bench_device_spec(job, specs[j], sizeof(specs[j]), err,
                              sizeof(err)) < 0) {
            fprintf(stderr, "coblk-bench: %s: %s\n", job->name, err);
            status = 1;
            break;
        }
        for (unsigned i = 0; i < job->numjobs; i++, started++) {
            instances[started] = (struct instance){
                .job = job, .spec = specs[j], .index = i,
                .result = &results[started] };
            if (pthread_create(&threads[started], NULL, run_instance,
                               &instances[started]) != 0) {
                fprintf(stderr, "coblk-bench: cannot start a thread\n");
                status = 1;
                break;
            }
        }
    }
    for (unsigned i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        if (results[i].error) {
            fprintf(stderr, "coblk-bench: %s: %s\n", results[i].job->name,
                    results[i].errmsg);
            status = 1;
        }
    }
    for (unsigned j = 0; j < cfg.nr_jobs; j++) {
        if (temps[j][0]) {
            unlink(temps[j]);
        }
    }
    if (started == total) {
        FILE *out = cfg.output[0] ? fopen(cfg.output, "w") : stdout;
        if (!out) {
            fprintf(stderr, "coblk-bench: %s: %s\n", cfg.output,
                    strerror(errno));
            status = 1;
        } else {
            (cfg.format == OUTPUT_JSON ? report_json : report_normal)(
                out, &cfg, results, total);
            if (out != stdout) {
                fclose(out);
            }
        }
    }
    free(results);
    free(instances);
    free(threads);
    free(specs);
    free(temps);
    bench_config_free(&cfg);
    return status;
}

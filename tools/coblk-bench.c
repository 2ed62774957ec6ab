/*
 * coblk-bench: a fio-like benchmark on libcoblk.  fio's option names, job
 * files and report layouts; per request, a pooled coroutine instead of
 * fio's engine machinery.  Uses the public API only.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/flow.h"
#include "bench/gate.h"
#include "bench/logs.h"
#include "bench/options.h"
#include "bench/plot.h"
#include "bench/report.h"
#include "bench/run.h"
#include "bench/status.h"

#define DEFAULT_SIZE (1ull << 30)
#define POLL_NS 50000000ull     /* how often the main thread looks */
#define EXIT_SIGNALLED 128      /* fio's exit status after SIGINT/SIGTERM */

static void usage(FILE *out)
{
    fputs("usage: coblk-bench [--OPTION=VALUE ...] [--name=JOB ...] "
          "[JOBFILE ...]\n"
          "fio's options and job files, e.g.\n"
          "  coblk-bench --name=rr --filename=/var/tmp/x.img --size=1G "
          "--rw=randread --bs=4k --iodepth=32 --direct=1\n"
          "With no arguments: 4k random reads, iodepth 32, 10 s, on a 1 GiB "
          "sparse temporary file.\n"
          "Program options: --output=FILE "
          "--output-format=normal|json|json+|terse (several: a,b) "
          "--minimal --eta=auto|always|never --eta-interval=TIME "
          "--eta-newline=TIME "
          "--status-interval=TIME --section=JOB --plot=FILE.svg "
          "--append-terse --parse-only --showcmd --warnings-fatal "
          "--inflate-log=FILE --version --help\n"
          "Job files: fio's; '-' reads one from standard input, 'include "
          "FILE' pulls one in.\n"
          "Job options: see coblk-bench(1); fio's names and units.\n", out);
}

/* The README's main job: what fio users run first. */
static int default_job(struct bench_config *cfg)
{
    const char *runtime = getenv("COBLK_BENCH_RUNTIME");
    char err[256];

    cfg->jobs = malloc(sizeof(*cfg->jobs));
    if (!cfg->jobs) {
        fprintf(stderr, "coblk-bench: out of memory\n");
        return -1;
    }
    struct job *job = &cfg->jobs[0];
    bench_job_defaults(job);
    cfg->nr_jobs = cfg->nr_groups = 1;
    cfg->sparse_temp_files = true;
    snprintf(job->name, sizeof(job->name), "randread");
    job->rw = RW_RANDREAD;
    job->iodepth = 32;
    job->direct = true;
    job->time_based = true;
    job->runtime_ns = 10000000000ull;
    if ((runtime && bench_set_option(job, "runtime", runtime, err,
                                     sizeof(err)) < 0) ||
        bench_job_finish(job, err, sizeof(err)) < 0) {
        fprintf(stderr, "coblk-bench: COBLK_BENCH_RUNTIME: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---- signals ------------------------------------------------------------ */

/* The first SIGINT or SIGTERM, for the main thread to act on; the
 * temporary files, for a second one to remove.  A slot's path is complete
 * before nr_temp_paths counts it. */
static volatile sig_atomic_t signal_caught;
static char (*temp_paths)[PATH_MAX];
static volatile sig_atomic_t nr_temp_paths;

/* A second signal ends the program at once, with what is
 * async-signal-safe: unlink and _exit. */
static void on_signal(int sig)
{
    if (!signal_caught) {
        signal_caught = sig;
        return;
    }
    for (sig_atomic_t i = 0; i < nr_temp_paths; i++) {
        if (temp_paths[i][0]) {
            unlink(temp_paths[i]);
        }
    }
    _exit(EXIT_SIGNALLED);
}

/* SA_RESTART keeps the report's writes whole; the watch loop's sleep is
 * never restarted, so a signal still ends it early. */
static void catch_signals(void)
{
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };

    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Starts a thread that does not take SIGINT or SIGTERM: they go to the
 * main thread, whose waits they interrupt. */
static int start_thread(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    sigset_t block, old;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int ret = pthread_create(thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ret;
}

/* ---- temporary files ---------------------------------------------------- */

/* Where temporary files go: $TMPDIR, else /var/tmp (a disk, where /tmp
 * may be memory). */
static const char *temp_dir(void)
{
    const char *dir = getenv("TMPDIR");

    return dir && *dir ? dir : "/var/tmp";
}

/* A sparse temporary file for a job that names none, its path in path. */
static int temp_file(const struct job *job, char *path, size_t size)
{
    char made[PATH_MAX];

    if ((size_t)snprintf(made, sizeof(made), "%s/coblk-bench.XXXXXX",
                         temp_dir()) >= sizeof(made)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkstemp(made);
    if (fd < 0) {
        return -1;
    }
    snprintf(path, size, "%s", made);
    int ret = ftruncate(fd, (off_t)(job->offset +
                                    (job->size ? job->size : DEFAULT_SIZE)));
    close(fd);
    return ret;
}

/* ---- a run: jobs, their instances and the threads running them ----------- */

struct instance {
    const struct job *job;
    const char *spec;
    unsigned index, log_index;
    struct job_result *result;
    /* wait_for=: the results of the job to wait for, or none. */
    const struct job_result *wait_for;
    unsigned wait_count;
    pthread_t thread;
    bool started;
};

struct run {
    struct bench_config *cfg;
    char (*specs)[4200];
    char (*temps)[PATH_MAX];
    uint64_t *lay_out;          /* per job: bytes to write out first, or 0 */
    struct instance *inst;
    struct job_result *results;
    struct job_result *snapshots;   /* written by the instances */
    struct job_result *views;       /* the main thread's copies of them */
    unsigned total;
    /* Steady state: for each instance, the instance whose tracker counts
     * it (the first of its job with group_reporting, else itself), or
     * NO_STEADY; the trackers, at their owners' indexes. */
    unsigned *ss_owner;
    struct steady *steadies;
    FILE *out;
    bool eta;                   /* show the status line */
    bool stopped;               /* on a signal */
    bool exited;                /* exitall with exit_what=all: no more */
    struct start_gate gate;     /* the running group's start line */
    uint64_t start_ns;
};

#define NO_STEADY UINT_MAX

/* exitall=: once an instance of a job with it is done, others stop, as
 * fio's exit_what says: those of its reporting group (group), all those
 * running (stonewall), or those and every job still to start (all). */
static void exit_all_maybe(struct run *run, unsigned from, unsigned to)
{
    for (unsigned k = from; k < to; k++) {
        const struct job *job = run->inst[k].job;
        if (!job->exitall ||
            atomic_load_explicit(&run->results[k].progress.state,
                                 memory_order_acquire) != STATE_DONE) {
            continue;
        }
        for (unsigned i = from; i < to; i++) {
            if (job->exit_what != EXIT_GROUP ||
                run->inst[i].job->groupid == job->groupid) {
                atomic_store(&run->results[i].progress.stop, true);
            }
        }
        run->exited |= job->exit_what == EXIT_ALL;
    }
}

/* Who tracks each instance's steady state (see struct run). */
static int plan_steady_states(struct run *run)
{
    const struct bench_config *cfg = run->cfg;
    unsigned k = 0;

    run->ss_owner = calloc(run->total, sizeof(*run->ss_owner));
    run->steadies = calloc(run->total, sizeof(*run->steadies));
    if (!run->ss_owner || !run->steadies) {
        return -1;
    }
    for (unsigned j = 0; j < cfg->nr_jobs; j++) {
        const struct job *job = &cfg->jobs[j];
        unsigned first = k;
        for (unsigned i = 0; i < job->numjobs; i++, k++) {
            run->ss_owner[k] = job->ss_dur_ns < 1000000000 ? NO_STEADY
                               : job->group_reporting ? first : k;
        }
    }
    return 0;
}

/* The trackers of instances [from, to), which start now. */
static int start_steady_states(struct run *run, unsigned from, unsigned to,
                               uint64_t now)
{
    for (unsigned k = from; k < to; k++) {
        const struct job *job = run->inst[k].job;
        unsigned owner = run->ss_owner[k];
        if (owner == k &&
            steady_init(&run->steadies[k], job->ss_iops, job->ss_slope,
                        job->ss_pct, job->ss_limit,
                        (unsigned)(job->ss_dur_ns / 1000000000),
                        job->ss_ramp_ns, now) < 0) {
            return -1;
        }
        if (owner != NO_STEADY) {
            run->results[k].steady = &run->steadies[owner];
        }
    }
    return 0;
}

/* A second's sample for each tracker of [from, to); the instances of one
 * that attained the state are asked to stop, as fio stops them. */
static void sample_steady_states(struct run *run, unsigned from, unsigned to,
                                 uint64_t now)
{
    for (unsigned owner = from; owner < to; owner++) {
        if (run->ss_owner[owner] != owner) {
            continue;
        }
        uint64_t ios = 0, bytes = 0;
        for (unsigned k = owner; k < to && run->ss_owner[k] == owner; k++) {
            for (int d = 0; d < DIR_COUNT; d++) {
                ios += atomic_load(&run->results[k].progress.ios[d]);
                bytes += atomic_load(&run->results[k].progress.bytes[d]);
            }
        }
        if (steady_sample(&run->steadies[owner], ios, bytes, now)) {
            for (unsigned k = owner; k < to && run->ss_owner[k] == owner;
                 k++) {
                atomic_store(&run->results[k].progress.stop, true);
            }
        }
    }
}

/* Points each instance of a job with wait_for= at the results of the
 * copies of the job it waits for (contiguous, the first found). */
static void link_waits(struct run *run)
{
    for (unsigned i = 0; i < run->total; i++) {
        int w = run->inst[i].job->wait_for_job;
        for (unsigned k = 0; w >= 0 && k < run->total; k++) {
            if (run->inst[k].job == &run->cfg->jobs[w]) {
                run->inst[i].wait_for = &run->results[k];
                run->inst[i].wait_count = run->cfg->jobs[w].numjobs;
                break;
            }
        }
    }
}

/* wait_for=: until every copy of that job is done (or a signal). */
static void wait_for_job(const struct instance *in)
{
    for (unsigned i = 0; i < in->wait_count; i++) {
        while (atomic_load_explicit(&in->wait_for[i].progress.state,
                                    memory_order_acquire) != STATE_DONE &&
               !signal_caught) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
}

static void *run_instance(void *opaque)
{
    struct instance *in = opaque;

    wait_for_job(in);
    bench_run(in->job, in->spec, in->index, in->log_index, in->result);
    return NULL;
}

static int prepare_specs(struct run *run)
{
    struct bench_config *cfg = run->cfg;
    char err[1024];

    for (unsigned j = 0; j < cfg->nr_jobs; j++) {
        struct job *job = &cfg->jobs[j];
        if (!job->filename[0] && job->engine != ENGINE_NULL) {
            int ret = temp_file(job, run->temps[j], sizeof(run->temps[j]));
            nr_temp_paths = (sig_atomic_t)(j + 1);
            if (ret < 0) {
                fprintf(stderr, "coblk-bench: temporary file in %s: %s\n",
                        temp_dir(), strerror(errno));
                return -1;
            }
            snprintf(job->filename, sizeof(job->filename), "%s",
                     run->temps[j]);
            job->fallocate = FALLOC_NONE;   /* scratch space: no blocks */
        }
        struct stat st;
        if (cfg->readonly && !run->temps[j][0] && job->engine != ENGINE_NULL &&
            !strchr(job->filename, ':') && stat(job->filename, &st) < 0) {
            fprintf(stderr, "coblk-bench: %s: %s: %s, and --readonly lays no "
                    "file out\n", job->name, job->filename, strerror(errno));
            return -1;
        }
        bool created;
        if (bench_device_spec(job, run->specs[j], sizeof(run->specs[j]),
                              &created, err, sizeof(err)) < 0) {
            fprintf(stderr, "coblk-bench: %s: %s\n", job->name, err);
            return -1;
        }
        bool temp = run->temps[j][0] != '\0';
        if (bench_job_reads(job) &&
            (created || (temp && !cfg->sparse_temp_files))) {
            run->lay_out[j] = job->size ? bench_file_size(job)
                                        : job->offset + DEFAULT_SIZE;
        }
    }
    return 0;
}

/* Writes out the new files of jobs that read, as fio does, with fio's
 * lines in the normal output: "j: Laying out IO file (1 file / 8MiB)",
 * and a note for a synchronous engine's capped depth. */
static int lay_out_files(struct run *run)
{
    struct bench_config *cfg = run->cfg;
    bool normal = cfg->formats & OUTPUT_NORMAL;
    char err[1024];

    for (unsigned j = 0; j < cfg->nr_jobs && !run->stopped; j++) {
        const struct job *job = &cfg->jobs[j];
        if (run->lay_out[j] && normal) {
            fprintf(run->out, "%s: Laying out IO file (1 file / %lluMiB)\n",
                    job->name, (unsigned long long)(run->lay_out[j] >> 20));
            fflush(run->out);
        }
        if (run->lay_out[j] && bench_lay_out(job, run->lay_out[j],
                                             err, sizeof(err)) < 0) {
            fprintf(stderr, "coblk-bench: %s: %s\n", job->name, err);
            return -1;
        }
        if (job->iodepth < job->iodepth_asked && normal) {
            fputs("note: both iodepth >= 1 and synchronous I/O engine are "
                  "selected, queue depth will be capped at 1\n", run->out);
        }
    }
    return 0;
}

static int setup_instances(struct run *run)
{
    struct bench_config *cfg = run->cfg;
    unsigned k = 0;

    for (unsigned j = 0; j < cfg->nr_jobs; j++) {
        run->total += cfg->jobs[j].numjobs;
    }
    run->results = calloc(run->total, sizeof(*run->results));
    if (cfg->status_interval_ns) {
        run->snapshots = calloc(run->total, sizeof(*run->snapshots));
        run->views = calloc(run->total, sizeof(*run->views));
    }
    run->inst = calloc(run->total, sizeof(*run->inst));
    run->specs = calloc(cfg->nr_jobs, sizeof(*run->specs));
    run->temps = calloc(cfg->nr_jobs, sizeof(*run->temps));
    run->lay_out = calloc(cfg->nr_jobs, sizeof(*run->lay_out));
    if (!run->results || !run->inst || !run->specs || !run->temps ||
        !run->lay_out ||
        (cfg->status_interval_ns && (!run->snapshots || !run->views))) {
        fprintf(stderr, "coblk-bench: out of memory\n");
        return -1;
    }
    temp_paths = run->temps;
    for (unsigned j = 0; j < cfg->nr_jobs; j++) {
        for (unsigned i = 0; i < cfg->jobs[j].numjobs; i++, k++) {
            run->inst[k] = (struct instance){
                .job = &cfg->jobs[j], .spec = run->specs[j], .index = i,
                .log_index = k + 1, .result = &run->results[k] };
            bench_result_init(&run->results[k], &cfg->jobs[j], i);
            if (run->snapshots) {
                bench_result_init(&run->snapshots[k], &cfg->jobs[j], i);
                bench_result_init(&run->views[k], &cfg->jobs[j], i);
                run->results[k].snapshot = &run->snapshots[k];
            }
        }
    }
    link_waits(run);
    if (plan_steady_states(run) < 0) {
        fprintf(stderr, "coblk-bench: out of memory\n");
        return -1;
    }
    return prepare_specs(run);
}

static bool all_done(const struct run *run, unsigned from, unsigned to)
{
    for (unsigned i = from; i < to; i++) {
        if (atomic_load_explicit(&run->results[i].progress.state,
                                 memory_order_acquire) != STATE_DONE) {
            return false;
        }
    }
    return true;
}

/* fio's order: terse, then json or json+, then normal. */
static void write_reports(struct run *run, const struct job_result *results,
                          unsigned n)
{
    static const unsigned order[] = { OUTPUT_TERSE, OUTPUT_JSON_PLUS,
                                      OUTPUT_JSON, OUTPUT_NORMAL };
    unsigned formats = run->cfg->formats;

    if (formats & OUTPUT_JSON_PLUS) {
        formats &= ~(unsigned)OUTPUT_JSON;
    }
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (formats & order[i]) {
            report_write(run->out, run->cfg, results, n, order[i]);
        }
    }
}

/* One instance's report so far: its copy if it made one in time (it may
 * be in a start delay, or waiting long for a rate limit), its result if
 * done. */
static void take_view(struct run *run, unsigned i, unsigned gen,
                      uint64_t give_up)
{
    const struct progress *p = &run->results[i].progress;
    struct job_result *view = &run->views[i];

    for (;;) {
        if (atomic_load_explicit(&p->state, memory_order_acquire) ==
            STATE_DONE) {
            *view = run->results[i];
            break;
        }
        if (atomic_load_explicit(&p->snapshot_gen, memory_order_acquire) ==
            gen) {
            *view = run->snapshots[i];
            break;
        }
        if (bench_now_ns() >= give_up) {
            return;     /* the last view it gave */
        }
        usleep(1000);
    }
    view->series = (struct series){ 0 };
    view->snapshot = NULL;
}

/* --status-interval: the report so far. */
static void status_report(struct run *run, unsigned to)
{
    unsigned gen = bench_request_snapshot();
    uint64_t give_up = bench_now_ns() + 200000000ull;

    for (unsigned i = 0; i < to; i++) {
        take_view(run, i, gen, give_up);
    }
    write_reports(run, run->views, to);
    fflush(run->out);
}

/* After SIGINT or SIGTERM, as fio: say so, and stop every job, which
 * then reports what it did.  The line goes where the normal report goes
 * (fio's place); when only json or terse is written, to standard error,
 * so that what is written stays parseable. */
static void stop_on_signal(struct run *run)
{
    FILE *where = run->cfg->formats & OUTPUT_NORMAL ? run->out : stderr;

    if (!signal_caught || run->stopped) {
        return;
    }
    run->stopped = true;
    bench_stop();
    if (run->eta) {
        printf("\r%79s\r", "");
        fflush(stdout);
    }
    fprintf(where, "\ncoblk-bench: terminating on signal %d\n",
            (int)signal_caught);
    fflush(where);
}

/* Waits for instances [from, to), showing progress on the way; a signal
 * ends the sleep early. */
static void watch(struct run *run, unsigned from, unsigned to)
{
    struct status_prev prev = { .t_ns = bench_now_ns() };
    uint64_t next_steady = bench_now_ns() + 1000000000;
    uint64_t next_eta = bench_now_ns() + run->cfg->eta_interval_ns;
    uint64_t next_newline = bench_now_ns() + run->cfg->eta_newline_ns;
    uint64_t next_status = bench_now_ns() + run->cfg->status_interval_ns;

    while (!all_done(run, from, to)) {
        struct timespec ts = { 0, POLL_NS };
        nanosleep(&ts, NULL);
        stop_on_signal(run);
        uint64_t now = bench_now_ns();
        if (now >= next_steady) {
            sample_steady_states(run, from, to, now);
            next_steady += 1000000000;
        }
        exit_all_maybe(run, from, to);
        if (run->eta && !run->stopped && now >= next_eta) {
            char line[512];
            status_line(line, sizeof(line), run->results + from, to - from,
                        run->start_ns, now, &prev);
            /* --eta-newline: a line kept, now and then, as fio. */
            bool keep = run->cfg->eta_newline_ns && now >= next_newline;
            printf("\r%-79s%s", line, keep ? "\n" : "");
            fflush(stdout);
            next_eta = now + run->cfg->eta_interval_ns;
            next_newline = keep ? now + run->cfg->eta_newline_ns
                                : next_newline;
        }
        if (run->cfg->status_interval_ns && !run->stopped &&
            now >= next_status) {
            status_report(run, to);
            next_status = now + run->cfg->status_interval_ns;
        }
    }
    /* A job that ended since the last look may still stop what is to
     * come (exit_what=all). */
    exit_all_maybe(run, from, to);
    if (run->eta) {
        printf("\r%79s\r", "");
        fflush(stdout);
    }
}

/* The instances that start at once wait for each other at the group's
 * start line, and join their flows before any starts, as in fio; one that
 * waits first (wait_for, startdelay) joins when it starts, or it would
 * hold the others back meanwhile. */
static void line_up(struct run *run, unsigned from, unsigned to)
{
    unsigned at_once = 0;

    for (unsigned k = from; k < to; k++) {
        const struct job *job = run->inst[k].job;
        if (run->inst[k].wait_count || job->startdelay_ns) {
            continue;
        }
        if (job->flow) {
            run->results[k].flow = flow_join(job->flow_id, job->flow);
        }
        run->results[k].gate = &run->gate;
        at_once++;
    }
    gate_expect(&run->gate, at_once);
}

/* Instances [from, to) will not start: the started ones must not wait
 * for them, nor their flows count them. */
static void release_unstarted(struct run *run, unsigned from, unsigned to)
{
    for (unsigned k = from; k < to; k++) {
        bench_leave_unstarted(&run->results[k]);
    }
}

/* Jobs run together up to the next stonewall, which waits for them. */
static int run_all(struct run *run)
{
    unsigned from = 0;

    while (from < run->total && !run->stopped && !run->exited) {
        unsigned to = from + 1;
        while (to < run->total && !(run->inst[to].job->stonewall &&
                                    run->inst[to].index == 0)) {
            to++;
        }
        if (start_steady_states(run, from, to, bench_now_ns()) < 0) {
            fprintf(stderr, "coblk-bench: out of memory\n");
            return -1;
        }
        line_up(run, from, to);
        for (unsigned k = from; k < to; k++) {
            struct instance *in = &run->inst[k];
            if (start_thread(&in->thread, run_instance, in) != 0) {
                fprintf(stderr, "coblk-bench: cannot start a thread\n");
                release_unstarted(run, k, to);
                return -1;
            }
            in->started = true;
        }
        watch(run, from, to);
        from = to;
    }
    return 0;
}

/* Waits for every thread; one line per job that failed (its first
 * failed instance's error), so that exit 1 comes with one line a cause. */
static int join_all(struct run *run)
{
    int status = 0;

    for (unsigned i = 0; i < run->total; i++) {
        if (run->inst[i].started) {
            pthread_join(run->inst[i].thread, NULL);
        }
    }
    for (unsigned i = 0; i < run->total; i++) {
        const struct job_result *r = &run->results[i];
        bool first_of_job = i == 0 || run->results[i - 1].job != r->job;
        if (r->error && (first_of_job || !run->results[i - 1].error)) {
            fprintf(stderr, "coblk-bench: %s: %s\n", r->job->name, r->errmsg);
        }
        status = r->error ? -1 : status;
    }
    return status;
}

static void free_run(struct run *run)
{
    for (unsigned j = 0; run->temps && j < run->cfg->nr_jobs; j++) {
        const struct job *job = &run->cfg->jobs[j];
        bool plain_file = !strncmp(run->specs[j], "file:", 5) &&
                          !strcmp(run->specs[j] + 5, job->filename);
        if (run->temps[j][0]) {
            unlink(run->temps[j]);
        } else if (job->unlink && plain_file) {
            unlink(job->filename);      /* unlink=1, as fio at the end */
        }
    }
    nr_temp_paths = 0;          /* before the paths are freed */
    for (unsigned i = 0; run->results && i < run->total; i++) {
        bench_result_free(&run->results[i]);
    }
    if (run->out && run->out != stdout) {
        fclose(run->out);
    }
    free(run->results);
    for (unsigned i = 0; run->snapshots && i < run->total; i++) {
        bench_result_free(&run->snapshots[i]);
    }
    free(run->snapshots);
    free(run->views);
    free(run->inst);
    free(run->specs);
    free(run->temps);
    free(run->lay_out);
    for (unsigned k = 0; run->steadies && k < run->total; k++) {
        steady_free(&run->steadies[k]);
    }
    free(run->steadies);
    free(run->ss_owner);
}

static int open_output(struct run *run)
{
    const struct bench_config *cfg = run->cfg;

    run->out = cfg->output[0] ? fopen(cfg->output, "w") : stdout;
    if (!run->out) {
        fprintf(stderr, "coblk-bench: %s: %s\n", cfg->output,
                strerror(errno));
        return -1;
    }
    run->eta = cfg->eta == ETA_ALWAYS ||
               (cfg->eta == ETA_AUTO && isatty(STDERR_FILENO) &&
                isatty(STDOUT_FILENO) && !cfg->status_interval_ns);
    return 0;
}

/* Runs the jobs and reports them; returns the exit status. */
static int run_jobs(struct bench_config *cfg)
{
    struct run run = { .cfg = cfg, .start_ns = bench_now_ns() };
    char err[1024];
    int status = 1;

    gate_init(&run.gate);

    catch_signals();
    if (setup_instances(&run) == 0 && open_output(&run) == 0) {
        if (cfg->formats & OUTPUT_NORMAL) {
            report_start(run.out, cfg);
            fflush(run.out);
        }
        stop_on_signal(&run);   /* one that came while setting up */
        int ran = lay_out_files(&run) == 0 ? run_all(&run) : -1;
        stop_on_signal(&run);
        status = join_all(&run) < 0 || ran < 0 ? 1 : 0;
        if (ran == 0) {
            write_reports(&run, run.results, run.total);
        }
        if (ran == 0 && cfg->plot[0] &&
            plot_svg(cfg->plot, run.results, run.total, err,
                     sizeof(err)) < 0) {
            fprintf(stderr, "coblk-bench: %s\n", err);
            status = 1;
        }
        if (run.out != stdout && fflush(run.out) != 0) {
            fprintf(stderr, "coblk-bench: %s: %s\n", cfg->output,
                    strerror(errno));
            status = 1;
        }
    }
    free_run(&run);
    gate_destroy(&run.gate);
    return signal_caught ? EXIT_SIGNALLED : status;
}

int main(int argc, char **argv)
{
    struct bench_config cfg;
    char err[1024];
    int status = 0;

    if (bench_parse_args(&cfg, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "coblk-bench: %s\n", err);
        bench_config_free(&cfg);
        return 1;
    }
    if (bench_check_warnings(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "coblk-bench: %s\n", err);
        bench_config_free(&cfg);
        return 1;
    }
    bench_warn_unsupported(&cfg, stderr);
    if (cfg.show_help) {
        usage(stdout);
    } else if (cfg.show_cmd) {
        printf("coblk-bench%s\n", cfg.cmd ? cfg.cmd : "");
    } else if (cfg.show_version) {
        printf("coblk-bench-%s\n", PACKAGE_VERSION);
    } else if (cfg.inflate_log[0]) {
        if (logs_inflate(cfg.inflate_log, stdout, err, sizeof(err)) < 0) {
            fprintf(stderr, "coblk-bench: %s\n", err);
            status = 1;
        }
    } else if (cfg.parse_only) {
        status = 0;
    } else if (argc == 1 && default_job(&cfg) < 0) {
        status = 1;
    } else if (cfg.nr_jobs == 0) {
        fprintf(stderr, "coblk-bench: no job defined (start one with "
                "--name=NAME%s)\n", cfg.nr_sections ? ", or check --section"
                                                     : "");
        status = 1;
    } else {
        status = run_jobs(&cfg);
    }
    bench_config_free(&cfg);
    return status;
}

/*
 * Running one instance of a job on its own thread, context and queue.
 */
#ifndef COBLK_BENCH_RUN_H
#define COBLK_BENCH_RUN_H

#include <stdatomic.h>

#include "coblk/coblk.h"
#include "options.h"
#include "steady.h"
#include "stats.h"

enum { DIR_READ, DIR_WRITE, DIR_TRIM, DIR_COUNT };

/* I/O done in one sampling interval (fio's 500 ms bw/iops averaging). */
struct series_point {
    uint64_t t_ms;              /* end of the interval, since the start */
    uint64_t ios[DIR_COUNT];
    uint64_t bytes[DIR_COUNT];
};

struct series {
    struct series_point *points;
    size_t count, capacity;
    uint64_t interval_ms;
};

/* What a running instance has done so far, for the status line: written
 * by the instance with relaxed stores, read by the main thread. */
struct progress {
    _Atomic uint64_t ios[DIR_COUNT];
    _Atomic uint64_t bytes[DIR_COUNT];
    _Atomic uint64_t total_bytes;   /* to do; 0 when time_based */
    _Atomic uint64_t end_ns;    /* CLOCK_MONOTONIC deadline, 0 if none */
    _Atomic int state;          /* enum progress_state; DONE is a release */
    _Atomic bool stop;          /* set by the main thread: steady state */
    _Atomic unsigned snapshot_gen;  /* the last snapshot taken (release) */
};

enum progress_state { STATE_WAITING, STATE_RAMP, STATE_RUNNING,
                      STATE_VERIFYING, STATE_DONE };

struct job_result {
    const struct job *job;
    unsigned instance;
    struct dir_stats dir[DIR_COUNT];
    uint64_t sync_ios;          /* flushes of fsync= (not end_fsync's) */
    uint64_t total_err;         /* continue_on_error: errors let through */
    int first_error;            /* and the first one's errno */
    struct lat_stats sync;      /* their latencies, unless disable_clat */
    uint64_t io_depth[DEPTH_BUCKETS];   /* at each submission */
    uint64_t submit[DEPTH_BUCKETS];     /* requests per submit call */
    uint64_t complete[DEPTH_BUCKETS];   /* requests per reap */
    uint64_t runtime_ns;
    double usr_sec, sys_sec;    /* this thread's CPU time */
    uint64_t ctx, majf, minf;   /* context switches, page faults */
    struct series series;
    /* The engine's rare paths: the device's and the instance's loop's. */
    struct coblk_dev_stats dev_stats;
    struct coblk_aio_stats aio_stats;
    struct progress progress;
    struct job_result *snapshot;    /* where --status-interval copies go */
    const struct steady *steady;    /* ss=: the tracker of it, or NULL */
    /* flow=: the flow the instance joined before its group started, as
     * fio's jobs do, so that none runs ahead of the others; NULL:
     * bench_run() joins when the instance starts.  It leaves at its end. */
    struct flow *flow;
    /* The group's start line (gate.h) the instance waits at once set up,
     * or NULL: it starts at once (wait_for, startdelay). */
    struct start_gate *gate;
    unsigned latency_depth;     /* the depth latency_target found */
    int error;                  /* 0 or -errno */
    char errmsg[512];
};

/* An instance that ends, or will not start, before its I/O: leaves the
 * flow joined for it and passes its group's start line, or the others
 * would wait for it for ever. */
void bench_leave_unstarted(struct job_result *r);

/* CLOCK_MONOTONIC in ns: the clock of deadlines and progress. */
uint64_t bench_now_ns(void);

/* The device spec for a job that names a file or a spec.  With size=, a
 * missing file is made (its blocks as fallocate= says; *created is set),
 * and a short one is extended for a job that writes; a job that only
 * reads never changes a file that exists.  0, or -1 with a message in
 * err. */
int bench_device_spec(const struct job *job, char *spec, size_t size,
                      bool *created, char *err, size_t err_size);

/* The size a file made for the job gets: offset + size, or filesize=. */
uint64_t bench_file_size(const struct job *job);

/* Whether the job reads (a new file must then hold data, not holes). */
bool bench_job_reads(const struct job *job);

/* Writes the job's new file out, as fio lays out the file of a job that
 * reads: over [0, bytes) what the job's writes would carry (content.h),
 * then fsync.  0, or -1 with a message in err. */
int bench_lay_out(const struct job *job, uint64_t bytes, char *err,
                  size_t err_size);

/* Runs instance number `instance` of the job on the device spec; fills
 * result (set up by bench_result_init).  log_index numbers its log files
 * (fio's: instances of all jobs counted from 1). */
void bench_run(const struct job *job, const char *spec, unsigned instance,
               unsigned log_index, struct job_result *result);

/* Asks every instance to stop (on SIGINT or SIGTERM): each stops issuing
 * at its next turn, or ends its wait for a rate limit or its start delay,
 * completes what is in flight and returns its result as at the end of
 * its runtime.  Async-signal-safe.  For the rest of the process. */
void bench_stop(void);

/* Asks every running instance to copy its result into its snapshot (in
 * its next loop turn); returns the generation to wait for in
 * progress.snapshot_gen.  The copies carry no series. */
unsigned bench_request_snapshot(void);

void bench_result_init(struct job_result *r, const struct job *job,
                       unsigned instance);
/* Adds from into into (group_reporting): sums counts, merges statistics
 * (those by priority as fio), keeps the longest runtime and the first
 * error.  Returns 0 or -ENOMEM. */
int bench_result_merge(struct job_result *into,
                       const struct job_result *from);
void bench_result_free(struct job_result *r);
/* Adds one direction's statistics to another's (samples pooled), but
 * for those by priority (dir_stats_merge_prios). */
void dir_stats_merge(struct dir_stats *into, const struct dir_stats *from);
/* fio's sum_clat_prio_stats(), before dir_stats_merge(): adds from's
 * latencies by priority to into's, by priority value; a direction without
 * them counts as all at its job's priority.  None are made when neither
 * has any and the jobs' priorities are the same.  0 or -ENOMEM. */
int dir_stats_merge_prios(struct dir_stats *into, const struct job *into_job,
                          const struct dir_stats *from,
                          const struct job *from_job);
/* The statistics by priority the job keeps (cmdprio), for an instance
 * about to run; 0 or -ENOMEM. */
int bench_result_alloc_prios(struct job_result *r);
/* The statistics of every direction back to none, keeping those by
 * priority (zeroed): the end of ramp_time. */
void bench_result_clear_dirs(struct job_result *r);
/* The latencies kept by priority: lat with lat_percentiles, else clat. */
const struct lat_stats *dir_prio_source(const struct dir_stats *d,
                                        const struct job *job);

#endif
